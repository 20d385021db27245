"""Requests/s and server CPU per request of aiohttp, Tornado, gunicorn (sync, gthread and
uvicorn workers), http.server and werkzeug (``proxyproto_rs.sync``), each with and without
its proxyproto_rs integration, on loopback.

Each server variant runs alone in a child process (gunicorn: a master and one worker); the
load generator is this process, one blocking client at a time, so the client and the server
each have a core. Two modes:

- ``conn``: one request per connection (connect, send (header +) ``GET /`` with
  ``Connection: close``, read to EOF). The integration's per-connection cost shows here.
- ``keep``: one kept-alive connection (header sent once), ``--requests`` requests in turn.
  After the header the integration should cost nothing.

With the integration the client sends a 28-byte v2 header (TCP4) first, as an AWS NLB does;
without it, nothing. Server CPU is user + system time of every process of the server's
session (nanoseconds from /proc/PID/task/TID/schedstat) over the run, divided by the
requests served, except for the servers that start a thread per connection (http.server,
werkzeug): a thread that has exited leaves no schedstat behind, so those report their own
process CPU time (``time.process_time_ns()``, every thread that ever ran included) at
``GET /cpu``, asked once before and once after each run. req/s is wall-clock, so
it includes the Python client. Both variants of a server run at once and are measured in
alternation, ``--repeat`` rounds, keeping each one's best (highest req/s, lowest CPU), so a
load change on a shared machine hits both alike. Nothing is asserted; the script prints one
table.

    python benchmarks/bench_servers.py            # every server (about 2 minutes)
    python benchmarks/bench_servers.py --quick    # smoke run (a few seconds per server)
    python benchmarks/bench_servers.py --only tornado
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import proxyproto_rs as pp

HEADER = pp.build_v2(("203.0.113.7", 40001), ("198.51.100.1", 8080))
REQUEST_KEEP = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
BODY = b"hello, world\n"
TIMEOUT = 10.0

SERVERS = [
    "aiohttp",
    "tornado",
    "gunicorn-sync",
    "gunicorn-gthread",
    "gunicorn-uvicorn",
    "http.server",
    "werkzeug",
]
KEEPS_ALIVE = {"aiohttp", "tornado", "gunicorn-gthread", "gunicorn-uvicorn", "http.server"}
THREAD_PER_CONNECTION = {"http.server", "werkzeug"}
"""Servers whose CPU time is asked from the server itself (``GET /cpu``)."""

APPS = """
import asyncio, sys

BODY = b"hello, world\\n"

def wsgi(environ, start_response):
    body = cpu_time() if environ.get("PATH_INFO") == "/cpu" else BODY
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

def cpu_time():
    import time
    return str(time.process_time_ns()).encode()

async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": BODY})

async def aiohttp_main(port, proxied):
    from aiohttp import web
    async def hello(request):
        return web.Response(body=BODY, content_type="text/plain")
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    if proxied:
        from proxyproto_rs.integrations.aiohttp import ProxyTCPSite
        site = ProxyTCPSite(runner, "127.0.0.1", port, trusted=["127.0.0.1/32"])
    else:
        site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    await asyncio.Event().wait()

async def tornado_main(port, proxied):
    from tornado.web import Application, RequestHandler
    class Hello(RequestHandler):
        def get(self):
            self.set_header("Content-Type", "text/plain")
            self.write(BODY)
    app = Application([("/", Hello)])
    if proxied:
        from proxyproto_rs.integrations.tornado import ProxyHTTPServer
        ProxyHTTPServer(app, trusted=["127.0.0.1/32"]).listen(port, "127.0.0.1")
    else:
        from tornado.httpserver import HTTPServer
        HTTPServer(app).listen(port, "127.0.0.1")
    await asyncio.Event().wait()

def http_server_main(port, proxied):
    import http.server
    class Hello(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes
        def do_GET(self):
            body = cpu_time() if self.path == "/cpu" else BODY
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    base = http.server.ThreadingHTTPServer
    if proxied:
        from proxyproto_rs.options import ServerOptions
        from proxyproto_rs.sync import ProxyProtocolMixin
        class Server(ProxyProtocolMixin, base):
            proxy_options = ServerOptions(trusted=["127.0.0.1/32"])
    else:
        Server = base
    Server.daemon_threads = True
    Server(("127.0.0.1", port), Hello).serve_forever()

def werkzeug_main(port, proxied):
    import logging
    from werkzeug.serving import make_server
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", port, wsgi, threaded=True)
    if proxied:
        from proxyproto_rs.sync import enable
        enable(server, trusted=["127.0.0.1/32"])
    server.serve_forever()

if __name__ == "__main__":
    kind, port, proxied = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "proxied"
    if kind == "http.server":
        http_server_main(port, proxied)
    elif kind == "werkzeug":
        werkzeug_main(port, proxied)
    else:
        asyncio.run({"aiohttp": aiohttp_main, "tornado": tornado_main}[kind](port, proxied))
"""

GUNICORN_WORKERS = {
    "sync": ("sync", "proxyproto_rs.integrations.gunicorn.SyncProxyWorker"),
    "gthread": ("gthread", "proxyproto_rs.integrations.gunicorn.ThreadProxyWorker"),
    "uvicorn": (
        "uvicorn_worker.UvicornWorker",
        "proxyproto_rs.integrations.gunicorn.UvicornProxyWorker",
    ),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_cpu(sid: int) -> float:
    """CPU seconds used so far by every thread of every process in session *sid*.

    Read from /proc/PID/task/TID/schedstat (nanoseconds on the CPU) rather than the stat
    file's clock ticks, whose 10 ms steps are too coarse for a run of a few hundred ms.
    """
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rpartition(")")[2].split()[3]) != sid:  # field 6: session id
                continue
            for task in os.listdir(f"/proc/{entry}/task"):
                total += int(Path(f"/proc/{entry}/task/{task}/schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue  # exited meanwhile
    return total / 1e9


@contextmanager
def server(kind: str, proxied: bool, workdir: Path) -> Iterator[tuple[int, int]]:
    """Start one variant; yield (port, session id)."""
    port = _free_port()
    if kind.startswith("gunicorn"):
        plain, ours = GUNICORN_WORKERS[kind.split("-", 1)[1]]
        app = "bench_apps:asgi" if kind.endswith("uvicorn") else "bench_apps:wsgi"
        argv = [
            sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", "1",
            "--threads", "2" if kind.endswith("gthread") else "1", "--log-level", "warning",
            "--pythonpath", str(workdir), "-k", ours if proxied else plain,
            "--proxy-allow-from", "127.0.0.1", "-b", f"127.0.0.1:{port}", app,
            # The client gunicorn sees is 127.0.0.1 plain and 203.0.113.7 proxied: both may
            # send forwarding headers, so both do gunicorn's same per-request header work.
            "--forwarded-allow-ips", "127.0.0.1,203.0.113.7",
        ]  # fmt: skip
    else:
        argv = [sys.executable, str(workdir / "bench_apps.py"), kind, str(port)]
        argv.append("proxied" if proxied else "plain")
    log = (workdir / f"{kind}.log").open("wb")
    proc = subprocess.Popen(
        argv, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited: {(workdir / f'{kind}.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall((HEADER if proxied else b"") + REQUEST_CLOSE)
                    s.settimeout(TIMEOUT)
                    if BODY in _read_all(s):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not answer on {port}")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(TIMEOUT)
        log.close()


def _read_all(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_response(s: socket.socket, pending: bytearray) -> None:
    """Read one response with a Content-Length of len(BODY) off *s* (leftovers in *pending*)."""
    while True:
        end = pending.find(b"\r\n\r\n")
        if end >= 0 and len(pending) >= end + 4 + len(BODY):
            del pending[: end + 4 + len(BODY)]
            return
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("server closed a kept-alive connection")
        pending += chunk


def run_conn(port: int, proxied: bool, count: int) -> None:
    data = (HEADER if proxied else b"") + REQUEST_CLOSE
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(data)
            if BODY not in _read_all(s):
                raise RuntimeError("bad response")


def run_keep(port: int, proxied: bool, count: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if proxied:
            s.sendall(HEADER)
        pending = bytearray()
        for _ in range(count):
            s.sendall(REQUEST_KEEP)
            _read_response(s, pending)


@dataclass
class Result:
    rps: float = 0.0
    cpu_us: float = float("inf")


def _process_cpu(port: int, proxied: bool) -> float:
    """CPU seconds the server process has used, every thread included (``GET /cpu``)."""
    request = b"GET /cpu HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall((HEADER if proxied else b"") + request)
        answer = _read_all(s)
    return int(answer.rpartition(b"\r\n\r\n")[2]) / 1e9


def measure_once(
    port: int, sid: int, proxied: bool, mode: str, count: int, kind: str = ""
) -> Result:
    run = run_conn if mode == "conn" else run_keep

    def cpu() -> float:
        if kind in THREAD_PER_CONNECTION:
            return _process_cpu(port, proxied)
        return _session_cpu(sid)

    cpu0, t0 = cpu(), time.perf_counter()
    run(port, proxied, count)
    wall, used = time.perf_counter() - t0, cpu() - cpu0
    return Result(count / wall, used / count * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few requests (smoke run)")
    parser.add_argument("--only", default="", help="servers whose name contains this")
    parser.add_argument("--requests", type=int, default=3000, help="requests per keep run")
    parser.add_argument("--connections", type=int, default=1500, help="connections per run")
    parser.add_argument("--repeat", type=int, default=5, help="alternating rounds; best kept")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.connections, args.repeat = 300, 150, 1
    print(f"# bench_servers: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print("| server | mode | plain req/s | proxied req/s | plain CPU/req | proxied CPU/req | CPU |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "bench_apps.py").write_text(APPS)
        for kind in SERVERS:
            if args.only not in kind:
                continue
            modes = ["conn", "keep"] if kind in KEEPS_ALIVE else ["conn"]
            results = {(m, p): Result() for m in modes for p in (False, True)}
            with server(kind, False, workdir) as plain, server(kind, True, workdir) as ours:
                # Plain and proxied runs alternate, so both see the same machine load.
                for mode in modes:
                    count = args.connections if mode == "conn" else args.requests
                    for proxied, (port, sid) in ((False, plain), (True, ours)):
                        measure_once(port, sid, proxied, mode, max(count // 10, 20))  # warm-up
                    for _ in range(args.repeat):
                        for proxied, (port, sid) in ((False, plain), (True, ours)):
                            got = measure_once(port, sid, proxied, mode, count, kind)
                            best = results[mode, proxied]
                            best.rps = max(best.rps, got.rps)
                            best.cpu_us = min(best.cpu_us, got.cpu_us)
            for mode in modes:
                plain, ours = results[mode, False], results[mode, True]
                change = (ours.cpu_us / plain.cpu_us - 1) * 100 if plain.cpu_us else 0.0
                print(
                    f"| {kind} | {mode} | {plain.rps:,.0f} | {ours.rps:,.0f} "
                    f"| {plain.cpu_us:.0f} us | {ours.cpu_us:.0f} us | {change:+.1f} % |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
