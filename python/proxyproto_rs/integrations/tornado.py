"""Tornado behind HAProxy, nginx or an AWS NLB: ``remote_ip`` is the real client.

Strategy: a Tornado ``TCPServer`` accepts a socket and passes it, with the peer's address,
to its connection handler, which wraps the socket (in TLS when ``ssl_options`` is set), makes
the ``IOStream`` and calls ``handle_stream(stream, address)``. :class:`ProxyProtocolMixin`
steps in at that single point: it reads the PROXY header from the raw socket first, on the
IOLoop, never a byte past it (a header already received whole, the usual case, is peeked,
parsed and consumed at once; otherwise asyncio's ``sock_recv`` reads at most
:attr:`Parser.needed <proxyproto_rs.Parser.needed>` bytes at a time), then lets Tornado go on with
the header's source as ``address``. So ``handle_stream`` gets the real client,
``HTTPServerRequest.remote_ip`` is the real client (for every request of a kept-alive
connection), ``ssl_options`` keeps its meaning with the TLS handshake starting after the
header (TLS passthrough at the balancer), and a refused connection never reaches Tornado.

``address`` is a :class:`ProxyAddress`: a tuple like the one Tornado passes, which also
carries the :class:`~proxyproto_rs.Header` and the balancer's address::

    from tornado.web import Application
    from proxyproto_rs.integrations.tornado import ProxyHTTPServer, proxy_header

    class Hello(RequestHandler):
        def get(self):
            header = proxy_header(self.request)      # proxyproto_rs.Header or None
            self.write(f"hello {self.request.remote_ip}")

    server = ProxyHTTPServer(Application([("/", Hello)]), trusted=["10.0.0.0/8"])
    server.listen(8080)

For your own ``TCPServer`` subclass, put the mixin first::

    class EchoServer(ProxyProtocolMixin, TCPServer):
        async def handle_stream(self, stream, address):
            ...   # address[0] is the client; address.header the Header

    EchoServer(trusted=["10.0.0.0/8"], timeout=3)

The override is of ``TCPServer._handle_connection`` (unchanged since Tornado 3): Tornado has
no public hook between ``accept()`` and the TLS wrap, and the header must be read there.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any, Final, Unpack

from tornado.httpserver import HTTPServer
from tornado.tcpserver import TCPServer

from proxyproto_rs._core import Header
from proxyproto_rs._errors import IncompleteHeaderError, ProxyProtocolError
from proxyproto_rs.aio import ServerStats
from proxyproto_rs.options import ServerOptions, ServerOptionsKwargs, resolve

if TYPE_CHECKING:
    import ssl

    from tornado.httputil import HTTPServerRequest

__all__ = [
    "ProxyAddress",
    "ProxyHTTPServer",
    "ProxyPath",
    "ProxyProtocolMixin",
    "ProxyTCPServer",
    "proxy_header",
    "proxy_peer",
]

logger: Final = logging.getLogger("proxyproto_rs.integrations.tornado")

if not callable(getattr(TCPServer, "_handle_connection", None)):  # pragma: no cover
    raise ImportError(
        "this Tornado has no TCPServer._handle_connection; "
        "proxyproto_rs.integrations.tornado needs Tornado 5 or later"
    )

_OPTION_NAMES: Final = frozenset(ServerOptionsKwargs.__annotations__)


class ProxyAddress(tuple[Any, ...]):
    """The ``address`` Tornado hands on: the real client, with the header beside it.

    A tuple equal to the client's ``(host, port)`` (the socket's own peer for a LOCAL
    header, and for an untrusted peer served directly), with two attributes:

    Attributes:
        header: the :class:`~proxyproto_rs.Header`; ``None`` for an untrusted peer served
            with ``untrusted="direct"``.
        proxy_peer: the socket's peer, the balancer that sent the header.
    """

    header: Header | None
    proxy_peer: Any

    def __new__(cls, address: Any, header: Header | None, proxy_peer: Any) -> ProxyAddress:
        self = super().__new__(cls, address)
        self.header = header
        self.proxy_peer = proxy_peer
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (ProxyAddress, (tuple(self), self.header, self.proxy_peer))


class ProxyPath(str):
    """:class:`ProxyAddress` for a UNIX-socket client (a path, ``""`` when unnamed)."""

    header: Header | None
    proxy_peer: Any

    def __new__(cls, address: str, header: Header | None, proxy_peer: Any) -> ProxyPath:
        self = super().__new__(cls, address)
        self.header = header
        self.proxy_peer = proxy_peer
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (ProxyPath, (str(self), self.header, self.proxy_peer))


def _address_of(request: HTTPServerRequest) -> Any:
    context = getattr(request.connection, "context", None)
    return getattr(context, "address", None)


def proxy_header(request: HTTPServerRequest) -> Header | None:
    """The :class:`~proxyproto_rs.Header` of the connection *request* came on (``None``
    for an untrusted peer served directly, or a request not served by a proxy server)."""
    address = _address_of(request)
    return address.header if isinstance(address, ProxyAddress | ProxyPath) else None


def proxy_peer(request: HTTPServerRequest) -> Any:
    """The socket peer (the balancer) of the connection *request* came on."""
    address = _address_of(request)
    return address.proxy_peer if isinstance(address, ProxyAddress | ProxyPath) else address


class ProxyProtocolMixin:
    """Reads a PROXY header from every connection before the ``TCPServer`` serves it.

    Put it before ``TCPServer`` (or ``HTTPServer``) in the bases. Its constructor takes
    ``options`` (a :class:`~proxyproto_rs.options.ServerOptions`) and/or the options' fields
    as keyword arguments; everything else goes on to the server's own constructor.
    ``options.ssl`` is an alternative spelling of the server's ``ssl_options``.

    Attributes:
        proxy_options: the options in force.
        proxy_stats: :class:`~proxyproto_rs.aio.ServerStats` of the connections so far.
    """

    proxy_options: ServerOptions
    proxy_stats: ServerStats
    _proxy_pending: set[asyncio.Task[None]]

    def __init__(self, *args: Any, options: ServerOptions | None = None, **kwargs: Any) -> None:
        if not hasattr(self, "proxy_options"):  # else set up already (ProxyHTTPServer)
            self._proxy_setup(options, kwargs)
        super().__init__(*args, **kwargs)

    def _proxy_setup(self, options: ServerOptions | None, kwargs: dict[str, Any]) -> None:
        """Split the options' keyword arguments out of *kwargs* (left for the server)."""
        mine = {name: kwargs.pop(name) for name in list(kwargs) if name in _OPTION_NAMES}
        resolved = resolve(options, mine)
        ssl_options = kwargs.get("ssl_options")
        if resolved.ssl is not None:
            if ssl_options is not None and ssl_options is not resolved.ssl:
                raise ValueError("give the TLS context once: as ssl_options= or ssl=")
            kwargs["ssl_options"] = resolved.ssl
        self.proxy_options = resolved
        self.proxy_stats = ServerStats()
        self._proxy_pending = set()

    def _handle_connection(self, connection: socket.socket, address: Any) -> None:
        options = self.proxy_options
        if not options.trusts(address):
            if options.untrusted == "reject":
                self._proxy_refuse(connection, address, "untrusted_peer", "not a trusted peer")
                return
            if not self._proxy_allows(connection, address, None):
                return
            self.proxy_stats.served += 1
            self.proxy_stats.direct += 1
            super()._handle_connection(  # type: ignore[misc]
                connection, _attach(address, None, address)
            )
            return
        if options.max_pending is not None and len(self._proxy_pending) >= options.max_pending:
            count = len(self._proxy_pending)
            self._proxy_refuse(
                connection, address, "too_many_pending", f"{count} connections wait for a header"
            )
            return
        try:
            header = _header_if_arrived(connection, options)
        except ProxyProtocolError as exc:
            self._proxy_refuse(connection, address, exc.kind, str(exc))
            return
        except OSError as exc:
            self._proxy_refuse(connection, address, "eof", f"connection failed: {exc}")
            return
        if header is not None:
            self._proxy_serve(connection, address, header)
            return
        task = asyncio.ensure_future(self._proxy_accept(connection, address))
        self._proxy_pending.add(task)
        task.add_done_callback(self._proxy_pending.discard)

    async def _proxy_accept(self, connection: socket.socket, address: Any) -> None:
        options = self.proxy_options
        try:
            async with asyncio.timeout(options.timeout):
                header = await _read_header(connection, options)
        except TimeoutError:
            self._proxy_refuse(
                connection, address, "timeout", f"no complete header within {options.timeout} s"
            )
            return
        except ProxyProtocolError as exc:
            self._proxy_refuse(connection, address, exc.kind, str(exc))
            return
        except OSError as exc:
            self._proxy_refuse(connection, address, "eof", f"connection failed: {exc}")
            return
        except BaseException:  # cancelled by stop(): the socket is still ours to close
            connection.close()
            raise
        self._proxy_serve(connection, address, header)

    def _proxy_serve(self, connection: socket.socket, address: Any, header: Header) -> None:
        if not self._proxy_allows(connection, address, header):
            return
        source = header.source
        self.proxy_stats.served += 1
        super()._handle_connection(  # type: ignore[misc]
            connection, _attach(address if source is None else source, header, address)
        )

    def _proxy_allows(self, connection: socket.socket, address: Any, header: Header | None) -> bool:
        try:
            sockname = connection.getsockname()
        except OSError as exc:
            self._proxy_refuse(connection, address, "eof", f"connection failed: {exc}")
            return False
        try:
            allowed = self.proxy_options.accepts(address, header, sockname)
        except Exception as exc:
            self._proxy_refuse(connection, address, "policy", f"policy hook raised {exc!r}")
            return False
        if not allowed:
            self._proxy_refuse(connection, address, "policy", "refused by the policy hook")
        return allowed

    def _proxy_refuse(
        self, connection: socket.socket, address: Any, kind: str, message: str
    ) -> None:
        rejected = self.proxy_stats.rejected
        rejected[kind] = rejected.get(kind, 0) + 1
        level = logging.INFO if kind in ("eof", "timeout", "too_many_pending") else logging.WARNING
        logger.log(
            level,
            "connection from %r refused: %s [%s]",
            address,
            message,
            kind,
            extra={"proxy_kind": kind, "proxy_peer": address},
        )
        connection.close()

    def stop(self) -> None:
        """Stop listening, and drop the connections still waiting for their header."""
        super().stop()  # type: ignore[misc]
        for task in list(self._proxy_pending):
            task.cancel()


def _header_if_arrived(sock: socket.socket, options: ServerOptions) -> Header | None:
    """The header, consumed, when all of it is already in *sock*'s receive buffer (the
    usual case: a balancer writes it as soon as it connects); ``None`` when it is not, and
    then nothing is consumed. Saves the task and the reads of :func:`_read_header`."""
    sock.setblocking(False)
    try:
        data = sock.recv(max(options.max_size, 107), socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return None
    if not data:
        raise IncompleteHeaderError("connection closed before a complete header", kind="eof")
    try:
        header = options.parse(data)
    except IncompleteHeaderError:
        return None
    left = header.length
    while left:  # the bytes were peeked: they are there, normally in one recv
        left -= len(sock.recv(left))
    return header


async def _read_header(sock: socket.socket, options: ServerOptions) -> Header:
    """Read one header from *sock*, consuming exactly its bytes and nothing after."""
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    parser = options.new_parser()
    while True:
        data = await loop.sock_recv(sock, parser.needed)
        if not data:
            raise IncompleteHeaderError("connection closed before a complete header", kind="eof")
        header = parser.feed(data)
        if header is not None:
            return header


def _attach(address: Any, header: Header | None, proxy_peer: Any) -> Any:
    """*address* carrying *header* and *proxy_peer* (a bytes address, an abstract UNIX
    socket name, cannot carry them and is passed as it is)."""
    if isinstance(address, tuple):
        return ProxyAddress(address, header, proxy_peer)
    if isinstance(address, str):
        return ProxyPath(address, header, proxy_peer)
    return address


class ProxyTCPServer(ProxyProtocolMixin, TCPServer):
    """``tornado.tcpserver.TCPServer`` behind a PROXY protocol sender.

    Subclass it and implement ``handle_stream(stream, address)`` as usual: ``address`` is
    the real client (a :class:`ProxyAddress`, with ``.header``).
    """

    def __init__(
        self,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        max_buffer_size: int | None = None,
        read_chunk_size: int | None = None,
        *,
        options: ServerOptions | None = None,
        **kwargs: Unpack[ServerOptionsKwargs],
    ) -> None:
        rest: dict[str, Any] = dict(kwargs)
        rest["ssl_options"] = ssl_options
        self._proxy_setup(options, rest)
        unknown = sorted(set(rest) - {"ssl_options"})
        if unknown:
            raise TypeError(f"unexpected server option(s): {', '.join(unknown)}")
        super().__init__(
            ssl_options=rest["ssl_options"],
            max_buffer_size=max_buffer_size,
            read_chunk_size=read_chunk_size,
        )


class ProxyHTTPServer(ProxyProtocolMixin, HTTPServer):
    """``tornado.httpserver.HTTPServer`` behind a PROXY protocol sender.

    Takes ``HTTPServer``'s arguments plus ``options`` and/or the options' fields as keyword
    arguments. ``request.remote_ip`` is the real client; :func:`proxy_header` gives the
    :class:`~proxyproto_rs.Header`.
    """

    def initialize(self, *args: Any, options: ServerOptions | None = None, **kwargs: Any) -> None:
        self._proxy_setup(options, kwargs)
        super().initialize(*args, **kwargs)
