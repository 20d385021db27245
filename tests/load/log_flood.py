"""Log lines per second written by an aio server under a flood of garbage connections.

A server (``aio.wrap``, logging to a file at INFO) runs in a child process; this process
opens connections as fast as ``--concurrency`` workers can, each sending a line that is not
a PROXY header, over loopback, for ``--duration`` seconds. Run twice: with the default
bounded log and with ``log_interval=None`` (one line per refusal). Printed per run: refused
connections per second, log lines and bytes per second, and per minute.

    python tests/load/log_flood.py                     # 10 s per run
    python tests/load/log_flood.py --duration 3 --log-interval 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time


def _server(log_path: str, log_interval: float | None) -> None:
    from proxyproto_rs import aio

    handler = logging.FileHandler(log_path)
    log = logging.getLogger("proxyproto_rs.aio")
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    async def serve() -> None:
        factory = aio.wrap(asyncio.Protocol, log_interval=log_interval)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        loop.add_reader(sys.stdin.fileno(), stop.set)
        await stop.wait()
        handler.flush()
        print(json.dumps({"rejected": sum(factory.stats.rejected.values())}), flush=True)

    asyncio.run(serve())


async def _flood(port: int, duration: float, concurrency: int) -> int:
    deadline = time.monotonic() + duration
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await reader.read()
                writer.close()
                sent += 1
            except OSError:
                await asyncio.sleep(0.01)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent


def _run(args: argparse.Namespace, log_interval: float | None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        log_path = os.path.join(tmp, "server.log")
        interval = "none" if log_interval is None else str(log_interval)
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", log_path, "--log-interval", interval],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdin is not None
        try:
            port = int(child.stdout.readline())
            start = time.monotonic()
            asyncio.run(_flood(port, args.duration, args.concurrency))
            elapsed = time.monotonic() - start
            child.stdin.write("stop\n")
            child.stdin.flush()
            rejected = json.loads(child.stdout.readline())["rejected"]
        finally:
            child.kill()
            child.wait()
        with open(log_path, "rb") as f:
            data = f.read()
    lines = data.count(b"\n")
    return (
        f"log_interval={interval:>5}: {rejected / elapsed:7.0f} refused/s, "
        f"{lines / elapsed:8.1f} log lines/s ({lines} lines, "
        f"{len(data) / elapsed * 60 / 1e6:.3f} MB/min)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--log-interval", default="60", help="seconds, or none")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    interval = None if args.log_interval == "none" else float(args.log_interval)
    if args.serve is not None:
        _server(args.serve, interval)
        return
    print(_run(args, interval))
    print(_run(args, None))


if __name__ == "__main__":
    main()
