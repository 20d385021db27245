"""Helpers shared by the tests of proxyproto_rs.aio (test_aio*.py); not collected itself."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import os
import resource
import shutil
import ssl
import subprocess
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

uvloop: Any
try:
    uvloop = importlib.import_module("uvloop")
except ImportError:  # pragma: no cover - uvloop is a test dependency
    uvloop = None

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], T]

LOOPS = ["asyncio", "uvloop"]
TEST_BOUND = 60.0
"""No test coroutine may run longer than this (tests must never hang)."""


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Iterator[Runner[Any]]:
    """Run a coroutine to completion on the default loop or on uvloop, bounded in time."""
    if request.param == "uvloop" and uvloop is None:  # pragma: no cover
        pytest.skip("uvloop is not installed")
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def runner(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(asyncio.wait_for(coro, TEST_BOUND))

    yield runner
    gc.collect()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def port_of(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


class Recorder(asyncio.Protocol):
    """An inner protocol that records what it sees and echoes nothing unless asked."""

    instances: list[Recorder]

    def __init__(self, *, echo: bool = False, eof_result: bool | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.made: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.events: list[str] = []
        self.echo = echo
        self.eof_result = eof_result
        self.extra: dict[str, Any] = {}
        self.data_waiters: list[tuple[int, asyncio.Future[None]]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        for name in ("peername", "sockname", "proxy_header", "socket", "ssl_object"):
            self.extra[name] = transport.get_extra_info(name)
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.events.append("data")
        self.data += data
        if self.echo:
            assert self.transport is not None
            self.transport.write(data)
        self._wake()

    def _wake(self) -> None:
        for n, fut in list(self.data_waiters):
            if len(self.data) >= n and not fut.done():
                fut.set_result(None)

    async def wait_data(self, n: int) -> bytes:
        if len(self.data) < n:
            fut = asyncio.get_running_loop().create_future()
            self.data_waiters.append((n, fut))
            await fut
        return bytes(self.data)

    def eof_received(self) -> bool | None:
        self.events.append("eof")
        self.eof.set_result(None)
        return self.eof_result

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


def recorder_factory(store: list[Recorder], **kwargs: Any) -> Callable[[], Recorder]:
    def factory() -> Recorder:
        proto = Recorder(**kwargs)
        store.append(proto)
        return proto

    return factory


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes or resets the connection."""
    chunks = []
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except ConnectionError:
        pass
    return b"".join(chunks)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def make_cert(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:  # pragma: no cover
        pytest.skip("openssl CLI not available")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def tls_contexts(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = make_cert(tmp)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


class EchoDatagram(asyncio.DatagramProtocol):
    """A wrapped UDP server: records ``(payload, addr, proxy_header)`` and answers ``pong:``."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, Any, Any]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.got.append((data, addr, self.transport.get_extra_info("proxy_header")))
        self.transport.sendto(b"pong:" + data, addr)


class DatagramReplies(asyncio.DatagramProtocol):
    """The sending side: queues every datagram it receives."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.replies.put_nowait(data)
