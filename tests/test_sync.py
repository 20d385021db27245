"""The blocking API (proxyproto_rs.sync) on real loopback sockets.

Every test talks through a kernel socket: the point of the module is what happens to bytes
the kernel holds (nothing past the header may be consumed) and to time (one deadline).
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import _util
import pytest
import werkzeug.serving
from _util import connected
from aio_support import tls_contexts
from proxyproto_rs import (
    Header,
    IncompleteHeaderError,
    InvalidHeaderError,
    PeerRefusedError,
    ProxyProtocolError,
    build_v1,
    build_v2,
    sync,
)
from proxyproto_rs.options import ServerOptions

CLIENT = ("203.0.113.7", 40001)
SERVICE = ("198.51.100.1", 443)
CLIENT6 = ("2001:db8::7", 40002)
SERVICE6 = ("2001:db8::1", 8443)
PAYLOAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n\x00\r\nQUIT\nPROXY TCP4 "
"""What follows the header: HTTP, then bytes that look like headers, so a reader that takes
one byte too many is caught."""

V2 = build_v2(CLIENT, SERVICE, tlvs=[(0x05, b"unique-id-1")], crc32c=True)
V1 = build_v1(CLIENT, SERVICE)
LOCAL_WITH_ADDRESSES = _util.v2(
    0x20, 0x11, socket.inet_aton(CLIENT[0]) + socket.inet_aton(SERVICE[0]) + b"\x9c\x41\x01\xbb"
)
"""A LOCAL header that carries addresses anyway: the receiver must ignore them (SPEC)."""


def rest(sock: socket.socket, n: int) -> bytes:
    """Exactly *n* bytes from *sock* (fails the test after 5 s)."""
    sock.settimeout(5)
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, f"EOF after {out!r}"
        out += chunk
    return out


def closed(sock: socket.socket) -> bool:
    """The peer closed *sock* (a FIN, or a reset when it left unread bytes behind)."""
    sock.settimeout(5)
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


# -- read_header ------------------------------------------------------------------------


@pytest.mark.parametrize("wire", [V1, V2], ids=["v1", "v2"])
def test_header_then_payload_intact(wire: bytes) -> None:
    with connected() as (client, server):
        client.sendall(wire + PAYLOAD)
        time.sleep(0.05)  # one segment in the kernel: header and payload together
        header = sync.read_header(server)
        assert header is not None
        assert header.source == CLIENT
        assert header.destination == SERVICE
        assert header.to_bytes() == wire
        assert rest(server, len(PAYLOAD)) == PAYLOAD
        assert sync.client_address(server, header) == CLIENT
        assert sync.server_address(server, header) == SERVICE


@pytest.mark.parametrize("wire", [V1, V2], ids=["v1", "v2"])
def test_header_split_byte_by_byte(wire: bytes) -> None:
    with connected() as (client, server):
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        result: list[Header | None] = []
        reader = threading.Thread(target=lambda: result.append(sync.read_header(server)))
        reader.start()
        for i in range(len(wire)):
            client.sendall(wire[i : i + 1])
            time.sleep(0.002)
        client.sendall(PAYLOAD)
        reader.join(5)
        assert result
        assert result[0] is not None
        assert result[0].to_bytes() == wire
        assert rest(server, len(PAYLOAD)) == PAYLOAD


def test_no_header_is_refused() -> None:
    with connected() as (client, server):
        client.sendall(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(InvalidHeaderError) as info:
            sync.read_header(server)
        assert info.value.offset == 0


def test_eof_before_header() -> None:
    with connected() as (client, server):
        client.sendall(V2[:20])
        client.shutdown(socket.SHUT_WR)
        with pytest.raises(IncompleteHeaderError) as info:
            sync.read_header(server)
        assert info.value.kind == "eof"


def test_slow_header_cut_at_the_deadline_not_per_read() -> None:
    """A byte every 0.2 s never lets one recv time out; the 1 s deadline is total."""
    with connected() as (client, server):
        stop = threading.Event()

        def trickle() -> None:
            for i in range(len(V1)):
                if stop.wait(0.2):
                    return
                with contextlib.suppress(OSError):
                    client.sendall(V1[i : i + 1])

        sender = threading.Thread(target=trickle)
        sender.start()
        server.settimeout(30.0)
        started = time.monotonic()
        try:
            with pytest.raises(IncompleteHeaderError) as info:
                sync.read_header(server, timeout=1.0)
        finally:
            stop.set()
            sender.join()
        elapsed = time.monotonic() - started
        assert info.value.kind == "timeout"
        assert 0.9 < elapsed < 2.0
        assert server.gettimeout() == 30.0  # the socket's own timeout is back


@pytest.mark.parametrize("previous", [None, 0.0, 7.5])
def test_socket_timeout_restored(previous: float | None) -> None:
    with connected() as (client, server):
        server.settimeout(previous)
        client.sendall(V2)
        assert sync.read_header(server) is not None
        assert server.gettimeout() == previous
        client.sendall(b"nope")
        time.sleep(0.05)
        with pytest.raises(InvalidHeaderError):
            sync.read_header(server)
        assert server.gettimeout() == previous


def test_untrusted_peer_rejected_without_reading() -> None:
    with connected() as (client, server):
        client.sendall(V2 + PAYLOAD)
        with pytest.raises(PeerRefusedError) as info:
            sync.read_header(server, trusted=["10.0.0.0/8"])
        assert info.value.kind == "untrusted_peer"
        assert isinstance(info.value, ProxyProtocolError)
        assert rest(server, len(V2)) == V2  # not a byte was read


def test_untrusted_peer_served_direct() -> None:
    with connected() as (client, server):
        client.sendall(PAYLOAD)
        header = sync.read_header(server, trusted=["10.0.0.0/8"], untrusted="direct")
        assert header is None
        assert rest(server, len(PAYLOAD)) == PAYLOAD
        assert sync.client_address(server, None) == client.getsockname()
        assert sync.server_address(server, None) == client.getpeername()


def test_trusted_peer_must_send_header_even_with_direct() -> None:
    with connected() as (client, server):
        client.sendall(PAYLOAD)
        with pytest.raises(InvalidHeaderError):
            sync.read_header(server, trusted=["127.0.0.0/8"], untrusted="direct")


@pytest.mark.parametrize(
    "wire",
    [build_v2(), build_v1(None, None), LOCAL_WITH_ADDRESSES],
    ids=["v2-local", "v1-unknown", "v2-local-with-addresses"],
)
def test_local_and_unknown_use_the_socket_addresses(wire: bytes) -> None:
    with connected() as (client, server):
        client.sendall(wire + PAYLOAD)
        header = sync.read_header(server)
        assert header is not None
        assert sync.client_address(server, header) == client.getsockname()
        assert sync.server_address(server, header) == client.getpeername()
        assert rest(server, len(PAYLOAD)) == PAYLOAD


def test_policy_sees_peer_header_and_sockname() -> None:
    seen: list[tuple[Any, Header | None, Any]] = []

    def policy(peer: Any, header: Header | None, sockname: Any) -> bool:
        seen.append((peer, header, sockname))
        return header is not None and header.unique_id == b"unique-id-1"

    with connected() as (client, server):
        client.sendall(V2)
        header = sync.read_header(server, policy=policy)
        assert seen == [(client.getsockname(), header, server.getsockname())]
    with connected() as (client, server):
        client.sendall(build_v2(CLIENT, SERVICE))
        with pytest.raises(PeerRefusedError) as info:
            sync.read_header(server, policy=policy)
        assert info.value.kind == "policy"


def test_policy_exception_is_a_refusal() -> None:
    def policy(peer: Any, header: Header | None) -> bool:
        raise RuntimeError("boom")

    with connected() as (client, server):
        client.sendall(V1)
        with pytest.raises(PeerRefusedError, match="boom") as info:
            sync.read_header(server, ServerOptions(policy=policy))
        assert info.value.kind == "policy"


def test_max_size_and_versions_apply() -> None:
    big = build_v2(CLIENT, SERVICE, tlvs=[(0xE0, b"x" * 200)])
    with connected() as (client, server):
        client.sendall(big)
        with pytest.raises(InvalidHeaderError) as info:
            sync.read_header(server, max_size=64)
        assert info.value.kind == "header_too_large"
    with connected() as (client, server):
        client.sendall(V1)
        with pytest.raises(InvalidHeaderError):
            sync.read_header(server, allow_v1=False)


def test_options_and_kwargs_errors() -> None:
    with connected() as (_client, server), pytest.raises(TypeError, match="bogus"):
        sync.read_header(server, bogus=1)  # type: ignore[call-arg]


# -- accept -------------------------------------------------------------------------------


def test_accept_returns_real_client() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        with client:
            client.sendall(V2 + PAYLOAD)
            sock, peer, header = sync.accept(listener)
            with sock:
                assert peer == CLIENT
                assert header is not None
                assert header.to_bytes() == V2
                assert rest(sock, len(PAYLOAD)) == PAYLOAD


def test_accept_closes_refused_connection() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        with client:
            client.sendall(b"SSH-2.0-x\r\n")
            with pytest.raises(InvalidHeaderError):
                sync.accept(listener)
            assert closed(client)


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return tls_contexts(tmp_path_factory.mktemp("tls"))


def tls_in_one_segment(port: int, ctx: ssl.SSLContext, header: bytes, data: bytes) -> bytes:
    """A TLS client that sends *header* and its ClientHello in one send(), then *data*;
    returns what the server sends back before closing."""
    inbox, outbox = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inbox, outbox, server_hostname="localhost")

    def pump() -> bool:
        if pending := outbox.read():
            sock.sendall(pending)
        got = sock.recv(65536)
        inbox.write(got)
        return bool(got)

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        sock.sendall(header + outbox.read())
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                assert pump(), "closed during the handshake"
        tls.write(data)
        sock.sendall(outbox.read())
        answer = b""
        while True:
            try:
                answer += tls.read(65536)
            except ssl.SSLWantReadError:
                if not pump():
                    return answer
            except ssl.SSLZeroReturnError:
                return answer


def test_tls_client_hello_intact_after_header(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """The header and the start of the ClientHello in one segment: TLS still works."""
    server_ctx, client_ctx = contexts
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        replies: list[bytes] = []

        def client() -> None:
            replies.append(tls_in_one_segment(port, client_ctx, V2, b"ping"))

        thread = threading.Thread(target=client)
        thread.start()
        sock, peer, header = sync.accept(listener, ssl=server_ctx)
        with sock:
            assert isinstance(sock, ssl.SSLSocket)
            assert peer == CLIENT
            assert header is not None
            assert rest(sock, 4) == b"ping"
            sock.sendall(b"pong")
        thread.join(5)
        assert replies == [b"pong"]


# -- socketserver -------------------------------------------------------------------------


class Echo(socketserver.StreamRequestHandler):
    """Replies with the client address, the header's unique id, then echoes one line."""

    def handle(self) -> None:
        server: Any = self.server
        header = server.get_proxy_header(self.request)
        uid = header.unique_id if header is not None else None
        self.wfile.write(f"{self.client_address!r} {uid!r}\n".encode())
        self.wfile.write(self.rfile.readline())


class ProxyTCPServer(sync.ProxyProtocolMixin, socketserver.TCPServer):
    allow_reuse_address = True


class ProxyThreadingTCPServer(sync.ProxyProtocolMixin, socketserver.ThreadingTCPServer):
    daemon_threads = True


@contextlib.contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]  # type: ignore[index]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def talk(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(4096):
            out += chunk
        return out


@pytest.mark.parametrize("cls", [ProxyTCPServer, ProxyThreadingTCPServer])
def test_socketserver_sees_real_client(cls: type[socketserver.TCPServer]) -> None:
    with serving(cls(("127.0.0.1", 0), Echo)) as port:
        assert talk(port, V2 + b"hello\n") == f"{CLIENT!r} b'unique-id-1'\nhello\n".encode()
        assert talk(port, V1 + b"hi\n") == f"{CLIENT!r} None\nhi\n".encode()


def test_socketserver_refusal_never_reaches_handler(caplog: pytest.LogCaptureFixture) -> None:
    server = ProxyThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.proxy_options = ServerOptions(trusted=["10.0.0.0/8"])
    with caplog.at_level(logging.INFO, "proxyproto_rs.sync"), serving(server) as port:
        assert talk(port, V2 + b"hello\n") == b""
    kinds = [r.proxy_kind for r in caplog.records]  # type: ignore[attr-defined]
    assert kinds == ["untrusted_peer"]


def test_socketserver_direct_peer_keeps_its_address() -> None:
    server = ProxyTCPServer(("127.0.0.1", 0), Echo)
    server.proxy_options = ServerOptions(trusted=["10.0.0.0/8"], untrusted="direct")
    with serving(server) as port, socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"hello\n")
        first = s.makefile("rb").readline()
        assert first == f"{s.getsockname()!r} None\n".encode()


def test_slow_client_does_not_block_others(caplog: pytest.LogCaptureFixture) -> None:
    server = ProxyThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.proxy_options = ServerOptions(timeout=1.0)
    with caplog.at_level(logging.INFO, "proxyproto_rs.sync"), serving(server) as port:
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        with slow:
            slow.sendall(V2[:10])
            started = time.monotonic()
            assert talk(port, V2 + b"fast\n").endswith(b"fast\n")
            assert time.monotonic() - started < 0.5
            assert closed(slow)  # cut at the deadline
    assert [r.proxy_kind for r in caplog.records] == ["timeout"]  # type: ignore[attr-defined]


def test_max_pending_refuses_the_extra_waiting_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = ProxyThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.proxy_options = ServerOptions(max_pending=2, timeout=3.0)
    with caplog.at_level(logging.INFO, "proxyproto_rs.sync"), serving(server) as port:
        slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        try:
            time.sleep(0.2)  # both are waiting for their header in their threads
            assert talk(port, V2 + b"third\n") == b""
            kinds = [r.proxy_kind for r in caplog.records]  # type: ignore[attr-defined]
            assert kinds == ["too_many_pending"]
            slow[0].sendall(V2 + b"first\n")
            assert slow[0].makefile("rb").readline().endswith(b"b'unique-id-1'\n")
            assert talk(port, V1 + b"fourth\n").endswith(b"fourth\n")  # room again
        finally:
            for s in slow:
                s.close()


# -- http.server and werkzeug ---------------------------------------------------------------


class WhoAmI(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: Any = self.server
        header = server.get_proxy_header(self.request)
        body = f"{self.client_address[0]} {self.client_address[1]} {header.version}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ProxyHTTPServer(sync.ProxyProtocolMixin, http.server.ThreadingHTTPServer):
    daemon_threads = True


def keep_alive_requests(port: int, header: bytes, n: int) -> list[bytes]:
    """*n* requests on one connection that starts with *header*."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.connect()
    assert conn.sock is not None
    conn.sock.sendall(header)
    bodies = []
    for _ in range(n):
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        bodies.append(response.read())
    conn.close()
    return bodies


def test_http_server_keep_alive_keeps_real_client() -> None:
    with serving(ProxyHTTPServer(("127.0.0.1", 0), WhoAmI)) as port:
        assert keep_alive_requests(port, V2, 3) == [b"203.0.113.7 40001 2"] * 3
        assert keep_alive_requests(port, V1, 2) == [b"203.0.113.7 40001 1"] * 2


def test_werkzeug_make_server_enable() -> None:
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ)
        body = f"{environ['REMOTE_ADDR']}:{environ['REMOTE_PORT']}".encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    sync.enable(server, trusted=["127.0.0.0/8"])
    with serving(server) as port:  # werkzeug closes after every response
        assert keep_alive_requests(port, V2, 1) == [b"203.0.113.7:40001"]
        assert keep_alive_requests(port, V1, 1) == [b"203.0.113.7:40001"]
    assert [e[sync.WSGI_HEADER_KEY].version for e in seen] == [2, 1]
    assert seen[0][sync.WSGI_HEADER_KEY].unique_id == b"unique-id-1"
    assert seen[0][sync.WSGI_PEER_KEY][0] == "127.0.0.1"


def test_wsgiref_environ_has_header() -> None:
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(sync.ProxyProtocolMixin, WSGIServer):
        pass

    server = Server(("127.0.0.1", 0), Quiet)
    server.set_app(app)
    with serving(server) as port:
        reply = talk(port, V1 + b"GET / HTTP/1.0\r\n\r\n")
    assert reply.endswith(b"ok")
    assert seen[0]["REMOTE_ADDR"] == CLIENT[0]
    assert seen[0][sync.WSGI_HEADER_KEY].version == 1


# -- other socket families ------------------------------------------------------------------


def test_ipv6_listener_matches_trusted_networks() -> None:
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:  # pragma: no cover - a host without IPv6 loopback
        pytest.skip("no IPv6 loopback")
    with listener:
        for trusted, ok in ((["::1/128"], True), (["127.0.0.0/8"], False)):
            client = socket.create_connection(listener.getsockname()[:2], timeout=5)
            with client:
                client.sendall(build_v2(CLIENT6, SERVICE6) + PAYLOAD)
                if ok:
                    sock, peer, header = sync.accept(listener, trusted=trusted)
                    with sock:
                        assert peer == CLIENT6
                        assert header is not None
                        assert sync.server_address(sock, header) == SERVICE6
                        assert rest(sock, len(PAYLOAD)) == PAYLOAD
                else:
                    with pytest.raises(PeerRefusedError):
                        sync.accept(listener, trusted=trusted)


class ProxyUnixServer(sync.ProxyProtocolMixin, socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


@pytest.mark.parametrize(("trusted", "served"), [(["unix"], True), (["10.0.0.0/8"], False)])
def test_unix_socket_server(tmp_path: Any, trusted: list[str], served: bool) -> None:
    path = str(tmp_path / "s")
    server = ProxyUnixServer(path, Echo)
    server.proxy_options = ServerOptions(trusted=trusted)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(V2 + b"over unix\n")
            reply = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := s.recv(4096):
                    reply += chunk
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    if served:
        assert reply == f"{CLIENT!r} b'unique-id-1'\nover unix\n".encode()
    else:
        assert reply == b""


# -- two proxies in a row --------------------------------------------------------------------


@pytest.mark.parametrize("second", [V1, V2], ids=["v1", "v2"])
def test_chained_header_refused(second: bytes) -> None:
    with connected() as (client, server):
        client.sendall(V2 + second + PAYLOAD)
        time.sleep(0.05)
        with pytest.raises(InvalidHeaderError) as info:
            sync.read_header(server)
        assert info.value.kind == "chained_header"
    with connected() as (client, server):  # allowed: the second header is the app's bytes
        client.sendall(V2 + second + PAYLOAD)
        time.sleep(0.05)
        assert sync.read_header(server, allow_chained=True) is not None
        assert rest(server, len(second + PAYLOAD)) == second + PAYLOAD


def test_chained_header_split_after_a_signature_prefix() -> None:
    """The bytes after the header end inside a signature: the next ones decide."""
    with connected() as (client, server):
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.sendall(V1 + b"PRO")
        result: list[BaseException | Header | None] = []

        def read() -> None:
            try:
                result.append(sync.read_header(server))
            except BaseException as exc:  # handed to the test thread
                result.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.1)
        assert not result  # still undecided: "PRO" may start "PROXY "
        client.sendall(b"XY TCP4 ")
        reader.join(5)
        assert isinstance(result[0], InvalidHeaderError)
        assert result[0].kind == "chained_header"
    with connected() as (client, server):  # the same prefix, then something else: served
        client.sendall(V1 + b"PRO")
        threading.Timer(0.1, client.sendall, [b"PFIND / HTTP/1.1\r\n"]).start()
        assert sync.read_header(server) is not None
        assert rest(server, 21) == b"PROPFIND / HTTP/1.1\r\n"


def test_server_speaks_first_is_not_delayed() -> None:
    """Nothing after the header: nothing to check, nothing waited for."""
    with connected() as (client, server):
        client.sendall(V2)
        time.sleep(0.05)
        started = time.monotonic()
        assert sync.read_header(server) is not None
        assert time.monotonic() - started < 0.05


def test_mixin_refuses_chained_and_rate_limits_its_log(caplog: pytest.LogCaptureFixture) -> None:
    server = ProxyThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.proxy_options = ServerOptions(log_first=1, log_interval=0.5)
    with caplog.at_level(logging.INFO, "proxyproto_rs.sync"), serving(server) as port:
        for _ in range(3):
            assert talk(port, V2 + V1 + b"x\n") == b""
        time.sleep(0.6)
        assert talk(port, V2 + V2 + b"x\n") == b""  # a new window: logged, and the summary
    one_by_one = [r for r in caplog.records if hasattr(r, "proxy_kind")]
    assert [r.proxy_kind for r in one_by_one] == ["chained_header", "chained_header"]  # type: ignore[attr-defined]
    summaries = [r for r in caplog.records if hasattr(r, "proxy_summary")]
    assert len(summaries) == 1
    assert summaries[0].proxy_summary == {"chained_header": {"127.0.0.0/24": 2}}  # type: ignore[attr-defined]
