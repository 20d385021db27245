"""The server side's factory: :func:`wrap` and :class:`ProxyServerFactory`.

Strategy: the factory owns what all connections of one server share: the options, the
counters, the connections still waiting for their header (:mod:`._pending`: one timer for
all deadlines, the ``max_pending`` cap) and the refusal log (:mod:`._report`). Each
accepted connection gets a header-reading protocol from :mod:`._protocol`, which talks to
the factory only through the public methods here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from proxyproto_rs.aio._pending import PendingSet, Waiter
from proxyproto_rs.aio._protocol import BufferedOuter, HeaderProtocol, PlainOuter
from proxyproto_rs.aio._report import RefusalLog
from proxyproto_rs.aio._types import ProtocolFactory
from proxyproto_rs.options import ServerOptions, ServerOptionsKwargs, resolve

if TYPE_CHECKING:
    from typing_extensions import Unpack

_READ_SIZE: Final = 4096
"""Bytes read at once while the header is incomplete (a header plus a request usually fit)."""


@dataclass(slots=True)
class ServerStats:
    """Counters of one wrapped server (all its connections)."""

    served: int = 0
    """Connections handed to the wrapped protocol."""
    direct: int = 0
    """Of those, untrusted peers served without a header (``untrusted="direct"``)."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Connections refused, by error kind: closed before reaching the wrapped protocol,
    or, for ``"chained_header"``, as soon as its first bytes showed a second header."""
    evicted: int = 0
    """Of ``rejected["too_many_pending"]``, the connections that were waiting for their
    header and were closed to make room for a newer one under ``max_pending``."""


class ProxyServerFactory:
    """The protocol factory returned by :func:`wrap`; pass it to ``loop.create_server``.

    Attributes:
        protocol_factory: the wrapped factory, called once a connection is accepted.
        options: the :class:`~proxyproto_rs.options.ServerOptions` it applies.
        pending: connections currently waiting for their header.
        stats: :class:`ServerStats` of every connection made through this factory.
    """

    __slots__ = (
        "_log",
        "_outer",
        "_waiting",
        "done_waiting",
        "options",
        "parse_header",
        "protocol_factory",
        "read_buffer",
        "stats",
        "still_waiting",
        "trusts",
        "wait",
    )

    def __init__(
        self, protocol_factory: ProtocolFactory, options: ServerOptions | None = None
    ) -> None:
        self.protocol_factory = protocol_factory
        self.options = options = options if options is not None else ServerOptions()
        self.stats = ServerStats()
        self._waiting = PendingSet(options.timeout, options.max_pending)
        self._log = RefusalLog(options.log_first, options.log_interval)
        self.read_buffer = bytearray(_READ_SIZE)
        """Where header reads land on asyncio's loops: each read is copied out (into the
        parser, or as held bytes) before the loop makes the next one, so one buffer serves
        every connection of the server (a server belongs to one loop)."""
        self._outer: type[HeaderProtocol] | None = None
        # The pending set's own methods, called per connection without a frame of ours.
        self.wait: Callable[[Waiter], None] = self._waiting.add
        """``wait(connection)``: it starts waiting for its header (deadline, cap apply)."""
        self.still_waiting: Callable[[Waiter], None] = self._waiting.started
        """``still_waiting(connection)``: read from, its header still incomplete."""
        self.done_waiting: Callable[[Waiter], None] = self._waiting.discard
        """``done_waiting(connection)``: header complete, refused or closed."""
        self.trusts: Callable[[object], bool] = options.trust_function()
        """``trusts(peername)``: whether the peer may send a header (the core's test)."""
        self.parse_header = options.parse_function()
        """``parse`` with the options: a connection's first read usually holds its header."""

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

    def refused(self, kind: str, peer: Any, message: str) -> None:
        """Count and log one refused connection."""
        stats = self.stats
        rejected = stats.rejected
        rejected[kind] = rejected.get(kind, 0) + 1
        stats.evicted = self._waiting.evicted
        self._log.refused(kind, peer, message)


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
