"""Fixtures that run the real peers (Debian's HAProxy and nginx) on loopback.

Everything a daemon writes (config, pid file, logs, nginx temp paths) lives in a pytest tmp
dir; daemons run in the foreground and are killed at teardown. Listeners bind 127.0.0.1 or
::1 only. A missing binary skips the test locally and fails it when ``CI=true``
(.ci/install-interop-deps.sh installs them).

Helpers are handed to the tests through fixtures (``peers`` and friends) so the test modules
import nothing from this directory, whatever pytest's import mode.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from servers_support import listening_ports

CI = os.environ.get("CI") == "true"
TIMEOUT = 5.0
"""Seconds any socket operation may take before the test fails."""
START_TIMEOUT = 10.0
"""Seconds a daemon may take to listen (generous: CI shares 2 cores with builds)."""

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"
WRITE_VECTORS = os.environ.get("PROXYPROTO_WRITE_VECTORS") == "1"
"""When set, tests that capture a real header also (re)write it into tests/vectors/."""

CLIENT_CN = "interop-client"
SNI = "proxy.interop.test"

_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def _missing(what: str) -> None:
    """Skip locally, fail under CI: an interop test that cannot run is a failure there."""
    msg = f"{what} (install with .ci/install-interop-deps.sh)"
    if CI:
        pytest.fail(f"CI=true and {msg}", pytrace=False)
    pytest.skip(msg)


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN_DIRS:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


# --------------------------------------------------------------------------- sockets


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on *host* a moment ago (the daemon binds it right after)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def fmt_host(host: str) -> str:
    """``[::1]`` for IPv6, unchanged for IPv4: the form configs and URLs want."""
    return f"[{host}]" if ":" in host else host


@dataclass
class Exchange:
    """What a client saw: its own address (getsockname) and every byte the peer sent back."""

    sockname: tuple[str, int] | str
    peername: tuple[str, int] | str
    reply: bytes
    reset: bool = False
    tls_version: str | None = None
    cipher: str | None = None


def exchange(
    host: str,
    port: int,
    data: bytes,
    *,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Exchange:
    """Connect, send *data* at once, read until the peer closes (every call times out).

    *host* starting with ``/`` is a UNIX socket path (*port* is then ignored)."""
    if host.startswith("/"):
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.settimeout(TIMEOUT)
        try:
            raw.connect(host)
        except OSError:
            raw.close()
            raise
    else:
        raw = socket.create_connection((host, port), timeout=TIMEOUT)
        assert raw.family == (socket.AF_INET6 if ":" in host else socket.AF_INET)
    raw.settimeout(TIMEOUT)
    sock: socket.socket = raw
    version = cipher = None
    try:
        if tls is not None:
            sock = tls.wrap_socket(raw, server_hostname=server_hostname)
            version = sock.version()
            c = sock.cipher()
            cipher = c[0] if c else None
        sockname = sock.getsockname()
        peername = sock.getpeername()
        if raw.family != socket.AF_UNIX:  # drop IPv6 flowinfo/scope_id
            sockname, peername = sockname[:2], peername[:2]
        sock.sendall(data)
        chunks: list[bytes] = []
        reset = False
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                reset = True
                break
            if not chunk:
                break
            chunks.append(chunk)
        return Exchange(sockname, peername, b"".join(chunks), reset, version, cipher)
    finally:
        sock.close()


@dataclass
class Captured:
    data: bytes
    peer: tuple[str, int]


class CaptureServer:
    """Plain TCP server in a thread: stores every byte a connection sends until *marker*
    (end of the test payload) or EOF, then answers ``reply`` and closes."""

    END = b"\r\n--end-of-payload--\r\n"

    def __init__(self, host: str = "127.0.0.1", reply: bytes = b"ACK") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.reply = reply
        self._seen: list[Captured] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="capture", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(TIMEOUT)
                buf = bytearray()
                try:
                    while not buf.endswith(self.END):
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    conn.sendall(self.reply)
                except OSError:
                    pass
            with self._cond:
                self._seen.append(Captured(bytes(buf), peer[:2]))
                self._cond.notify_all()

    def wait_for(self, token: bytes, timeout: float = TIMEOUT) -> Captured:
        """The captured connection whose bytes contain *token* (unique per test)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for c in self._seen:
                    if token in c.data:
                        return c
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"capture server saw no connection carrying {token!r}; "
                        f"saw {[c.data[:120] for c in self._seen]!r}"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(TIMEOUT)


def payload(tag: str) -> bytes:
    """Application bytes a test sends after the header: unique, binary-safe, framed."""
    tricky = b"\x00\xff\r\nPROXY \r\n\r\n\x00\r\nQUIT\n"  # looks like headers: must pass through
    return b"payload:" + tag.encode() + tricky + CaptureServer.END


def split_header(captured: bytes, sent_payload: bytes) -> bytes:
    """The bytes HAProxy/nginx put before the client's payload (the header, found without
    our parser so a parser bug cannot hide in it)."""
    assert captured.endswith(sent_payload), (captured, sent_payload)
    return captured[: len(captured) - len(sent_payload)]


def save_vector(name: str, header: bytes) -> None:
    """Write a captured header to tests/vectors/ when PROXYPROTO_WRITE_VECTORS=1."""
    if WRITE_VECTORS:
        VECTORS_DIR.mkdir(exist_ok=True)
        (VECTORS_DIR / name).write_bytes(header)


# --------------------------------------------------------------------------- daemons


@dataclass
class Daemon:
    name: str
    argv: list[str]
    workdir: Path
    ports: list[int]
    log: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.log = self.workdir / f"{self.name}.out"

    def output(self) -> str:
        parts = [self.log.read_text(errors="replace") if self.log.exists() else ""]
        err = self.workdir / "error.log"
        if err.exists():
            parts.append(err.read_text(errors="replace"))
        return "\n".join(parts)

    def start(self) -> Daemon:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.output()}"
                )
            if set(self.ports) <= listening_ports():
                # A daemon that lost a port race exits at once: do not mistake another
                # process's listener for ours.
                time.sleep(0.05)
                if self.proc.poll() is None:
                    return self
                continue
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not listen on {self.ports}:\n{self.output()}")
            time.sleep(0.02)

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(TIMEOUT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="session")
def haproxy_bin() -> str:
    path = _which("haproxy")
    if path is None:
        _missing("haproxy binary not found")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def haproxy_version(haproxy_bin: str) -> tuple[int, int]:
    out = subprocess.run(
        [haproxy_bin, "-v"], capture_output=True, text=True, timeout=TIMEOUT, check=True
    ).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    assert m, out
    return int(m[1]), int(m[2])


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    path = _which("nginx")
    if path is None:
        _missing("nginx binary not found")
    assert path is not None
    return path


@dataclass(frozen=True)
class NginxBuild:
    version: tuple[int, int, int]
    load_stream: str
    """``load_module ...;`` line when the stream module is dynamic (Debian), else ``""``."""


@pytest.fixture(scope="session")
def nginx_build(nginx_bin: str) -> NginxBuild:
    out = subprocess.run(
        [nginx_bin, "-V"], capture_output=True, text=True, timeout=TIMEOUT, check=True
    ).stderr
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    assert m, out
    version = (int(m[1]), int(m[2]), int(m[3]))
    if "--with-stream=dynamic" in out:
        mp = re.search(r"--modules-path=(\S+)", out)
        candidates = [Path(mp[1])] if mp else []
        candidates += [Path("/usr/lib/nginx/modules"), Path("/usr/share/nginx/modules")]
        for d in candidates:
            so = d / "ngx_stream_module.so"
            if so.exists():
                return NginxBuild(version, f"load_module {so};")
        _missing("nginx stream module ngx_stream_module.so not found (libnginx-mod-stream)")
    elif "--with-stream" not in out:
        _missing("nginx was built without the stream module")
    return NginxBuild(version, "")


@pytest.fixture(scope="session")
def ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (only the IPv6 cases skip when it cannot)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca_crt: Path
    server_pem: Path
    """Server certificate + key in one PEM, as HAProxy's ``crt`` takes it."""
    client_crt: Path
    client_key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client that checks the server against our CA and shows its certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_crt))
        ctx.load_cert_chain(str(self.client_crt), str(self.client_key))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Throwaway CA, server certificate (SAN = SNI, 127.0.0.1, ::1) and client certificate
    (CN = CLIENT_CN), made with the openssl CLI; valid for two days."""
    if _which("openssl") is None:
        _missing("openssl CLI not found")
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=proxyproto_rs interop CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    for name, subj, ext in (
        (
            "server",
            f"/CN={SNI}",
            f"subjectAltName=DNS:{SNI},IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", f"/CN={CLIENT_CN}", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        _openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj,
            cwd=d,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext",
            cwd=d,
        )  # fmt: skip
    pem = (d / "server.crt").read_bytes() + (d / "server.key").read_bytes()
    (d / "server.pem").write_bytes(pem)
    return Pki(d, d / "ca.crt", d / "server.pem", d / "client.crt", d / "client.key")


# --------------------------------------------------------------------------- starters

HAPROXY_PROLOGUE = """\
global
    log stderr format short local0 info
    maxconn 256
    nbthread 1

defaults
    log global
    timeout connect 3s
    timeout client 5s
    timeout server 5s
"""


@pytest.fixture(scope="module")
def start_haproxy(
    haproxy_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str, list[int]], Daemon]]:
    """``start_haproxy(body, ports)``: run ``haproxy -db`` on *body* (frontends/backends
    after a fixed global/defaults section), return once every port in *ports* listens."""
    started: list[Daemon] = []

    def start(body: str, ports: list[int]) -> Daemon:
        d = tmp_path_factory.mktemp("haproxy")
        cfg = d / "haproxy.cfg"
        cfg.write_text(HAPROXY_PROLOGUE + "\n" + body)
        daemon = Daemon("haproxy", [haproxy_bin, "-db", "-f", str(cfg)], d, ports)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.stop()
    # Collect the module's garbage now, so that a socket or transport it leaked warns
    # (ResourceWarning, an error under filterwarnings=error) in this module's teardown
    # instead of in whichever later test the collector happens to run.
    gc.collect()


@pytest.fixture(scope="module")
def start_nginx(
    nginx_bin: str, nginx_build: NginxBuild, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str, list[int]], Daemon]]:
    """``start_nginx(body, ports)``: run nginx in the foreground, one process, with every
    path (-p prefix, pid, error_log, temp dirs) inside a tmp dir; *body* holds the
    ``stream``/``http`` blocks, where ``{temp_paths}`` expands to the http temp paths."""
    started: list[Daemon] = []

    def start(body: str, ports: list[int]) -> Daemon:
        d = tmp_path_factory.mktemp("nginx")
        (d / "logs").mkdir()
        temp_paths = "\n".join(
            f"    {kind}_temp_path {d / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf = d / "nginx.conf"
        conf.write_text(
            f"{nginx_build.load_stream}\n"
            "daemon off;\n"
            "master_process off;\n"
            f"pid {d / 'nginx.pid'};\n"
            f"error_log {d / 'error.log'} info;\n"
            "events { worker_connections 64; }\n" + body.replace("{temp_paths}", temp_paths)
        )
        argv = [nginx_bin, "-p", f"{d}/", "-e", str(d / "error.log"), "-c", str(conf)]
        daemon = Daemon("nginx", argv, d, ports)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.stop()
    gc.collect()  # see start_haproxy


@pytest.fixture(scope="module")
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer("127.0.0.1")
    yield server
    server.close()


@dataclass(frozen=True)
class Peers:
    """Helpers the test modules use (handed out as a fixture: nothing is imported)."""

    free_port: Callable[..., int] = free_port
    exchange: Callable[..., Exchange] = exchange
    payload: Callable[[str], bytes] = payload
    split_header: Callable[[bytes, bytes], bytes] = split_header
    save_vector: Callable[[str, bytes], None] = save_vector
    fmt_host: Callable[[str], str] = fmt_host
    capture_server: type[CaptureServer] = CaptureServer
    client_cn: str = CLIENT_CN
    sni: str = SNI
    vectors_dir: Path = VECTORS_DIR


@pytest.fixture(scope="session")
def peers() -> Peers:
    return Peers()
