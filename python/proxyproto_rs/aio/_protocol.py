"""The header-reading protocol: one per connection, from accept to the hand-over.

Strategy: the outer protocol is an :class:`asyncio.BufferedProtocol` on asyncio's loops
(reads land in one buffer per connection) and a plain :class:`asyncio.Protocol` on uvloop
(which switches away from a BufferedProtocol slowly); either feeds the sans-IO
:class:`~proxyproto_rs.Parser`. Once the header is complete and the bytes read past it are
delivered, the real transport is pointed straight at the application's protocol with
``set_protocol()``, so this class costs nothing per read afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import sslproto
from typing import TYPE_CHECKING, Any, Final, cast

from proxyproto_rs._core import Header, Parser
from proxyproto_rs._errors import ProxyProtocolError
from proxyproto_rs.aio._transport import LAZY_SOCKET, ProxiedTransport
from proxyproto_rs.aio._types import logger
from proxyproto_rs.options import ServerOptions

if TYPE_CHECKING:
    from proxyproto_rs.aio._server import ProxyServerFactory

_READ_SIZE: Final = 4096
"""Bytes read at once while the header is incomplete (a header plus a request usually fit)."""

# Connection states of the outer protocol.
_HEADER: Final = 0
_SERVING: Final = 1
_CLOSED: Final = 2


class HeaderProtocol(asyncio.BaseProtocol):
    """Reads the header, then hands the connection over to the wrapped protocol.

    The logic of the two outer protocols below: it speaks both the BufferedProtocol
    (``get_buffer``/``buffer_updated``) and the Protocol (``data_received``) interfaces.
    """

    __slots__ = (
        "__weakref__",
        "_app",
        "_backlog",
        "_buf",
        "_eof_pending",
        "_factory",
        "_handed_over",
        "_options",
        "_parser",
        "_paused",
        "_peer",
        "_pending",
        "_state",
        "_transport",
        "_writing_paused",
    )

    def __init__(self, factory: ProxyServerFactory, options: ServerOptions) -> None:
        self._factory = factory
        self._options = options
        self._state = _HEADER
        self._transport: asyncio.Transport | None = None
        self._parser: Parser | None = None
        self._buf: bytearray | None = None
        self._pending = False
        self._peer: Any = None
        self._app: asyncio.BaseProtocol | None = None
        self._backlog: bytes | memoryview | None = None
        self._eof_pending = False
        self._paused = False
        self._handed_over = False
        self._writing_paused = False

    # -- header phase -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport: no isinstance check.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        options = self._options
        factory = self._factory
        peer = transport.get_extra_info("peername")
        self._peer = peer
        if not options.trusts(peer):
            if options.untrusted == "reject":
                self._reject("untrusted_peer", "peer is not in the trusted networks")
                return
            if self._policy_allows(None):
                factory.stats.direct += 1
                self._start(None, b"")
            return
        max_pending = options.max_pending
        if max_pending is not None and len(factory._waiting) >= max_pending:
            self._reject("too_many_pending", f"{factory.pending} connections wait for a header")
            return
        self._parser = options.new_parser()
        self._pending = True
        factory._wait(self)

    def get_buffer(self, sizehint: int) -> bytearray:
        buf = self._buf
        if buf is None:
            buf = self._buf = bytearray(_READ_SIZE)
        return buf

    def buffer_updated(self, nbytes: int) -> None:
        buf = self._buf
        assert buf is not None
        if self._state != _HEADER:
            # Only when the socket delivers while our backlog is still held (not expected,
            # since reading is paused then): queue behind the backlog, in order.
            if self._state == _SERVING:
                self._queue(bytes(buf[:nbytes]))
            return
        self._header_bytes(memoryview(buf)[:nbytes])

    def data_received(self, data: bytes) -> None:
        if self._state != _HEADER:
            if self._state == _SERVING:
                self._queue(data)
            return
        self._header_bytes(data)

    def _header_bytes(self, data: bytes | memoryview) -> None:
        parser = self._parser
        assert parser is not None
        try:
            header = parser.feed(data)
        except ProxyProtocolError as exc:
            self._reject(exc.kind, str(exc))
            return
        if header is None:
            return
        trailing = parser.trailing_data
        self._parser = None
        self._buf = None
        self._pending = False
        self._factory._waiting.pop(self, None)
        if self._options.policy is None or self._policy_allows(header):
            self._start(header, trailing)

    def eof_received(self) -> bool | None:
        if self._state == _HEADER:
            self._reject("eof", "connection closed before a complete header")
            return None
        if self._state == _SERVING:
            if self._backlog is not None:
                self._eof_pending = True
                return True
            app = self._current()
            if isinstance(app, asyncio.Protocol | asyncio.BufferedProtocol):
                return app.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        state = self._state
        if state == _HEADER:
            self._reject("eof", "connection lost before a complete header", abort=False)
        self._release()
        self._backlog = None
        if state == _SERVING:
            self._state = _CLOSED
            app = self._current()
            if app is not None:
                app.connection_lost(exc)

    def pause_writing(self) -> None:
        app = self._current()
        if self._state == _SERVING and app is not None:
            self._writing_paused = True
            app.pause_writing()

    def resume_writing(self) -> None:
        app = self._current()
        if self._writing_paused and app is not None:
            self._writing_paused = False
            app.resume_writing()

    def _current(self) -> asyncio.BaseProtocol | None:
        """The protocol that gets the connection's events now.

        After the hand-over the real transport calls it directly; we only see events when a
        transport keeps calling the protocol it started with (or one already in flight).
        """
        if not self._handed_over:
            return self._app
        assert self._transport is not None
        app: asyncio.BaseProtocol | None = self._transport.get_protocol()
        return None if app is self else app

    def _on_timeout(self) -> None:
        if self._state == _HEADER:
            self._reject("timeout", f"no complete header within {self._options.timeout} s")

    def _release(self) -> None:
        if self._pending:
            self._pending = False
            self._factory._waiting.pop(self, None)

    def _reject(self, kind: str, message: str, *, abort: bool = True) -> None:
        if self._state != _HEADER:
            return
        self._state = _CLOSED
        self._release()
        self._parser = None
        self._buf = None
        self._factory._count_reject(kind)
        level = logging.INFO if kind in ("eof", "timeout", "too_many_pending") else logging.WARNING
        logger.log(
            level,
            "connection from %r refused: %s [%s]",
            self._peer,
            message,
            kind,
            extra={"proxy_kind": kind, "proxy_peer": self._peer},
        )
        if abort and self._transport is not None:
            self._transport.abort()

    def _policy_allows(self, header: Header | None) -> bool:
        options = self._options
        if options.policy is None:
            return True
        transport = self._transport
        assert transport is not None
        try:
            allowed = options.accepts(self._peer, header, transport.get_extra_info("sockname"))
        except Exception as exc:
            self._reject("policy", f"policy hook raised {exc!r}")
            return False
        if not allowed:
            self._reject("policy", "refused by the policy hook")
            return False
        return True

    # -- hand-over ----------------------------------------------------------------------

    def _start(self, header: Header | None, trailing: bytes) -> None:
        transport = self._transport
        assert transport is not None
        options = self._options
        source = None if header is None else header.source
        extra: dict[str, Any]
        if source is None:
            extra = {"proxy_header": header}
        else:
            assert header is not None
            extra = {
                "proxy_header": header,
                "peername": source,
                "sockname": header.destination,
                "socket": LAZY_SOCKET,
            }
        proxied = ProxiedTransport(transport, self, extra)
        try:
            inner = self._factory.protocol_factory()
            app: asyncio.BaseProtocol
            if options.ssl is not None:
                app = sslproto.SSLProtocol(
                    asyncio.get_running_loop(),
                    inner,
                    options.ssl,
                    None,  # type: ignore[arg-type]  # no waiter: nobody awaits the handshake
                    server_side=True,
                    ssl_handshake_timeout=options.ssl_handshake_timeout,  # type: ignore[arg-type]
                )
            else:
                app = inner
        except Exception:
            logger.exception("protocol factory failed for a connection from %r", self._peer)
            self._state = _CLOSED
            transport.abort()
            return
        self._state = _SERVING
        self._app = app
        self._factory.stats.served += 1
        app.connection_made(proxied)
        if trailing:
            self._backlog = trailing
            self._flush()
        elif not transport.is_closing():
            # Nothing read past the header: hand over at once (the common case for
            # server-speaks-first protocols and for TLS with a slow ClientHello).
            self._handed_over = True
            transport.set_protocol(app)
            self._app = None

    def _queue(self, data: bytes) -> None:
        backlog = self._backlog
        self._backlog = data if backlog is None else bytes(backlog) + data
        self._flush()

    def _flush(self) -> None:
        """Deliver held bytes (then a held EOF) in order; hand over once all are out."""
        transport = self._transport
        assert transport is not None
        while self._backlog is not None:
            if self._paused or self._state != _SERVING or transport.is_closing():
                return
            data = self._backlog
            app = self._current()
            if isinstance(app, asyncio.BufferedProtocol):
                view = memoryview(data)
                buf = memoryview(app.get_buffer(len(view))).cast("B")
                n = min(len(buf), len(view))
                if n == 0:
                    raise RuntimeError("get_buffer() returned an empty buffer")
                buf[:n] = view[:n]
                self._backlog = view[n:] if n < len(view) else None
                app.buffer_updated(n)
            elif isinstance(app, asyncio.Protocol):
                self._backlog = None
                app.data_received(data if isinstance(data, bytes) else bytes(data))
            else:
                raise TypeError(f"{app!r} is not a stream protocol")
        if self._state != _SERVING:
            return
        if self._eof_pending:
            self._eof_pending = False
            app = self._current()
            keep_open = False
            if isinstance(app, asyncio.Protocol | asyncio.BufferedProtocol):
                keep_open = bool(app.eof_received())
            if not keep_open:
                transport.close()
        if not self._handed_over and not transport.is_closing():
            self._handed_over = True
            app = self._app
            assert app is not None
            transport.set_protocol(app)
            # Drop our reference: the real transport now owns the protocol, and keeping it
            # would make a reference cycle (protocol -> ProxiedTransport -> us -> protocol)
            # that only the cyclic GC could free.
            self._app = None

    def _pause_reading(self) -> None:
        transport = self._transport
        assert transport is not None
        if not self._handed_over:
            self._paused = True
        transport.pause_reading()

    def _resume_reading(self) -> None:
        transport = self._transport
        assert transport is not None
        if not self._handed_over:
            self._paused = False
            self._flush()
            if self._paused:
                return
        transport.resume_reading()

    def _set_app(self, protocol: asyncio.BaseProtocol) -> None:
        if self._handed_over:
            assert self._transport is not None
            self._transport.set_protocol(protocol)
        else:
            self._app = protocol


class BufferedOuter(HeaderProtocol, asyncio.BufferedProtocol):
    """The outer protocol on asyncio's loops: header reads land in one reused buffer."""

    __slots__ = ()


class PlainOuter(HeaderProtocol, asyncio.Protocol):
    """The outer protocol on uvloop (see ProxyServerFactory.__call__)."""

    __slots__ = ()
