"""uvicorn behind HAProxy / nginx / an AWS NLB: the PROXY header is read before uvicorn.

The hook: ``uvicorn.Config(http=...)`` takes, besides ``"auto"``/``"h11"``/``"httptools"``,
any callable that uvicorn calls once per connection as
``http(config=..., server_state=..., app_state=...)``. :func:`http_protocol` returns such
a callable. It hands uvicorn a :func:`proxyproto_rs.aio.wrap` protocol that reads the
header (required, trusted networks, timeout and size caps as in ``aio.wrap``) and only then
creates uvicorn's own protocol, which sees the header's addresses as the socket's; nothing
of uvicorn is patched::

    import uvicorn
    from proxyproto_rs.integrations.uvicorn import http_protocol

    config = uvicorn.Config(
        "app:app", host="127.0.0.1", port=8000,
        http=http_protocol("auto", trusted=["10.0.0.0/8"]),
    )
    uvicorn.Server(config).run()

From the command line, with the options in the environment (``PROXYPROTO_TRUSTED``: comma
separated CIDRs, default any peer; ``PROXYPROTO_TIMEOUT``: seconds, default 5;
``PROXYPROTO_UNTRUSTED``: ``reject`` (default) or ``direct``)::

    PROXYPROTO_TRUSTED=10.0.0.0/8 uvicorn app:app --http proxyproto_rs.integrations.uvicorn:auto

In the app, ``scope["client"]`` is the real client and
``scope["extensions"]["proxy_protocol"]["header"]`` the :class:`proxyproto_rs.Header`
(TLVs, AWS VPC endpoint id...). WebSocket upgrades keep both.

Do not give uvicorn ``ssl_*`` options with this hook: uvicorn would start TLS before the
header. For PROXY before TLS pass ``ssl=`` (an ``SSLContext``) to :func:`http_protocol`.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Final

from proxyproto_rs import aio
from proxyproto_rs.integrations import ProxyScopeMiddleware, proxy_info
from proxyproto_rs.options import ServerOptions, ServerOptionsKwargs, resolve

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["UvicornProxyProtocol", "auto", "h11", "http_protocol", "httptools"]

_BASES: Final = {
    "auto": ("uvicorn.protocols.http.auto", "AutoHTTPProtocol"),
    "h11": ("uvicorn.protocols.http.h11_impl", "H11Protocol"),
    "httptools": ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"),
}

_subclasses: dict[type[Any], type[Any]] = {}


def _proxied(base: type[Any]) -> type[Any]:
    """*base* with a ``connection_made`` that puts the header into every scope.

    Works for uvicorn's HTTP and WebSocket protocols alike: each keeps the ASGI app in
    ``self.app`` (set in ``__init__``) and calls it per request.
    """
    cls = _subclasses.get(base)
    if cls is not None:
        return cls

    def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
        self.app = ProxyScopeMiddleware(self.app, proxy_info(transport))
        ws = getattr(self, "ws_protocol_class", None)
        if isinstance(ws, type):
            self.ws_protocol_class = _proxied(ws)
        base.connection_made(self, transport)

    cls = type(
        f"Proxy{base.__name__}",
        (base,),
        {"connection_made": connection_made, "__module__": __name__, "__qualname__": base.__name__},
    )
    _subclasses[base] = cls
    return cls


def _resolve(base: str | type[Any]) -> type[Any]:
    if isinstance(base, type):
        return base
    if base not in _BASES:
        raise ValueError(f"base must be 'auto', 'h11', 'httptools' or a class, got {base!r}")
    module_name, name = _BASES[base]
    module = __import__(module_name, fromlist=[name])
    cls: type[Any] = getattr(module, name)
    return cls


class UvicornProxyProtocol:
    """The callable given to ``uvicorn.Config(http=...)``; see :func:`http_protocol`.

    Attributes:
        options: the :class:`~proxyproto_rs.options.ServerOptions` applied; ``None`` reads
            them from the environment when uvicorn first calls this object.
        factories: one :class:`proxyproto_rs.aio.ProxyServerFactory` per uvicorn server
            using this object, with its ``stats`` and ``pending`` counters.
    """

    def __init__(self, base: str | type[Any], options: ServerOptions | None) -> None:
        self._base = base
        self.options = options
        self.factories: dict[tuple[int, int], tuple[Any, aio.ProxyServerFactory]] = {}

    def __call__(self, **kwargs: Any) -> asyncio.BaseProtocol:
        key = (id(kwargs.get("config")), id(kwargs.get("server_state")))
        entry = self.factories.get(key)
        if entry is None:
            options = self.options if self.options is not None else _env_options()
            cls = _proxied(_resolve(self._base))
            kwargs.pop("_loop", None)

            def make(cls: type[Any] = cls, kwargs: dict[str, Any] = kwargs) -> asyncio.BaseProtocol:
                protocol: asyncio.BaseProtocol = cls(**kwargs)
                return protocol

            factory = aio.ProxyServerFactory(make, options)
            # Keep config alive with the factory so its id() cannot be reused meanwhile.
            entry = self.factories[key] = (kwargs.get("config"), factory)
        return entry[1]()


def http_protocol(
    base: str | type[Any] = "auto",
    options: ServerOptions | None = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> UvicornProxyProtocol:
    """The value for ``uvicorn.Config(http=...)``: uvicorn behind a PROXY sender.

    Args:
        base: uvicorn's protocol to run after the header: ``"auto"`` (httptools when
            installed, else h11), ``"h11"``, ``"httptools"``, or a protocol class.
        options: a :class:`~proxyproto_rs.options.ServerOptions`, as in
            :func:`proxyproto_rs.aio.wrap` (``ssl`` starts TLS after the header).
        **kwargs: option fields applied over *options*; invalid ones raise here, not per
            connection.
    """
    return UvicornProxyProtocol(base, resolve(options, kwargs))


def _env_options() -> ServerOptions:
    trusted_text = os.environ.get("PROXYPROTO_TRUSTED", "").strip()
    trusted = [t.strip() for t in trusted_text.split(",") if t.strip()] or None
    timeout = float(os.environ.get("PROXYPROTO_TIMEOUT", "5"))
    untrusted = os.environ.get("PROXYPROTO_UNTRUSTED", "reject")
    if untrusted == "direct":
        return ServerOptions(trusted=trusted, timeout=timeout, untrusted="direct")
    if untrusted == "reject":
        return ServerOptions(trusted=trusted, timeout=timeout, untrusted="reject")
    raise ValueError(f"PROXYPROTO_UNTRUSTED must be reject or direct, got {untrusted!r}")


auto: Final = UvicornProxyProtocol("auto", None)
"""``--http proxyproto_rs.integrations.uvicorn:auto`` (options from the environment)."""
h11: Final = UvicornProxyProtocol("h11", None)
"""``--http proxyproto_rs.integrations.uvicorn:h11`` (options from the environment)."""
httptools: Final = UvicornProxyProtocol("httptools", None)
"""``--http proxyproto_rs.integrations.uvicorn:httptools`` (options from the environment)."""
