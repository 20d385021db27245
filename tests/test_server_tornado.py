"""proxyproto_rs.integrations.tornado in-process: a TCPServer subclass, TLS after the header,
UNIX sockets, waiting connections dropped by stop(), options.

The behaviour behind HAProxy (real client, TLVs, refusals, timeout) is in test_servers.py.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import proxyproto_rs as pp
import pytest
from aio_support import tls_contexts
from proxyproto_rs import aio
from proxyproto_rs.integrations.tornado import (
    ProxyAddress,
    ProxyHTTPServer,
    ProxyPath,
    ProxyProtocolMixin,
    ProxyTCPServer,
)
from proxyproto_rs.options import ServerOptions
from tornado.iostream import IOStream, StreamClosedError
from tornado.netutil import bind_sockets, bind_unix_socket
from tornado.tcpserver import TCPServer

HEADER = pp.build_v2(("203.0.113.7", 51234), ("10.0.0.5", 443), aws_vpce_id="vpce-1")


class Echo(ProxyTCPServer):
    """Answers one line with the address it was given, then echoes the line."""

    seen: list[Any]

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        self.seen.append(address)
        try:
            line = await stream.read_until(b"\n")
            await stream.write(repr(tuple(address)).encode() + b" " + line)
        except StreamClosedError:
            pass
        finally:
            stream.close()


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 20))


def listen(server: TCPServer) -> int:
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    return int(sockets[0].getsockname()[1])


def test_tcp_server_subclass_gets_the_real_client_and_the_header() -> None:
    async def main() -> None:
        server = Echo(trusted=["127.0.0.0/8"])
        server.seen = []
        port = listen(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEADER + b"hello \x00\xff PROXY\r\n")
        reply = await reader.read()
        writer.close()
        server.stop()
        assert reply == b"('203.0.113.7', 51234) hello \x00\xff PROXY\r\n"
        (address,) = server.seen
        assert isinstance(address, ProxyAddress)
        assert address == ("203.0.113.7", 51234)
        assert address.header is not None
        assert address.header.aws_vpce_id == "vpce-1"
        assert address.proxy_peer[0] == "127.0.0.1"
        assert server.proxy_stats.served == 1

    run(main)


@pytest.mark.parametrize("split", [1, 15, 16, len(HEADER) - 1])
def test_a_header_arriving_in_pieces(split: int) -> None:
    """The header is not all there at accept time: read in exact pieces, payload intact."""

    async def main() -> None:
        server = Echo()
        server.seen = []
        port = listen(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEADER[:split])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(HEADER[split:] + b"rest\n")
        reply = await reader.read()
        writer.close()
        server.stop()
        assert reply == b"('203.0.113.7', 51234) rest\n"

    run(main)


def test_mixin_before_a_users_server_class() -> None:
    class Plain(TCPServer):
        seen: ClassVar[list[Any]] = []

        async def handle_stream(self, stream: IOStream, address: Any) -> None:
            Plain.seen.append(address)
            stream.close()

    class Proxied(ProxyProtocolMixin, Plain):
        pass

    async def main() -> None:
        server = Proxied(timeout=2, max_buffer_size=1 << 20)
        port = listen(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(pp.build_v1(("192.0.2.1", 7), ("192.0.2.2", 8)))
        await reader.read()
        writer.close()
        server.stop()
        assert Plain.seen == [("192.0.2.1", 7)]
        assert server.proxy_options.timeout == 2

    run(main)


def test_tls_from_ssl_options_starts_after_the_header(tmp_path: Path) -> None:
    server_ctx, client_ctx = tls_contexts(tmp_path)

    async def main() -> None:
        server = Echo(ssl_options=server_ctx)
        server.seen = []
        port = listen(server)
        reader, writer = await aio.open_connection(
            "127.0.0.1", port, header=HEADER, ssl=client_ctx, server_hostname="localhost"
        )
        writer.write(b"over tls\n")
        reply = await reader.read()
        writer.close()
        server.stop()
        assert reply == b"('203.0.113.7', 51234) over tls\n"

    run(main)


def test_unix_socket_peers(tmp_path: Path) -> None:
    async def main() -> None:
        server = Echo(trusted=["unix"])
        server.seen = []
        path = str(tmp_path / "echo.sock")
        server.add_socket(bind_unix_socket(path))
        for header in (HEADER, pp.build_v2()):  # PROXY, then LOCAL (the socket's own peer)
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(header + b"x\n")
            await reader.read()
            writer.close()
        server.stop()
        assert server.seen[0] == ("203.0.113.7", 51234)
        local = server.seen[1]
        assert isinstance(local, ProxyPath)
        assert local == ""
        assert local.header is not None
        assert local.header.command == pp.Command.LOCAL

    run(main)


def test_stop_drops_connections_waiting_for_their_header() -> None:
    async def main() -> None:
        server = Echo(timeout=30, max_pending=1)
        server.seen = []
        port = listen(server)
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"PROXY TCP4 ")
            for _ in range(100):
                if server._proxy_pending:
                    break
                await asyncio.sleep(0.01)
            # the cap: one connection may wait, the next is refused at once
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await reader.read() == b""
            writer.close()
            server.stop()
            await asyncio.sleep(0.05)
            slow.settimeout(5)
            assert slow.recv(10) == b""
        assert server.seen == []
        assert server.proxy_stats.rejected == {"too_many_pending": 1}

    run(main)


def test_http_server_options() -> None:
    async def main() -> None:
        def app(request: Any) -> None:  # pragma: no cover - never called
            raise AssertionError

        options = ServerOptions(trusted=["10.0.0.0/8"])
        server = ProxyHTTPServer(app, options=options, timeout=2, xheaders=False)
        assert server.proxy_options == options.replace(timeout=2)
        with pytest.raises(TypeError, match="trusted_networks"):
            ProxyTCPServer(trusted_networks=["10.0.0.0/8"])  # type: ignore[call-arg]
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with pytest.raises(ValueError, match="once"):
            ProxyTCPServer(ssl_options=ctx, ssl=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
        assert ProxyTCPServer(ssl=ctx).ssl_options is ctx

    run(main)
