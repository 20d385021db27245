"""Hand a :class:`~proxyproto_rs.options.ServerOptions` to ``aio.wrap`` and uvicorn's hook.

Strategy: the integrations here take one ``ServerOptions``; the asyncio entry points they
build on (``aio.wrap``, ``integrations.uvicorn.http_protocol``) take it as ``options=`` where
they support it, and otherwise its fields as keyword arguments. :func:`as_kwargs` gives the
keyword form an entry point understands, read from its signature, so the integrations work
with either shape of those entry points.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from proxyproto_rs._core import Header
from proxyproto_rs.options import ServerOptions

__all__ = ["as_kwargs"]


def as_kwargs(entry: Callable[..., Any], options: ServerOptions) -> dict[str, Any]:
    """Keyword arguments that make *entry* run with *options*."""
    params = inspect.signature(entry).parameters
    if "options" in params:
        return {"options": options}
    kwargs: dict[str, Any] = {}
    for name in (
        "trusted",
        "untrusted",
        "timeout",
        "max_size",
        "max_pending",
        "allow_v1",
        "allow_v2",
        "verify_checksum",
        "haproxy_limits",
        "ssl",
        "ssl_handshake_timeout",
    ):
        value = getattr(options, name)
        if name in params:
            kwargs[name] = value
        elif value != getattr(_DEFAULTS, name):
            raise TypeError(f"{getattr(entry, '__qualname__', entry)} does not support {name}=")
    if options.policy is not None:

        def policy(peername: Any, header: Header | None) -> bool:
            # These entry points call the hook without the local address.
            return options.accepts(peername, header, None)

        kwargs["policy"] = policy
    return kwargs


_DEFAULTS = ServerOptions()
