"""Chained proxies: a second PROXY header at the start of the
application's bytes is refused with its own kind, whether it arrives in the header's read or
later, without ever delaying the hand-over to a server that speaks first."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_support
import pytest
from aio_support import Recorder, Runner, close_writer, port_of, read_until_closed
from proxyproto_rs import V2_SIGNATURE, ProxyProtocolError, aio, build_v1, build_v2
from proxyproto_rs.aio._protocol import second_header

run = aio_support.run

CLIENT = ("203.0.113.7", 40001)
SERVICE = ("198.51.100.1", 443)
V2 = build_v2(CLIENT, SERVICE)
V1 = build_v1(CLIENT, SERVICE)
INNER = build_v2(("192.0.2.50", 5555), SERVICE)
"""The header a second proxy in a row would add."""


class Greeter(Recorder):
    """A server that speaks first (SMTP, SSH): it writes a greeting in connection_made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.write(b"220 hello\r\n")


async def _server(
    store: list[Recorder], cls: type[Recorder] = Recorder, **options: Any
) -> tuple[aio.ProxyServerFactory, asyncio.Server, int]:
    def make() -> Recorder:
        store.append(cls())
        return store[-1]

    factory = aio.wrap(make, **options)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    return factory, server, port_of(server)


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)


async def _shutdown(server: asyncio.Server) -> None:
    server.close()
    await asyncio.wait_for(server.wait_closed(), 10)


def test_second_header_decides_on_the_signature_alone() -> None:
    assert second_header(V1) == 1
    assert second_header(INNER) == 2
    assert second_header(V2_SIGNATURE) == 2
    assert second_header(V2_SIGNATURE + b"\xff") == 2  # any split gives the same answer
    for n in range(len(V2_SIGNATURE)):
        assert second_header(V2_SIGNATURE[:n]) is None
    assert second_header(b"PROXY") is None
    assert second_header(b"PROXYZ") == 0
    assert second_header(b"GET / HTTP/1.1\r\n") == 0
    assert second_header(b"\r\n") is None
    assert second_header(b"\r\nX") == 0


@pytest.mark.parametrize(
    ("first", "later"),
    [
        (V2 + INNER + b"GET /", b""),  # in the header's read
        (V1 + build_v1(("192.0.2.50", 5555), SERVICE), b""),
        (V2, INNER + b"GET /"),  # in a later read
        (V2 + INNER[:5], INNER[5:] + b"GET /"),  # split across reads
    ],
    ids=["same-read-v2", "same-read-v1", "later-read", "split"],
)
def test_chained_header_refused(
    run: Runner[None], caplog: pytest.LogCaptureFixture, first: bytes, later: bytes
) -> None:
    async def main() -> None:
        store: list[Recorder] = []
        factory, server, port = await _server(store)
        reader, writer = await _connect(port)
        writer.write(first)
        await writer.drain()
        if later:
            await asyncio.sleep(0.05)
            writer.write(later)
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        [proto] = store
        exc = await asyncio.wait_for(proto.lost, 10)
        assert isinstance(exc, ProxyProtocolError)
        assert exc.kind == "chained_header"
        assert proto.data == b""  # the application never saw the second header
        assert factory.stats.rejected == {"chained_header": 1}
        await _shutdown(server)

    with caplog.at_level(logging.INFO, logger="proxyproto_rs.aio"):
        run(main())
    [record] = [r for r in caplog.records if getattr(r, "proxy_kind", None)]
    assert record.proxy_kind == "chained_header"  # type: ignore[attr-defined]
    assert "second PROXY header" in record.getMessage()
    assert "two proxies in a row" in record.getMessage()


def test_server_speaking_first_is_not_delayed(run: Runner[None]) -> None:
    """The greeting goes out before the client sends a byte after the header; the client's
    first bytes are still checked before the application sees them."""

    async def main() -> None:
        store: list[Recorder] = []
        _, server, port = await _server(store, Greeter)
        reader, writer = await _connect(port)
        writer.write(V2)
        assert await asyncio.wait_for(reader.readexactly(11), 10) == b"220 hello\r\n"
        writer.write(b"EHLO example.org\r\n")
        [proto] = store
        assert await asyncio.wait_for(proto.wait_data(18), 10) == b"EHLO example.org\r\n"
        await close_writer(writer)
        await _shutdown(server)

        # The same server, a chained header sent after the greeting: refused.
        store.clear()
        _, server, port = await _server(store, Greeter)
        reader, writer = await _connect(port)
        writer.write(V2)
        assert await asyncio.wait_for(reader.readexactly(11), 10) == b"220 hello\r\n"
        writer.write(INNER + b"EHLO")
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        assert store[0].data == b""
        await _shutdown(server)

    run(main())


def test_allow_chained_passes_the_bytes_through(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[Recorder] = []
        factory, server, port = await _server(store, allow_chained=True)
        _reader, writer = await _connect(port)
        writer.write(V2 + INNER + b"x")
        [proto] = await _made(store)
        assert await asyncio.wait_for(proto.wait_data(len(INNER) + 1), 10) == INNER + b"x"
        assert factory.stats.rejected == {}
        await close_writer(writer)
        await _shutdown(server)

    run(main())


@pytest.mark.parametrize("payload", [b"PROX", b"\r\n\r\n", b"P"])
def test_short_prefix_then_eof_is_delivered(run: Runner[None], payload: bytes) -> None:
    """Fewer bytes than a signature, then EOF: not a header, so the application gets them."""

    async def main() -> None:
        store: list[Recorder] = []
        factory, server, port = await _server(store)
        _reader, writer = await _connect(port)
        writer.write(V2 + payload)
        await writer.drain()
        writer.write_eof()
        [proto] = await _made(store)
        await asyncio.wait_for(proto.eof, 10)
        assert proto.data == payload
        assert factory.stats.rejected == {}
        await close_writer(writer)
        await _shutdown(server)

    run(main())


def test_stream_server_refuses_chained(run: Runner[None]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        writer.close()

    async def main() -> None:
        server = await aio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await _connect(port_of(server))
        writer.write(V2 + INNER + b"data")
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        reader, writer = await _connect(port_of(server))
        writer.write(V2 + b"data")
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b"data"
        await close_writer(writer)
        await _shutdown(server)

    run(main())


async def _made(store: list[Recorder]) -> list[Recorder]:
    for _ in range(1000):
        if store:
            await asyncio.wait_for(store[0].made, 10)
            return store
        await asyncio.sleep(0.005)
    raise AssertionError("no connection reached the application")
