"""The blocking API (proxyproto_rs.sync) on real loopback sockets.

Every test talks through a kernel socket: the point of the module is what happens to bytes
the kernel holds (nothing past the header may be consumed) and to time (one deadline).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import _util
import pytest
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


@contextlib.contextmanager
def connected() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client, server) ends of one loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
    with client, server:
        yield client, server


def rest(sock: socket.socket, n: int) -> bytes:
    """Exactly *n* bytes from *sock* (fails the test after 5 s)."""
    sock.settimeout(5)
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, f"EOF after {out!r}"
        out += chunk
    return out


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
