"""Memory an aio server holds per stalled connection at a large ``max_size``.

The server (``aio.wrap``, ``max_size=65551``, header timeout 60 s) runs in a child process.
This process opens ``--connections`` connections over loopback; each sends the v2 prefix of
a header whose length field says 65,535 bytes follow, then all of them but ``--missing``, and
stalls. The server's resident memory (``VmRSS``) is read before, once every connection has
delivered its bytes, and after they all closed. Printed: bytes per stalled connection, as a
multiple of ``max_size``, and what stays resident after close. A second round with
connections that only send 16 bytes (the prefix) gives the fixed cost of a waiting
connection, so the header buffer's own cost is the difference.

    python tests/load/stalled_memory.py                  # 2000 connections
    python tests/load/stalled_memory.py --connections 300 --loop uvloop
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time

from proxyproto_rs import V2_SIGNATURE

MAX_SIZE = 65551
LENGTH = MAX_SIZE - 16


def _prefix() -> bytes:
    return V2_SIGNATURE + bytes([0x21, 0x11]) + LENGTH.to_bytes(2, "big")


def _body() -> bytes:
    # INET addresses, then one big unknown TLV (type 0xE9) filling the rest.
    tlv_len = LENGTH - 12 - 3
    return bytes(12) + bytes([0xE9]) + tlv_len.to_bytes(2, "big") + b"x" * tlv_len


def _server(loop_name: str) -> None:
    from proxyproto_rs import aio

    async def serve() -> None:
        factory = aio.wrap(asyncio.Protocol, max_size=MAX_SIZE, timeout=60.0, log_interval=None)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(commands), os.fdopen(0, "rb", 0)
        )
        while line := await commands.readline():
            if line.strip() == b"pending":
                print(factory.pending, flush=True)

    if loop_name == "uvloop":
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Server:
    def __init__(self, loop_name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--loop", loop_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def pending(self) -> int:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("pending\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def wait_pending(self, want: int, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while self.pending() != want:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server has {self.pending()} pending, expected {want}")
            time.sleep(0.05)

    def rss(self) -> int:
        return _rss(self.proc.pid)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def _stall(port: int, count: int, data: bytes) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        writers.append(writer)
    for writer in writers:
        await writer.drain()
    return writers


async def _close(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)


def _round(server: Server, count: int, data: bytes) -> tuple[int, int]:
    """(bytes per connection while stalled, bytes still resident after close)."""
    loop = asyncio.new_event_loop()
    try:
        time.sleep(0.5)
        before = server.rss()
        writers = loop.run_until_complete(_stall(server.port, count, data))
        server.wait_pending(count)
        time.sleep(1.0)  # let the last reads land
        stalled = server.rss()
        loop.run_until_complete(_close(writers))
        server.wait_pending(0)
        time.sleep(0.5)
        after = server.rss()
    finally:
        loop.close()
    return (stalled - before) // count, after - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--missing", type=int, default=10, help="header bytes never sent")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    if args.serve:
        _server(args.loop)
        return
    n = args.connections
    near = _prefix() + _body()[: LENGTH - args.missing]
    server = Server(args.loop)
    try:
        fixed, _ = _round(server, n, _prefix())
    finally:
        server.close()
    server = Server(args.loop)  # a fresh process: nothing freed earlier to reuse
    try:
        per, kept = _round(server, n, near)
        per2, kept2 = _round(server, n, near)
    finally:
        server.close()
    print(
        f"{n} stalled connections, max_size={MAX_SIZE}, {args.loop}:\n"
        f"  prefix only (fixed cost of a waiting connection): {fixed} B each\n"
        f"  {MAX_SIZE - args.missing} of {MAX_SIZE} bytes sent: {per} B each "
        f"({per / MAX_SIZE:.3f}x max_size; net of the fixed cost "
        f"{(per - fixed) / MAX_SIZE:.3f}x); resident after all closed: {kept / 1e6:.1f} MB\n"
        f"  again, same server: {per2} B each ({per2 / MAX_SIZE:.3f}x); "
        f"resident after close: {kept2 / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
