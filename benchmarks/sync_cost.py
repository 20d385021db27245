"""What the blocking integrations add per connection, without a load generator's noise.

Strategy: ``bench_servers.py`` measures whole servers in child processes; on a shared machine
its rounds differ by more than the few percent at stake. Here the server runs in this very
thread, fed by a client in the same thread over real loopback sockets, so every system call
of a real connection happens, but nothing else: per connection the client connects and sends
(the header and) one ``GET`` with ``Connection: close``, the server takes exactly one
connection through its normal per-connection path, and the client reads the answer (the
client shuts its sending side after the request, as nothing else follows). Each
server runs plain and with its proxyproto_rs integration (``trusted`` set, as in
production):

- ``gunicorn-sync``: gunicorn's ``SyncWorker.accept`` against ``SyncProxyWorker``'s (the
  ``gthread`` worker reads the header through the same ``_proxy_accept``).
- ``http.server``: ``HTTPServer.handle_request`` against the same server with
  ``sync.ProxyProtocolMixin``.

Two ways to count:

- ``time.thread_time_ns`` (user + system CPU of this thread, client included) over
  ``--rounds`` interleaved rounds: the median per connection of each variant, printed as
  the difference from the plain server, which is the integration's cost. ``floor`` is the
  same server behind a bare peek + ``parse`` + ``recv`` of the header: the least any
  reader must do.
- ``--callgrind``: each variant under ``valgrind --tool=callgrind`` for N and 2N
  connections; the difference divided by N is the exact user-space instructions per
  connection (kernel time is not counted; start-up cancels out).

The difference is what the integration adds; divide it by the plain server's CPU per
connection from ``bench_servers.py`` for the percentage a server feels.

    python benchmarks/sync_cost.py
    python benchmarks/sync_cost.py --callgrind
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import proxyproto_rs as pp

HEADER = pp.build_v2(("203.0.113.7", 40001), ("198.51.100.1", 8080))
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
BODY = b"hello, world\n"

Serve = Callable[[], None]
"""Takes one waiting connection through the server's per-connection path."""
VARIANTS = ("plain", "floor", "proxied")
"""The server alone; with a bare peek + ``parse`` + ``recv`` of the header before it (the
least any header reader must do: no deadline, no trust check); with the integration."""


def bare_read(sock: socket.socket) -> pp.Header:
    """The floor: what any reader of a header already waiting must do."""
    header = pp.parse(sock.recv(4096, socket.MSG_PEEK))
    sock.recv(header.length)
    return header


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [BODY]


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "13")
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


def gunicorn_sync(listener: socket.socket, variant: str) -> Serve:
    from gunicorn.config import Config  # type: ignore[import-untyped]
    from gunicorn.glogging import Logger  # type: ignore[import-untyped]
    from gunicorn.workers.sync import SyncWorker  # type: ignore[import-untyped]
    from proxyproto_rs.integrations.gunicorn import SyncProxyWorker

    cfg = Config()
    cfg.set("proxy_allow_ips", "127.0.0.1")
    cfg.set("accesslog", None)

    class App:
        def wsgi(self) -> Any:
            return wsgi

    class FloorWorker(SyncWorker):  # type: ignore[misc]
        def handle(self, listener: socket.socket, client: socket.socket, addr: Any) -> None:
            header = bare_read(client)
            super().handle(listener, client, header.source)

    cls = {"plain": SyncWorker, "floor": FloorWorker, "proxied": SyncProxyWorker}[variant]
    worker = cls(0, os.getpid(), [listener], App(), 30, cfg, Logger(cfg))
    worker.load_wsgi()
    return lambda: worker.accept(listener)


def http_server(listener: socket.socket, variant: str) -> Serve:
    from proxyproto_rs.options import ServerOptions
    from proxyproto_rs.sync import ProxyProtocolMixin

    class Server(ProxyProtocolMixin, http.server.HTTPServer):
        proxy_options = ServerOptions(trusted=["127.0.0.1/32"])

    class Floor(http.server.HTTPServer):
        def finish_request(self, request: Any, client_address: Any) -> None:
            header = bare_read(request)
            super().finish_request(request, header.source)

    base = {"plain": http.server.HTTPServer, "floor": Floor, "proxied": Server}[variant]
    server = base(listener.getsockname(), Hello, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    return lambda: server._handle_request_noblock()  # what handle_request runs once ready


SERVERS: dict[str, Callable[[socket.socket, str], Serve]] = {
    "gunicorn-sync": gunicorn_sync,
    "http.server": http_server,
}


def connections(listener: socket.socket, serve: Serve, proxied: bool, count: int) -> None:
    address = listener.getsockname()
    data = (HEADER if proxied else b"") + REQUEST
    for _ in range(count):
        with socket.create_connection(address) as client:
            client.sendall(data)
            # Sent all: gunicorn's close_graceful waits for the client's FIN, which this
            # one-thread client could otherwise send only after the server returned.
            client.shutdown(socket.SHUT_WR)
            serve()
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
            if not answer.endswith(BODY):
                raise RuntimeError(f"bad answer {answer!r}")


def run(name: str, variant: str) -> Callable[[int], None]:
    listener = socket.create_server(("127.0.0.1", 0))
    serve = SERVERS[name](listener, variant)
    proxied = variant != "plain"
    connections(listener, serve, proxied, 50)  # warm-up
    return lambda count: connections(listener, serve, proxied, count)


def thread_time(names: list[str], rounds: int, count: int) -> None:
    print(f"# thread CPU per connection (client + server), median of {rounds} rounds of {count}")
    for name in names:
        runs = {variant: run(name, variant) for variant in VARIANTS}
        times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        for _ in range(rounds):
            for variant, go in runs.items():
                start = time.thread_time_ns()
                go(count)
                times[variant].append((time.thread_time_ns() - start) / count / 1000)
        got = {variant: statistics.median(times[variant]) for variant in VARIANTS}
        plain = got["plain"]
        print(
            f"{name:14} plain {plain:6.1f} us, floor {got['floor'] - plain:+5.1f} us,"
            f" proxied {got['proxied'] - plain:+5.1f} us"
        )


def callgrind(names: list[str], count: int) -> None:
    print(f"# user-space instructions per connection (callgrind, {count} and {2 * count})")
    for name in names:
        got = {}
        for variant in VARIANTS:
            totals = []
            for n in (count, 2 * count):
                argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
                argv += [sys.executable, __file__, "--child", name, variant, str(n)]
                out = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "PYTHONHASHSEED": "0"},
                )
                found = re.search(r"Collected : (\d+)", out.stderr)
                assert found, out.stderr[-2000:]
                totals.append(int(found.group(1)))
            got[variant] = (totals[1] - totals[0]) / count
        plain = got["plain"]
        added = {v: got[v] - plain for v in VARIANTS[1:]}
        print(
            f"{name:14} plain {plain:9,.0f}, floor {added['floor']:+8,.0f}"
            f" ({added['floor'] / plain * 100:+.1f} %), proxied {added['proxied']:+8,.0f}"
            f" ({added['proxied'] / plain * 100:+.1f} %)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="servers whose name contains this")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=2000, help="connections per round")
    parser.add_argument("--callgrind", action="store_true", help="count instructions too")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, variant, count = args.child
        run(name, variant)(int(count))
        return
    names = [name for name in SERVERS if args.only in name]
    thread_time(names, args.rounds, args.count)
    if args.callgrind:
        callgrind(names, 500)


if __name__ == "__main__":
    main()
