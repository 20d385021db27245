"""What the asyncio wrapper itself costs per connection and per request, without the noise.

Strategy: the wall-clock benchmark (``bench_aio.py``) measures whole servers on loopback;
on a shared machine its run-to-run spread (+-20 %) hides a cost of a few percent. This
script takes the sockets and the load generator out: each connection is a fake transport
(no system calls) driven through exactly the calls a real transport makes (accept ->
``connection_made``, a read, the application's write, close), once into the plain
application protocol and once into the same protocol behind :func:`proxyproto_rs.aio.wrap`
(with ``trusted`` set, as in production). What remains is the Python work the wrapper adds,
which is what the optimisations change. Two ways to count it:

- ``time.thread_time_ns`` of this thread over ``--rounds`` interleaved rounds (plain,
  wrapped, plain, wrapped...): the median of each, and their difference. Cheap; a few
  percent of spread.
- ``--callgrind``: each variant runs under ``valgrind --tool=callgrind`` for N and 2N
  items; the difference of the two instruction counts divided by N is the exact
  instructions per item (startup cancels out). Deterministic, ~1 minute.

To turn the added cost into the percentage a server feels, divide it by the plain server's
CPU per connection (or per request) from ``bench_aio.py`` (printed here from the same
fake-transport run only for the per-request echo, whose real cost is mostly the kernel).

    python benchmarks/aio_cost.py                      # thread-time, asyncio + uvloop
    python benchmarks/aio_cost.py --callgrind          # instruction counts as well
    python benchmarks/aio_cost.py --only uvicorn       # variants whose name contains this
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

TRUSTED = ["10.0.0.0/8", "127.0.0.0/8", "fd00::/8"]
PEER = ("127.0.0.1", 50000)
LOCAL = ("127.0.0.1", 8080)
REQUEST = b"GET /bench ping\n"
HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


class FakeTransport(asyncio.Transport):
    """A socket transport that makes no system call: writes are counted and dropped."""

    def __init__(self, protocol: asyncio.BaseProtocol) -> None:
        super().__init__({"peername": PEER, "sockname": LOCAL, "socket": None})
        self._protocol = protocol
        self._closing = False
        self.written = 0

    def feed(self, data: bytes) -> None:
        """One read, delivered as the loop's transport would."""
        protocol = self._protocol
        if isinstance(protocol, asyncio.BufferedProtocol):
            buf = protocol.get_buffer(-1)
            n = len(data)
            buf[:n] = data
            protocol.buffer_updated(n)
        else:
            protocol.data_received(data)  # type: ignore[attr-defined]

    def write(self, data: Any) -> None:
        self.written += len(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.written += len(data)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._protocol.connection_lost(None)
            self._protocol = None  # type: ignore[assignment]  # as asyncio's: no cycle left

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


# -- the work measured: make a factory, then run n items through it ------------------------

Factory = Callable[[], asyncio.BaseProtocol]
Work = Callable[[Factory, bool, int], Coroutine[Any, Any, None]]


def echo_factory(wrapped: bool) -> Factory:
    if not wrapped:
        return Echo
    from proxyproto_rs import aio

    return aio.wrap(Echo, trusted=TRUSTED)


def stream_factory(wrapped: bool) -> Factory:
    loop = asyncio.get_running_loop()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    def plain() -> asyncio.BaseProtocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), echo, loop=loop)

    if not wrapped:
        return plain
    from proxyproto_rs import aio

    return aio.wrap(plain, trusted=TRUSTED)


def uvicorn_factory(wrapped: bool) -> Factory:
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"pong"})

    config = uvicorn.Config(app, http="httptools", lifespan="off", log_level="error")
    config.load()
    state = ServerState()
    kwargs = {"config": config, "server_state": state, "app_state": {}}
    if not wrapped:
        return lambda: HttpToolsProtocol(**kwargs)  # type: ignore[arg-type]
    from proxyproto_rs.integrations.uvicorn import http_protocol

    hook = http_protocol("httptools", trusted=TRUSTED)
    return lambda: hook(**kwargs)


HEADER = b""


async def settle(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def connections(factory: Factory, wrapped: bool, n: int, payload: bytes, ticks: int) -> None:
    """n connections: accept, one read (header + payload), the reply, close."""
    data = HEADER + payload if wrapped else payload
    for _ in range(n):
        protocol = factory()
        transport = FakeTransport(protocol)
        protocol.connection_made(transport)
        transport.feed(data)
        if ticks:
            await settle(ticks)
        transport.close()
    if ticks:
        await settle(ticks)


async def requests(factory: Factory, wrapped: bool, n: int, payload: bytes, ticks: int) -> None:
    """One connection, then n requests on it (the header sent once, before the timing)."""
    protocol = factory()
    transport = FakeTransport(protocol)
    protocol.connection_made(transport)
    if wrapped:
        transport.feed(HEADER)
    await settle(3)
    for _ in range(n):
        transport.feed(payload)
        if ticks:
            await settle(ticks)
    transport.close()
    await settle(3)


KINDS: dict[str, tuple[Callable[[bool], Factory], bytes, int]] = {
    # name: (factory maker, request bytes, loop iterations to let the reply go out)
    "protocol": (echo_factory, REQUEST, 0),
    "streams": (stream_factory, REQUEST, 3),
    "uvicorn": (uvicorn_factory, HTTP_REQUEST, 4),
}


def run(kind: str, loop_name: str, per: str, wrapped: bool, n: int) -> None:
    make, payload, ticks = KINDS[kind]

    async def main() -> None:
        factory = make(wrapped)
        body = connections if per == "conn" else requests
        await body(factory, wrapped, n, payload, ticks)

    if loop_name == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def timed(kind: str, loop_name: str, per: str, wrapped: bool, n: int) -> float:
    """ns of this thread's CPU per item, for n items (setup and warm-up timed off)."""
    make, payload, ticks = KINDS[kind]
    body = connections if per == "conn" else requests

    async def main() -> float:
        factory = make(wrapped)
        await body(factory, wrapped, max(n // 10, 10), payload, ticks)  # warm-up
        start = time.thread_time_ns()
        await body(factory, wrapped, n, payload, ticks)
        return (time.thread_time_ns() - start) / n

    if loop_name == "uvloop":
        import uvloop

        return float(uvloop.run(main()))
    return asyncio.run(main())


def callgrind(kind: str, loop_name: str, per: str, wrapped: bool, n: int) -> float:
    """Instructions per item: callgrind counts for n and 2n items, differenced."""
    counts = []
    for items in (n, 2 * n):
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            f"{kind},{loop_name},{per},{int(wrapped)},{items}",
        ]
        env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict layouts in every run
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stderr
        match = re.search(r"Collected : (\d+)", out)
        if match is None:
            raise RuntimeError(f"no instruction count in valgrind's output:\n{out}")
        counts.append(int(match.group(1)))
    return (counts[1] - counts[0]) / n


def main() -> None:
    global HEADER
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (median)")
    parser.add_argument("--n", type=int, default=2000, help="items per round")
    parser.add_argument("--only", default="", help="variants whose name contains this")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions")
    parser.add_argument("--callgrind-n", type=int, default=300)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from proxyproto_rs import build_v2

    HEADER = build_v2(("203.0.113.7", 40001), ("198.51.100.1", 8080))
    if args.child:
        kind, loop_name, per, wrapped, n = args.child.split(",")
        run(kind, loop_name, per, wrapped == "1", int(n))
        return

    loops = ["asyncio"]
    try:
        import uvloop  # noqa: F401

        loops.append("uvloop")
    except ImportError:
        print("(uvloop not installed: its variants skipped)")
    variants = [
        (kind, loop_name, per)
        for kind in KINDS
        for loop_name in loops
        for per in ("conn", "req")
        if args.only in f"{kind} {loop_name} {per}"
    ]
    print(
        f"fake transport, {args.n} items per round, median of {args.rounds} interleaved "
        f"rounds, trusted={TRUSTED}, Python {sys.version.split()[0]}, pid {os.getpid()}"
    )
    print(
        f"{'variant':<24} {'plain ns':>9} {'wrapped ns':>10} {'added ns':>9} {'spread':>7}"
        + (f" {'plain ins':>10} {'wrapped ins':>11} {'added ins':>9}" if args.callgrind else "")
    )
    for kind, loop_name, per in variants:
        plain: list[float] = []
        wrapped: list[float] = []
        for _ in range(args.rounds):
            plain.append(timed(kind, loop_name, per, False, args.n))
            wrapped.append(timed(kind, loop_name, per, True, args.n))
        diffs = [w - p for p, w in zip(plain, wrapped, strict=True)]
        p, w = statistics.median(plain), statistics.median(wrapped)
        quart = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else [0, 0, 0]
        line = (
            f"{kind + ' ' + loop_name + ' ' + per:<24} {p:>9.0f} {w:>10.0f} "
            f"{statistics.median(diffs):>9.0f} {quart[2] - quart[0]:>7.0f}"
        )
        if args.callgrind:
            cp = callgrind(kind, loop_name, per, False, args.callgrind_n)
            cw = callgrind(kind, loop_name, per, True, args.callgrind_n)
            line += f" {cp:>10.0f} {cw:>11.0f} {cw - cp:>9.0f}"
        print(line, flush=True)
    print(
        "\nadded ns: median over rounds of (wrapped - plain) per item; spread: its interquartile"
        "\nrange. Divide 'added' by a real server's CPU per item (bench_aio.py) for the percent."
    )


if __name__ == "__main__":
    main()
