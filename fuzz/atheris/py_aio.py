"""Atheris harness `py_aio`: the data path of ``proxyproto_rs.aio`` (stream wrapper and
datagram wrapper), driven by hand with fake transports inside a running event loop (no sockets).

Input: the split_feed format (control byte: k cut bytes and options; k chunk lengths; the
stream). The stream is delivered to ``wrap(...)``'s protocol through ``get_buffer`` /
``buffer_updated`` in the drawn chunks, then EOF, and also offered whole as one datagram to
``wrap_datagram(...)``'s protocol. Invariant: no exception escapes a protocol callback, and
the outcome matches ``parse`` on the whole stream: a valid header starts the application
protocol exactly once, with ``proxy_header`` equal to it, ``peername`` its source (the real
peer for LOCAL/UNSPEC), and the payload after the header delivered untouched, in order,
then EOF, unless the payload starts with a second header's signature: then nothing of it is
delivered and the connection is aborted; an invalid or unfinished header aborts the
connection without ever creating the application protocol. A datagram is delivered
(payload after the header, source address) exactly when its header parses and is not a
PROXY/STREAM one, else dropped and counted.
"""

# A libFuzzer harness, not a pytest module: assertions are the crash oracle, so the
# pytest-style rules do not apply.
# ruff: noqa: PT018

from __future__ import annotations

import asyncio
import logging
from types import ModuleType
from typing import Any

import _split_feed as split_feed
from _common import main

pp: Any = None
aio: Any = None
second_header: Any = None
PEER = ("192.0.2.1", 40000)
SOCK = ("192.0.2.2", 443)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = self.closed = False
        self.protocol: Any = None
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": PEER, "sockname": SOCK}.get(name, default)

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.aborted or self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def write(self, data: Any) -> None:
        pass


class App(asyncio.Protocol):
    instances = 0

    def __init__(self) -> None:
        App.instances += 1
        self.transport: Any = None
        self.data = bytearray()
        self.eof = False

    def connection_made(self, transport: Any) -> None:
        assert self.transport is None
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert not self.eof
        self.data += data

    def eof_received(self) -> bool:
        self.eof = True
        return False


class BufferedApp(App, asyncio.BufferedProtocol):
    """Hands out a 7-byte buffer, to exercise partial copies of the backlog."""

    def __init__(self) -> None:
        super().__init__()
        self.buf = bytearray(7)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        assert not self.eof
        self.data += self.buf[:nbytes]


class DgramApp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, Any]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append((data, addr))


class FakeDgramTransport(asyncio.DatagramTransport):
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def stream_path(stream: bytes, cuts: bytes, opts: dict[str, Any], buffered: bool) -> None:
    try:
        expected = pp.parse(stream, **opts)
    except pp.ProxyProtocolError:
        expected = None
    App.instances = 0
    apps: list[App] = []

    def factory() -> App:
        app = BufferedApp() if buffered else App()
        apps.append(app)
        return app

    proto = aio.wrap(factory, timeout=None, **opts)()
    t = FakeTransport()
    proto.connection_made(t)
    pos, cut_iter = 0, iter(cuts)
    while pos < len(stream) and not t.is_closing():
        n = min(next(cut_iter, len(stream) - pos), len(stream) - pos)
        chunk = stream[pos : pos + n]
        while chunk:  # the socket fills at most the buffer it was given
            buf = proto.get_buffer(len(chunk))
            k = min(len(buf), len(chunk))
            buf[:k] = chunk[:k]
            proto.buffer_updated(k)
            chunk = chunk[k:]
        pos += n
    if not t.is_closing():
        proto.eof_received()
    proto.connection_lost(None)
    if expected is None:
        assert t.aborted and not apps, "bad or unfinished header served"
        return
    assert len(apps) == 1 and App.instances == 1
    app = apps[0]
    assert app.transport.get_extra_info("proxy_header") == expected
    if second_header(stream[expected.length :]):
        assert t.aborted and not app.data and not app.eof, "chained header served"
        return
    want_peer = expected.source if expected.source is not None else PEER
    assert app.transport.get_extra_info("peername") == want_peer
    assert bytes(app.data) == stream[expected.length :], "payload changed"
    assert app.eof and not t.aborted


def datagram_path(stream: bytes, opts: dict[str, Any]) -> None:
    dopts = {k: v for k, v in opts.items() if k != "allow_v2"}
    factory = aio.wrap_datagram(DgramApp, reply_via_proxy=True, **dopts)
    proto = factory()
    proto.connection_made(FakeDgramTransport())
    proto.datagram_received(stream, PEER)
    try:
        h = pp.parse(stream, allow_v2=True, **dopts)
    except pp.ProxyProtocolError:
        h = None
    inner = proto.inner
    if h is None or (h.command == pp.Command.PROXY and h.protocol == pp.Protocol.STREAM):
        assert inner.got == [] and factory.stats.dropped == 1
    else:
        assert inner.got == [(stream[h.length :], h.source if h.source is not None else PEER)]


async def both_paths(data: bytes) -> None:
    control, cuts, stream, opts = split_feed.decode(data, haproxy_limits=False)
    stream_path(stream, cuts, opts, buffered=bool(control & 0x40 and control & 0x02))
    datagram_path(stream, opts)


LOOP = asyncio.new_event_loop()
"""One loop for every input: the protocols read the running loop (its clock, the pending
set's deadlines), as they do under a real server."""


def test_one(data: bytes) -> None:
    if not data:
        return
    LOOP.run_until_complete(both_paths(data))


def setup(mod: ModuleType) -> None:
    global pp, aio, second_header
    pp = mod
    aio = mod.aio
    from proxyproto_rs.aio._protocol import second_header

    logging.getLogger("proxyproto_rs").setLevel(logging.CRITICAL + 1)
    logging.getLogger("proxyproto_rs.aio").setLevel(logging.CRITICAL + 1)


if __name__ == "__main__":
    main(test_one, setup)
