"""uvicorn and Hypercorn from PyPI, served through proxyproto_rs.integrations, behind a real
HAProxy (``send-proxy`` / ``send-proxy-v2``) on loopback: the ASGI app must see the real
client in ``scope["client"]`` and the header's TLVs in ``scope["extensions"]``.

The servers run as subprocesses (a script written into the test's tmp dir), HAProxy in the
foreground; everything is killed at teardown and every wait is bounded. A missing server
package or HAProxy binary skips locally and fails when ``CI=true``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import proxyproto_rs as pp
import pytest
from proxyproto_rs import aio
from servers_support import (
    free_ports,
    haproxy_binary,
    missing,
    need_module,
    process,
    read_until_close,
)

TIMEOUT = 5.0
CLIENT_HOST = "127.0.0.2"
"""Clients connect from this loopback address, so the real client differs from the proxy
(127.0.0.1) in its address as well as its port."""

SERVERS = ["uvicorn-h11", "uvicorn-httptools", "uvicorn-auto", "hypercorn", "hypercorn-uvloop"]
"""uvicorn's h11 and httptools protocols on asyncio's loop; uvicorn's default (``auto``:
httptools on uvloop); Hypercorn on asyncio's loop and on uvloop."""


def _need_server(kind: str) -> None:
    need_module(kind.split("-")[0])
    if kind in ("uvicorn-httptools", "uvicorn-auto"):
        need_module("httptools")
    if kind in ("uvicorn-auto", "hypercorn-uvloop"):
        need_module("uvloop")


APP = textwrap.dedent(
    '''
    """The app under test: answers every request with what it was told about the client."""
    import asyncio
    import json
    import sys


    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            info = scope["extensions"]["proxy_protocol"]
            text = json.dumps({"client": scope["client"], "vpce": info["header"].aws_vpce_id})
            await send({"type": "websocket.send", "text": text})
            await send({"type": "websocket.close"})
            return
        info = scope.get("extensions", {}).get("proxy_protocol")
        header = info["header"] if info else None
        body = {
            "client": scope.get("client"),
            "server": scope.get("server"),
            "proxy_peer": info["proxy_peer"] if info else None,
            "version": header.version if header else None,
            "tlvs": [t.type for t in header.tlvs] if header else None,
            "unique_id": header.unique_id.decode() if header and header.unique_id else None,
            "crc32c": header.crc32c if header else None,
            "aws_vpce_id": header.aws_vpce_id if header else None,
            "loop": type(asyncio.get_running_loop()).__module__,
            "scheme": scope.get("scheme"),
            "authority": header.authority if header else None,
        }
        data = json.dumps(body).encode()
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        })
        await send({"type": "http.response.body", "body": data})


    def main(kind, port, tls_dir=None):
        if kind.startswith("uvicorn"):
            import ssl
            import uvicorn
            from proxyproto_rs.integrations.uvicorn import http_protocol

            context = None
            if tls_dir:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(f"{tls_dir}/cert.pem", f"{tls_dir}/key.pem")
            base = kind.split("-")[1]
            uvicorn.run(
                app, host="127.0.0.1", port=port, log_level="warning",
                loop="auto" if base == "auto" else "asyncio",
                http=http_protocol(base, trusted=["127.0.0.1/32"], timeout=3, ssl=context),
            )
        else:
            from hypercorn.config import Config
            from proxyproto_rs.integrations.hypercorn import serve

            config = Config()
            config.bind = [f"127.0.0.1:{port}"]
            config.loglevel = "WARNING"
            if tls_dir:
                config.certfile = f"{tls_dir}/cert.pem"
                config.keyfile = f"{tls_dir}/key.pem"
            main = serve(app, config, trusted=["127.0.0.1/32"], timeout=3)
            if kind.endswith("uvloop"):
                import uvloop

                uvloop.run(main)
            else:
                asyncio.run(main)


    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
    '''
)


@contextmanager
def app_server(kind: str, tmp_path: Path, tls_dir: Path | None = None) -> Iterator[int]:
    _need_server(kind)
    script = tmp_path / "serve_app.py"
    script.write_text(APP)
    port = free_ports(1)[0]
    argv = [sys.executable, str(script), kind, str(port)]
    if tls_dir is not None:
        argv.append(str(tls_dir))
    with process(argv, [port], tmp_path, kind):
        yield port


def get(port: int, *, source: str = CLIENT_HOST) -> tuple[tuple[str, int], dict[str, Any]]:
    """One HTTP request from *source*: (the client's own address, the app's JSON)."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=TIMEOUT, source_address=(source, 0)
    )
    try:
        conn.connect()
        assert conn.sock is not None
        me = conn.sock.getsockname()[:2]
        conn.request("GET", "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        assert resp.status == 200
        return me, json.loads(resp.read())
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.settimeout(TIMEOUT)
        s.sendall(data)
        return read_until_close(s)


# --------------------------------------------------------------------------- without HAProxy


@pytest.mark.parametrize("kind", SERVERS)
def test_server_reads_header_we_send(kind: str, tmp_path: Path) -> None:
    """Our own header (as an AWS NLB would send it), two keep-alive requests, then a
    connection without a header, which must be refused before the app sees it."""
    with app_server(kind, tmp_path) as port:
        header = pp.build_v2(
            ("203.0.113.7", 51234), ("10.0.0.5", 443), aws_vpce_id="vpce-0abc", crc32c=True
        )
        requests = (
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        reply = raw_exchange(port, header + requests)
        bodies = [json.loads(body) for body in _responses(reply)]
        assert len(bodies) == 2, reply
        uvloop_expected = kind in ("uvicorn-auto", "hypercorn-uvloop")
        assert (bodies[0]["loop"] == "uvloop") == uvloop_expected, bodies[0]["loop"]
        for body in bodies:  # per connection, not per request (gunicorn#899)
            assert body["client"] == ["203.0.113.7", 51234]
            assert body["server"] == ["10.0.0.5", 443]
            assert body["aws_vpce_id"] == "vpce-0abc"
            assert body["tlvs"] == [0x03, 0xEA]
            assert body["proxy_peer"][0] == "127.0.0.1"
        assert raw_exchange(port, b"GET / HTTP/1.0\r\n\r\n") == b""


def _responses(reply: bytes) -> list[bytes]:
    """The bodies of pipelined HTTP/1.1 responses (chunked or with Content-Length)."""
    out = []
    rest = reply
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                if size == 0:
                    rest = rest[2:]
                    break
                body += rest[:size]
                rest = rest[size + 2 :]
        else:
            length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            body, rest = rest[:length], rest[length:]
        out.append(body)
    return out


# --------------------------------------------------------------------------- behind HAProxy

HAPROXY_CFG = """\
global
    maxconn 256
    nbthread 1

defaults
    mode http
    timeout connect 3s
    timeout client 5s
    timeout server 5s

frontend fe
    bind 127.0.0.1:{fe}
    unique-id-format %ci:%cp
    default_backend app

backend app
    http-reuse never
    server app 127.0.0.1:{be} {send}
"""


@contextmanager
def haproxy_in_front(backend_port: int, version: int, tmp_path: Path) -> Iterator[int]:
    binary = haproxy_binary()
    fe = free_ports(1)[0]
    send = "send-proxy-v2 proxy-v2-options crc32c,unique-id" if version == 2 else "send-proxy"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(fe=fe, be=backend_port, send=send))
    with process([binary, "-db", "-f", str(cfg)], [fe], tmp_path, "haproxy"):
        yield fe


@pytest.mark.interop
@pytest.mark.parametrize("version", [2, 1])
@pytest.mark.parametrize("kind", SERVERS)
def test_behind_haproxy_app_sees_the_real_client(kind: str, version: int, tmp_path: Path) -> None:
    haproxy_binary()
    with app_server(kind, tmp_path) as port, haproxy_in_front(port, version, tmp_path) as fe:
        for _ in range(2):  # two clients, two connections: each sees its own address
            me, body = get(fe)
            assert body["client"] == [me[0], me[1]] == [CLIENT_HOST, me[1]]
            assert body["server"] == ["127.0.0.1", fe]
            assert body["version"] == version
            # the socket peer is HAProxy, from another address and port
            assert body["proxy_peer"][0] == "127.0.0.1"
            if version == 2:
                assert body["unique_id"] == f"{CLIENT_HOST}:{me[1]}"
                assert body["crc32c"] is not None
                assert 0x03 in body["tlvs"]
                assert 0x05 in body["tlvs"]
            else:
                assert body["tlvs"] == []


@pytest.mark.parametrize("kind", SERVERS)
def test_untrusted_or_garbage_never_reaches_the_app(kind: str, tmp_path: Path) -> None:
    with app_server(kind, tmp_path) as port:
        # a forged header from an address outside trusted=127.0.0.1/32
        forged = pp.build_v1(("198.51.100.1", 1), ("127.0.0.1", port))
        with socket.socket() as s:
            s.settimeout(TIMEOUT)
            s.bind((CLIENT_HOST, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(forged + b"GET / HTTP/1.0\r\n\r\n")
            with suppress(ConnectionResetError):
                assert s.recv(100) == b""
        bad_crc = bytearray(pp.build_v2(("192.0.2.1", 1), ("192.0.2.2", 2), crc32c=True))
        bad_crc[-1] ^= 1
        assert raw_exchange(port, bytes(bad_crc) + b"GET / HTTP/1.0\r\n\r\n") == b""


@pytest.mark.parametrize("kind", SERVERS)
def test_chained_header_never_reaches_the_app(kind: str, tmp_path: Path) -> None:
    """Two proxies in a row each adding a header: the second one, at the start of the
    HTTP bytes, is refused before the server parses it as a request."""
    with app_server(kind, tmp_path) as port:
        first = pp.build_v2(("203.0.113.7", 51234), ("127.0.0.1", port))
        second = pp.build_v1(("198.51.100.9", 40000), ("203.0.113.7", 443))
        request = b"GET / HTTP/1.0\r\n\r\n"
        assert raw_exchange(port, first + second + request) == b""
        assert raw_exchange(port, first + request).startswith(b"HTTP/1.")


def test_uvicorn_websocket_keeps_the_header(tmp_path: Path) -> None:
    """A WebSocket upgraded from a proxied connection: uvicorn's WebSocket protocol gets the
    same client and extension (websockets is in the test extra: it never skips in CI)."""
    need_module("websockets")
    with app_server("uvicorn-auto", tmp_path) as port:
        header = pp.build_v2(("203.0.113.7", 51234), ("10.0.0.5", 443), aws_vpce_id="vpce-ws")
        upgrade = (
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.settimeout(TIMEOUT)
            s.sendall(header + upgrade)
            reply = b""
            while b"\x88" not in reply.partition(b"\r\n\r\n")[2]:  # until the close frame
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 101")
    frame = reply.split(b"\r\n\r\n", 1)[1]
    assert frame[0] == 0x81  # one unmasked text frame
    length = frame[1]
    assert json.loads(frame[2 : 2 + length]) == {
        "client": ["203.0.113.7", 51234],
        "vpce": "vpce-ws",
    }


@pytest.mark.parametrize("kind", ["uvicorn-auto", "hypercorn"])
def test_tls_after_the_header(kind: str, tmp_path: Path) -> None:
    """TLS passthrough: the header in clear, then the ClientHello (aiohttp#11252's case).
    uvicorn gets the SSLContext through http_protocol(ssl=...), Hypercorn through its
    config.certfile/keyfile."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("openssl CLI not found")
    assert openssl is not None
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", "key.pem", "-out", "cert.pem", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        cwd=tmp_path, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    header = pp.build_v2(("203.0.113.7", 51234), ("10.0.0.5", 443), authority="example.com")

    async def fetch(port: int) -> bytes:
        context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, header=header, ssl=context, server_hostname="127.0.0.1"
            )
            try:
                writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                await writer.drain()
                return await reader.read()
            finally:
                writer.close()

    with app_server(kind, tmp_path, tmp_path) as port:
        reply = asyncio.run(fetch(port))
    assert reply.startswith(b"HTTP/1.1 200")
    chunked = b"chunked" in reply.lower()  # uvicorn chunks, Hypercorn closes after the body
    body = json.loads(_responses(reply)[0] if chunked else reply.split(b"\r\n\r\n", 1)[1])
    assert body["client"] == ["203.0.113.7", 51234]
    assert body["scheme"] == "https"
    assert body["authority"] == "example.com"
