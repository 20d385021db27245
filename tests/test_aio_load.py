"""1,000 concurrent connections, half of them hostile: every good one is served and nothing
leaks (file descriptors and tasks are counted before and after). SPEC rule 4; PEERS:
CVE-2021-23409 (no header timeout) and CVE-2021-23351 (unbounded v1)."""

from __future__ import annotations

import asyncio
import contextlib
import gc

import aio_support
from aio_support import Runner, open_fds, port_of, raise_nofile, read_until_closed
from proxyproto_rs import V2_SIGNATURE, aio, build_v1, build_v2

run = aio_support.run

N = 1000
SERVICE = ("198.51.100.1", 443)


class PeerEcho(asyncio.Protocol):
    """Answers each chunk with the peer address it was given, then the chunk."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        self.transport.write(f"{self.peer[0]}:{self.peer[1]} ".encode() + data)


def client_of(i: int) -> tuple[str, int]:
    return (f"10.{i >> 8 & 255}.{i & 255}.1", 1024 + i)


async def good(port: int, i: int) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        src = client_of(i)
        header = build_v2(src, SERVICE) if i % 4 else build_v1(src, SERVICE)
        writer.write(header + b"ping\n")
        expected = f"{src[0]}:{src[1]} ping\n".encode()
        return await reader.readexactly(len(expected)) == expected
    finally:
        writer.close()
        await writer.wait_closed()


async def bad(port: int, i: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    kind = i % 6
    try:
        if kind == 0:  # silent: must be closed by the header timeout
            pass
        elif kind == 1:  # not PROXY protocol
            writer.write(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
        elif kind == 2:  # v2 length over max_size
            writer.write(V2_SIGNATURE + b"\x21\x11\xff\xf0")
        elif kind == 3:  # half a header, then silence (slowloris)
            writer.write(build_v2(client_of(i), SERVICE)[:20])
        elif kind == 4:  # v1 line that never ends
            writer.write(b"PROXY TCP4 " + b"1" * 200)
        else:  # half a header, then EOF
            writer.write(b"PROXY TCP4 1.2.")
            writer.write_eof()
        assert await read_until_closed(reader) == b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def test_thousand_connections_half_misbehave(run: Runner[None]) -> None:
    raise_nofile(4 * N + 256)

    async def main() -> None:
        factory = aio.wrap(PeerEcho, timeout=1.0, max_size=1024)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0, backlog=2 * N)
        port = port_of(server)
        gc.collect()
        fds_before = open_fds()
        tasks_before = asyncio.all_tasks()

        jobs = [good(port, i) if i % 2 else bad(port, i) for i in range(N)]
        results = await asyncio.wait_for(asyncio.gather(*jobs), 45)
        served = [r for r in results if r is not None]
        assert served == [True] * (N // 2)

        assert factory.stats.served == N // 2
        assert sum(factory.stats.rejected.values()) == N // 2
        assert factory.stats.rejected["timeout"] >= N // 12
        for _ in range(500):  # the server side closes asynchronously
            gc.collect()
            if factory.pending == 0 and open_fds() == fds_before:
                break
            await asyncio.sleep(0.01)
        assert factory.pending == 0
        assert open_fds() == fds_before
        assert asyncio.all_tasks() == tasks_before
        server.close()
        await server.wait_closed()

    run(main())
