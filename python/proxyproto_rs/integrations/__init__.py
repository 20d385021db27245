"""Serve ASGI apps behind a PROXY protocol sender (HAProxy, nginx, an AWS NLB).

Five servers are supported, each through the least intrusive hook it offers: uvicorn and
Hypercorn (ASGI, below); aiohttp sites (``integrations.aiohttp``), Tornado servers
(``integrations.tornado``) and gunicorn worker classes (``integrations.gunicorn``), each
described in docs/servers/. This package holds the ASGI pieces the first two share:

- :mod:`proxyproto_rs.integrations.uvicorn`: ``uvicorn.Config(http=...)`` accepts any
  callable as the HTTP protocol class; :func:`~proxyproto_rs.integrations.uvicorn.http_protocol`
  returns one that reads the header with :func:`proxyproto_rs.aio.wrap` before uvicorn's own
  protocol sees a byte.
- :mod:`proxyproto_rs.integrations.hypercorn`: :func:`~proxyproto_rs.integrations.hypercorn.serve`
  is ``hypercorn.asyncio.serve`` with the PROXY options; it wraps the protocol factory of
  Hypercorn's own listening sockets (and nothing else) in :func:`proxyproto_rs.aio.wrap`.

In uvicorn and Hypercorn, ``scope["client"]`` and ``scope["server"]`` are the header's
addresses (the real client and the address it connected to), and the header itself is
reachable from the app::

    info = scope["extensions"]["proxy_protocol"]
    info["header"]       # proxyproto_rs.Header, or None for an untrusted peer served directly
    info["proxy_peer"]   # the socket peer that sent the header (the load balancer)
    info["header"].authority, info["header"].aws_vpce_id, info["header"].tlvs ...

This module itself imports neither server.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, TypeAlias

from proxyproto_rs._core import Header

__all__ = [
    "EXTENSION",
    "ProxyInfo",
    "ProxyScopeMiddleware",
    "call_in_proxy_context",
    "current_proxy_info",
    "proxy_info",
]

EXTENSION: Final = "proxy_protocol"
"""The key in ``scope["extensions"]``."""

ProxyInfo: TypeAlias = dict[str, Any]
"""``{"header": Header | None, "proxy_peer": the socket peer (the proxy)}``."""

Scope: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send: TypeAlias = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

_current: contextvars.ContextVar[ProxyInfo | None] = contextvars.ContextVar(
    "proxyproto_rs_proxy_info", default=None
)


def proxy_info(transport: Any) -> ProxyInfo:
    """The extension dict for a connection, read from its (wrapped) transport."""
    header: Header | None = transport.get_extra_info("proxy_header")
    real = getattr(transport, "transport", None)
    peer = (real if real is not None else transport).get_extra_info("peername")
    return {"header": header, "proxy_peer": peer}


_WITH_CLIENT: Final = frozenset({"http", "websocket"})


def current_proxy_info() -> ProxyInfo | None:
    """The connection's info inside code run for it (set by the hypercorn hook)."""
    return _current.get()


class ProxyScopeMiddleware:
    """ASGI wrapper adding ``scope["extensions"]["proxy_protocol"]``.

    With ``info`` given (one wrapper per connection, as the uvicorn hook does), that dict
    is added; without it, the one of the current context (:func:`current_proxy_info`, set
    per connection by the hypercorn hook). Lifespan scopes pass through untouched.

    Calling it returns the wrapped application's awaitable directly: per request it costs
    one dict insert, no coroutine of its own.
    """

    __slots__ = ("app", "info")

    def __init__(self, app: ASGIApp, info: ProxyInfo | None = None) -> None:
        self.app = app
        self.info = info

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        info = self.info
        if info is None:
            info = _current.get()
        if info is not None and scope["type"] in _WITH_CLIENT:
            extensions = scope.get("extensions")
            if extensions is None:
                scope["extensions"] = {EXTENSION: info}
            else:
                extensions[EXTENSION] = info
        return self.app(scope, receive, send)


def _run_with_info(info: ProxyInfo, func: Callable[[Any], None], arg: Any) -> None:
    _current.set(info)
    func(arg)


def call_in_proxy_context(info: ProxyInfo, func: Callable[[Any], None], arg: Any) -> None:
    """Run ``func(arg)`` in a copy of the current context where :func:`current_proxy_info`
    is *info*: tasks it creates (asyncio copies the context) see it, nothing else does."""
    contextvars.copy_context().run(_run_with_info, info, func, arg)
