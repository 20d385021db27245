"""UDP behind a PROXY sender: :func:`wrap_datagram`, one header per datagram (SPEC rule 5).

Strategy: every datagram is parsed on its own with :func:`~proxyproto_rs.parse` (no state
between datagrams); a bad one is dropped and counted, logged at DEBUG only since datagrams
are cheap to forge. Replies can be routed back through the proxy that relayed the client's
last datagram, from a bounded table of recent clients.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

from proxyproto_rs._core import Header, SppHeader, parse, parse_spp
from proxyproto_rs._enums import Command, Protocol
from proxyproto_rs._errors import ProxyProtocolError
from proxyproto_rs.aio._types import DatagramProtocolFactory, logger
from proxyproto_rs.options import ServerOptions, ServerOptionsKwargs, resolve

if TYPE_CHECKING:
    from typing_extensions import Unpack

_ROUTE_CAP: Final = 65536
"""Client addresses remembered per UDP endpoint to route replies back via the proxy."""


@dataclass(slots=True)
class DatagramStats:
    """Counters of one wrapped datagram endpoint."""

    received: int = 0
    """Datagrams received."""
    delivered: int = 0
    """Datagrams passed to the wrapped protocol."""
    dropped: int = 0
    """Datagrams dropped (no valid header, untrusted sender, refused by policy)."""
    dropped_by_kind: dict[str, int] = field(default_factory=dict)
    """``dropped`` split by error kind."""


class ProxyDatagramFactory:
    """The protocol factory returned by :func:`wrap_datagram`.

    Attributes:
        options: the :class:`~proxyproto_rs.options.ServerOptions` it applies.
        stats: :class:`DatagramStats` of every endpoint made through this factory.
    """

    __slots__ = ("_reply_via_proxy", "options", "protocol_factory", "stats")

    def __init__(
        self,
        protocol_factory: DatagramProtocolFactory,
        options: ServerOptions | None = None,
        reply_via_proxy: bool = True,
    ) -> None:
        self.protocol_factory = protocol_factory
        self.options = options if options is not None else ServerOptions(allow_v1=False)
        self._reply_via_proxy = reply_via_proxy
        self.stats = DatagramStats()

    def __call__(self) -> asyncio.DatagramProtocol:
        return DatagramHeaderProtocol(self, self.options, self._reply_via_proxy)


def wrap_datagram(
    protocol_factory: DatagramProtocolFactory,
    *,
    options: ServerOptions | None = None,
    reply_via_proxy: bool = True,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> ProxyDatagramFactory:
    """Wrap a datagram protocol factory for ``loop.create_datagram_endpoint``.

    Every datagram must start with its own header (SPEC rule 5); the wrapped protocol's
    ``datagram_received(payload, addr)`` gets the bytes after it and the header's source
    address (the sender's address for LOCAL or UNSPEC headers). A datagram with a missing
    or bad header, or whose header describes a STREAM connection, is dropped and counted in
    ``stats`` (logged at DEBUG only: datagrams are cheap to forge). While
    ``datagram_received`` runs, ``transport.get_extra_info("proxy_header")`` is that
    datagram's header.

    Args:
        options: as in :func:`wrap`; of its fields ``trusted``, ``untrusted`` (``"direct"``
            delivers an untrusted sender's datagrams whole, with its socket address),
            ``policy`` (its ``sockname`` is the endpoint's local address) and the parser
            options apply. v1 describes TCP only, so without *options* ``allow_v1``
            defaults to ``False`` here. ``spp=True``: datagrams start with Cloudflare
            Spectrum's Simple Proxy Protocol header instead (``proxy_header`` is then an
            :class:`~proxyproto_rs.SppHeader`; replies go back through Spectrum).
        reply_via_proxy: ``transport.sendto(data, client_addr)`` sends to the proxy that
            relayed the client's last datagram instead (as an AWS NLB expects); the last
            65536 clients are remembered. ``False``: send to the address as given.
        **kwargs: option fields applied over *options*.
    """
    if options is None and "allow_v1" not in kwargs:
        kwargs["allow_v1"] = False
    return ProxyDatagramFactory(protocol_factory, resolve(options, kwargs), reply_via_proxy)


class ProxiedDatagramTransport(asyncio.DatagramTransport):
    """The datagram transport the wrapped protocol sees.

    ``get_extra_info("proxy_header")`` is the header of the datagram being delivered
    (``None`` outside ``datagram_received``); ``sendto()`` routes replies via the proxy when
    the endpoint was made with ``reply_via_proxy=True``.
    """

    def __init__(self, transport: asyncio.DatagramTransport, owner: DatagramHeaderProtocol):
        super().__init__()
        self.transport = transport
        self._owner = owner

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "proxy_header":
            return self._owner.current
        return self.transport.get_extra_info(name, default)

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        routes = self._owner.routes
        if routes is not None and addr is not None:
            addr = routes.get(_route_key(addr), addr)
        self.transport.sendto(data, addr)

    def abort(self) -> None:
        self.transport.abort()

    def close(self) -> None:
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._owner.inner

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.DatagramProtocol)
        self._owner.inner = protocol


def _route_key(addr: Any) -> Any:
    if isinstance(addr, tuple) and len(addr) > 2:
        return addr[:2]
    return addr


class DatagramHeaderProtocol(asyncio.DatagramProtocol):
    """Parses each datagram's header and passes the payload on to the wrapped protocol.

    Attributes:
        inner: the wrapped protocol.
        current: the header of the datagram being delivered (``None`` between datagrams).
        routes: client address -> the proxy that relayed it last (``reply_via_proxy``).
    """

    def __init__(
        self, factory: ProxyDatagramFactory, options: ServerOptions, reply_via_proxy: bool
    ):
        self._factory = factory
        self._options = options
        self._sockname: Any = None
        self.inner = factory.protocol_factory()
        self.current: Header | SppHeader | None = None
        self.routes: dict[Any, Any] | None = {} if reply_via_proxy else None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sockname = transport.get_extra_info("sockname")
        proxied = ProxiedDatagramTransport(cast(asyncio.DatagramTransport, transport), self)
        self.inner.connection_made(proxied)

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def error_received(self, exc: Exception) -> None:
        self.inner.error_received(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _drop(self, kind: str, addr: Any) -> None:
        stats = self._factory.stats
        stats.dropped += 1
        stats.dropped_by_kind[kind] = stats.dropped_by_kind.get(kind, 0) + 1
        logger.debug("datagram from %r dropped [%s]", addr, kind)

    def _allowed(self, addr: Any, header: Header | SppHeader | None) -> bool:
        options = self._options
        if options.policy is None:
            return True
        try:
            return options.accepts(addr, header, self._sockname)
        except Exception:
            logger.exception("datagram policy hook failed")
            return False

    def datagram_received(self, data: bytes, addr: Any) -> None:
        options = self._options
        stats = self._factory.stats
        stats.received += 1
        if not options.trusts(addr):
            if options.untrusted == "reject":
                self._drop("untrusted_peer", addr)
            elif not self._allowed(addr, None):
                self._drop("policy", addr)
            else:
                stats.delivered += 1
                self.inner.datagram_received(data, addr)
            return
        header = self._header(data, addr)
        if header is None:
            return
        if not self._allowed(addr, header):
            self._drop("policy", addr)
            return
        source = header.client if isinstance(header, SppHeader) else header.source
        if source is None:
            source = addr
        else:
            self._remember(source, addr)
        stats.delivered += 1
        self.current = header
        try:
            self.inner.datagram_received(data[header.length :], cast(Any, source))
        finally:
            self.current = None

    def _header(self, data: bytes, addr: Any) -> Header | SppHeader | None:
        """The datagram's header, or ``None`` once the datagram is dropped."""
        options = self._options
        header: Header | SppHeader
        try:
            if options.spp:
                header = parse_spp(data)
            else:
                header = parse(
                    data,
                    allow_v1=options.allow_v1,
                    allow_v2=options.allow_v2,
                    verify_checksum=options.verify_checksum,
                    max_size=options.max_size,
                    haproxy_limits=options.haproxy_limits,
                )
        except ProxyProtocolError as exc:
            self._drop(exc.kind, addr)
            return None
        if (
            isinstance(header, Header)
            and header.command == Command.PROXY
            and header.protocol == Protocol.STREAM
        ):
            self._drop("stream_header_in_datagram", addr)
            return None
        return header

    def _remember(self, client: Any, proxy: Any) -> None:
        """Route replies to *client* through *proxy* (``reply_via_proxy``), bounded."""
        routes = self.routes
        if routes is None:
            return
        key = _route_key(client)
        if routes.get(key) != proxy:
            routes.pop(key, None)
            if len(routes) >= _ROUTE_CAP:
                del routes[next(iter(routes))]
            routes[key] = proxy
