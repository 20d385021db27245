"""proxyproto_rs.aio over real sockets on 127.0.0.1, on the default loop and on uvloop.

SPEC rules cited: 4 (no processing before a complete header; timeout), 6 (header required,
trusted sources only), 17/20/24 (LOCAL, UNSPEC and v1 UNKNOWN use the real endpoints).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import random
import socket
import weakref
from pathlib import Path
from typing import Any

import aio_support
import pytest
from aio_support import (
    Recorder,
    Runner,
    close_writer,
    port_of,
    read_until_closed,
    recorder_factory,
)
from proxyproto_rs import (
    V2_SIGNATURE,
    Header,
    IncompleteHeaderError,
    InvalidHeaderError,
    aio,
    build_v1,
    build_v2,
)
from proxyproto_rs.aio import _protocol as aio_protocol

run = aio_support.run

CLIENT = ("203.0.113.7", 40001)
SERVICE = ("198.51.100.1", 443)
V2 = build_v2(CLIENT, SERVICE)
V1 = build_v1(CLIENT, SERVICE)


async def serve(factory: aio.ProxyServerFactory, **kwargs: Any) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0, **kwargs)
    return server, port_of(server)


async def shutdown(server: asyncio.Server) -> None:
    server.close()
    await asyncio.wait_for(server.wait_closed(), 10)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)


# -- headers and addresses --------------------------------------------------------------


@pytest.mark.parametrize("header", [V1, V2], ids=["v1", "v2"])
def test_header_addresses_reach_inner_protocol(run: Runner[None], header: bytes) -> None:
    """SPEC 21: PROXY means the header's addresses are the connection's."""

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store))
        server, port = await serve(factory)
        _reader, writer = await connect(port)
        writer.write(header + b"hello")
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.wait_for(proto.wait_data(5), 10)
        assert bytes(proto.data) == b"hello"
        assert proto.extra["peername"] == CLIENT
        assert proto.extra["sockname"] == SERVICE
        parsed = proto.extra["proxy_header"]
        assert isinstance(parsed, Header)
        assert parsed.to_bytes() == header
        sock = proto.extra["socket"]
        assert sock.getpeername() == CLIENT
        assert sock.getsockname() == SERVICE
        assert sock.fileno() >= 0  # everything else is the real socket's
        assert factory.stats.served == 1
        assert factory.pending == 0
        await close_writer(writer)
        await asyncio.wait_for(proto.lost, 10)
        await shutdown(server)

    run(main())


async def _first(store: list[Recorder]) -> Recorder:
    while not store:  # noqa: ASYNC110 - polling a list filled by the factory
        await asyncio.sleep(0.005)
    await store[0].made
    return store[0]


@pytest.mark.parametrize(
    "header", [build_v2(), build_v1(None, None)], ids=["v2-local", "v1-unknown"]
)
def test_local_and_unknown_use_socket_addresses(run: Runner[None], header: bytes) -> None:
    """SPEC 17, 20: LOCAL (health checks) and v1 UNKNOWN are served with the real endpoints."""

    async def main() -> None:
        store: list[Recorder] = []
        server, port = await serve(aio.wrap(recorder_factory(store)))
        _reader, writer = await connect(port)
        writer.write(header + b"ping")
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.wait_for(proto.wait_data(4), 10)
        assert proto.extra["peername"] == writer.get_extra_info("sockname")
        assert proto.extra["sockname"] == ("127.0.0.1", port)
        assert proto.extra["proxy_header"].source is None
        assert bytes(proto.data) == b"ping"
        await close_writer(writer)
        await shutdown(server)

    run(main())


def test_header_one_byte_at_a_time(run: Runner[None]) -> None:
    """SPEC 3: intermediaries may fragment; every split gives the same result."""

    async def main() -> None:
        store: list[Recorder] = []
        server, port = await serve(aio.wrap(recorder_factory(store)))
        _reader, writer = await connect(port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in V2 + b"xyz":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.002)
        proto = await asyncio.wait_for(_first(store), 10)
        assert bytes(await asyncio.wait_for(proto.wait_data(3), 10)) == b"xyz"
        assert proto.extra["peername"] == CLIENT
        await close_writer(writer)
        await shutdown(server)

    run(main())


# -- refusals ------------------------------------------------------------------------------


def _kinds(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [getattr(r, "proxy_kind", "?") for r in caplog.records if r.name == "proxyproto_rs.aio"]


def test_silent_client_closed_after_timeout(
    run: Runner[None], caplog: pytest.LogCaptureFixture
) -> None:
    """SPEC 4: a client that never sends a header is closed after the timeout, no leftovers."""
    caplog.set_level(logging.INFO, "proxyproto_rs.aio")

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), timeout=0.2)
        outers: list[weakref.ref[asyncio.BaseProtocol]] = []

        def tracked() -> asyncio.BaseProtocol:
            outer = factory()
            outers.append(weakref.ref(outer))
            return outer

        loop = asyncio.get_running_loop()
        server = await loop.create_server(tracked, "127.0.0.1", 0)
        tasks_before = asyncio.all_tasks()
        reader, writer = await connect(port_of(server))
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        assert store == []
        assert factory.pending == 0
        assert factory.stats.rejected == {"timeout": 1}
        assert asyncio.all_tasks() == tasks_before
        await asyncio.sleep(0.05)  # let the server side run connection_lost
        gc.collect()
        assert len(outers) == 1
        assert outers[0]() is None  # the protocol, its parser and buffer are gone
        await shutdown(server)

    run(main())
    assert _kinds(caplog) == ["timeout"]


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello, no header
        b"PROXY TCP4 1.2.3.4\r\n",
        V2_SIGNATURE + b"\x2f\x11\x00\x0c" + bytes(12),  # bad command nibble (SPEC 19)
    ],
    ids=["http", "tls", "v1-short", "v2-bad-command"],
)
def test_garbage_is_refused_at_once(
    run: Runner[None], caplog: pytest.LogCaptureFixture, payload: bytes
) -> None:
    """SPEC 16: anything that is not a header aborts the connection, long before the timeout."""
    caplog.set_level(logging.INFO, "proxyproto_rs.aio")

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), timeout=30)
        server, port = await serve(factory)
        reader, writer = await connect(port)
        writer.write(payload)
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        assert store == []
        assert factory.pending == 0
        assert sum(factory.stats.rejected.values()) == 1
        assert "timeout" not in factory.stats.rejected
        await shutdown(server)

    run(main())
    kinds = _kinds(caplog)
    assert len(kinds) == 1
    assert kinds[0] not in ("?", "timeout", "eof")


def test_oversized_v2_length_refused_when_read(run: Runner[None]) -> None:
    """D7: a v2 length above max_size is refused as soon as the length field arrives."""

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), timeout=30, max_size=1024)
        server, port = await serve(factory)
        reader, writer = await connect(port)
        writer.write(V2_SIGNATURE + b"\x21\x11\xff\xff")
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        assert store == []
        assert list(factory.stats.rejected) != ["timeout"]
        await shutdown(server)

    run(main())


def test_max_size_applies_to_tlvs(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), max_size=128)
        server, port = await serve(factory)
        reader, writer = await connect(port)
        writer.write(build_v2(CLIENT, SERVICE, tlvs=[(0xE1, b"x" * 200)]) + b"data")
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        assert store == []
        await shutdown(server)

    run(main())


def test_eof_before_header(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store))
        server, port = await serve(factory)
        reader, writer = await connect(port)
        writer.write(V2[:10])
        writer.write_eof()
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        assert store == []
        assert factory.stats.rejected == {"eof": 1}
        assert factory.pending == 0
        await shutdown(server)

    run(main())


def test_untrusted_peer_rejected(run: Runner[None], caplog: pytest.LogCaptureFixture) -> None:
    """SPEC 6: only trusted proxies may send a header; others are closed at once."""
    caplog.set_level(logging.INFO, "proxyproto_rs.aio")

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), trusted=["10.0.0.0/8", "fd00::/8"])
        server, port = await serve(factory)
        reader, writer = await connect(port)
        writer.write(V2 + b"spoof")
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        assert store == []
        assert factory.stats.rejected == {"untrusted_peer": 1}
        await shutdown(server)

    run(main())
    assert _kinds(caplog) == ["untrusted_peer"]


def test_trusted_peer_accepted(run: Runner[None]) -> None:
    async def main() -> None:
        import ipaddress

        store: list[Recorder] = []
        trusted = ["10.0.0.0/8", ipaddress.ip_network("127.0.0.0/8")]
        server, port = await serve(aio.wrap(recorder_factory(store), trusted=trusted))
        _reader, writer = await connect(port)
        writer.write(V2 + b"ok")
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.wait_for(proto.wait_data(2), 10)
        assert proto.extra["peername"] == CLIENT
        await close_writer(writer)
        await shutdown(server)

    run(main())


def test_untrusted_peer_served_direct(run: Runner[None]) -> None:
    """untrusted="direct": served with the socket address and no header read."""

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), trusted=["10.0.0.0/8"], untrusted="direct")
        server, port = await serve(factory)
        _reader, writer = await connect(port)
        writer.write(V2)  # not read as a header: it is payload for a direct peer
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.wait_for(proto.wait_data(len(V2)), 10)
        assert bytes(proto.data) == V2
        assert proto.extra["peername"] == writer.get_extra_info("sockname")
        assert proto.extra["proxy_header"] is None
        assert factory.stats.direct == 1
        await close_writer(writer)
        await shutdown(server)

    run(main())


def test_max_pending(run: Runner[None]) -> None:
    """Beyond max_pending connections waiting for a header, the oldest is closed to make
    room for the newcomer: the cap holds, and whoever filled it first cannot keep it."""

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), max_pending=2, timeout=30)
        server, port = await serve(factory)
        idle = []
        for _ in range(2):
            idle.append(await connect(port))
            for _ in range(500):
                if factory.pending == len(idle):
                    break
                await asyncio.sleep(0.01)
        assert factory.pending == 2
        reader, writer = await connect(port)
        # The oldest waiting connection is closed; the newcomer takes its place.
        assert await asyncio.wait_for(read_until_closed(idle[0][0]), 10) == b""
        assert factory.pending == 2
        assert factory.stats.rejected == {"too_many_pending": 1}
        assert factory.stats.evicted == 1
        # The waiting ones are still served once their header arrives.
        writer.write(V2 + b"late")
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.wait_for(proto.wait_data(4), 10)
        assert factory.pending == 1
        idle[1][1].write(V2 + b"also")
        for _ in range(500):
            if len(store) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(store) == 2
        assert factory.pending == 0
        for _, w in [*idle, (reader, writer)]:
            await close_writer(w)
        await shutdown(server)

    run(main())


def test_policy_hook(run: Runner[None]) -> None:
    seen: list[tuple[Any, Header | None]] = []

    def policy(peer: Any, header: Header | None) -> bool:
        seen.append((peer, header))
        return header is not None and header.source == CLIENT

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), policy=policy)
        server, port = await serve(factory)
        reader, writer = await connect(port)
        writer.write(build_v2(("192.0.2.9", 1), SERVICE) + b"no")
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        assert store == []
        reader, writer = await connect(port)
        writer.write(V2 + b"yes")
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.wait_for(proto.wait_data(3), 10)
        assert factory.stats.rejected == {"policy": 1}
        assert [p[0][0] for p in seen] == ["127.0.0.1", "127.0.0.1"]
        await close_writer(writer)
        await shutdown(server)

    run(main())


def test_options_validated() -> None:
    with pytest.raises(ValueError, match="untrusted"):
        aio.wrap(Recorder, untrusted="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        aio.wrap(Recorder, timeout=0)
    with pytest.raises(ValueError, match="max_size"):
        aio.wrap(Recorder, max_size=8)
    with pytest.raises(ValueError, match="max_pending"):
        aio.wrap(Recorder, max_pending=0)
    with pytest.raises(ValueError, match="host bits"):
        aio.wrap(Recorder, trusted=["10.0.0.1/8"])  # host bits set: a likely typo


# -- payload and flow control -------------------------------------------------------------


def test_payload_integrity_random_segmentation(run: Runner[None]) -> None:
    async def main() -> None:
        rng = random.Random(3)
        payload = rng.randbytes(300_000)
        store: list[Recorder] = []
        server, port = await serve(aio.wrap(recorder_factory(store, echo=True)))
        reader, writer = await connect(port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = V2 + payload
        pos = 0
        while pos < len(stream):
            n = rng.choice([1, 2, 7, 16, 17, 100, 1500, 9000, 65536])
            writer.write(stream[pos : pos + n])
            pos += n
            await writer.drain()
            if rng.random() < 0.1:
                await asyncio.sleep(0.001)
        echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 20)
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
        await close_writer(writer)
        await shutdown(server)

    run(main())


class SmallBuffered(asyncio.BufferedProtocol):
    """A BufferedProtocol with a tiny buffer, so the wrapper must deliver in several steps."""

    def __init__(self) -> None:
        self.buf = bytearray(7)
        self.data = bytearray()
        self.extra: dict[str, Any] = {}
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.extra["peername"] = transport.get_extra_info("peername")

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.data += self.buf[:nbytes]
        assert self.transport is not None
        self.transport.write(bytes(self.buf[:nbytes]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(None)


def test_buffered_protocol_inner(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[SmallBuffered] = []

        def factory() -> SmallBuffered:
            store.append(SmallBuffered())
            return store[-1]

        server, port = await serve(aio.wrap(factory))
        reader, writer = await connect(port)
        payload = bytes(range(256)) * 40
        writer.write(V2 + payload[:100])  # trailing bytes well over the 7-byte buffer
        await writer.drain()
        writer.write(payload[100:])
        assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
        assert store[0].extra["peername"] == CLIENT
        await close_writer(writer)
        await asyncio.wait_for(store[0].lost, 10)
        await shutdown(server)

    run(main())


class Pauser(Recorder):
    """Pauses reading in connection_made: the bytes after the header must wait for resume."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        assert not self.transport.is_reading()


def test_pause_reading_holds_trailing_bytes(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[Recorder] = []

        def factory() -> Recorder:
            store.append(Pauser())
            return store[-1]

        server, port = await serve(aio.wrap(factory))
        _reader, writer = await connect(port)
        writer.write(V2 + b"first")
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.sleep(0.05)
        assert proto.data == b""
        writer.write(b"second")
        await asyncio.sleep(0.05)
        assert proto.data == b""
        assert proto.transport is not None
        proto.transport.resume_reading()
        assert proto.transport.is_reading()
        await asyncio.wait_for(proto.wait_data(11), 10)
        assert bytes(proto.data) == b"firstsecond"
        await close_writer(writer)
        await shutdown(server)

    run(main())


def test_eof_after_held_bytes_keeps_order(run: Runner[None]) -> None:
    """EOF arriving while trailing bytes are held is delivered after them."""

    async def main() -> None:
        store: list[Recorder] = []

        def factory() -> Recorder:
            store.append(Pauser(eof_result=True))
            return store[-1]

        server, port = await serve(aio.wrap(factory))
        reader, writer = await connect(port)
        writer.write(V2 + b"data")
        writer.write_eof()
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.sleep(0.05)
        assert proto.events == ["made"]
        assert proto.transport is not None
        proto.transport.resume_reading()
        await asyncio.wait_for(proto.eof, 10)
        assert proto.events == ["made", "data", "eof"]
        # eof_received returned True: the connection is half-open, we can still answer.
        proto.transport.write(b"reply")
        proto.transport.close()
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b"reply"
        await close_writer(writer)
        await shutdown(server)

    run(main())


@pytest.mark.parametrize("keep_open", [True, None])
def test_eof_received_result_honoured(run: Runner[None], keep_open: bool | None) -> None:
    async def main() -> None:
        store: list[Recorder] = []
        server, port = await serve(aio.wrap(recorder_factory(store, eof_result=keep_open)))
        reader, writer = await connect(port)
        writer.write(V2 + b"x")
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.wait_for(proto.wait_data(1), 10)
        writer.write_eof()
        await asyncio.wait_for(proto.eof, 10)
        if keep_open:
            await asyncio.sleep(0.05)
            assert not proto.lost.done()
            assert proto.transport is not None
            proto.transport.write(b"still here")
            proto.transport.close()
            assert await asyncio.wait_for(read_until_closed(reader), 10) == b"still here"
        else:
            await asyncio.wait_for(proto.lost, 10)
            assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        assert proto.events[-1] == "lost" or keep_open
        await close_writer(writer)
        await shutdown(server)

    run(main())


def test_close_and_abort_pass_through(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[Recorder] = []
        server, port = await serve(aio.wrap(recorder_factory(store)))
        for method in ("close", "abort"):
            reader, writer = await connect(port)
            writer.write(V2 + b"x")
            while len(store) < (1 if method == "close" else 2):  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            proto = store[-1]
            await asyncio.wait_for(proto.wait_data(1), 10)
            assert proto.transport is not None
            if method == "close":
                proto.transport.write(b"bye")  # flushed before closing
            getattr(proto.transport, method)()
            assert proto.transport.is_closing()
            await asyncio.wait_for(proto.lost, 10)
            got = await asyncio.wait_for(read_until_closed(reader), 10)
            assert got == (b"bye" if method == "close" else b"")
            await close_writer(writer)
        await shutdown(server)

    run(main())


class Writer(Recorder):
    """Writes until paused; records pause/resume."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.set_write_buffer_limits(high=16384, low=4096)
        self.paused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.resumed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent = 0
        while not self.paused.done() and self.sent < 64 * 1024 * 1024:
            self.transport.write(b"z" * 65536)
            self.sent += 65536

    def pause_writing(self) -> None:
        self.events.append("pause_writing")
        if not self.paused.done():
            self.paused.set_result(None)

    def resume_writing(self) -> None:
        self.events.append("resume_writing")
        if not self.resumed.done():
            self.resumed.set_result(None)


def test_write_flow_control(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[Recorder] = []

        def factory() -> Recorder:
            store.append(Writer())
            return store[-1]

        server, port = await serve(aio.wrap(factory))
        reader, writer = await connect(port)
        writer.write(V2)
        proto = await asyncio.wait_for(_first(store), 10)
        assert isinstance(proto, Writer)
        await asyncio.wait_for(proto.paused, 10)
        assert proto.transport is not None
        assert proto.transport.get_write_buffer_size() > 0
        got = 0
        while not proto.resumed.done():
            got += len(await asyncio.wait_for(reader.read(1 << 20), 10))
        assert proto.events.count("pause_writing") >= 1
        proto.transport.close()
        got += len(await asyncio.wait_for(read_until_closed(reader), 20))
        assert got == proto.sent
        await close_writer(writer)
        await shutdown(server)

    run(main())


def test_set_protocol_switches_inner(run: Runner[None]) -> None:
    """A protocol upgrade (transport.set_protocol) keeps the proxied addresses."""

    async def main() -> None:
        store: list[Recorder] = []
        second = Recorder()

        class Upgrader(Recorder):
            def data_received(self, data: bytes) -> None:
                assert self.transport is not None
                self.transport.set_protocol(second)
                second.connection_made(self.transport)
                second.data_received(data)

        def factory() -> Recorder:
            store.append(Upgrader())
            return store[-1]

        server, port = await serve(aio.wrap(factory))
        _reader, writer = await connect(port)
        writer.write(V2 + b"up")
        await asyncio.wait_for(second.wait_data(2), 10)
        writer.write(b"grade")
        await asyncio.wait_for(second.wait_data(7), 10)
        assert bytes(second.data) == b"upgrade"
        assert second.extra["peername"] == CLIENT
        assert second.transport is not None
        assert second.transport.get_protocol() is second
        await close_writer(writer)
        await asyncio.wait_for(second.lost, 10)
        await shutdown(server)

    run(main())


# -- streams -------------------------------------------------------------------------------


def test_start_server_streams(run: Runner[None]) -> None:
    async def main() -> None:
        seen: list[Any] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("peername"))
            seen.append(writer.get_extra_info("proxy_header"))
            line = await reader.readline()
            writer.write(line.upper())
            await writer.drain()
            writer.close()

        server = await aio.start_server(handle, "127.0.0.1", 0, trusted=["127.0.0.1/32"])
        port = port_of(server)
        reader, writer = await aio.open_connection(
            "127.0.0.1", port, header=Header.v2(*(CLIENT, SERVICE))
        )
        writer.write(b"hello\n")
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b"HELLO\n"
        assert seen[0] == CLIENT
        assert seen[1] == Header.v2(CLIENT, SERVICE)
        await close_writer(writer)
        await shutdown(server)

    run(main())


@pytest.mark.parametrize("header", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("split", [False, True], ids=["whole", "bytewise"])
def test_read_header_never_swallows_payload(run: Runner[None], header: bytes, split: bool) -> None:
    async def main() -> None:
        results: list[Any] = []
        done = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                results.append(await aio.read_header(reader, timeout=10))
                results.append(await reader.read())
            finally:
                writer.close()
                done.set_result(None)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        _reader, writer = await connect(port_of(server))
        stream = header + b"PROXY payload that looks like a header\r\n"
        if split:
            for byte in stream:
                writer.write(bytes([byte]))
                await writer.drain()
        else:
            writer.write(stream)
        writer.write_eof()
        await asyncio.wait_for(done, 10)
        assert results[0].to_bytes() == header
        assert results[1] == b"PROXY payload that looks like a header\r\n"
        await close_writer(writer)
        await shutdown(server)

    run(main())


@pytest.mark.parametrize("case", ["garbage", "eof", "timeout"])
def test_read_header_errors(run: Runner[None], case: str) -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        if case == "garbage":
            reader.feed_data(b"SSH-2.0-OpenSSH\r\n")
            with pytest.raises(InvalidHeaderError):
                await aio.read_header(reader)
        elif case == "eof":
            reader.feed_data(V2[:20])
            reader.feed_eof()
            with pytest.raises(IncompleteHeaderError):
                await aio.read_header(reader)
        else:
            reader.feed_data(V2[:20])
            with pytest.raises(TimeoutError):
                await aio.read_header(reader, timeout=0.05)

    run(main())


def test_send_header_on_raw_transport(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[Recorder] = []
        server, port = await serve(aio.wrap(recorder_factory(store)))
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        aio.send_header(transport, Header.v1(CLIENT, SERVICE))
        transport.write(b"after")
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.wait_for(proto.wait_data(5), 10)
        assert proto.extra["peername"] == CLIENT
        assert proto.extra["proxy_header"].version == 1
        transport.close()
        await asyncio.wait_for(proto.lost, 10)
        await shutdown(server)

    run(main())


# -- UNIX sockets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "served"),
    [(None, True), (["unix"], True), (["127.0.0.0/8"], False)],
    ids=["default", "unix-listed", "unix-not-listed"],
)
def test_unix_socket_trust(
    run: Runner[None], tmp_path: Path, trusted: list[str] | None, served: bool
) -> None:
    """UNIX-socket peers have no IP: trusted by default, else only if "unix" is listed."""

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), trusted=trusted)
        path = str(tmp_path / "s")
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(factory, path)
        reader, writer = await aio.open_unix_connection(path, header=V2)
        writer.write(b"u")
        if served:
            proto = await asyncio.wait_for(_first(store), 10)
            await asyncio.wait_for(proto.wait_data(1), 10)
            assert proto.extra["peername"] == CLIENT
        else:
            assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
            assert factory.stats.rejected == {"untrusted_peer": 1}
        await close_writer(writer)
        await shutdown(server)

    run(main())


# -- trust rules (no sockets) -------------------------------------------------------------


def test_trust_matching() -> None:
    """SPEC 6: trusted networks; IPv4-mapped IPv6 peers match IPv4 networks; UNIX peers only
    when "unix" is listed (or when trusted is None)."""
    import ipaddress

    def trust(spec: Any) -> aio.ServerOptions:
        return aio.wrap(Recorder, trusted=spec).options

    some = trust(["10.0.0.0/8", ipaddress.ip_network("2001:db8::/32"), "192.0.2.7"])
    assert some.trusts(("10.1.2.3", 1))
    assert some.trusts(("192.0.2.7", 1))
    assert not some.trusts(("192.0.2.8", 1))
    assert some.trusts(("::ffff:10.9.9.9", 1, 0, 0))
    assert not some.trusts(("::ffff:11.9.9.9", 1, 0, 0))
    assert some.trusts(("2001:db8::5", 1, 0, 0))
    assert some.trusts(("fe80::1%eth0", 1, 0, 2)) is False
    assert not some.trusts("")  # a UNIX-socket peer
    assert not some.trusts(None)
    assert trust(["unix"]).trusts("")
    assert not trust(["unix"]).trusts(("127.0.0.1", 1))
    assert trust(None).trusts("")
    assert trust(None).trusts(("198.51.100.1", 1))
    assert trust("127.0.0.0/8").trusts(("127.0.0.1", 5))


def test_v1_refused_when_not_allowed(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), allow_v1=False)
        server, port = await serve(factory)
        reader, writer = await connect(port)
        writer.write(V1 + b"x")
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        await close_writer(writer)
        assert store == []
        assert sum(factory.stats.rejected.values()) == 1
        await shutdown(server)

    run(main())


@pytest.mark.parametrize("outer", ["BufferedOuter", "PlainOuter"])
def test_both_outer_protocols(run: Runner[None], outer: str) -> None:
    """The outer protocol is a BufferedProtocol on asyncio's loop and a Protocol on uvloop;
    force each on each loop: split header, bytes held while paused, then a large payload."""

    async def main() -> None:
        store: list[Recorder] = []

        def factory() -> Recorder:
            store.append(Pauser(echo=True))
            return store[-1]

        wrapped = aio.wrap(factory)
        wrapped._outer = getattr(aio_protocol, outer)
        server, port = await serve(wrapped)
        reader, writer = await connect(port)
        writer.write(V2[:5])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(V2[5:] + b"held")
        proto = await asyncio.wait_for(_first(store), 10)
        assert type(proto.transport).__name__ == "ProxiedTransport"
        await asyncio.sleep(0.02)
        assert proto.data == b""
        assert proto.transport is not None
        proto.transport.resume_reading()
        payload = random.Random(5).randbytes(200_000)
        writer.write(payload)
        echoed = await asyncio.wait_for(reader.readexactly(4 + len(payload)), 20)
        assert echoed == b"held" + payload
        await close_writer(writer)
        await shutdown(server)

    run(main())


def test_timeout_bounds_the_whole_header_not_each_read(run: Runner[None]) -> None:
    """Slowloris: a header trickled one byte at a time is cut at the timeout, even though
    bytes keep arriving (PEERS: go-proxyproto CVE-2021-23409)."""

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store), timeout=0.3)
        server, port = await serve(factory)
        reader, writer = await connect(port)
        loop = asyncio.get_running_loop()
        start = loop.time()
        closed = asyncio.ensure_future(read_until_closed(reader))
        for byte in V1:  # 50 ms per byte: the whole line would take ~2.5 s
            if closed.done():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.05)
        assert await asyncio.wait_for(closed, 10) == b""
        assert loop.time() - start < 2.0
        assert store == []
        assert factory.stats.rejected == {"timeout": 1}
        await close_writer(writer)
        await shutdown(server)

    run(main())


def test_timeout_ends_with_the_header(run: Runner[None]) -> None:
    """The header timeout does not apply to the connection after the header (go-proxyproto
    #75: the first fix timed out whole connections)."""

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(recorder_factory(store, echo=True), timeout=0.2)
        server, port = await serve(factory)
        reader, writer = await connect(port)
        writer.write(V2)
        proto = await asyncio.wait_for(_first(store), 10)
        await asyncio.sleep(0.5)  # idle well past the header timeout
        assert not proto.lost.done()
        writer.write(b"still served")
        assert await asyncio.wait_for(reader.readexactly(12), 10) == b"still served"
        assert factory.stats.rejected == {}
        await close_writer(writer)
        await shutdown(server)

    run(main())


class _StickyTransport(asyncio.Transport):
    """A transport that keeps calling the protocol it started with, even after set_protocol
    (as a hand-written or test transport may): the wrapper must still route every event."""

    def __init__(self) -> None:
        super().__init__({"peername": ("192.0.2.1", 1), "sockname": ("192.0.2.2", 2)})
        self.protocol: Any = None
        self.closed = False

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass


def test_events_after_hand_over_reach_the_current_protocol(run: Runner[None]) -> None:
    async def main() -> None:
        store: list[Recorder] = []
        outer = aio.wrap(recorder_factory(store, eof_result=True))()
        transport = _StickyTransport()
        outer.connection_made(transport)
        assert isinstance(outer, asyncio.BufferedProtocol | asyncio.Protocol)
        for chunk in (V2 + b"ab", b"cd"):
            if isinstance(outer, asyncio.BufferedProtocol):
                buf = outer.get_buffer(len(chunk))
                buf[: len(chunk)] = chunk
                outer.buffer_updated(len(chunk))
            else:
                outer.data_received(chunk)
        assert transport.protocol is store[0]
        assert outer.eof_received() is True
        outer.connection_lost(None)
        assert bytes(store[0].data) == b"abcd"
        assert store[0].events == ["made", "data", "data", "eof", "lost"]

    run(main())


def test_start_server_passes_parser_options() -> None:
    """start_server takes wrap()'s parser options: allow_v1=False refuses a v1 line and still
    serves a v2 header (SPEC rule 1: a v2 receiver need not accept text)."""

    async def main() -> list[object]:
        seen: list[object] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("peername"))
            writer.close()

        server = await aio.start_server(handle, "127.0.0.1", 0, allow_v1=False)
        port = server.sockets[0].getsockname()[1]
        for header in (
            build_v1(("192.0.2.1", 5), ("192.0.2.2", 6)),
            build_v2(("192.0.2.3", 7), ("192.0.2.4", 8)),
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(header + b"x")
            await writer.drain()
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return seen

    assert asyncio.run(main()) == [("192.0.2.3", 7)]


def test_protocol_switched_in_connection_made_gets_the_bytes_read_with_the_header(
    run: Runner[None],
) -> None:
    """The bytes that came with the header go to the protocol in place once the
    application's connection_made returns, and the transport already calls that one."""

    async def main() -> None:
        second = Recorder()
        transport = _StickyTransport()
        seen_by_transport: list[Any] = []

        class Switcher(Recorder):
            def connection_made(self, proxied: asyncio.BaseTransport) -> None:
                super().connection_made(proxied)
                proxied.set_protocol(second)
                second.connection_made(proxied)

        def recording(data: bytes) -> None:
            seen_by_transport.append(transport.protocol)
            Recorder.data_received(second, data)

        second.data_received = recording  # type: ignore[method-assign]
        outer = aio.wrap(Switcher)()
        outer.connection_made(transport)
        chunk = V2 + b"hello"
        if isinstance(outer, asyncio.BufferedProtocol):
            buf = outer.get_buffer(len(chunk))
            buf[: len(chunk)] = chunk
            outer.buffer_updated(len(chunk))
        else:
            outer.data_received(chunk)  # type: ignore[attr-defined]
        assert bytes(second.data) == b"hello"
        assert seen_by_transport == [second]
        assert transport.protocol is second

    run(main())
