"""The server side's factory: :func:`wrap` and :class:`ProxyServerFactory`.

Strategy: the factory owns what all connections of one server share: the options, the
counters, and the set of connections still waiting for their header with one timer for all
of their deadlines (the timeout is the same for every connection, so insertion order is
deadline order). Each accepted connection gets a header-reading protocol from
:mod:`._protocol`, which talks to the factory only through the public methods here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proxyproto_rs.aio._protocol import BufferedOuter, HeaderProtocol, PlainOuter
from proxyproto_rs.aio._types import ProtocolFactory
from proxyproto_rs.options import ServerOptions, ServerOptionsKwargs, resolve

if TYPE_CHECKING:
    from typing_extensions import Unpack


@dataclass(slots=True)
class ServerStats:
    """Counters of one wrapped server (all its connections)."""

    served: int = 0
    """Connections handed to the wrapped protocol."""
    direct: int = 0
    """Of those, untrusted peers served without a header (``untrusted="direct"``)."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Connections closed before reaching the wrapped protocol, by error kind."""


class ProxyServerFactory:
    """The protocol factory returned by :func:`wrap`; pass it to ``loop.create_server``.

    Attributes:
        protocol_factory: the wrapped factory, called once a connection is accepted.
        options: the :class:`~proxyproto_rs.options.ServerOptions` it applies.
        pending: connections currently waiting for their header.
        stats: :class:`ServerStats` of every connection made through this factory.
    """

    __slots__ = ("_outer", "_sweeper", "_waiting", "options", "protocol_factory", "stats")

    def __init__(
        self, protocol_factory: ProtocolFactory, options: ServerOptions | None = None
    ) -> None:
        self.protocol_factory = protocol_factory
        self.options = options if options is not None else ServerOptions()
        self.stats = ServerStats()
        # Connections waiting for their header -> deadline. The timeout is the same for all,
        # so insertion order is deadline order and one timer serves every connection.
        self._waiting: dict[HeaderProtocol, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._outer: type[HeaderProtocol] | None = None

    def __call__(self) -> HeaderProtocol:
        outer = self._outer
        if outer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside a loop (tests, harnesses)
                return BufferedOuter(self, self.options)
            # uvloop serves a plain Protocol faster than a BufferedProtocol that hands over to
            # a plain one (measured: benchmarks/bench_aio.py); asyncio's loop the other way.
            uvloop = type(loop).__module__.startswith("uvloop")
            outer = self._outer = PlainOuter if uvloop else BufferedOuter
        return outer(self, self.options)

    @property
    def pending(self) -> int:
        """Connections currently waiting for their header."""
        return len(self._waiting)

    def _wait(self, proto: HeaderProtocol) -> None:
        timeout = self.options.timeout
        if timeout is None:
            self._waiting[proto] = 0.0
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiting[proto] = deadline
        if self._sweeper is None:
            self._sweeper = loop.call_at(deadline, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        waiting = self._waiting
        now = loop.time()
        while waiting:
            proto, deadline = next(iter(waiting.items()))
            if deadline > now:
                self._sweeper = loop.call_at(deadline, self._sweep, loop)
                return
            waiting.pop(proto, None)
            proto._on_timeout()

    def _count_reject(self, kind: str) -> None:
        rejected = self.stats.rejected
        rejected[kind] = rejected.get(kind, 0) + 1


def wrap(
    protocol_factory: ProtocolFactory,
    options: ServerOptions | None = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> ProxyServerFactory:
    """Wrap *protocol_factory* so that each connection starts with a PROXY header.

    Use the result with ``loop.create_server()`` or ``loop.create_unix_server()`` (and do not
    pass ``ssl=`` to them: give it here, so TLS starts after the header).

    Args:
        protocol_factory: makes the application's ``asyncio.Protocol`` or
            ``asyncio.BufferedProtocol``; called only for accepted connections.
        options: a :class:`~proxyproto_rs.options.ServerOptions` (trusted networks,
            ``untrusted``, ``timeout``, ``max_size``, ``max_pending``, ``policy``, parser
            options, ``ssl``...); ``None``: the defaults.
        **kwargs: the same names as keyword arguments, applied over *options*
            (``wrap(f, trusted=["10.0.0.0/8"])``).

    Returns:
        A :class:`ProxyServerFactory` (callable, with ``pending`` and ``stats``).

    Raises:
        TypeError, ValueError: an unknown or invalid option.
    """
    return ProxyServerFactory(protocol_factory, resolve(options, kwargs))
