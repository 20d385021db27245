"""Slowloris against an aio server with ``max_pending``: are legitimate clients served?

The server (``aio.wrap`` around asyncio's streams, echoing 4 bytes; ``max_pending``; 5 s
header timeout) runs in a child process, alone on its event loop. This process runs the
attackers on its own loop, over loopback only: each attacker socket sends the header one
byte per ``--interval`` seconds and, when the server closes it, is replaced at the next tick
(as slowloris tools keep their sockets). Once the attackers have filled the cap, legitimate
clients (blocking sockets in a thread, one after another) send a whole header plus ``ping``
and expect ``ping`` back.

Printed: legitimate clients served / tried, the server's peak of pending connections (the
cap must hold) and its counters. Bounded in time (``--warmup`` + ``--duration`` + a few s).

    python tests/load/slowloris.py                       # 2000 attackers, max_pending=500
    python tests/load/slowloris.py --attackers 200 --max-pending 50 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import time

from proxyproto_rs import build_v2

HEADER = build_v2(("203.0.113.7", 40001), ("198.51.100.1", 443))


# -- the server (child process) -----------------------------------------------------------


def _server(max_pending: int, loop_name: str, backlog: int) -> None:
    from proxyproto_rs import aio

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await reader.readexactly(4))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        writer.close()

    def make() -> asyncio.StreamReaderProtocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(), echo)

    async def serve() -> None:
        factory = aio.wrap(make, max_pending=max_pending, timeout=5.0)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0, backlog=backlog)
        print(server.sockets[0].getsockname()[1], flush=True)
        peak = 0
        stop = asyncio.Event()
        loop.add_reader(sys.stdin.fileno(), stop.set)
        while not stop.is_set():
            peak = max(peak, factory.pending)
            await asyncio.sleep(0.005)
        stats = factory.stats
        evicted = getattr(stats, "evicted", 0)  # absent before eviction existed
        report = {"peak_pending": peak, "served": stats.served, "evicted": evicted}
        print(json.dumps({**report, "rejected": stats.rejected}), flush=True)

    if loop_name == "uvloop":
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())


# -- the clients (this process) -----------------------------------------------------------


async def _attacker(
    port: int, interval: float, stop: asyncio.Event, counts: dict[str, int]
) -> None:
    """One attacker socket: a byte per *interval*; replaced at the next tick when closed."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["connect_failed"] += 1
            await asyncio.sleep(interval)
            continue
        counts["connections"] += 1
        try:
            for byte in HEADER[:-1]:
                if stop.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    await asyncio.wait_for(reader.read(1), interval)  # b"": closed
                    break
                except TimeoutError:
                    pass
        except OSError:
            pass
        finally:
            writer.close()
        await asyncio.sleep(interval)


def _legit(port: int) -> bool:
    """One legitimate client: the whole header plus a request, then the echo."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(HEADER + b"ping")
            got = b""
            while len(got) < 4:
                chunk = sock.recv(4 - len(got))
                if not chunk:
                    break
                got += chunk
            return got == b"ping"
    except OSError:
        return False


def _legit_clients(port: int, duration: float, gap: float) -> tuple[int, int]:
    tried = served = 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        tried += 1
        served += _legit(port)
        time.sleep(gap)
    return tried, served


async def _attack(args: argparse.Namespace, port: int) -> dict[str, object]:
    stop = asyncio.Event()
    counts = {"connections": 0, "connect_failed": 0}
    attackers = [
        asyncio.create_task(_attacker(port, args.interval, stop, counts))
        for _ in range(args.attackers)
    ]
    await asyncio.sleep(args.warmup)
    tried, served = await asyncio.to_thread(_legit_clients, port, args.duration, args.legit_gap)
    stop.set()
    await asyncio.wait(attackers, timeout=args.interval * 2 + 5)
    for task in attackers:
        task.cancel()
    return {"legit_tried": tried, "legit_served": served, "attacker": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attackers", type=int, default=2000)
    parser.add_argument("--max-pending", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between bytes")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of legit traffic")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds to fill the cap")
    parser.add_argument("--legit-gap", type=float, default=0.01)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--backlog", type=int, default=100, help="the server's listen backlog")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    want = args.attackers * 2 + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    if args.serve is not None:
        _server(args.serve, args.loop, args.backlog)
        return
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            *("--serve", str(args.max_pending), "--loop", args.loop),
            *("--backlog", str(args.backlog)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    assert child.stdin is not None
    try:
        port = int(child.stdout.readline())
        result = asyncio.run(_attack(args, port))
        child.stdin.write("stop\n")
        child.stdin.flush()
        server = json.loads(child.stdout.readline())
    finally:
        child.kill()
        child.wait()
    tried = result["legit_tried"]
    served = result["legit_served"]
    assert isinstance(tried, int)
    assert isinstance(served, int)
    print(
        f"{args.attackers} attackers (1 byte / {args.interval} s), max_pending="
        f"{args.max_pending}, backlog {args.backlog}, {args.loop}: legitimate clients served "
        f"{served}/{tried} ({100 * served / max(tried, 1):.1f} %); server peak pending "
        f"{server['peak_pending']} (cap {args.max_pending}); server {server}; "
        f"attackers {result['attacker']}"
    )


if __name__ == "__main__":
    main()
