"""proxyproto_rs.integrations.aiohttp in-process: TLS after the header, UNIX sites, options.

The behaviour behind HAProxy (real client, TLVs, refusals, timeout) is in test_servers.py.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import proxyproto_rs as pp
import pytest
from aio_support import tls_contexts
from aiohttp import web
from proxyproto_rs import aio
from proxyproto_rs.integrations.aiohttp import (
    ProxyTCPSite,
    ProxyUnixSite,
    proxy_header,
    proxy_peer,
)
from proxyproto_rs.options import ServerOptions

HEADER = pp.build_v2(("203.0.113.7", 51234), ("10.0.0.5", 443), authority="example.com")
GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def describe(request: web.Request) -> web.Response:
    header = proxy_header(request)
    peer = proxy_peer(request)
    return web.json_response(
        {
            "remote": request.remote,
            "secure": request.secure,
            "authority": header.authority if header is not None else None,
            "proxy_peer": list(peer[:2]) if isinstance(peer, tuple) else peer,
        }
    )


@asynccontextmanager
async def running(make_site: Callable[[web.AppRunner], Any]) -> AsyncIterator[Any]:
    app = web.Application()
    app.router.add_get("/", describe)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = make_site(runner)
    await site.start()
    try:
        yield site
    finally:
        await runner.cleanup()


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 20))


def body(reply: bytes) -> dict[str, Any]:
    assert reply.startswith(b"HTTP/1.1 200"), reply
    result: dict[str, Any] = json.loads(reply.partition(b"\r\n\r\n")[2])
    return result


def test_tls_starts_after_the_header(tmp_path: Path) -> None:
    """TLS passthrough at the balancer: the header in clear, then the ClientHello."""
    server_ctx, client_ctx = tls_contexts(tmp_path)

    async def main() -> None:
        async with running(
            lambda r: ProxyTCPSite(r, "127.0.0.1", 0, ssl_context=server_ctx, timeout=3)
        ) as site:
            assert site.name.startswith("https://")
            reader, writer = await aio.open_connection(
                "127.0.0.1", site.port, header=HEADER, ssl=client_ctx, server_hostname="localhost"
            )
            writer.write(GET)
            seen = body(await reader.read())
            writer.close()
        assert seen["remote"] == "203.0.113.7"
        assert seen["secure"] is True
        assert seen["authority"] == "example.com"
        assert seen["proxy_peer"][0] == "127.0.0.1"

    run(main)


def test_unix_site(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")

    async def main() -> None:
        async with running(lambda r: ProxyUnixSite(r, path, trusted=["unix"])) as site:
            assert site.name == f"http://unix:{path}:"
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(HEADER + GET)
            seen = body(await reader.read())
            writer.close()
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(GET)
            refused = await reader.read()
            writer.close()
            assert site.factory is not None
            assert site.factory.stats.rejected == {"not_proxy_protocol": 1}
        assert seen["remote"] == "203.0.113.7"
        assert refused == b""

    run(main)


def test_options_object_and_keywords() -> None:
    async def main() -> None:
        options = ServerOptions(trusted=["10.0.0.0/8"], timeout=4)
        app = web.Application()
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            site = ProxyTCPSite(runner, "127.0.0.1", 0, options=options, timeout=2)
            assert site.options == options.replace(timeout=2)
            with pytest.raises(TypeError, match="trusted_networks"):
                ProxyTCPSite(runner, "127.0.0.1", 0, trusted_networks=["10.0.0.0/8"])  # type: ignore[call-arg]
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            other = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            with pytest.raises(ValueError, match="once"):
                ProxyTCPSite(runner, ssl_context=server_ctx, ssl=other)
            assert ProxyTCPSite(runner, ssl_context=server_ctx).port == 8443
            assert ProxyTCPSite(runner).port == 8080
        finally:
            await runner.cleanup()

    run(main)


def test_a_websocket_keeps_the_real_client() -> None:
    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        header = proxy_header(request)
        await ws.send_str(f"{request.remote} {header.version if header else None}")
        await ws.close()
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ws", ws_handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = ProxyTCPSite(runner, "127.0.0.1", 0, timeout=3)
        await site.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
            writer.write(
                HEADER + b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            head = await reader.readuntil(b"\r\n\r\n")
            first, length = await reader.readexactly(2)
            text = await reader.readexactly(length)
            writer.close()
        finally:
            await runner.cleanup()
        assert head.startswith(b"HTTP/1.1 101")
        assert first == 0x81  # one unmasked text frame
        assert text == b"203.0.113.7 2"

    run(main)
