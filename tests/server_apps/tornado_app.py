"""Tornado through ProxyHTTPServer: ``tornado_app.py REJECT_PORT DIRECT_PORT``.

REJECT_PORT trusts 127.0.0.1/32 and refuses everyone else; DIRECT_PORT serves untrusted
peers without a header. Both time the header out after PROXYPROTO_TEST_TIMEOUT seconds.
"""

from __future__ import annotations

import asyncio
import os
import sys

from proxyproto_rs.integrations.tornado import ProxyHTTPServer, proxy_header, proxy_peer
from proxyproto_rs.options import ServerOptions
from report import report
from tornado.web import Application, RequestHandler


class Report(RequestHandler):
    def _answer(self) -> None:
        request = self.request
        client = (request.remote_ip, request.connection.context.address[1])
        self.set_header("Content-Type", "application/json")
        self.write(report(client, proxy_peer(request), proxy_header(request), request.body))

    def get(self) -> None:
        self._answer()

    def post(self) -> None:
        self._answer()


async def main(reject_port: int, direct_port: int) -> None:
    app = Application([("/", Report)])
    options = ServerOptions(
        trusted=["127.0.0.1/32"], timeout=float(os.environ["PROXYPROTO_TEST_TIMEOUT"])
    )
    ProxyHTTPServer(app, options=options).listen(reject_port, "127.0.0.1")
    ProxyHTTPServer(app, options=options, untrusted="direct").listen(direct_port, "127.0.0.1")
    await asyncio.Event().wait()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
