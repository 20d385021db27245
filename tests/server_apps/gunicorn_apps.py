"""The WSGI and ASGI apps gunicorn serves in test_server_gunicorn.py (``gunicorn_apps:wsgi``,
``gunicorn_apps:asgi``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from report import report


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    client = (environ["REMOTE_ADDR"], int(environ["REMOTE_PORT"]))
    header = environ.get("proxyproto_rs.header")
    data = report(client, environ.get("proxyproto_rs.proxy_peer"), header, body)
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    info = scope.get("extensions", {}).get("proxy_protocol")
    header = info["header"] if info else None
    data = report(tuple(scope["client"]), info["proxy_peer"] if info else None, header, body)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
