"""The core's one-call reader (``_core._SocketReader``) behind ``sync.read_header``.

It may only ever take a header that is waiting whole and settled; every other case must
leave the socket exactly as it found it, so the general reader in sync.py decides. These
tests hold both halves, on real loopback sockets.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

import pytest
from _util import connected
from proxyproto_rs import Header, build_v1, build_v2, sync
from proxyproto_rs.options import ServerOptions

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the core reader is Unix only")

CLIENT = ("203.0.113.7", 40001)
SERVICE = ("198.51.100.1", 443)
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
V2 = build_v2(CLIENT, SERVICE, tlvs=[(0x05, b"unique-id-1")], crc32c=True)
V1 = build_v1(CLIENT, SERVICE)


def reader(**changes: Any) -> Any:
    from proxyproto_rs._core import _SocketReader

    options: dict[str, Any] = {
        "allow_v1": True,
        "allow_v2": True,
        "verify_checksum": True,
        "max_size": 4096,
        "haproxy_limits": False,
        "allow_chained": False,
    }
    options.update(changes)
    return _SocketReader(**options)


def send(client: socket.socket, server: socket.socket, data: bytes) -> None:
    """Send *data* and wait until all of it is in *server*'s receive queue."""
    client.sendall(data)
    deadline = time.monotonic() + 5
    while len(server.recv(65536, socket.MSG_PEEK)) < len(data):
        assert time.monotonic() < deadline, "bytes never arrived"
        time.sleep(0.001)


def waiting(server: socket.socket) -> bytes:
    """What is in *server*'s receive queue, left there."""
    previous = server.gettimeout()
    server.setblocking(False)
    try:
        return server.recv(65536, socket.MSG_PEEK)
    except BlockingIOError:
        return b""
    finally:
        server.settimeout(previous)


@pytest.mark.parametrize("wire", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("timeout", [None, 0.0, 3.0])
def test_takes_a_waiting_header_and_nothing_after_it(wire: bytes, timeout: float | None) -> None:
    with connected() as (client, server):
        server.settimeout(timeout)
        send(client, server, wire + REQUEST)
        header = reader().read(server.fileno())
        assert isinstance(header, Header)
        assert bytes(header) == wire
        assert server.gettimeout() == timeout
        assert waiting(server) == REQUEST


@pytest.mark.parametrize(
    "data",
    [
        b"",  # nothing yet
        V2[:20],  # part of a header
        V1[:-2],  # a v1 line without its CRLF
        b"GET / HTTP/1.1\r\n\r\n",  # no header
        V2[:-1] + b"\x00",  # a CRC32C that fails
        V2 + V1,  # a second header after the first
        V2 + b"\r\n\r\n",  # the start of a v2 signature after it
        V1 + b"PROX",  # the start of a v1 one
    ],
    ids=[
        "empty",
        "partial",
        "v1-no-crlf",
        "no-header",
        "bad-crc",
        "chained",
        "v2-prefix",
        "v1-prefix",
    ],
)
def test_anything_unsettled_is_left_untouched(data: bytes) -> None:
    with connected() as (client, server):
        if data:
            send(client, server, data)
        assert reader().read(server.fileno()) is None
        assert waiting(server) == data


def test_end_of_stream_is_left_to_the_general_reader() -> None:
    with connected() as (client, server):
        client.shutdown(socket.SHUT_WR)
        time.sleep(0.05)
        assert reader().read(server.fileno()) is None


def test_allow_chained_takes_the_first_header_only() -> None:
    with connected() as (client, server):
        send(client, server, V2 + V1)
        header = reader(allow_chained=True).read(server.fileno())
        assert header is not None
        assert bytes(header) == V2
        assert waiting(server) == V1


def test_options_apply() -> None:
    with connected() as (client, server):
        send(client, server, V1 + REQUEST)
        assert reader(allow_v1=False).read(server.fileno()) is None
        assert reader(verify_checksum=False).read(server.fileno()) is not None
        assert waiting(server) == REQUEST
    with pytest.raises(ValueError, match="max_size"):
        reader(max_size=15)


def test_header_longer_than_one_default_peek() -> None:
    wire = build_v2(CLIENT, SERVICE, tlvs=[(0xE0, b"x" * 6000)])
    with connected() as (client, server):
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        send(client, server, wire + REQUEST)
        assert reader().read(server.fileno()) is None  # over max_size: the general path says so
        header = reader(max_size=8192).read(server.fileno())
        assert header is not None
        assert bytes(header) == wire
        assert waiting(server) == REQUEST


def test_a_reset_connection_is_the_oserror_recv_raises() -> None:
    with connected() as (client, server):
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # linger 0: a reset
        time.sleep(0.05)
        with pytest.raises(ConnectionResetError) as caught:
            reader().read(server.fileno())
        assert caught.value.errno is not None
        assert caught.value.strerror


def test_a_closed_descriptor_is_ebadf() -> None:
    with pytest.raises(OSError, match="Bad file descriptor") as caught:
        reader().read(-1)
    assert caught.value.errno == 9


def test_read_header_takes_a_waiting_header_in_one_core_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``read_header`` on a plain socket with the header waiting never needs the general
    reader; on anything else it does."""

    def general(sock: socket.socket, opts: ServerOptions) -> Header:
        raise AssertionError("the general reader ran")

    monkeypatch.setattr(sync, "_read_waiting", general)
    options = ServerOptions(trusted=["127.0.0.0/8"])
    with connected() as (client, server):
        send(client, server, V2 + REQUEST)
        header = sync.read_header(server, options)
        assert header is not None
        assert header.source == CLIENT
        assert waiting(server) == REQUEST
        send(client, server, V2[:10])
        with pytest.raises(AssertionError, match="general reader"):
            sync.read_header(server, options)


def test_read_header_after_a_partial_core_attempt_waits_for_the_rest() -> None:
    """The core call leaves a partial header alone; the general reader then finishes it."""
    with connected() as (client, server):
        send(client, server, V2[:10])

        def later() -> None:
            time.sleep(0.05)
            client.sendall(V2[10:] + REQUEST)

        import threading

        thread = threading.Thread(target=later)
        thread.start()
        try:
            header = sync.read_header(server, timeout=5)
        finally:
            thread.join()
        assert header is not None
        assert bytes(header) == V2
        assert waiting(server) == REQUEST
