"""The header-reading protocol: one per connection, from accept to the hand-over.

Strategy: the outer protocol is an :class:`asyncio.BufferedProtocol` on asyncio's loops
(reads land in the server's one read buffer and are copied out at once) and a plain
:class:`asyncio.Protocol` on uvloop (which switches away from a BufferedProtocol slowly);
either feeds the sans-IO :class:`~proxyproto_rs.Parser`. Once the header is complete, the
application's protocol is made and told ``connection_made`` at once (a server that speaks
first is never delayed). The bytes read past the header, and the first bytes read after it,
are held until they show no second PROXY header (unless ``allow_chained``); they are then
delivered, and the real transport is pointed straight at the application's protocol with
``set_protocol()``, so this class costs nothing per read afterwards.

States and transitions (``_goto`` is the only place that changes the state):

========  =============================================  ===========================
state     meaning                                        next
========  =============================================  ===========================
HEADER    reading the header; in the server's pending     CHECK, RELAY, CLOSED
          set (deadline, ``max_pending``)
CHECK     application running; its first bytes held       RELAY, CLOSED
          until they cannot start a second header
RELAY     application running; held bytes (and a held     HANDED, CLOSED
          EOF) being delivered, in order, as it reads
HANDED    the real transport calls the application        CLOSED
          directly; only stray events reach us
CLOSED    refused, or the connection is gone              (none)
========  =============================================  ===========================
"""

from __future__ import annotations

import asyncio
from asyncio import sslproto
from typing import TYPE_CHECKING, Any, Final

from proxyproto_rs._core import V2_SIGNATURE, Header, Parser
from proxyproto_rs._errors import IncompleteHeaderError, InvalidHeaderError, ProxyProtocolError
from proxyproto_rs.aio._transport import ProxiedTransport
from proxyproto_rs.aio._types import logger
from proxyproto_rs.options import ServerOptions

if TYPE_CHECKING:
    from proxyproto_rs.aio._server import ProxyServerFactory

_HEADER: Final = 0
_CHECK: Final = 1
_RELAY: Final = 2
_HANDED: Final = 3
_CLOSED: Final = 4
_NAMES: Final = ("HEADER", "CHECK", "RELAY", "HANDED", "CLOSED")
_NEXT: Final[tuple[frozenset[int], ...]] = (
    frozenset({_CHECK, _RELAY, _CLOSED}),  # HEADER
    frozenset({_RELAY, _CLOSED}),  # CHECK
    frozenset({_HANDED, _CLOSED}),  # RELAY
    frozenset({_CLOSED}),  # HANDED
    frozenset(),  # CLOSED
)
_APP_RUNNING: Final = frozenset({_CHECK, _RELAY, _HANDED})


class HeaderProtocol(asyncio.BaseProtocol):
    """Reads the header, then hands the connection over to the wrapped protocol.

    The logic of the two outer protocols below: it speaks both the BufferedProtocol
    (``get_buffer``/``buffer_updated``) and the Protocol (``data_received``) interfaces.
    Its public methods are those asyncio calls plus the ones :class:`ProxiedTransport`
    (``*_app_*``) and the server's pending set (``expire``, ``evict``) call.
    """

    __slots__ = (
        "__weakref__",
        "_app",
        "_backlog",
        "_eof_pending",
        "_factory",
        "_options",
        "_parser",
        "_paused",
        "_peer",
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
        self._peer: Any = None
        self._app: asyncio.BaseProtocol | None = None
        self._backlog: bytes | memoryview | None = None
        self._eof_pending = False
        self._paused = False
        self._writing_paused = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {_NAMES[self._state]} peer={self._peer!r}>"

    def _goto(self, state: int) -> None:
        """Enter *state*: the one place the state changes, with each entry's bookkeeping."""
        old = self._state
        if state not in _NEXT[old]:
            raise RuntimeError(f"aio: no transition {_NAMES[old]} -> {_NAMES[state]}")
        self._state = state
        if old == _HEADER:
            self._parser = None
            self._factory.done_waiting(self)
        if state == _HANDED:
            transport = self._transport
            app = self._app
            assert transport is not None
            assert app is not None
            transport.set_protocol(app)
            # Drop our reference: the real transport now owns the protocol, and keeping it
            # would make a reference cycle (protocol -> ProxiedTransport -> us -> protocol)
            # that only the cyclic GC could free.
            self._app = None

    # -- events from the transport ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport: no isinstance check.
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = peer
        if not self._factory.trusts(peer):
            options = self._options
            if options.untrusted == "reject":
                self._refuse("untrusted_peer", "peer is not in the trusted networks")
            elif self._policy_allows(None):
                self._factory.stats.direct += 1
                self._serve(None, b"")
            return
        # The parser is made only if the first read does not hold the whole header.
        self._factory.wait(self)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._factory.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        view = memoryview(self._factory.read_buffer)[:nbytes]
        if self._state == _HEADER:
            self.data_received(view)
        elif self._state != _CLOSED:
            self._hold(bytes(view))  # the read buffer is shared: copy out now

    def data_received(self, data: bytes | memoryview) -> None:
        """Bytes read: header bytes while in HEADER (a ``memoryview`` of the shared read
        buffer when ``buffer_updated`` passes them on), else bytes to hold for the
        application. The header phase runs here, not in a helper: on uvloop every
        connection's first read comes this way, and a call less is measurable."""
        if self._state != _HEADER:
            if self._state != _CLOSED:
                self._hold(bytes(data))
            return
        parser = self._parser
        try:
            if parser is None:
                # The first read: it usually holds the whole header, parsed in one call.
                try:
                    header: Header | None = self._factory.parse_header(data)
                except IncompleteHeaderError:
                    parser = self._parser = self._options.new_parser()
                    header = parser.feed(data)
                else:
                    assert header is not None
                    tail = data[header.length :]
                    # A memoryview reads the shared read buffer: copy it out before the next read.
                    trailing = tail if isinstance(tail, bytes) else bytes(tail)
            else:
                header = parser.feed(data)
                if header is not None:
                    trailing = parser.trailing_data
        except ProxyProtocolError as exc:
            self._refuse(exc.kind, str(exc))
            return
        if header is None:
            self._factory.still_waiting(self)
            return
        if self._options.policy is None or self._policy_allows(header):
            self._serve(header, trailing)

    def eof_received(self) -> bool | None:
        state = self._state
        if state == _HEADER:
            self._refuse("eof", "connection closed before a complete header")
            return None
        if state in (_CHECK, _RELAY):
            self._eof_pending = True
            self._flush()
            return True  # _flush closed the transport unless the application keeps it open
        app = self._current()
        if state == _HANDED and isinstance(app, asyncio.Protocol | asyncio.BufferedProtocol):
            return app.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        state = self._state
        app = self._current()
        if state == _HEADER:
            self._refuse("eof", "connection lost before a complete header", abort=False)
        elif state != _CLOSED:
            self._goto(_CLOSED)
        self._backlog = None
        self._app = None
        if app is not None:
            app.connection_lost(exc)

    def pause_writing(self) -> None:
        app = self._current()
        if self._state in _APP_RUNNING and app is not None:
            self._writing_paused = True
            app.pause_writing()

    def resume_writing(self) -> None:
        app = self._current()
        if self._writing_paused and app is not None:
            self._writing_paused = False
            app.resume_writing()

    # -- from the server's pending set --------------------------------------------------

    def expire(self) -> None:
        """The header timeout elapsed."""
        if self._state == _HEADER:
            self._refuse("timeout", f"no complete header within {self._options.timeout} s")

    def evict(self, pending: int) -> None:
        """Closed to make room for a newer connection under ``max_pending``."""
        if self._state == _HEADER:
            message = f"evicted, the oldest of {pending} connections waiting for a header"
            self._refuse("too_many_pending", message)

    # -- from ProxiedTransport ----------------------------------------------------------

    def pause_app_reading(self) -> None:
        """The application paused reading: hold what we have, and pause the socket."""
        transport = self._transport
        assert transport is not None
        if self._state != _HANDED:
            self._paused = True
        transport.pause_reading()

    def resume_app_reading(self) -> None:
        """The application resumed reading: deliver what we hold first."""
        transport = self._transport
        assert transport is not None
        if self._state != _HANDED:
            self._paused = False
            self._flush()
            if self._paused:
                return
        transport.resume_reading()

    def set_app_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """The application switched protocols (``transport.set_protocol``)."""
        if self._state == _HANDED:
            assert self._transport is not None
            self._transport.set_protocol(protocol)
        else:
            self._app = protocol

    def app_protocol(self) -> asyncio.BaseProtocol | None:
        """The application's protocol (``transport.get_protocol``)."""
        return self._current()

    # -- header phase -------------------------------------------------------------------

    def _policy_allows(self, header: Header | None) -> bool:
        transport = self._transport
        assert transport is not None
        try:
            sockname = transport.get_extra_info("sockname")
            allowed = self._options.accepts(self._peer, header, sockname)
        except Exception as exc:
            self._refuse("policy", f"policy hook raised {exc!r}")
            return False
        if not allowed:
            self._refuse("policy", "refused by the policy hook")
        return allowed

    def _refuse(self, kind: str, message: str, *, abort: bool = True) -> None:
        if self._state != _HEADER and self._state != _CHECK:
            return
        self._goto(_CLOSED)
        self._factory.refused(kind, self._peer, message)
        if abort and self._transport is not None:
            self._transport.abort()

    # -- hand-over ----------------------------------------------------------------------

    def _serve(self, header: Header | None, trailing: bytes) -> None:
        """Make the application's protocol and start it; hold *trailing* for it."""
        transport = self._transport
        assert transport is not None
        proxied = ProxiedTransport(transport, self, header)
        factory = self._factory
        options = self._options
        try:
            app = factory.protocol_factory() if options.ssl is None else self._make_tls_app()
        except Exception:
            logger.exception("protocol factory failed for a connection from %r", self._peer)
            self._goto(_CLOSED)
            transport.abort()
            return
        self._app = app
        factory.stats.served += 1
        # CHECK until the first bytes show no second header; usually they came with the
        # header and settle it now (their first byte is neither "P" nor "\r").
        check = header is not None and not options.allow_chained
        if check and trailing and (trailing[0] not in b"P\r" or second_header(trailing) == 0):
            check = False
        self._goto(_CHECK if check else _RELAY)
        app.connection_made(proxied)
        app = self._app  # connection_made may have switched protocols
        if (
            self._state == _RELAY
            and not self._paused
            and not isinstance(app, asyncio.BufferedProtocol)
            and isinstance(app, asyncio.Protocol)
            and not transport.is_closing()
        ):
            # The usual case, settled without the relay: hand over first, then give the
            # bytes that came with the header straight to the application, so from its
            # first read on the real transport calls it (and pauses/switches act on it).
            self._goto(_HANDED)
            if trailing:
                app.data_received(trailing)
            return
        if trailing:
            self._backlog = trailing
        self._flush()

    def _make_tls_app(self) -> asyncio.BaseProtocol:
        """The application's protocol behind a server-side TLS layer (``ssl`` is set)."""
        inner = self._factory.protocol_factory()
        options = self._options
        assert options.ssl is not None
        return sslproto.SSLProtocol(
            asyncio.get_running_loop(),
            inner,
            options.ssl,
            None,  # type: ignore[arg-type]  # no waiter: nobody awaits the handshake
            server_side=True,
            ssl_handshake_timeout=options.ssl_handshake_timeout,  # type: ignore[arg-type]
        )

    def _hold(self, data: bytes) -> None:
        backlog = self._backlog
        self._backlog = data if backlog is None else bytes(backlog) + data
        self._flush()

    def _flush(self) -> None:
        """Check, then deliver held bytes (then a held EOF) in order; hand over once all
        are out."""
        if self._state == _CHECK and not self._checked():
            return
        transport = self._transport
        assert transport is not None
        while self._backlog is not None:
            if self._paused or self._state not in _APP_RUNNING or transport.is_closing():
                return
            self._deliver(self._backlog)
        if self._state not in _APP_RUNNING:
            return
        if self._eof_pending:
            self._eof_pending = False
            app = self._current()
            keep_open = False
            if isinstance(app, asyncio.Protocol | asyncio.BufferedProtocol):
                keep_open = bool(app.eof_received())
            if not keep_open:
                transport.close()
        if self._state == _RELAY and not transport.is_closing():
            self._goto(_HANDED)

    def _checked(self) -> bool:
        """In CHECK: False while the held bytes may still start a second header (or once
        they do: the connection is then refused); True once they cannot."""
        version = second_header(self._backlog or b"")
        if version is None and not self._eof_pending:
            return False
        if version:
            self._refuse_chained(version)
            return False
        self._goto(_RELAY)
        return True

    def _refuse_chained(self, version: int) -> None:
        app = self._app
        message = (
            f"a second PROXY header (v{version}) starts the application's bytes: two "
            "proxies in a row each add one (remove one, or allow_chained=True)"
        )
        self._refuse("chained_header", message)
        self._backlog = None
        self._app = None
        if app is not None:
            app.connection_lost(InvalidHeaderError(message, kind="chained_header", offset=0))

    def _deliver(self, data: bytes | memoryview) -> None:
        """Give *data* (or as much as its buffer takes) to the application."""
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

    def _current(self) -> asyncio.BaseProtocol | None:
        """The protocol that gets the connection's events now.

        After the hand-over the real transport calls it directly; we only see events when a
        transport keeps calling the protocol it started with (or one already in flight).
        """
        if self._state != _HANDED:
            return self._app
        assert self._transport is not None
        app: asyncio.BaseProtocol | None = self._transport.get_protocol()
        return None if app is self else app


_V1_SIGNATURE: Final = b"PROXY "


def second_header(data: bytes | memoryview) -> int | None:
    """Whether application bytes start with another PROXY header: 1 or 2 (its version)
    when they start with a v1 or v2 signature, 0 when they cannot, ``None`` when they are
    too short to tell. The signature alone decides, so any split of the bytes gives the
    same answer."""
    if data and data[0] != 0x50 and data[0] != 0x0D:  # neither "P" nor "\r": the usual case
        return 0
    head = bytes(data[: len(V2_SIGNATURE)])
    if head.startswith(_V1_SIGNATURE):
        return 1
    if head.startswith(V2_SIGNATURE):
        return 2
    if _V1_SIGNATURE.startswith(head) or V2_SIGNATURE.startswith(head):
        return None
    return 0


class BufferedOuter(HeaderProtocol, asyncio.BufferedProtocol):
    """The outer protocol on asyncio's loops: header reads land in the server's buffer."""

    __slots__ = ()


class PlainOuter(HeaderProtocol, asyncio.Protocol):
    """The outer protocol on uvloop (see ProxyServerFactory.__call__)."""

    __slots__ = ()
