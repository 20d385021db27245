"""Helpers for the tests of the server integrations (test_server_*.py); not collected itself.

Each test module starts its server from PyPI as a subprocess (a script from tests/server_apps/)
listening on several loopback ports, one per configuration, and a real HAProxy in front of it;
everything is killed at teardown and every wait is bounded. The app under test answers every
request with JSON describing what the framework told it about the client, so a test checks
what an application really sees.

Clients connect from 127.0.0.2 (``CLIENT_HOST``) so that the real client differs from the
proxy (127.0.0.1) in its address as well as its port; servers trust 127.0.0.1/32 only, so the
same address is an untrusted peer when it connects directly.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CI = os.environ.get("CI") == "true"
TIMEOUT = 5.0
"""Seconds any socket operation may take before the test fails."""
HEADER_TIMEOUT = 1.0
"""The servers' header timeout: short, so the slow-header tests are quick."""
CLIENT_HOST = "127.0.0.2"
TRUSTED = "127.0.0.1/32"
APPS = Path(__file__).resolve().parent / "server_apps"

BODY = bytes(range(256)) * 64 + b"\r\n\r\nPROXY TCP4 \x00\r\nQUIT\n"
"""Request body the apps hash: binary, and looking like headers, so a server that read past
its header or rewrote bytes is caught."""
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()


def missing(what: str) -> None:
    """Skip locally, fail under CI: a server test that cannot run is a failure there."""
    if CI:
        pytest.fail(f"CI=true and {what}", pytrace=False)
    pytest.skip(what)


def need_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        missing(f"{name} is not installed (pip install '.[test]')")


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).is_file()), None
    )
    if found is None:
        missing("haproxy binary not found (.ci/install-interop-deps.sh)")
    assert found is not None
    return found


def free_ports(count: int) -> list[int]:
    """*count* distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def listening_ports() -> set[int]:
    """Ports in LISTEN state, read from /proc (no probe connection)."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 3 and cols[3] == "0A":
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@contextmanager
def process(
    argv: Sequence[str],
    ports: Sequence[int],
    workdir: Path,
    name: str,
    env: dict[str, str] | None = None,
) -> Iterator[Path]:
    """Run *argv* until the block ends; return once every port in *ports* listens."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    try:
        deadline = time.monotonic() + 20
        while not set(ports) <= listening_ports():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} is not listening on {ports}:\n{log.read_text()}")
            time.sleep(0.05)
        yield log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)  # the session: gunicorn's workers too
            try:
                proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(TIMEOUT)


@contextmanager
def python_app(
    script: str, args: Sequence[str], ports: Sequence[int], workdir: Path, env: dict[str, str]
) -> Iterator[Path]:
    """Run tests/server_apps/*script* with this interpreter."""
    argv = [sys.executable, str(APPS / script), *args]
    with process(argv, ports, workdir, Path(script).stem, env) as log:
        yield log


HAPROXY_CFG = """\
global
    maxconn 256
    nbthread 1

defaults
    mode http
    timeout connect 3s
    timeout client 5s
    timeout server 5s

frontend fe_v1
    bind 127.0.0.1:{v1}
    default_backend be_v1

frontend fe_v2
    bind 127.0.0.1:{v2}
    unique-id-format %ci:%cp
    default_backend be_v2

backend be_v1
    http-reuse never
    server app 127.0.0.1:{backend} send-proxy

backend be_v2
    http-reuse never
    server app 127.0.0.1:{backend} send-proxy-v2 proxy-v2-options crc32c,unique-id
"""


@dataclass(frozen=True)
class Front:
    """HAProxy's two frontends: one sends v1 to the backend, the other v2 with TLVs."""

    v1: int
    v2: int


@contextmanager
def haproxy_in_front(backend: int, workdir: Path) -> Iterator[Front]:
    binary = haproxy_binary()
    v1, v2 = free_ports(2)
    cfg = workdir / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(v1=v1, v2=v2, backend=backend))
    with process([binary, "-db", "-f", str(cfg)], [v1, v2], workdir, "haproxy"):
        yield Front(v1, v2)


def requests(
    port: int, count: int = 2, *, source: str = CLIENT_HOST
) -> tuple[tuple[str, int], list[dict[str, Any]]]:
    """*count* requests on one kept-alive connection from *source*, the last a POST of
    :data:`BODY`: (the client's own address, the apps' JSON answers)."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=TIMEOUT, source_address=(source, 0)
    )
    try:
        conn.connect()
        assert conn.sock is not None
        me = conn.sock.getsockname()[:2]
        answers = []
        for i in range(count):
            if i == count - 1:
                conn.request("POST", "/", body=BODY)
            else:
                conn.request("GET", "/")
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200, data
            answers.append(json.loads(data))
        return me, answers
    finally:
        conn.close()


def exchange(port: int, data: bytes, *, source: str = CLIENT_HOST) -> tuple[bytes, float]:
    """Connect from *source*, send *data*, read until the server closes: (every byte the
    server sent, seconds until it closed). A reset counts as a close."""
    with socket.socket() as s:
        s.settimeout(TIMEOUT)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        start = time.monotonic()
        with suppress(ConnectionResetError, BrokenPipeError):
            s.sendall(data)
        return read_until_close(s), time.monotonic() - start


def read_until_close(s: socket.socket) -> bytes:
    """Every byte *s* receives until the peer closes; a reset counts as a close."""
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def response_json(reply: bytes) -> dict[str, Any]:
    """The JSON body of one HTTP/1.x response that carries a Content-Length."""
    head, _, rest = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply[:300]
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    result: dict[str, Any] = json.loads(rest[:length])
    return result


GET_CLOSE = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
