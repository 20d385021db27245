"""proxyproto_rs.sync behind a real HAProxy (Debian's, started on loopback by conftest.py).

Blocking servers sit behind HAProxy frontends: ``http.server`` with the mixin behind
``send-proxy`` (v1) and ``send-proxy-v2`` with TLVs (SSL, CN, authority, CRC32C, unique
id) from a TLS frontend, werkzeug's threaded server through :func:`sync.enable`, a server
that terminates TLS itself after the header (plain ``mode tcp`` forwarding), and
``check-send-proxy`` health checks (LOCAL: the socket's own addresses). Pipelined
keep-alive requests must all report the client's real address: the client socket's own
``getsockname()``.
"""

from __future__ import annotations

import http.server
import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import werkzeug.serving
from proxyproto_rs import Command, Header, sync
from proxyproto_rs.options import ServerOptions

pytestmark = pytest.mark.interop

TRUSTED = ServerOptions(trusted=["127.0.0.0/8"])
TWO_REQUESTS = (
    b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
)


def describe(header: Header | None, client: Any, proxy_peer: Any, path: str) -> bytes:
    ssl_info = header.ssl if header is not None else None
    return json.dumps(
        {
            "path": path,
            "client": list(client[:2]),
            "proxy_peer": list(proxy_peer[:2]),
            "version": header.version if header is not None else None,
            "authority": header.authority if header is not None else None,
            "unique_id": header.unique_id.decode() if header and header.unique_id else None,
            "crc32c": header.crc32c is not None if header is not None else None,
            "ssl_cn": ssl_info.cn if ssl_info is not None else None,
        }
    ).encode()


class Report(http.server.BaseHTTPRequestHandler):
    """Answers every request with what the application sees, as JSON (keep-alive)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: Any = self.server
        header = server.get_proxy_header(self.request)
        body = describe(header, self.client_address, server.get_proxy_peer(self.request), self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HttpServer(sync.ProxyProtocolMixin, http.server.ThreadingHTTPServer):
    daemon_threads = True
    proxy_options = TRUSTED


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    header = environ[sync.WSGI_HEADER_KEY]
    client = (environ["REMOTE_ADDR"], int(environ["REMOTE_PORT"]))
    body = describe(header, client, environ[sync.WSGI_PEER_KEY], environ["PATH_INFO"])
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


class Health:
    """A raw accept loop on :func:`sync.accept`: records LOCAL checks, answers PONG."""

    def __init__(self) -> None:
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.seen: list[tuple[Any, ...]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                sock, client, header = sync.accept(self.listener, TRUSTED)
            except TimeoutError:
                continue
            except Exception:  # a refused connection: accept() closed it already
                continue
            with sock:
                sock.settimeout(5)
                self.seen.append(
                    (
                        header.command if header is not None else None,
                        client[:2],
                        sync.server_address(sock, header)[:2],
                        sock.getpeername()[:2],
                        sock.getsockname()[:2],
                    )
                )
                if b"PING" in sock.recv(100):
                    sock.sendall(b"PONG\r\n")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


class TlsEcho:
    """:func:`sync.accept` with ``ssl=``: the header in clear, then TLS on the same socket."""

    def __init__(self, pki: Any) -> None:
        import socket

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(pki.server_pem))
        self.options = TRUSTED.replace(ssl=ctx)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                sock, client, _header = sync.accept(self.listener, self.options)
            except TimeoutError:
                continue
            except Exception:
                continue
            with sock:
                sock.settimeout(5)
                line = sock.recv(100)
                assert isinstance(sock, ssl.SSLSocket)
                reply = {"client": list(client[:2]), "tls": sock.version(), "line": line.decode()}
                sock.sendall(json.dumps(reply).encode())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture(scope="module")
def backends(pki: Any) -> Iterator[dict[str, Any]]:
    http_server = HttpServer(("127.0.0.1", 0), Report)
    wz = sync.enable(werkzeug.serving.make_server("127.0.0.1", 0, wsgi_app, threaded=True), TRUSTED)
    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        for s in (http_server, wz)
    ]
    for t in threads:
        t.start()
    health = Health()
    tls = TlsEcho(pki)
    yield {
        "http": http_server.server_address[1],
        "werkzeug": wz.server_address[1],  # type: ignore[index]
        "health": health,
        "tls": tls.listener.getsockname()[1],
    }
    for s in (http_server, wz):
        s.shutdown()
        s.server_close()
    for t in threads:
        t.join(5)
    health.close()
    tls.close()


@pytest.fixture(scope="module")
def haproxy(
    start_haproxy: Any, pki: Any, peers: Any, backends: dict[str, Any]
) -> Iterator[dict[str, int]]:
    names = ("v1", "v2tls", "werkzeug", "pass", "unused")
    ports = {name: peers.free_port() for name in names}
    tls_bind = f"ssl crt {pki.server_pem} ca-file {pki.ca_crt} verify optional"
    v2_options = "proxy-v2-options ssl,cert-cn,authority,crc32c,unique-id"
    health_port = backends["health"].listener.getsockname()[1]
    body = f"""
frontend fe_v1
    mode tcp
    bind 127.0.0.1:{ports["v1"]}
    default_backend be_v1
backend be_v1
    mode tcp
    server app 127.0.0.1:{backends["http"]} send-proxy

frontend fe_v2tls
    mode tcp
    bind 127.0.0.1:{ports["v2tls"]} {tls_bind}
    unique-id-format sync-%ci-%cp
    default_backend be_v2tls
backend be_v2tls
    mode tcp
    server app 127.0.0.1:{backends["http"]} send-proxy-v2 {v2_options}

frontend fe_werkzeug
    mode tcp
    bind 127.0.0.1:{ports["werkzeug"]}
    default_backend be_werkzeug
backend be_werkzeug
    mode tcp
    server app 127.0.0.1:{backends["werkzeug"]} send-proxy-v2 proxy-v2-options crc32c

frontend fe_pass
    mode tcp
    bind 127.0.0.1:{ports["pass"]}
    default_backend be_pass
backend be_pass
    mode tcp
    server app 127.0.0.1:{backends["tls"]} send-proxy-v2

frontend fe_unused
    mode tcp
    bind 127.0.0.1:{ports["unused"]}
    default_backend be_check
backend be_check
    mode tcp
    option tcp-check
    tcp-check send PING\\r\\n
    tcp-check expect string PONG
    server app 127.0.0.1:{health_port} send-proxy-v2 check check-send-proxy inter 100ms
"""
    daemon = start_haproxy(body, list(ports.values()))
    yield ports
    daemon.stop()


def bodies(reply: bytes) -> list[dict[str, Any]]:
    """The JSON bodies of the HTTP responses in *reply*, in order."""
    found = re.findall(rb"\r\n\r\n(\{.*?\})(?=HTTP/1\.1 |$)", reply, re.S)
    assert found, f"no response in {reply!r}"
    return [json.loads(b) for b in found]


def test_http_server_behind_send_proxy_v1_keep_alive(haproxy: dict[str, int], peers: Any) -> None:
    ex = peers.exchange("127.0.0.1", haproxy["v1"], TWO_REQUESTS)
    seen = bodies(ex.reply)
    assert [s["path"] for s in seen] == ["/one", "/two"]
    for s in seen:
        assert tuple(s["client"]) == tuple(ex.sockname)  # the real client, not HAProxy
        assert s["proxy_peer"][0] == "127.0.0.1"
        assert tuple(s["proxy_peer"]) != tuple(ex.sockname)
        assert s["version"] == 1


def test_http_server_behind_send_proxy_v2_with_tlvs(
    haproxy: dict[str, int], peers: Any, pki: Any
) -> None:
    ctx = pki.client_context()
    ex = peers.exchange(
        "127.0.0.1", haproxy["v2tls"], TWO_REQUESTS, tls=ctx, server_hostname=peers.sni
    )
    seen = bodies(ex.reply)
    assert len(seen) == 2
    host, port = ex.sockname
    for s in seen:
        assert tuple(s["client"]) == (host, port)
        assert s["version"] == 2
        assert s["authority"] == peers.sni
        assert s["crc32c"] is True
        assert s["ssl_cn"] == peers.client_cn
        assert s["unique_id"] == f"sync-{host}-{port}"


def test_werkzeug_behind_send_proxy_v2(haproxy: dict[str, int], peers: Any) -> None:
    ex = peers.exchange("127.0.0.1", haproxy["werkzeug"], b"GET /w HTTP/1.1\r\nHost: x\r\n\r\n")
    (seen,) = bodies(ex.reply)
    assert tuple(seen["client"]) == tuple(ex.sockname)
    assert seen["version"] == 2
    assert seen["crc32c"] is True


def test_tls_terminated_after_the_header(haproxy: dict[str, int], peers: Any, pki: Any) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca_crt))
    ex = peers.exchange(
        "127.0.0.1", haproxy["pass"], b"hello\n", tls=ctx, server_hostname=peers.sni
    )
    seen = json.loads(ex.reply)
    assert tuple(seen["client"]) == tuple(ex.sockname)
    assert seen["line"] == "hello\n"
    assert seen["tls"] == ex.tls_version


def test_health_check_local_uses_socket_addresses(
    haproxy: dict[str, int], backends: dict[str, Any]
) -> None:
    health = backends["health"]
    deadline = time.monotonic() + 5
    while not health.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health.seen, "no health check arrived"
    command, client, server, real_peer, real_sock = health.seen[0]
    assert command == Command.LOCAL
    assert client == real_peer
    assert server == real_sock


def test_client_without_header_is_refused(backends: dict[str, Any], peers: Any) -> None:
    ex = peers.exchange("127.0.0.1", backends["http"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ex.reply == b""
