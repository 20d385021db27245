"""asyncio integration: serve behind HAProxy, nginx or an AWS NLB and see the real client.

Server side, change one line::

    server = await loop.create_server(aio.wrap(MyProtocol, trusted=["10.0.0.0/8"]), host, port)
    server = await aio.start_server(handle, host, port, trusted=["10.0.0.0/8"])

The wrapped protocol's transport reports the header's addresses as ``peername`` and
``sockname`` and the :class:`~proxyproto_rs.Header` as ``proxy_header``; everything after the
header reaches the protocol untouched. Client side, :func:`open_connection` and
:func:`send_header` write a header as the first bytes of a connection. :func:`wrap_datagram`
does the same for UDP, one header per datagram (SPEC rule 5).

Safe by default (SPEC rules 4 and 6): a header is required, it must arrive within
``timeout`` seconds (5), it may not exceed ``max_size`` bytes (4096), and peers outside
``trusted`` are rejected unless ``untrusted="direct"`` says to serve them without a header.
A connection that is refused never reaches the wrapped protocol; it is closed at once and
logged once on the ``"proxyproto_rs.aio"`` logger with the error kind.

Implementation notes:

- The outer protocol is an :class:`asyncio.BufferedProtocol` on asyncio's loops (reads land
  in one buffer per connection) and a plain :class:`asyncio.Protocol` on uvloop (which
  switches away from a BufferedProtocol slowly); either feeds the sans-IO
  :class:`~proxyproto_rs.Parser`. Once the header is
  complete and the bytes read past it (``Parser.trailing_data``) are delivered, the real
  transport is pointed straight at the wrapped protocol with ``set_protocol()``, so the wrapper
  costs nothing per read afterwards; writes go through :class:`ProxiedTransport`.
- TLS after the header (``ssl=``): the header is read in clear; then an
  :class:`asyncio.sslproto.SSLProtocol` (what ``loop.start_tls()`` uses internally) is
  given :class:`ProxiedTransport` as its transport, the bytes already read after the header
  (the start of the ClientHello) are fed to it synchronously, and only then is the socket
  switched over to it. ``loop.start_tls()`` itself cannot be used because it resumes reading
  from the socket before the caller can push back the bytes it already holds.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from asyncio import sslproto
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast

from proxyproto_rs._core import Header, Parser, parse
from proxyproto_rs._enums import Command, Protocol
from proxyproto_rs._errors import IncompleteHeaderError, ProxyProtocolError
from proxyproto_rs.options import (
    Policy,
    ServerOptions,
    ServerOptionsKwargs,
    TrustedSpec,
    Untrusted,
    resolve,
    split_options,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "PolicyHook",
    "ServerOptions",
    "TrustedSpec",
    "Untrusted",
    "DatagramStats",
    "ProxiedDatagramTransport",
    "ProxiedSocket",
    "ProxiedTransport",
    "ProxyDatagramFactory",
    "ProxyServerFactory",
    "ServerStats",
    "open_connection",
    "open_unix_connection",
    "read_header",
    "send_datagram",
    "send_header",
    "start_server",
    "start_unix_server",
    "wrap",
    "wrap_datagram",
]

logger: Final = logging.getLogger("proxyproto_rs.aio")

PolicyHook: TypeAlias = Policy
"""``policy(peername, header, sockname) -> bool``; see :data:`proxyproto_rs.options.Policy`."""
ProtocolFactory: TypeAlias = Callable[[], asyncio.BaseProtocol]
DatagramProtocolFactory: TypeAlias = Callable[[], asyncio.DatagramProtocol]
ClientConnectedCallback: TypeAlias = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None
]

_READ_SIZE: Final = 4096
"""Bytes read at once while the header is incomplete (a header plus a request usually fit)."""
_STREAM_LIMIT: Final = 2**16
"""asyncio's default StreamReader limit."""
_ROUTE_CAP: Final = 65536
"""Client addresses remembered per UDP endpoint to route replies back via the proxy."""

# Connection states of the outer protocol.
_HEADER: Final = 0
_SERVING: Final = 1
_CLOSED: Final = 2


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
        self._waiting: dict[_ProxyServerProtocol, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._outer: type[_ProxyServerProtocol] | None = None

    def __call__(self) -> _ProxyServerProtocol:
        outer = self._outer
        if outer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside a loop (tests, harnesses)
                return _BufferedOuter(self, self.options)
            # uvloop serves a plain Protocol faster than a BufferedProtocol that hands over to
            # a plain one (measured: benchmarks/bench_aio.py); asyncio's loop the other way.
            uvloop = type(loop).__module__.startswith("uvloop")
            outer = self._outer = _PlainOuter if uvloop else _BufferedOuter
        return outer(self, self.options)

    @property
    def pending(self) -> int:
        """Connections currently waiting for their header."""
        return len(self._waiting)

    def _wait(self, proto: _ProxyServerProtocol) -> None:
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


_LAZY_SOCKET: Final = object()
"""Placeholder for a ProxiedSocket made on first request (most protocols never ask)."""


class ProxiedSocket:
    """What ``get_extra_info("socket")`` returns on a proxied connection.

    It forwards everything (``fileno()``, ``setsockopt()``, ``family``...) to the real socket
    except ``getpeername()`` and ``getsockname()``, which return the header's addresses, so
    code that asks the socket for the client (uvicorn does) never sees the proxy's address.
    ``family`` stays the real socket's, which may differ from the header's.
    """

    __slots__ = ("_peername", "_sock", "_sockname")

    def __init__(self, sock: Any, peername: object, sockname: object) -> None:
        self._sock = sock
        self._peername = peername
        self._sockname = sockname

    def getpeername(self) -> object:
        """The client's address from the header."""
        return self._peername

    def getsockname(self) -> object:
        """The address the client connected to, from the header."""
        return self._sockname

    @property
    def real_socket(self) -> Any:
        """The socket object the transport gave (its peer is the proxy)."""
        return self._sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return f"<ProxiedSocket peer={self._peername!r} sock={self._sockname!r} of {self._sock!r}>"


class ProxiedTransport(asyncio.Transport):
    """The transport the wrapped protocol sees: the real one with the header's view.

    ``get_extra_info()`` answers ``peername``, ``sockname``, ``proxy_header`` and ``socket``
    from the header (see :class:`ProxiedSocket`) and everything else from the real
    transport; all other methods act on the real transport. The real transport, whose peer is
    the proxy, is the ``transport`` attribute.
    """

    _start_tls_compatible = True

    def __init__(
        self,
        transport: asyncio.Transport,
        owner: _ProxyServerProtocol,
        extra: dict[str, Any],
    ) -> None:
        # BaseTransport.__init__ only sets _extra; done inline (one per connection).
        self._extra = extra
        self.transport = transport
        self._owner = owner
        # The hot path: no extra Python frame per write.
        self.write = transport.write  # type: ignore[method-assign]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        extra = self._extra
        if name in extra:
            value = extra[name]
            if value is _LAZY_SOCKET:
                sock = self.transport.get_extra_info("socket")
                if sock is not None:
                    sock = ProxiedSocket(sock, extra["peername"], extra["sockname"])
                value = extra[name] = sock
            return value
        return self.transport.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.transport.write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self.transport.write_eof()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._owner._pause_reading()

    def resume_reading(self) -> None:
        self._owner._resume_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._owner._set_app(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        owner = self._owner
        if owner._handed_over:
            return self.transport.get_protocol()
        app = owner._app
        assert app is not None
        return app

    def _force_close(self, exc: BaseException | None) -> None:
        # asyncio's SSLProtocol calls this private method on fatal errors.
        force = getattr(self.transport, "_force_close", None)
        if force is not None:
            force(exc)
        else:
            self.transport.abort()

    def __repr__(self) -> str:
        return f"<ProxiedTransport peer={self._extra.get('peername')!r} of {self.transport!r}>"


class _ProxyServerProtocol(asyncio.BaseProtocol):
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
                "socket": _LAZY_SOCKET,
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


class _BufferedOuter(_ProxyServerProtocol, asyncio.BufferedProtocol):
    """The outer protocol on asyncio's loops: header reads land in one reused buffer."""

    __slots__ = ()


class _PlainOuter(_ProxyServerProtocol, asyncio.Protocol):
    """The outer protocol on uvloop (see ProxyServerFactory.__call__)."""

    __slots__ = ()


# -- streams ------------------------------------------------------------------------------


def _stream_factory(
    client_connected_cb: ClientConnectedCallback, limit: int
) -> Callable[[], asyncio.StreamReaderProtocol]:
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return factory


async def start_server(
    client_connected_cb: ClientConnectedCallback,
    host: str | Sequence[str] | None = None,
    port: int | None = None,
    *,
    options: ServerOptions | None = None,
    limit: int = _STREAM_LIMIT,
    **kwargs: Any,
) -> asyncio.Server:
    """Like :func:`asyncio.start_server`, behind a PROXY protocol sender.

    ``client_connected_cb(reader, writer)`` runs only for accepted connections, after the
    header (and the TLS handshake with ``ssl=``). ``writer.get_extra_info("peername")`` is
    the real client, ``("proxy_header")`` the :class:`~proxyproto_rs.Header`. *options* and
    the keyword arguments named like its fields are as in :func:`wrap`; other keyword
    arguments go to ``loop.create_server()``.
    """
    ours, rest = split_options(kwargs)
    factory = ProxyServerFactory(
        _stream_factory(client_connected_cb, limit), resolve(options, ours)
    )
    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host, cast(int, port), **rest)


async def start_unix_server(
    client_connected_cb: ClientConnectedCallback,
    path: str | None = None,
    *,
    options: ServerOptions | None = None,
    limit: int = _STREAM_LIMIT,
    **kwargs: Any,
) -> asyncio.Server:
    """:func:`start_server` on a UNIX socket (``trusted=None`` or containing ``"unix"``)."""
    ours, rest = split_options(kwargs)
    factory = ProxyServerFactory(
        _stream_factory(client_connected_cb, limit), resolve(options, ours)
    )
    loop = asyncio.get_running_loop()
    return await loop.create_unix_server(factory, path, **rest)


async def read_header(
    reader: asyncio.StreamReader,
    *,
    options: ServerOptions | None = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> Header:
    """Read one header from *reader*, consuming exactly its bytes and nothing more.

    Each read asks for at most ``Parser.needed`` bytes, a lower bound on what the header
    still lacks, so the payload stays in the reader for the application; nothing is ever
    pushed back into the reader's private buffer. Of *options* (and the keyword arguments
    named like its fields) only ``timeout`` and the parser options (``max_size``,
    ``allow_v1``, ``allow_v2``, ``verify_checksum``, ``haproxy_limits``) apply here.

    Raises:
        InvalidHeaderError: the bytes can never form a header (or a subclass).
        IncompleteHeaderError: EOF before the header was complete (kind ``"eof"``).
        TimeoutError: no complete header within *timeout* seconds.
    """
    resolved = resolve(options, kwargs)
    parser = resolved.new_parser()
    async with asyncio.timeout(resolved.timeout):
        while True:
            chunk = await reader.read(max(parser.needed, 1))
            if not chunk:
                raise IncompleteHeaderError(
                    "connection closed before a complete header", kind="eof", offset=-1
                )
            header = parser.feed(chunk)
            if header is not None:
                if parser.trailing_data:  # pragma: no cover - the core's needed is a bound
                    raise RuntimeError("Parser.needed overshot the header: payload consumed")
                return header


# -- client side --------------------------------------------------------------------------


def _header_bytes(header: Header | bytes | bytearray | memoryview) -> bytes:
    return header.to_bytes() if isinstance(header, Header) else bytes(header)


def send_header(
    transport: asyncio.WriteTransport | asyncio.StreamWriter,
    header: Header | bytes | bytearray | memoryview,
) -> None:
    """Write *header* on *transport* (or a StreamWriter); call it before any other write.

    The header goes out in one ``write()`` call, so it leaves in one segment when it fits
    (SPEC rule 3).
    """
    transport.write(_header_bytes(header))


def send_datagram(
    transport: asyncio.DatagramTransport,
    header: Header | bytes | bytearray | memoryview,
    data: bytes | bytearray | memoryview,
    addr: Any = None,
) -> None:
    """Send *data* prefixed with *header* in one datagram (SPEC rule 5)."""
    transport.sendto(_header_bytes(header) + bytes(data), addr)


async def open_connection(
    host: str | None = None,
    port: int | None = None,
    *,
    header: Header | bytes | bytearray | memoryview,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    limit: int = _STREAM_LIMIT,
    **kwargs: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Like :func:`asyncio.open_connection`, sending *header* first.

    With ``ssl=``, the header goes in clear and the TLS handshake follows it on the same
    connection (what HAProxy's ``send-proxy`` in front of a TLS server does).
    """
    reader, writer = await asyncio.open_connection(host, port, limit=limit, **kwargs)
    return await _client_finish(
        reader, writer, header, ssl, server_hostname or host, ssl_handshake_timeout
    )


async def open_unix_connection(
    path: str | None = None,
    *,
    header: Header | bytes | bytearray | memoryview,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    limit: int = _STREAM_LIMIT,
    **kwargs: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """:func:`open_connection` on a UNIX socket."""
    reader, writer = await asyncio.open_unix_connection(path, limit=limit, **kwargs)
    return await _client_finish(reader, writer, header, ssl, server_hostname, ssl_handshake_timeout)


async def _client_finish(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    header: Header | bytes | bytearray | memoryview,
    ssl: _ssl.SSLContext | bool | None,
    server_hostname: str | None,
    ssl_handshake_timeout: float | None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        send_header(writer, header)
        if ssl:
            context = ssl if isinstance(ssl, _ssl.SSLContext) else _ssl.create_default_context()
            await writer.start_tls(
                context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
            )
    except BaseException:
        writer.close()
        raise
    return reader, writer


# -- UDP ----------------------------------------------------------------------------------


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
        return _ProxyDatagramProtocol(self, self.options, self._reply_via_proxy)


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
            defaults to ``False`` here.
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

    def __init__(self, transport: asyncio.DatagramTransport, owner: _ProxyDatagramProtocol):
        super().__init__()
        self.transport = transport
        self._owner = owner

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "proxy_header":
            return self._owner._current
        return self.transport.get_extra_info(name, default)

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        routes = self._owner._routes
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
        return self._owner._inner

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.DatagramProtocol)
        self._owner._inner = protocol


def _route_key(addr: Any) -> Any:
    if isinstance(addr, tuple) and len(addr) > 2:
        return addr[:2]
    return addr


class _ProxyDatagramProtocol(asyncio.DatagramProtocol):
    def __init__(
        self, factory: ProxyDatagramFactory, options: ServerOptions, reply_via_proxy: bool
    ):
        self._factory = factory
        self._options = options
        self._sockname: Any = None
        self._inner = factory.protocol_factory()
        self._current: Header | None = None
        self._routes: dict[Any, Any] | None = {} if reply_via_proxy else None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sockname = transport.get_extra_info("sockname")
        proxied = ProxiedDatagramTransport(cast(asyncio.DatagramTransport, transport), self)
        self._inner.connection_made(proxied)

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def error_received(self, exc: Exception) -> None:
        self._inner.error_received(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _drop(self, kind: str, addr: Any) -> None:
        stats = self._factory.stats
        stats.dropped += 1
        stats.dropped_by_kind[kind] = stats.dropped_by_kind.get(kind, 0) + 1
        logger.debug("datagram from %r dropped [%s]", addr, kind)

    def _allowed(self, addr: Any, header: Header | None) -> bool:
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
                return
            if not self._allowed(addr, None):
                self._drop("policy", addr)
                return
            stats.delivered += 1
            self._inner.datagram_received(data, addr)
            return
        try:
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
            return
        if header.command == Command.PROXY and header.protocol == Protocol.STREAM:
            self._drop("stream_header_in_datagram", addr)
            return
        if not self._allowed(addr, header):
            self._drop("policy", addr)
            return
        source = header.source
        if source is None:
            source = addr
        else:
            routes = self._routes
            if routes is not None:
                key = _route_key(source)
                if routes.get(key) != addr:
                    routes.pop(key, None)
                    if len(routes) >= _ROUTE_CAP:
                        del routes[next(iter(routes))]
                    routes[key] = addr
        stats.delivered += 1
        self._current = header
        try:
            self._inner.datagram_received(data[header.length :], cast(Any, source))
        finally:
            self._current = None
