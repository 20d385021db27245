"""Blocking sockets: read a PROXY header with a deadline, then serve the real client.

Use it from a thread-per-connection server, a ``socketserver`` server (and so ``http.server``
and werkzeug's development server) or a hand-written accept loop::

    sock, client, header = sync.accept(listener, trusted=["10.0.0.0/8"])

    class Server(sync.ProxyProtocolMixin, http.server.ThreadingHTTPServer):
        proxy_options = ServerOptions(trusted=["10.0.0.0/8"])

Strategy: the header is read with ``MSG_PEEK`` and then consumed with one exact ``recv``, so
not a byte past the header ever leaves the kernel's buffer: TLS or the application protocol
starts intact on the same socket, and the caller needs no "bytes already read" hand-over.
When a peek shows only part of a header, every byte of it belongs to the header, so it is
consumed and the next peek waits for more (there is no busy loop). One deadline covers the
whole header, however many reads it takes; the socket's own timeout is restored afterwards.
A header already waiting (the usual case) is taken by one call into the core on Unix
(``_SocketReader``: peek, parse and recv with ``MSG_DONTWAIT``, two system calls, the socket's
mode and timeout untouched); whatever that call cannot settle alone (nothing there yet, part
of a header, an error to report, a second header after it) it leaves unconsumed for the
general reader here. Reading ``Parser.needed`` bytes at a time with a deadline would cost ten
system calls for v2 and over forty for v1 (docs/sync.md has the measurement).

The rules are those of :class:`~proxyproto_rs.options.ServerOptions`, the type every server
entry point of the package shares: a header is required; a peer outside ``trusted`` is refused
(``untrusted="reject"``) or served with its socket addresses and no header read
(``"direct"``); the ``policy`` hook sees ``(peer, header, sockname)``. A refusal is a
:class:`~proxyproto_rs.ProxyProtocolError` whose ``kind`` says why, the same slugs as
:mod:`proxyproto_rs.aio` logs. LOCAL, v1 UNKNOWN and UNSPEC headers carry no addresses: the
socket's own are the ones to use (:func:`client_address`, :func:`server_address`).

UDP has no connection: :func:`parse_datagram` applies the same rules to every datagram
(SPEC rule 5), with a PROXY header or, behind Cloudflare Spectrum, its Simple Proxy Protocol
header (``spp=True``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple, TypeAlias, cast

from proxyproto_rs import _core
from proxyproto_rs._core import (
    SPP_SIZE,
    V2_SIGNATURE,
    Header,
    SppHeader,
    detect,
    parse_spp,
)
from proxyproto_rs._enums import Command, Protocol
from proxyproto_rs._errors import (
    IncompleteHeaderError,
    InvalidHeaderError,
    PeerRefusedError,
    ProxyProtocolError,
)
from proxyproto_rs.options import ServerOptions, resolve

if TYPE_CHECKING:
    import socketserver

    from typing_extensions import Unpack

    from proxyproto_rs.options import ServerOptionsKwargs

__all__ = [
    "WSGI_HEADER_KEY",
    "WSGI_PEER_KEY",
    "Address",
    "Datagram",
    "ProxyProtocolMixin",
    "accept",
    "client_address",
    "enable",
    "parse_datagram",
    "read_header",
    "server_address",
]

logger: Final = logging.getLogger("proxyproto_rs.sync")

Address: TypeAlias = Any
"""What a socket's ``getpeername()`` returns: ``(host, port)``, a 4-tuple for IPv6, a path."""

WSGI_HEADER_KEY: Final = "proxyproto_rs.header"
"""The WSGI ``environ`` key holding the connection's :class:`~proxyproto_rs.Header` (or
``None`` for a peer served with ``untrusted="direct"``)."""
WSGI_PEER_KEY: Final = "proxyproto_rs.proxy_peer"
"""The WSGI ``environ`` key holding the socket peer that sent the header (the proxy)."""

_DONTWAIT: Final = getattr(socket, "MSG_DONTWAIT", 0)
"""Per-call non-blocking ``recv`` (not on Windows, where the socket's mode is switched)."""
_CHAINED_POLL: Final = 0.005
"""Seconds between peeks while the bytes after a header may still start a second one."""
_PEEK_SIZE: Final = 4096
"""Bytes peeked at once: the default ``max_size``, so one peek holds any default header."""
_SocketReader: Final[type[_core._SocketReader] | None] = getattr(_core, "_SocketReader", None)
"""The core's one-call reader of a header already waiting (Unix only)."""
_READERS: Final[dict[int, tuple[ServerOptions, _core._SocketReader]]] = {}
"""The one-call reader made for each options object (by ``id``, the object kept alive)."""
_READERS_CAP: Final = 64
"""Options objects whose reader is remembered; the cache restarts when full."""


def read_header(
    sock: socket.socket,
    options: ServerOptions | None = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> Header | None:
    """Read the PROXY header at the start of connected *sock*, consuming nothing after it.

    The header must be complete within ``options.timeout`` seconds in total; the socket's
    timeout is restored before returning or raising. Call it on the plain socket, before any
    TLS wrapping: TLS starts on the bytes after the header.

    Returns:
        The header, or ``None`` for a peer outside ``trusted`` when ``untrusted="direct"``
        (nothing is read from it). Use :func:`client_address` / :func:`server_address` for
        the addresses the application should see.

    Raises:
        PeerRefusedError: an untrusted peer with ``untrusted="reject"`` (kind
            ``"untrusted_peer"``), or the ``policy`` hook said no or raised (``"policy"``).
        IncompleteHeaderError: the peer closed first (kind ``"eof"``) or the deadline passed
            (kind ``"timeout"``).
        InvalidHeaderError: the bytes can never form an accepted header (or a subclass), or
            the bytes that arrived with it start a second header (kind ``"chained_header"``,
            unless ``allow_chained``).
        OSError: the socket failed (a reset connection, ...).
    """
    opts = options if options is not None and not kwargs else resolve(options, kwargs)
    return _read_checked(sock, opts, None)


def client_address(sock: socket.socket, header: Header | None) -> Address:
    """The client address the application should see: the header's source, else the peer's.

    The socket's own ``getpeername()`` is used when *header* is ``None`` (a peer served
    directly) or carries no address (LOCAL, v1 UNKNOWN, a family or protocol of UNSPEC).
    """
    source = None if header is None else header.source
    return sock.getpeername() if source is None else source


def server_address(sock: socket.socket, header: Header | None) -> Address:
    """The server address the client connected to: the header's destination, else ours."""
    destination = None if header is None else header.destination
    return sock.getsockname() if destination is None else destination


def accept(
    listener: socket.socket,
    options: ServerOptions | None = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> tuple[socket.socket, Address, Header | None]:
    """Accept one connection on *listener* and read its header.

    Returns ``(sock, client, header)``: the connected socket positioned on the first byte
    after the header (wrapped in ``options.ssl`` with the handshake done, when set), the
    address of the real client (:func:`client_address`) and the header (``None`` for a
    ``"direct"`` peer). A refused connection is closed and the error raised, so a loop of
    ``accept`` calls goes on with ``except ProxyProtocolError``. The header is read in the
    calling thread: accept in one thread and call :func:`read_header` in the handling
    thread when slow clients must not delay others.

    Raises:
        The errors of :func:`read_header`, and ``ssl.SSLError`` from the handshake.
    """
    opts = resolve(options, kwargs)
    sock, peer = listener.accept()
    try:
        header = _read_checked(sock, opts, peer)
        source = None if header is None else header.source
        client = peer if source is None else source
        if opts.ssl is not None:
            sock = _start_tls(sock, opts)
    except BaseException:
        sock.close()
        raise
    return sock, client, header


# -- reading ------------------------------------------------------------------------------


def _read_checked(sock: socket.socket, opts: ServerOptions, peer: Address) -> Header | None:
    """The trust rules around :func:`_read`: untrusted peers, then the policy hook.

    *peer* ``None`` means "not asked yet": ``getpeername()`` is a system call that a server
    trusting everyone without a policy hook never needs.
    """
    if opts.trusted is None and opts.policy is None:  # everyone sends a header, no hook
        return _read(sock, opts)
    header: Header | None = None
    if peer is None:
        peer = sock.getpeername()
    if opts.trusts(peer):
        header = _read(sock, opts)
    elif opts.untrusted == "reject":
        raise PeerRefusedError(
            f"peer {peer!r} is not in the trusted networks", kind="untrusted_peer"
        )
    if opts.policy is None:
        return header
    try:
        allowed = opts.accepts(peer, header, sock.getsockname())
    except Exception as exc:
        raise PeerRefusedError(f"policy hook raised {exc!r}", kind="policy") from exc
    if not allowed:
        raise PeerRefusedError("refused by the policy hook", kind="policy")
    return header


def _read(sock: socket.socket, opts: ServerOptions) -> Header:
    """The header at the start of *sock*: in one call into the core when it is already
    waiting whole on a plain socket (an ``ssl.SSLSocket`` reads through TLS), else by
    :func:`_read_waiting`."""
    if type(sock) is socket.socket and _SocketReader is not None:
        entry = _READERS.get(id(opts))
        reader = entry[1] if entry is not None and entry[0] is opts else _new_reader(opts)
        header = reader.read(sock.fileno())
        if header is not None:
            return header
    return _read_waiting(sock, opts)


def _new_reader(opts: ServerOptions) -> _core._SocketReader:
    """The core reader for *opts*, remembered for the next connection."""
    assert _SocketReader is not None
    reader = _SocketReader(
        allow_v1=opts.allow_v1,
        allow_v2=opts.allow_v2,
        verify_checksum=opts.verify_checksum,
        max_size=opts.max_size,
        haproxy_limits=opts.haproxy_limits,
        allow_chained=opts.allow_chained,
    )
    if len(_READERS) >= _READERS_CAP:
        _READERS.clear()
    _READERS[id(opts)] = (opts, reader)
    return reader


def _read_waiting(sock: socket.socket, opts: ServerOptions) -> Header:
    """Peek, parse, consume exactly the header's bytes; one deadline for all of it.

    Reads never wait while bytes are there: on a blocking socket each call carries
    ``MSG_DONTWAIT`` (the socket's mode is left alone); otherwise the socket is made
    non-blocking for the duration (in timeout mode CPython polls before every ``recv``).
    Only when nothing is waiting does a peek wait, in timeout mode, for what is left of the
    deadline.
    """
    previous = sock.gettimeout()
    flags = _DONTWAIT if previous is None else 0
    timeout = opts.timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    consumed = b""  # header bytes already taken from the socket (only when split)
    limit = max(opts.max_size, _PEEK_SIZE)
    touched = not flags
    try:
        if touched:
            sock.setblocking(False)
        while True:
            size = limit - len(consumed)
            try:
                peeked = sock.recv(size, socket.MSG_PEEK | flags)
            except BlockingIOError:
                touched = True
                _arm(sock, deadline, timeout)
                try:
                    peeked = sock.recv(size, socket.MSG_PEEK)
                finally:
                    if flags:
                        sock.settimeout(None)
                    else:
                        sock.setblocking(False)
            if not peeked:
                raise IncompleteHeaderError(
                    "connection closed before a complete header", kind="eof"
                )
            data = consumed + peeked if consumed else peeked
            try:
                header = opts.parse(data)
            except IncompleteHeaderError:
                # Every peeked byte belongs to the header: take them, wait for the rest.
                _consume(sock, len(peeked), flags)
                consumed = data
                continue
            _consume(sock, header.length - len(consumed), flags)
            if not opts.allow_chained:
                _refuse_chained(sock, data[header.length :], flags, deadline)
            return header
    except TimeoutError:
        raise IncompleteHeaderError(
            f"no complete header within {timeout} s", kind="timeout"
        ) from None
    finally:
        if touched:
            with contextlib.suppress(OSError):  # closed underneath: nothing to restore
                sock.settimeout(previous)


def _refuse_chained(sock: socket.socket, tail: bytes, flags: int, deadline: float | None) -> None:
    """Refuse a second PROXY header at the start of the application's bytes (two proxies in
    a row each adding one), as far as the bytes already received show it.

    *tail* is what the last peek held after the header. Nothing is waited for when it is
    empty (a server-speaks-first protocol would stall). When it is a strict prefix of a
    signature, the socket is peeked again every few milliseconds until the bytes decide or
    the header's deadline passes (then the connection is served).
    """
    verdict = detect(tail) if tail else 0
    while verdict is None:
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(_CHAINED_POLL)
        try:
            more = sock.recv(len(V2_SIGNATURE), socket.MSG_PEEK | flags)
        except BlockingIOError:
            continue
        if not more:
            return  # closed: nothing follows
        if len(more) == len(tail):
            continue  # nothing new yet
        tail = more
        verdict = detect(tail)
    if verdict:
        raise InvalidHeaderError(
            f"a second PROXY header (v{verdict}) starts the application's bytes: two proxies"
            " in a row each add one (remove one, or allow_chained=True)",
            kind="chained_header",
            offset=0,
        )


def _arm(sock: socket.socket, deadline: float | None, timeout: float | None) -> None:
    """Set the socket timeout to what is left before *deadline*."""
    if deadline is None:
        sock.settimeout(None)
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise IncompleteHeaderError(f"no complete header within {timeout} s", kind="timeout")
    sock.settimeout(left)


def _consume(sock: socket.socket, count: int, flags: int) -> None:
    """Take *count* bytes that a peek just showed are waiting (one ``recv`` on TCP)."""
    while count > 0:
        got = sock.recv(count, flags)
        if not got:  # pragma: no cover - peeked bytes cannot vanish
            raise IncompleteHeaderError("connection closed inside the header", kind="eof")
        count -= len(got)


def _start_tls(sock: socket.socket, opts: ServerOptions) -> socket.socket:
    """Wrap *sock* in ``opts.ssl`` and finish the handshake within its timeout."""
    assert opts.ssl is not None
    previous = sock.gettimeout()
    tls = opts.ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    try:
        tls.settimeout(opts.ssl_handshake_timeout or 60.0)
        tls.do_handshake()
        tls.settimeout(previous)
    except BaseException:
        tls.close()
        raise
    return tls


# -- socketserver -------------------------------------------------------------------------


class ProxyProtocolMixin:
    """Mix into a ``socketserver`` server (first base) to read a header on every connection.

    Works with ``socketserver.TCPServer`` and ``ThreadingTCPServer``,
    ``http.server.HTTPServer`` and ``ThreadingHTTPServer``, ``wsgiref``'s and werkzeug's
    servers (or use :func:`enable` on an instance such as ``werkzeug.serving.make_server``
    returns). The header is read in ``finish_request``, i.e. in the thread that serves the
    connection on a threaded server, so a slow client never delays the others (on a
    non-threaded server it delays everyone for up to ``timeout`` seconds). With
    ``max_pending`` set, a connection arriving while that many wait for their header is
    refused (kind ``"too_many_pending"``).

    The request handler is made with ``client_address`` = the real client
    (:func:`client_address`); the header is ``server.get_proxy_header(request)``, and a WSGI
    handler (one with ``make_environ``, as werkzeug's, or ``get_environ``, as wsgiref's)
    also finds it in the environ under :data:`WSGI_HEADER_KEY` and the proxy's address under
    :data:`WSGI_PEER_KEY`. A refused connection never reaches the handler: it is closed and
    logged on the ``"proxyproto_rs.sync"`` logger with the error kind, rate-limited by
    ``log_first`` and ``log_interval`` as :mod:`proxyproto_rs.aio` does. With
    ``options.ssl`` set, TLS starts after the header and the handler gets the TLS socket.

    Attributes:
        proxy_options: the :class:`~proxyproto_rs.options.ServerOptions`; set it on the
            class or the instance (``None``: the defaults, a header required from everyone).
    """

    proxy_options: ServerOptions | None = None
    _proxy_env_handlers: ClassVar[dict[type[Any], type[Any]]] = {}

    def get_proxy_header(self, request: Any) -> Header | None:
        """The header read from *request* (``None`` for a ``"direct"`` peer or unknown)."""
        headers: dict[int, tuple[Header | None, Address]] = self.__dict__.get("_proxy_seen", {})
        found = headers.get(id(request))
        return None if found is None else found[0]

    def get_proxy_peer(self, request: Any) -> Address:
        """The socket peer that sent *request*'s header (the proxy), ``None`` if unknown."""
        headers: dict[int, tuple[Header | None, Address]] = self.__dict__.get("_proxy_seen", {})
        found = headers.get(id(request))
        return None if found is None else found[1]

    def finish_request(self, request: Any, client_address: Address) -> None:
        """Read the header, then run the handler with the real client address."""
        opts = self.proxy_options or resolve(None, {})
        counted = opts.max_pending is not None
        if counted:
            pending = self._proxy_pending(+1)
        try:
            if counted and pending > cast(int, opts.max_pending):
                raise PeerRefusedError(
                    f"{pending - 1} connections wait for a header", kind="too_many_pending"
                )
            header = _read_checked(request, opts, client_address)
            source = None if header is None else header.source
            real = client_address if source is None else source
            served = _start_tls(request, opts) if opts.ssl is not None else request
        except (ProxyProtocolError, OSError) as exc:
            self._proxy_refused(opts, client_address, exc)
            return  # socketserver then closes the request (shutdown_request)
        finally:
            if counted:
                self._proxy_pending(-1)
        seen: dict[int, tuple[Header | None, Address]] | None = self.__dict__.get("_proxy_seen")
        if seen is None:
            seen = self.__dict__.setdefault("_proxy_seen", {})
        self._proxy_wsgi_handler()
        seen[id(served)] = (header, client_address)
        try:
            super().finish_request(served, real)  # type: ignore[misc]
        finally:
            seen.pop(id(served), None)
            if served is not request:
                served.close()

    def _proxy_refused(self, opts: ServerOptions, peer: Address, exc: BaseException) -> None:
        """Log a refusal through aio's rate-limited log (``log_first``, ``log_interval``)."""
        kind = getattr(exc, "kind", "connection_error")
        state = self.__dict__.get("_proxy_log")
        if state is None:
            from proxyproto_rs.aio._report import RefusalLog  # only servers that refuse pay

            made = (threading.Lock(), RefusalLog(opts.log_first, opts.log_interval, logger))
            state = self.__dict__.setdefault("_proxy_log", made)
        lock, log = state
        with lock:
            log.refused(kind, peer, str(exc))

    def _proxy_pending(self, delta: int) -> int:
        """Count connections waiting for their header (``max_pending``); the new count."""
        lock: threading.Lock = self.__dict__.get("_proxy_lock") or self.__dict__.setdefault(
            "_proxy_lock", threading.Lock()
        )
        with lock:
            count: int = self.__dict__.get("_proxy_waiting", 0) + delta
            self.__dict__["_proxy_waiting"] = count
        return count

    def _proxy_wsgi_handler(self) -> None:
        """Swap a WSGI handler class for one that puts the header into the environ.

        Decided once per handler class (a dict lookup per connection after that): asking a
        class for an attribute it lacks raises and catches an ``AttributeError`` inside.
        """
        server: Any = self
        cls = server.RequestHandlerClass
        wrapped = ProxyProtocolMixin._proxy_env_handlers.get(cls)
        if wrapped is None:
            wrapped = cls if getattr(cls, "_proxyproto_env", False) else _environ_handler(cls)
            ProxyProtocolMixin._proxy_env_handlers[cls] = wrapped
            ProxyProtocolMixin._proxy_env_handlers[wrapped] = wrapped
        if wrapped is not cls:
            server.RequestHandlerClass = wrapped


def _environ_handler(cls: type[Any]) -> type[Any]:
    """*cls* itself, or a subclass adding the header to its WSGI environ."""
    for method in ("make_environ", "get_environ"):  # werkzeug, wsgiref
        base = getattr(cls, method, None)
        if base is not None:
            return type(
                cls.__name__,
                (cls,),
                {method: _with_header(method), "_proxyproto_env": True},
            )
    return cls


def _with_header(method: str) -> Callable[[Any], Any]:
    def environ(handler: Any) -> Any:
        env = getattr(super(type(handler), handler), method)()
        server = handler.server
        env[WSGI_HEADER_KEY] = server.get_proxy_header(handler.request)
        env[WSGI_PEER_KEY] = server.get_proxy_peer(handler.request)
        return env

    environ.__name__ = method
    return environ


def enable(
    server: socketserver.BaseServer,
    options: ServerOptions | None = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> socketserver.BaseServer:
    """Make an existing ``socketserver`` server read a header on every connection.

    For servers that a factory builds, e.g. ``werkzeug.serving.make_server(...,
    threaded=True)``: the instance's class becomes a subclass with
    :class:`ProxyProtocolMixin` first. Returns *server*.
    """
    opts = resolve(options, kwargs)
    cls = type(server)
    if not issubclass(cls, ProxyProtocolMixin):
        server.__class__ = type(cls.__name__, (ProxyProtocolMixin, cls), {})
    server.proxy_options = opts  # type: ignore[attr-defined]
    return server


# -- datagrams ----------------------------------------------------------------------------


class Datagram(NamedTuple):
    """One datagram as :func:`parse_datagram` returns it."""

    payload: bytes
    """The bytes after the header."""
    client: Address
    """The real client: the header's source, or the sender for LOCAL/UNSPEC and direct."""
    header: Header | SppHeader | None
    """The header (an :class:`~proxyproto_rs.SppHeader` with ``spp=True``; ``None`` for a
    sender served with ``untrusted="direct"``)."""


def parse_datagram(
    data: bytes,
    addr: Address,
    options: ServerOptions | None = None,
    *,
    sockname: Address = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> Datagram:
    """Apply the server rules to one datagram received from *addr* (SPEC rule 5).

    Each datagram carries its own header. A trusted sender's datagram must start with a
    PROXY header, or with Cloudflare's Simple Proxy Protocol header when ``spp=True`` (then
    only that). A PROXY header describing a STREAM connection (v1 TCP4/TCP6, v2 PROXY over
    STREAM) is refused. An untrusted sender's datagram is refused (``"reject"``) or returned
    whole with *addr* as the client (``"direct"``). The ``policy`` hook sees
    ``(addr, header, sockname)``: pass *sockname* (the receiving socket's address) when the
    hook needs it.

    Raises:
        PeerRefusedError: untrusted sender (``"untrusted_peer"``), policy (``"policy"``), a
            STREAM header (``"stream_header_in_datagram"``).
        ProxyProtocolError: no valid header (``IncompleteHeaderError`` for a truncated one).
    """
    opts = resolve(options, kwargs)
    header: Header | SppHeader | None = None
    payload = data
    client = addr
    if not opts.trusts(addr):
        if opts.untrusted == "reject":
            raise PeerRefusedError(
                f"sender {addr!r} is not in the trusted networks", kind="untrusted_peer"
            )
    elif opts.spp:
        header = parse_spp(data)
        payload = data[SPP_SIZE:]
        client = header.client
    else:
        header = opts.parse(data)
        if header.command == Command.PROXY and header.protocol == Protocol.STREAM:
            raise PeerRefusedError(
                "a STREAM header cannot describe a datagram", kind="stream_header_in_datagram"
            )
        payload = data[header.length :]
        if header.source is not None:
            client = header.source
    try:
        allowed = opts.accepts(addr, header, sockname)
    except Exception as exc:
        raise PeerRefusedError(f"policy hook raised {exc!r}", kind="policy") from exc
    if not allowed:
        raise PeerRefusedError("refused by the policy hook", kind="policy")
    return Datagram(bytes(payload), client, header)
