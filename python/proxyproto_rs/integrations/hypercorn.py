"""Hypercorn behind HAProxy / nginx / an AWS NLB: the PROXY header is read before Hypercorn.

Hypercorn has no protocol hook, so :func:`serve` is ``hypercorn.asyncio.serve`` plus the PROXY
options. It binds Hypercorn's sockets itself (``config.create_sockets()``), runs Hypercorn's
own worker on them, and for the duration of that call gives the running loop a
``create_server`` that wraps the protocol factory in :func:`proxyproto_rs.aio.wrap` when,
and only when, the listening socket is one of those sockets; every other ``create_server``
call goes through untouched, and the loop is restored when :func:`serve` returns::

    import asyncio
    from hypercorn.config import Config
    from proxyproto_rs.integrations.hypercorn import serve

    config = Config()
    config.bind = ["127.0.0.1:8000"]
    asyncio.run(serve(app, config, trusted=["10.0.0.0/8"]))

TLS (``config.certfile``/``keyfile``) is started after the header, as a TLS-passthrough
balancer expects. QUIC (HTTP/3) sockets carry no PROXY header and are left alone.

In the app, ``scope["client"]`` is the real client (Hypercorn asks the socket, which
answers with the header's address) and ``scope["extensions"]["proxy_protocol"]["header"]``
is the :class:`proxyproto_rs.Header`: the connection's task runs in a context where
:func:`proxyproto_rs.integrations.current_proxy_info` returns it, and the app is wrapped
in :class:`~proxyproto_rs.integrations.ProxyScopeMiddleware` to put it into the scope.
A WSGI app gets the real client as ``REMOTE_ADDR``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from proxyproto_rs import aio
from proxyproto_rs.integrations import ProxyScopeMiddleware, call_in_proxy_context, proxy_info
from proxyproto_rs.options import ServerOptions, ServerOptionsKwargs, resolve

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["serve"]


def _in_proxy_context(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
) -> Callable[[], asyncio.BaseProtocol]:
    """Make each protocol's ``connection_made`` (where asyncio's streams start the
    connection's task) run with the connection's proxy info in the context."""

    def factory() -> asyncio.BaseProtocol:
        protocol = protocol_factory()
        inner = protocol.connection_made

        def connection_made(transport: asyncio.BaseTransport) -> None:
            call_in_proxy_context(proxy_info(transport), inner, transport)

        protocol.connection_made = connection_made  # type: ignore[method-assign]
        return protocol

    return factory


async def serve(
    app: Any,
    config: Any,
    *,
    shutdown_trigger: Callable[..., Awaitable[Any]] | None = None,
    mode: Literal["asgi", "wsgi"] | None = None,
    options: ServerOptions | None = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> None:
    """``hypercorn.asyncio.serve(app, config)`` behind a PROXY protocol sender.

    Args:
        app: the ASGI (or WSGI) application.
        config: a ``hypercorn.config.Config``.
        shutdown_trigger, mode: as in ``hypercorn.asyncio.serve``.
        options: a :class:`~proxyproto_rs.options.ServerOptions`, as in
            :func:`proxyproto_rs.aio.wrap`. TLS comes from *config* (``certfile``,
            ``keyfile``) and starts after the header, so ``ssl`` must stay ``None``.
        **kwargs: option fields applied over *options* (checked before binding).

    Raises:
        TypeError, ValueError: an unknown or invalid option, or ``ssl`` given here.
    """
    from hypercorn.asyncio.run import worker_serve
    from hypercorn.utils import is_asgi, wrap_app

    resolved = resolve(options, kwargs)
    if resolved.ssl is not None:
        raise ValueError("hypercorn: give TLS in the Config (certfile, keyfile), not ssl=")
    if mode == "asgi" or (mode is None and is_asgi(app)):
        app = ProxyScopeMiddleware(app)
        mode = "asgi"
    sockets = config.create_sockets()
    ours = {id(s) for s in (*sockets.secure_sockets, *sockets.insecure_sockets)}
    loop = asyncio.get_running_loop()
    original = loop.create_server

    async def create_server(
        protocol_factory: Callable[[], asyncio.BaseProtocol], *args: Any, **kwargs: Any
    ) -> asyncio.Server:
        sock = kwargs.get("sock")
        if sock is None or id(sock) not in ours:
            return await original(protocol_factory, *args, **kwargs)
        ssl = kwargs.pop("ssl", None)
        handshake_timeout = kwargs.pop("ssl_handshake_timeout", None)
        opts = resolved
        if ssl is not None:
            opts = resolved.replace(ssl=ssl, ssl_handshake_timeout=handshake_timeout)
        factory = aio.ProxyServerFactory(_in_proxy_context(protocol_factory), opts)
        return await original(factory, *args, **kwargs)

    loop.create_server = create_server  # type: ignore[method-assign]
    try:
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, mode),
            config,
            sockets=sockets,
            shutdown_trigger=shutdown_trigger,
        )
    finally:
        if loop.__dict__.get("create_server") is create_server:
            del loop.create_server
