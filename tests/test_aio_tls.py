"""TLS after the PROXY header: the header in clear, then the handshake on the bytes after it.

This is how an AWS NLB TCP listener or HAProxy in tcp mode forwards TLS (aiohttp#11252).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import Any

import aio_support
import pytest
from aio_support import Recorder, Runner, close_writer, port_of, read_until_closed, tls_contexts
from proxyproto_rs import Header, aio, build_v1, build_v2

run = aio_support.run

CLIENT = ("203.0.113.7", 40001)
SERVICE = ("198.51.100.1", 443)


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return tls_contexts(tmp_path_factory.mktemp("tls"))


async def echo_upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    ssl_object = writer.get_extra_info("ssl_object")
    peer = writer.get_extra_info("peername")
    header = writer.get_extra_info("proxy_header")
    line = await reader.readline()
    info = f"{peer[0]}:{peer[1]} {ssl_object.version()} v{header.version} ".encode()
    writer.write(info + line.upper())
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("header", [build_v1(CLIENT, SERVICE), build_v2(CLIENT, SERVICE)])
def test_tls_after_header_streams(
    run: Runner[None], contexts: tuple[ssl.SSLContext, ssl.SSLContext], header: bytes
) -> None:
    server_ctx, client_ctx = contexts

    async def main() -> None:
        server = await aio.start_server(echo_upper, "127.0.0.1", 0, ssl=server_ctx)
        reader, writer = await aio.open_connection(
            "127.0.0.1",
            port_of(server),
            header=header,
            ssl=client_ctx,
            server_hostname="localhost",
        )
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"secret\n")
        answer = await asyncio.wait_for(read_until_closed(reader), 10)
        version = 1 if header.startswith(b"PROXY") else 2
        assert answer.startswith(b"203.0.113.7:40001 TLSv1.")
        assert answer.endswith(f" v{version} SECRET\n".encode())
        await close_writer(writer)
        server.close()
        await server.wait_closed()

    run(main())


def _one_segment_client(port: int, header: bytes, ctx: ssl.SSLContext, payload: bytes) -> bytes:
    """Blocking TLS client that sends the header and its ClientHello in one send()."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        sock.sendall(header + outgoing.read())
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = outgoing.read()
                if pending:
                    sock.sendall(pending)
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed during the handshake") from None
                incoming.write(data)
        tls.write(payload)
        sock.sendall(outgoing.read())
        answer = b""
        while True:
            try:
                chunk = tls.read(65536)
            except ssl.SSLWantReadError:
                data = sock.recv(65536)
                if not data:
                    break
                incoming.write(data)
                continue
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


def test_header_and_client_hello_in_one_segment(
    run: Runner[None], contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    """The ClientHello bytes read together with the header must feed the handshake."""
    server_ctx, client_ctx = contexts

    async def main() -> None:
        server = await aio.start_server(echo_upper, "127.0.0.1", 0, ssl=server_ctx)
        answer = await asyncio.wait_for(
            asyncio.to_thread(
                _one_segment_client,
                port_of(server),
                build_v2(CLIENT, SERVICE),
                client_ctx,
                b"one segment\n",
            ),
            20,
        )
        assert answer.startswith(b"203.0.113.7:40001 TLSv1.")
        assert answer.endswith(b"ONE SEGMENT\n")
        server.close()
        await server.wait_closed()

    run(main())


def test_tls_protocol_inner(
    run: Runner[None], contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    """A plain asyncio.Protocol behind wrap(ssl=...) sees decrypted data and ssl_object."""
    server_ctx, client_ctx = contexts

    async def main() -> None:
        store: list[Recorder] = []

        def factory() -> Recorder:
            store.append(Recorder(echo=True))
            return store[-1]

        loop = asyncio.get_running_loop()
        server = await loop.create_server(aio.wrap(factory, ssl=server_ctx), "127.0.0.1", 0)
        reader, writer = await aio.open_connection(
            "127.0.0.1",
            port_of(server),
            header=Header.v2(CLIENT, SERVICE),
            ssl=client_ctx,
            server_hostname="localhost",
        )
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
        proto = store[0]
        assert proto.extra["peername"] == CLIENT
        assert proto.extra["sockname"] == SERVICE
        assert isinstance(proto.extra["ssl_object"], ssl.SSLObject)
        assert proto.extra["proxy_header"] == Header.v2(CLIENT, SERVICE)
        assert proto.extra["socket"].getpeername() == CLIENT
        await close_writer(writer)
        await asyncio.wait_for(proto.lost, 10)
        server.close()
        await server.wait_closed()

    run(main())


def test_failed_handshake_never_reaches_inner(
    run: Runner[None], contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, _ = contexts

    async def main() -> None:
        made: list[Any] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            made.append(writer)
            writer.close()

        server = await aio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(build_v2(CLIENT, SERVICE) + b"GET / HTTP/1.1\r\n\r\n")
        await asyncio.wait_for(read_until_closed(reader), 10)
        await close_writer(writer)
        assert made == []
        server.close()
        await server.wait_closed()

    run(main())


def test_tls_sees_real_addresses_for_local(
    run: Runner[None], contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, client_ctx = contexts

    async def main() -> None:
        seen: list[Any] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("peername"))
            writer.close()

        server = await aio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        reader, writer = await aio.open_connection(
            "127.0.0.1",
            port_of(server),
            header=build_v2(),
            ssl=client_ctx,
            server_hostname="localhost",
        )
        me = writer.get_extra_info("sockname")
        await asyncio.wait_for(read_until_closed(reader), 10)
        assert seen == [me]
        await close_writer(writer)
        server.close()
        await server.wait_closed()

    run(main())


def test_starttls_on_proxied_stream(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """STARTTLS (writer.start_tls) through the proxied transport, on the default loop.

    uvloop's start_tls only accepts its own transport classes, so this is asyncio-only."""
    server_ctx, client_ctx = contexts

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"OK\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            line = await reader.readline()
            peer = writer.get_extra_info("peername")
            version = writer.get_extra_info("ssl_object").version()
            writer.write(f"{peer[0]} {version} ".encode() + line)
            await writer.drain()
            writer.close()

        server = await aio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await aio.open_connection(
            "127.0.0.1", port_of(server), header=build_v2(CLIENT, SERVICE)
        )
        writer.write(b"STARTTLS\n")
        assert await asyncio.wait_for(reader.readline(), 10) == b"OK\n"
        await asyncio.wait_for(writer.start_tls(client_ctx, server_hostname="localhost"), 10)
        writer.write(b"inside\n")
        answer = await asyncio.wait_for(read_until_closed(reader), 10)
        assert answer.startswith(b"203.0.113.7 TLSv1.")
        assert answer.endswith(b" inside\n")
        await close_writer(writer)
        server.close()
        await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 30))


class BufferedEcho(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(5)
        self.peer: Any = None
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(bytes(self.buf[:nbytes]))


def test_tls_buffered_protocol_inner(
    run: Runner[None], contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, client_ctx = contexts

    async def main() -> None:
        store: list[BufferedEcho] = []

        def factory() -> BufferedEcho:
            store.append(BufferedEcho())
            return store[-1]

        loop = asyncio.get_running_loop()
        server = await loop.create_server(aio.wrap(factory, ssl=server_ctx), "127.0.0.1", 0)
        reader, writer = await aio.open_connection(
            "127.0.0.1",
            port_of(server),
            header=build_v2(CLIENT, SERVICE),
            ssl=client_ctx,
            server_hostname="localhost",
        )
        payload = bytes(range(256)) * 64
        writer.write(payload)
        assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
        assert store[0].peer == CLIENT
        await close_writer(writer)
        server.close()
        await server.wait_closed()

    run(main())
