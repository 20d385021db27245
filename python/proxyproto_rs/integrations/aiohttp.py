"""aiohttp behind HAProxy, nginx or an AWS NLB: ``request.remote`` is the real client.

Strategy: aiohttp serves an application through *sites* added to a ``web.AppRunner``; a site
is what calls ``loop.create_server`` with the runner's protocol factory. :class:`ProxyTCPSite`
and :class:`ProxyUnixSite` are sites that give ``loop.create_server`` that factory wrapped by
:func:`proxyproto_rs.aio.wrap`: the header is read (required, trusted networks, timeout and
size cap from :class:`~proxyproto_rs.options.ServerOptions`) before aiohttp's request handler
exists, so a refused connection never reaches aiohttp, and the handler's transport reports
the header's addresses. Nothing of aiohttp is patched: ``request.remote``,
``request.transport.get_extra_info("peername")`` and the access log all see the real client,
for every request of a kept-alive connection::

    from aiohttp import web
    from proxyproto_rs.integrations.aiohttp import ProxyTCPSite, proxy_header

    async def hello(request: web.Request) -> web.Response:
        header = proxy_header(request)          # the proxyproto_rs.Header (or None)
        return web.Response(text=f"hello {request.remote}")

    runner = web.AppRunner(app)
    await runner.setup()
    await ProxyTCPSite(runner, "0.0.0.0", 8080, trusted=["10.0.0.0/8"]).start()

TLS after the header (TLS passthrough at the balancer): give the ``SSLContext`` as
``ssl_context=`` (or ``ssl=`` in the options); the site hands it to ``aio.wrap`` instead of
``loop.create_server``, so the handshake starts on the bytes after the header.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Unpack

from aiohttp import web

from proxyproto_rs import aio
from proxyproto_rs._core import Header
from proxyproto_rs.options import ServerOptions, ServerOptionsKwargs, resolve

if TYPE_CHECKING:
    import os
    import ssl

__all__ = ["HEADER_KEY", "ProxyTCPSite", "ProxyUnixSite", "proxy_header", "proxy_peer"]

HEADER_KEY = "proxy_header"
"""The ``get_extra_info`` name of the :class:`~proxyproto_rs.Header`:
``request.get_extra_info("proxy_header")``."""


def proxy_header(request: web.BaseRequest) -> Header | None:
    """The connection's :class:`~proxyproto_rs.Header`; ``None`` for an untrusted peer
    served with ``untrusted="direct"`` (or a request not served through a proxy site)."""
    header: Header | None = request.get_extra_info(HEADER_KEY)
    return header


def proxy_peer(request: web.BaseRequest) -> Any:
    """The socket peer that sent the header (the load balancer), as ``getpeername()``
    gives it; for a connection not served through a proxy site, the client itself."""
    transport = request.transport
    if transport is None:
        return None
    sock = transport.get_extra_info("socket")
    if isinstance(sock, aio.ProxiedSocket):
        return sock.real_socket.getpeername()
    return transport.get_extra_info("peername")


def _options(
    options: ServerOptions | None,
    kwargs: ServerOptionsKwargs,
    ssl_context: ssl.SSLContext | None,
) -> ServerOptions:
    resolved = resolve(options, kwargs)
    if ssl_context is not None:
        if resolved.ssl is not None and resolved.ssl is not ssl_context:
            raise ValueError("give the SSLContext once: as ssl_context= or in the options")
        resolved = resolved.replace(ssl=ssl_context)
    return resolved


class _ProxySite(web.BaseSite):
    """What both sites share: the options and the wrapped protocol factory."""

    __slots__ = ("_factory", "_options")

    def __init__(
        self,
        runner: web.BaseRunner,
        options: ServerOptions,
        *,
        backlog: int,
    ) -> None:
        super().__init__(runner, ssl_context=options.ssl, backlog=backlog)
        self._options = options
        self._factory: aio.ProxyServerFactory | None = None

    @property
    def options(self) -> ServerOptions:
        """The options this site serves with."""
        return self._options

    @property
    def factory(self) -> aio.ProxyServerFactory | None:
        """The :func:`proxyproto_rs.aio.wrap` factory once started (its ``stats`` and
        ``pending`` counters), ``None`` before."""
        return self._factory

    def _wrapped(self) -> aio.ProxyServerFactory:
        server = self._runner.server
        if server is None:
            raise RuntimeError("the runner was cleaned up; call runner.setup() again")
        self._factory = aio.wrap(server, options=self._options)
        return self._factory


class ProxyTCPSite(_ProxySite):
    """``web.TCPSite`` behind a PROXY protocol sender.

    Takes ``TCPSite``'s arguments plus ``options`` (a
    :class:`~proxyproto_rs.options.ServerOptions`) and/or its fields as keyword arguments
    (``trusted=["10.0.0.0/8"]``, ``timeout=3``...). ``ssl_context`` is the server's TLS
    context, started after the header.
    """

    __slots__ = ("_bound_port", "_host", "_port", "_reuse_address", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None = None,
        port: int | None = None,
        *,
        options: ServerOptions | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        **kwargs: Unpack[ServerOptionsKwargs],
    ) -> None:
        resolved = _options(options, kwargs, ssl_context)
        super().__init__(runner, resolved, backlog=backlog)
        self._host = host
        self._port = port if port is not None else (8443 if resolved.ssl else 8080)
        self._bound_port: int | None = None
        self._reuse_address = reuse_address
        self._reuse_port = reuse_port

    @property
    def port(self) -> int:
        """The port listened on (the one chosen by the system once started with port 0)."""
        return self._bound_port if self._bound_port is not None else self._port

    @property
    def name(self) -> str:
        scheme = "https" if self._options.ssl else "http"
        host = self._host or "0.0.0.0"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = server = await loop.create_server(
            self._wrapped(),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


class ProxyUnixSite(_ProxySite):
    """``web.UnixSite`` behind a PROXY protocol sender (nginx or HAProxy on the same host).

    A UNIX-socket peer has no IP address: with ``trusted`` set, add ``"unix"`` to it.
    """

    __slots__ = ("_path",)

    def __init__(
        self,
        runner: web.BaseRunner,
        path: str | os.PathLike[str],
        *,
        options: ServerOptions | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        **kwargs: Unpack[ServerOptionsKwargs],
    ) -> None:
        super().__init__(runner, _options(options, kwargs, ssl_context), backlog=backlog)
        self._path = path

    @property
    def name(self) -> str:
        scheme = "https" if self._options.ssl else "http"
        return f"{scheme}://unix:{self._path}:"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            self._wrapped(), self._path, backlog=self._backlog
        )
