"""proxyproto_rs.aio behind a real HAProxy (Debian's, started on loopback by conftest.py).

A wrapped asyncio server sits behind HAProxy frontends using ``send-proxy`` (v1),
``send-proxy-v2`` with TLVs from a TLS frontend, ``check-send-proxy`` health checks (LOCAL),
and plain ``mode tcp`` forwarding of TLS to a server that terminates TLS itself after the
header. The application must see the client's real address and port (the client socket's
own ``getsockname()``), the TLVs, and, for health checks, the socket's own addresses.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from proxyproto_rs import Command, aio

pytestmark = pytest.mark.interop


class LoopThread:
    """An event loop in a thread, serving while the blocking test clients run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aio", daemon=True)
        self.thread.start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def report(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer what the connection looks like to the application, as JSON, then close."""
    try:
        await asyncio.wait_for(reader.readline(), 5)
        header = writer.get_extra_info("proxy_header")
        ssl_object = writer.get_extra_info("ssl_object")
        ssl_info = header.ssl if header is not None else None
        seen = {
            "peer": list(writer.get_extra_info("peername")[:2]),
            "sock": list(writer.get_extra_info("sockname")[:2]),
            "socket_peer": list(writer.get_extra_info("socket").getpeername()[:2]),
            "version": header.version if header is not None else None,
            "authority": header.authority if header is not None else None,
            "crc32c": header.crc32c is not None if header is not None else None,
            "ssl_cn": ssl_info.cn if ssl_info is not None else None,
            "ssl_version": ssl_info.version if ssl_info is not None else None,
            "tls": ssl_object.version() if ssl_object is not None else None,
        }
        writer.write(json.dumps(seen).encode())
        await writer.drain()
    finally:
        writer.close()


class HealthRecorder(asyncio.Protocol):
    seen: ClassVar[list[tuple[Any, Any, Any, Any]]] = []

    def data_received(self, data: bytes) -> None:
        if b"PING" in data:
            self.transport.write(b"PONG\r\n")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        header = transport.get_extra_info("proxy_header")
        sock = transport.get_extra_info("socket")
        real = sock.real_socket if isinstance(sock, aio.ProxiedSocket) else sock
        HealthRecorder.seen.append(
            (
                header.command,
                transport.get_extra_info("peername"),
                transport.get_extra_info("sockname"),
                (real.getpeername()[:2], real.getsockname()[:2]),
            )
        )


@pytest.fixture(scope="module")
def backend(pki: Any) -> Iterator[dict[str, Any]]:
    runner = LoopThread()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(str(pki.server_pem))

    async def start() -> dict[str, Any]:
        trusted = ["127.0.0.0/8"]
        plain = await aio.start_server(report, "127.0.0.1", 0, trusted=trusted)
        secure = await aio.start_server(report, "127.0.0.1", 0, trusted=trusted, ssl=tls)
        loop = asyncio.get_running_loop()
        health_factory = aio.wrap(HealthRecorder, trusted=trusted)
        health = await loop.create_server(health_factory, "127.0.0.1", 0)
        return {
            "servers": [plain, secure, health],
            "plain": plain.sockets[0].getsockname()[1],
            "tls": secure.sockets[0].getsockname()[1],
            "health": health.sockets[0].getsockname()[1],
            "health_factory": health_factory,
        }

    info = runner.call(start())
    yield info

    async def stop() -> None:
        # HAProxy is already stopped (the haproxy fixture ends first): let the loop see its
        # connections close, then end whatever is left, so nothing leaks into later tests.
        for server in info["servers"]:
            server.close()
            await server.wait_closed()
        await asyncio.sleep(0.2)
        current = asyncio.current_task()
        leftovers = [t for t in asyncio.all_tasks() if t is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    runner.call(stop())
    runner.close()


@pytest.fixture(scope="module")
def haproxy(
    start_haproxy: Any, pki: Any, peers: Any, backend: dict[str, Any]
) -> Iterator[dict[str, int]]:
    ports = {name: peers.free_port() for name in ("v1", "v2tls", "pass", "unused")}
    tls_bind = f"ssl crt {pki.server_pem} ca-file {pki.ca_crt} verify optional"
    v2_options = "proxy-v2-options ssl,cert-cn,authority,crc32c"
    body = f"""
frontend fe_v1
    mode tcp
    bind 127.0.0.1:{ports["v1"]}
    default_backend be_v1
backend be_v1
    mode tcp
    server app 127.0.0.1:{backend["plain"]} send-proxy

frontend fe_v2tls
    mode tcp
    bind 127.0.0.1:{ports["v2tls"]} {tls_bind}
    default_backend be_v2tls
backend be_v2tls
    mode tcp
    server app 127.0.0.1:{backend["plain"]} send-proxy-v2 {v2_options}

frontend fe_pass
    mode tcp
    bind 127.0.0.1:{ports["pass"]}
    default_backend be_pass
backend be_pass
    mode tcp
    server app 127.0.0.1:{backend["tls"]} send-proxy-v2

frontend fe_unused
    mode tcp
    bind 127.0.0.1:{ports["unused"]}
    default_backend be_check
backend be_check
    mode tcp
    # The check waits for an answer, so HAProxy cannot close (with RST, which drops unread
    # bytes) before our server has read the header: a connect-only check raced under load.
    option tcp-check
    tcp-check send PING\r\n
    tcp-check expect string PONG
    server app 127.0.0.1:{backend["health"]} send-proxy-v2 check check-send-proxy inter 100ms
"""
    daemon = start_haproxy(body, list(ports.values()))
    yield ports
    daemon.stop()  # before the backend's loop stops, so no proxied connection is left open


def _seen(reply: bytes) -> dict[str, Any]:
    assert reply, "the backend answered nothing"
    result: dict[str, Any] = json.loads(reply)
    return result


def test_send_proxy_v1(haproxy: dict[str, int], peers: Any) -> None:
    ex = peers.exchange("127.0.0.1", haproxy["v1"], b"hello\n")
    seen = _seen(ex.reply)
    assert tuple(seen["peer"]) == tuple(ex.sockname)  # the real client, not HAProxy
    assert tuple(seen["socket_peer"]) == tuple(ex.sockname)
    assert tuple(seen["sock"]) == ("127.0.0.1", haproxy["v1"])
    assert seen["version"] == 1


def test_send_proxy_v2_with_tlvs(haproxy: dict[str, int], peers: Any, pki: Any) -> None:
    ctx = pki.client_context()
    ex = peers.exchange(
        "127.0.0.1", haproxy["v2tls"], b"hello\n", tls=ctx, server_hostname=peers.sni
    )
    seen = _seen(ex.reply)
    assert tuple(seen["peer"]) == tuple(ex.sockname)
    assert seen["version"] == 2
    assert seen["authority"] == peers.sni
    assert seen["crc32c"] is True
    assert seen["ssl_cn"] == peers.client_cn
    assert seen["ssl_version"] == ex.tls_version
    assert seen["tls"] is None  # HAProxy terminated TLS; the backend link is clear


def test_tls_passthrough_terminated_by_wrapped_server(
    haproxy: dict[str, int], peers: Any, pki: Any
) -> None:
    """HAProxy in tcp mode forwards the TLS bytes after its header; aio does the handshake."""
    ctx = pki.client_context()
    ex = peers.exchange(
        "127.0.0.1", haproxy["pass"], b"hello\n", tls=ctx, server_hostname=peers.sni
    )
    seen = _seen(ex.reply)
    assert tuple(seen["peer"]) == tuple(ex.sockname)
    assert seen["version"] == 2
    assert seen["tls"] == ex.tls_version


def test_health_checks_served_with_socket_addresses(
    haproxy: dict[str, int], backend: dict[str, Any]
) -> None:
    deadline = time.monotonic() + 10
    while not HealthRecorder.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert HealthRecorder.seen, "no health check arrived"
    command, peer, sock, (real_peer, real_sock) = HealthRecorder.seen[0]
    assert command == Command.LOCAL
    assert peer[:2] == real_peer
    assert sock[:2] == real_sock == ("127.0.0.1", backend["health"])
    assert all(c == Command.LOCAL for c, _, _, _ in HealthRecorder.seen)
    # A check may be closed by HAProxy before its header is written (connect-only check under
    # load): that is an "eof" refusal, never a bad header.
    assert set(backend["health_factory"].stats.rejected) <= {"eof"}
