"""aiohttp through ProxyTCPSite: ``aiohttp_app.py REJECT_PORT DIRECT_PORT``.

REJECT_PORT trusts 127.0.0.1/32 and refuses everyone else; DIRECT_PORT serves untrusted
peers without a header. Both time the header out after PROXYPROTO_TEST_TIMEOUT seconds.
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiohttp import web
from proxyproto_rs.integrations.aiohttp import ProxyTCPSite, proxy_header, proxy_peer
from proxyproto_rs.options import ServerOptions
from report import report


async def handle(request: web.Request) -> web.Response:
    body = await request.read()
    client = (request.remote, request.transport.get_extra_info("peername")[1])
    data = report(client, proxy_peer(request), proxy_header(request), body)
    return web.Response(body=data, content_type="application/json")


async def main(reject_port: int, direct_port: int) -> None:
    app = web.Application()
    app.router.add_route("*", "/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    options = ServerOptions(
        trusted=["127.0.0.1/32"], timeout=float(os.environ["PROXYPROTO_TEST_TIMEOUT"])
    )
    await ProxyTCPSite(runner, "127.0.0.1", reject_port, options=options).start()
    await ProxyTCPSite(
        runner, "127.0.0.1", direct_port, options=options, untrusted="direct"
    ).start()
    await asyncio.Event().wait()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
