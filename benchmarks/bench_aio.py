"""Connections/s and requests/s through proxyproto_rs.aio against the same server unwrapped,
and against the PyPI ``proxy-protocol`` package's asyncio reader, on loopback.

Each server variant runs alone in a child process pinned to one core; the load generator
runs in this process on uvloop, pinned to the other core, so the two never share a CPU.
Two measurements per variant, each lasting ``--duration`` seconds after a short warm-up:

- conn/s: ``--concurrency`` workers loop over connect, send (header +) a 16-byte request,
  read the 16-byte echo, close. This is where the wrapper's per-connection cost shows.
- req/s:  ``--concurrency`` persistent connections (header sent once) ping-pong the request.

The wrapped and proxy-protocol variants receive a 28-byte v2 header (TCP4) before the
request; the plain ones do not. Nothing is asserted; the script prints a table and the
ratios. The whole run stays under a minute with the defaults.

    python benchmarks/bench_aio.py                 # all variants (~50 s)
    python benchmarks/bench_aio.py --quick         # smoke run (~10 s)
    python benchmarks/bench_aio.py --only wrap     # variants whose name contains "wrap"
    python benchmarks/bench_aio.py --rounds 5 --median   # the median round of five

For the wrapper's own cost without the run-to-run noise of sockets and a shared machine,
``benchmarks/aio_cost.py`` drives the same protocols through a fake transport and counts
thread CPU time or (``--callgrind``) instructions per connection and per request.

The load generator is Python too: when the server is faster than the client can drive it,
the numbers measure the client, and the ratios understate the differences. Compare the
absolute numbers with the plain server's to see which side saturated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

REQUEST = b"GET /bench ping\n"
HEADER_SRC = ("203.0.113.7", 40001)
HEADER_DST = ("198.51.100.1", 8080)

VARIANTS: dict[str, str] = {
    "protocol plain (asyncio)": "protocol-plain asyncio",
    "protocol aio.wrap (asyncio)": "protocol-wrap asyncio",
    "protocol aio.wrap trusted (asyncio)": "protocol-trusted asyncio",
    "protocol plain (uvloop)": "protocol-plain uvloop",
    "protocol aio.wrap (uvloop)": "protocol-wrap uvloop",
    "protocol aio.wrap trusted (uvloop)": "protocol-trusted uvloop",
    "streams plain (asyncio)": "stream-plain asyncio",
    "streams aio.start_server (asyncio)": "stream-wrap asyncio",
    "streams aio.start_server trusted (asyncio)": "stream-trusted asyncio",
    "streams proxy-protocol pkg (asyncio)": "stream-ppkg asyncio",
}
BASELINE = {
    "protocol aio.wrap (asyncio)": "protocol plain (asyncio)",
    "protocol aio.wrap trusted (asyncio)": "protocol plain (asyncio)",
    "protocol aio.wrap (uvloop)": "protocol plain (uvloop)",
    "protocol aio.wrap trusted (uvloop)": "protocol plain (uvloop)",
    "streams aio.start_server (asyncio)": "streams plain (asyncio)",
    "streams aio.start_server trusted (asyncio)": "streams plain (asyncio)",
    "streams proxy-protocol pkg (asyncio)": "streams plain (asyncio)",
}


# -- servers (child process) ----------------------------------------------------------------


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def echo_stream_ppkg(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sock_info: object
) -> None:
    await echo_stream(reader, writer)


async def serve(kind: str, port_file: str) -> None:
    loop = asyncio.get_running_loop()
    server: asyncio.Server
    if kind == "protocol-plain":
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=1024)
    elif kind == "protocol-wrap":
        from proxyproto_rs import aio

        server = await loop.create_server(aio.wrap(Echo), "127.0.0.1", 0, backlog=1024)
    elif kind == "protocol-trusted":
        from proxyproto_rs import aio

        # The usual production setting: only the load balancers' networks may send a header.
        factory = aio.wrap(Echo, trusted=["10.0.0.0/8", "127.0.0.0/8", "fd00::/8"])
        server = await loop.create_server(factory, "127.0.0.1", 0, backlog=1024)
    elif kind == "stream-plain":
        server = await asyncio.start_server(echo_stream, "127.0.0.1", 0, backlog=1024)
    elif kind == "stream-wrap":
        from proxyproto_rs import aio

        server = await aio.start_server(echo_stream, "127.0.0.1", 0, backlog=1024)
    elif kind == "stream-trusted":
        from proxyproto_rs import aio

        server = await aio.start_server(
            echo_stream, "127.0.0.1", 0, backlog=1024, trusted=["10.0.0.0/8", "127.0.0.0/8"]
        )
    elif kind == "stream-ppkg":
        from proxyprotocol.reader import ProxyProtocolReader
        from proxyprotocol.v2 import ProxyProtocolV2

        callback = ProxyProtocolReader(ProxyProtocolV2()).get_callback(echo_stream_ppkg)
        server = await asyncio.start_server(callback, "127.0.0.1", 0, backlog=1024)
    else:
        raise SystemExit(f"unknown server kind {kind}")
    write_port(port_file, server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def write_port(port_file: str, port: int) -> None:
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process *pid* (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_loop(loop_name: str, main: Callable[[], Awaitable[Any]]) -> Any:
    if loop_name == "uvloop":
        import uvloop

        return uvloop.run(main())  # type: ignore[arg-type]
    return asyncio.run(main())  # type: ignore[arg-type]


# -- load generator (this process) -----------------------------------------------------------


class OneShot(asyncio.Protocol):
    def __init__(self, payload: bytes, done: asyncio.Future[bool]) -> None:
        self.payload = payload
        self.done = done
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        transport.write(self.payload)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= len(REQUEST):
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.got >= len(REQUEST))


class PingPong(asyncio.Protocol):
    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= len(REQUEST) and self.waiter is not None and not self.waiter.done():
            self.got -= len(REQUEST)
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))


@dataclass
class Sample:
    rate: float
    """Completed connections (or requests) per second of wall time."""
    cpu_us: float
    """Server CPU time (user + system) per completed connection (or request), microseconds."""
    errors: int


async def measure_connections(
    pid: int, port: int, header: bytes, concurrency: int, duration: float
) -> Sample:
    loop = asyncio.get_running_loop()
    payload = header + REQUEST
    count = 0
    errors = 0
    counting = False
    stop_at = 0.0

    async def worker() -> None:
        nonlocal count, errors
        while time.perf_counter() < stop_at:
            done: asyncio.Future[bool] = loop.create_future()
            try:
                await loop.create_connection(
                    lambda done=done: OneShot(payload, done),  # type: ignore[misc]
                    "127.0.0.1",
                    port,
                )
                ok = await asyncio.wait_for(done, 10)
            except (OSError, TimeoutError):
                ok = False
            if counting:
                if ok:
                    count += 1
                else:
                    errors += 1

    stop_at = time.perf_counter() + min(0.3, duration / 3)  # warm-up
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    counting = True
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    stop_at = start + duration
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu
    return Sample(count / elapsed, cpu / max(count, 1) * 1e6, errors)


async def measure_requests(
    pid: int, port: int, header: bytes, concurrency: int, duration: float
) -> Sample:
    loop = asyncio.get_running_loop()
    conns: list[tuple[Any, PingPong]] = []
    for _ in range(concurrency):
        transport, proto = await loop.create_connection(PingPong, "127.0.0.1", port)
        if header:
            transport.write(header)
        conns.append((transport, proto))
    count = 0
    errors = 0

    async def worker(transport: Any, proto: PingPong, stop_at: float, counting: bool) -> None:
        nonlocal count, errors
        while time.perf_counter() < stop_at:
            proto.waiter = loop.create_future()
            transport.write(REQUEST)
            try:
                await asyncio.wait_for(proto.waiter, 10)
            except (ConnectionError, TimeoutError):
                errors += 1
                return
            if counting:
                count += 1

    warm = time.perf_counter() + min(0.3, duration / 3)
    await asyncio.gather(*(worker(t, p, warm, False) for t, p in conns))
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    await asyncio.gather(*(worker(t, p, start + duration, True) for t, p in conns))
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu
    for transport, _ in conns:
        transport.close()
    return Sample(count / elapsed, cpu / max(count, 1) * 1e6, errors)


def start_server(kind: str, loop_name: str, tmpdir: str) -> tuple[subprocess.Popen[bytes], int]:
    port_file = os.path.join(tmpdir, f"port-{kind}-{loop_name}")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--loop", loop_name, "--port-file", port_file],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not os.path.exists(port_file):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server {kind}/{loop_name} did not start")
        time.sleep(0.02)
    with open(port_file) as f:
        return proc, int(f.read())


def pin_to(role: str) -> str:
    """Pin this process to one CPU: the server to the last, the client to the first.

    So the two never share a core or migrate mid-run (the method the performance issue
    measured with). On a 2-vCPU VM this still leaves 10-25 % between runs of the same code
    per connection (benchmarks/RESULTS.md); ``aio_cost.py --callgrind`` is the exact figure.
    Returns what was done, for the header line.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return "not pinned (fewer than 2 CPUs usable)"
    cpu = cpus[-1] if role == "server" else cpus[0]
    os.sched_setaffinity(0, {cpu})
    return f"server pinned to CPU {cpus[-1]}, client to CPU {cpus[0]}"


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1.2, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (variants interleaved)")
    parser.add_argument(
        "--median",
        action="store_true",
        help="report each variant's median round instead of its best (for several rounds)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 0.2 s, one round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", default="", help="run variants whose name contains this")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 0.2, 1
    if args.serve:
        pin_to("server")
        run_loop(args.loop, lambda: serve(args.serve, args.port_file))
        return

    import tempfile

    from proxyproto_rs import build_v2

    header = build_v2(HEADER_SRC, HEADER_DST)
    names = [n for n in VARIANTS if args.only in n]
    try:
        import proxyprotocol  # noqa: F401
    except ImportError:
        print("(proxy-protocol not installed: pip install proxy-protocol; skipping it)")
        names = [n for n in names if "proxy-protocol" not in n]
    client_loop = "uvloop"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        print(
            "(uvloop not installed: pip install uvloop; client on asyncio, uvloop variants skipped)"
        )
        names = [n for n in names if "uvloop" not in n]
        client_loop = "asyncio"
    conns: dict[str, list[Sample]] = {n: [] for n in names}
    reqs: dict[str, list[Sample]] = {n: [] for n in names}
    pinned = pin_to("client")
    print(
        f"loopback, {os.cpu_count()} cores ({pinned}), {args.concurrency} concurrent clients, "
        f"{args.duration} s per measurement, {'median' if args.median else 'best'} of "
        f"{args.rounds} rounds (variants "
        f"interleaved), client on {client_loop}, Python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory() as tmpdir:
        servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            for name in names:
                kind, loop_name = VARIANTS[name].split()
                servers[name] = start_server(kind, loop_name, tmpdir)
            for round_no in range(args.rounds):
                for name in names:
                    kind, _ = VARIANTS[name].split()
                    proc, port = servers[name]
                    hdr = b"" if kind.endswith("plain") else header

                    async def measure(
                        pid: int = proc.pid, port: int = port, hdr: bytes = hdr
                    ) -> tuple[Sample, Sample]:
                        c = await measure_connections(
                            pid, port, hdr, args.concurrency, args.duration
                        )
                        r = await measure_requests(pid, port, hdr, args.concurrency, args.duration)
                        return c, r

                    c, r = run_loop(client_loop, measure)
                    conns[name].append(c)
                    reqs[name].append(r)
                print(f"  round {round_no + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            for proc, _ in servers.values():
                stop_server(proc)

    def rate_of(samples: list[Sample]) -> float:
        if args.median:
            return statistics.median(x.rate for x in samples)
        return max(x.rate for x in samples)

    def cpu_of(samples: list[Sample]) -> float:
        if args.median:
            return statistics.median(x.cpu_us for x in samples)
        return min(x.cpu_us for x in samples)

    width = max(len(n) for n in names)
    print()
    print(
        f"{'server':<{width}}  {'conn/s':>7}  {'CPU us/conn':>11}  {'req/s':>7}"
        f"  {'CPU us/req':>10}  {'errors':>6}"
    )
    for name in names:
        c, r = conns[name], reqs[name]
        errors = sum(x.errors for x in c + r)
        print(
            f"{name:<{width}}  {rate_of(c):>7.0f}  {cpu_of(c):>11.1f}  {rate_of(r):>7.0f}"
            f"  {cpu_of(r):>10.1f}  {errors:>6}"
        )
    print()
    print("cost against the same server unwrapped (wall-clock rate; server CPU per item):")
    for name, base in BASELINE.items():
        if name in conns and base in conns:
            rc = rate_of(conns[name]) / rate_of(conns[base])
            rr = rate_of(reqs[name]) / rate_of(reqs[base])
            cc = cpu_of(conns[name]) / cpu_of(conns[base])
            cr = cpu_of(reqs[name]) / cpu_of(reqs[base])
            print(
                f"  {name:<{width}}  conn/s x{rc:.2f}, CPU/conn x{cc:.2f} ({(cc - 1) * 100:+.0f}%)"
                f"  |  req/s x{rr:.2f}, CPU/req x{cr:.2f} ({(cr - 1) * 100:+.0f}%)"
            )
    a, b = "streams aio.start_server (asyncio)", "streams proxy-protocol pkg (asyncio)"
    if a in conns and b in conns:
        print(
            f"  aio.start_server vs proxy-protocol pkg: CPU/conn x"
            f"{cpu_of(conns[a]) / cpu_of(conns[b]):.2f}, CPU/req x"
            f"{cpu_of(reqs[a]) / cpu_of(reqs[b]):.2f} (below 1: aio is cheaper)"
        )
    print(
        "\nThe server-CPU ratios are the robust figure on a busy machine: the wall-clock rates"
        "\nalso depend on the (Python) client and on whatever else runs. The connection-rate"
        "\ncost of the wrapper is CPU/conn - 1 when the server is the bottleneck."
    )


if __name__ == "__main__":
    main()
