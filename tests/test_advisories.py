"""Every published attack on a PROXY protocol implementation, replayed here as a named test.

Each test is named after the advisory, CVE or fix that made the shape public, and its
docstring says where it comes from and what went wrong there. The shape is then pushed
through every door bytes come in by, because a bug fixed in one reader often survives in
another:

- ``parse()`` on the whole input;
- ``Parser`` fed every two-piece split of the input and one byte at a time (sampled splits
  for inputs over 4 KiB);
- the asyncio server, ``proxyproto_rs.aio.wrap`` on a loopback listener, on the default loop
  and on uvloop (the ``run`` fixture of tests/aio_support.py);
- ``proxyproto_rs.aio.read_header`` on an ``asyncio.StreamReader``;
- ``proxyproto_rs.sync.read_header`` on a loopback socket.

The expected outcome is stated once per shape (:class:`Accepted` or :class:`Refused`) and
every door must reach it. A shape that shows a real bug in this package is an
``xfail(strict=True)`` whose reason names the bug, so the test starts failing the day it is
fixed and the marker comes off.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_support
import pytest
from _util import connected
from aio_support import Recorder, Runner, close_writer, port_of, read_until_closed
from hypothesis import given, settings
from hypothesis import strategies as st
from proxyproto_rs import (
    MAX_V1_SIZE,
    MAX_V2_SIZE,
    BuildError,
    Command,
    Header,
    Parser,
    Protocol,
    ProxyProtocolError,
    Tlv,
    _wire,
    aio,
    build_v1,
    build_v2,
    detect,
    parse,
    scan,
)
from proxyproto_rs import sync as pp_sync

run = aio_support.run

BLOCK4 = _wire.inet4_block("203.0.113.7", "198.51.100.1", 40001, 443)
CLIENT = ("203.0.113.7", 40001)
SERVICE = ("198.51.100.1", 443)
HTTP = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def tcp4(body_after_block: bytes = b"", *, length: int | None = None) -> bytes:
    """A v2 PROXY/TCP4 header with *body_after_block* (TLVs) after the address block."""
    return _wire.v2(0x21, 0x11, BLOCK4 + body_after_block, length=length)


# -- outcomes and the doors ----------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """The input can never be a header: refused with this error kind (and offset, if given)."""

    kind: str
    offset: int | None = None


@dataclass(frozen=True)
class Accepted:
    """A header of *length* bytes; everything after it is payload, untouched."""

    length: int


Expected = Refused | Accepted


def _check_error(exc: ProxyProtocolError, want: Refused, where: str) -> None:
    assert exc.kind == want.kind, f"{where}: {exc.kind} != {want.kind}"
    if want.offset is not None:
        assert exc.offset == want.offset, f"{where}: offset {exc.offset} != {want.offset}"


def through_parse(data: bytes, want: Expected, **opts: Any) -> Header | None:
    """``parse()`` on the whole input; returns the header when accepted."""
    if isinstance(want, Refused):
        with pytest.raises(ProxyProtocolError) as info:
            parse(data, **opts)
        _check_error(info.value, want, "parse")
        return None
    header = parse(data, **opts)
    assert header.length == want.length
    assert header.to_bytes() == data[: want.length]
    return header


def _splits(n: int) -> Iterator[int]:
    if n <= 4096:
        yield from range(n + 1)
        return
    # Every split of a 64 KiB input is 64 Ki parsers of up to 64 KiB each: sample instead,
    # keeping both ends and the 16-byte fixed part where the length field is read.
    yield from range(0, 40)
    yield from range(40, n - 40, 997)
    yield from range(n - 40, n + 1)


def _feed_all(data: bytes, cuts: Sequence[int], opts: dict[str, Any]) -> tuple[Any, Parser]:
    parser = Parser(**opts)
    pieces = [data[a:b] for a, b in zip((0, *cuts), (*cuts, len(data)), strict=True)]
    try:
        result: Any = None
        for piece in pieces:
            got = parser.feed(piece)
            result = got if got is not None else result
    except ProxyProtocolError as exc:
        return exc, parser
    return result, parser


def through_parser(data: bytes, want: Expected, **opts: Any) -> None:
    """``Parser`` fed every two-piece split and one byte at a time: same outcome as parse."""
    reference = None if isinstance(want, Refused) else parse(data, **opts)
    plans: list[Sequence[int]] = [(cut,) for cut in _splits(len(data))]
    if len(data) <= 4096:
        plans.append(range(1, len(data)))
    for cuts in plans:
        where = f"Parser split at {list(cuts)[:3]}{'...' if len(cuts) > 3 else ''}"
        result, parser = _feed_all(data, cuts, opts)
        if isinstance(want, Refused):
            assert isinstance(result, ProxyProtocolError), f"{where}: not refused: {result!r}"
            _check_error(result, want, where)
            continue
        assert isinstance(result, Header), f"{where}: {result!r}"
        assert result == reference, where
        assert parser.trailing_data == data[want.length :], f"{where}: payload changed"


@dataclass
class Served:
    """What the application behind ``aio.wrap`` saw."""

    header: Header | None
    peername: Any
    sockname: Any
    payload: bytes


async def through_aio(
    chunks: Sequence[bytes], want: Expected, *, eof: bool = True, **opts: Any
) -> Served | None:
    """Send *chunks* (a pause between them) to an ``aio.wrap`` server on 127.0.0.1.

    Accepted: the application is created once and sees the header and the exact payload.
    Refused: the application is never created and the refusal is counted under its kind.
    """
    store: list[Recorder] = []
    factory = aio.wrap(aio_support.recorder_factory(store), **opts)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port_of(server)), 10
        )
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, chunk in enumerate(chunks):
            if i:
                await asyncio.sleep(0.01)
            with contextlib.suppress(ConnectionError, RuntimeError):  # refused mid-way
                writer.write(chunk)
                await writer.drain()
        if eof and not writer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):  # uvloop: already reset
                writer.write_eof()
        await asyncio.wait_for(read_until_closed(reader), 10)
        writer.close()
        with contextlib.suppress(OSError):  # uvloop reports the reset here
            await writer.wait_closed()
        if isinstance(want, Refused):
            for _ in range(500):  # the refusal is counted before the abort; be patient anyway
                if factory.stats.rejected:
                    break
                await asyncio.sleep(0.01)
            assert store == [], "a refused connection reached the application"
            assert factory.stats.rejected == {want.kind: 1}
            assert factory.stats.served == 0
            return None
        assert len(store) == 1, f"not served: {factory.stats.rejected}"
        proto = store[0]
        await asyncio.wait_for(proto.lost, 10)
        return Served(
            proto.extra["proxy_header"],
            proto.extra["peername"],
            proto.extra["sockname"],
            bytes(proto.data),
        )
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)


def aio_doors(run: Runner[Any], data: bytes, want: Expected, **opts: Any) -> list[Served | None]:
    """The aio server fed the input whole, then cut in three pieces."""
    third = max(1, len(data) // 3)
    plans = [[data], [data[:third], data[third : 2 * third], data[2 * third :]]]
    results = []
    for chunks in plans:
        got = run(through_aio([c for c in chunks if c], want, **opts))
        if isinstance(want, Accepted):
            assert got is not None
            assert got.header is not None
            assert got.header.to_bytes() == data[: want.length]
            assert got.payload == data[want.length :], "payload changed on its way to the app"
        results.append(got)
    return results


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    sock.settimeout(5)
    out = b""
    while len(out) < n:
        got = sock.recv(n - len(out))
        if not got:
            break
        out += got
    return out


def through_sync(data: bytes, want: Expected, **opts: Any) -> Header | None:
    """``sync.read_header`` on a socket holding *data*: consumes the header and no more."""
    with connected() as (client, server):
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        if isinstance(want, Refused):
            with pytest.raises(ProxyProtocolError) as info:
                pp_sync.read_header(server, timeout=5, **opts)
            _check_error(info.value, want, "sync.read_header")
            return None
        header = pp_sync.read_header(server, timeout=5, **opts)
        assert header is not None
        assert header.length == want.length
        assert recv_exactly(server, len(data)) == data[want.length :]
        return header


def through_aio_stream(run: Runner[Any], data: bytes, want: Expected, **opts: Any) -> None:
    """``aio.read_header`` on a StreamReader holding *data*: the payload stays in the reader."""

    async def main() -> tuple[Header | ProxyProtocolError, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        try:
            header = await aio.read_header(reader, timeout=5, **opts)
        except ProxyProtocolError as exc:
            return exc, b""
        return header, await reader.read()

    got, rest = run(main())
    if isinstance(want, Refused):
        assert isinstance(got, ProxyProtocolError), f"aio.read_header: not refused: {got!r}"
        _check_error(got, want, "aio.read_header")
        return
    assert isinstance(got, Header), got
    assert got.to_bytes() == data[: want.length]
    assert rest == data[want.length :], "aio.read_header consumed payload"


def every_door(
    run: Runner[Any],
    data: bytes,
    want: Expected,
    server: dict[str, Any] | None = None,
    **codec: Any,
) -> Header | None:
    """All four doors; *codec* options go to every one, *server* options to the servers."""
    header = through_parse(data, want, **codec)
    through_parser(data, want, **codec)
    through_sync(data, want, **codec, **(server or {}))
    through_aio_stream(run, data, want, **codec)
    aio_doors(run, data, want, **codec, **(server or {}))
    return header


# -- CVE-2021-23351: no CRLF within the cap ------------------------------------------------


@pytest.mark.parametrize(
    ("line", "want"),
    [
        (b"PROXY UNKNOWN " + b"a" * 4000, Refused("v1_too_long", 105)),
        # CRs never followed by LF: refused at the first one, far below the cap.
        (b"PROXY UNKNOWN " + b"\r" * 4000, Refused("v1_syntax", 15)),
        (b"PROXY UNKNOWN " + b"a" * 92 + b"\r\r\n", Refused("v1_too_long", 105)),
    ],
    ids=["letters", "lone-crs", "crlf-one-byte-late"],
)
def test_cve_2021_23351_no_crlf_within_the_cap(
    run: Runner[Any], line: bytes, want: Refused
) -> None:
    """CVE-2021-23351 (pires/go-proxyproto before 0.5.0, issue #69, GHSA-fqh4-rh59-xhvf).

    The v1 reader there read from the connection until it met a newline, with no limit, so
    a peer that sent ``PROXY`` and then never a newline made the server buffer without end.
    The spec caps a v1 line at 107 bytes, CRLF included: every reader must give up as soon
    as a CRLF can no longer fit (the CR must stand at byte 105 at the latest), whatever
    follows, and never hold more than the cap meanwhile.
    """
    every_door(run, line, want)
    parser = Parser()
    assert parser.feed(line[: want.offset]) is None  # type: ignore[index]
    assert parser.buffered <= MAX_V1_SIZE
    with pytest.raises(ProxyProtocolError) as info:
        parser.feed(line[want.offset :])  # type: ignore[index]
    assert (info.value.kind, info.value.offset) == (want.kind, want.offset)


def test_cve_2021_23351_unbounded_stream_cut_after_the_cap(run: Runner[Any]) -> None:
    """CVE-2021-23351, the live form: a client streaming 1 MiB of a CRLF-less v1 line.

    The aio server must refuse at the cap and close, not read the megabyte.
    """

    async def main() -> None:
        store: list[Recorder] = []
        factory = aio.wrap(aio_support.recorder_factory(store))
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        with contextlib.suppress(ConnectionError, RuntimeError):  # reset once refused
            writer.write(b"PROXY UNKNOWN ")
            for _ in range(256):
                writer.write(b"x" * 4096)
                await writer.drain()
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        assert store == []
        assert factory.stats.rejected == {"v1_too_long": 1}
        server.close()
        await server.wait_closed()

    run(main())


# -- CVE-2021-23409: a connection that never sends a header --------------------------------


def test_cve_2021_23409_silent_connection_cut_at_the_timeout(run: Runner[Any]) -> None:
    """CVE-2021-23409 (pires/go-proxyproto before 0.6.0, issue #65, PR #74).

    The listener waited for the header with no deadline, so connections that never sent one
    held a socket and a goroutine each until the process ran out of descriptors. Here the
    header has one deadline for all of it: a silent client is closed once ``timeout``
    passes, counted as ``timeout``, and the application never sees it. A client that drips
    a valid header one byte at a time, each byte well inside any idle timeout, is cut at
    the same deadline (a per-read idle timer would let it stay forever).
    """
    # 131 bytes at 10 per second: a per-read idle timer would wait 13 s, the deadline 0.4 s.
    header = build_v2(CLIENT, SERVICE, tlvs=[(0x05, b"u" * 100)])

    async def main(drip: bool) -> float:
        store: list[Recorder] = []
        factory = aio.wrap(aio_support.recorder_factory(store), timeout=0.4)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        started = loop.time()
        if drip:
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with contextlib.suppress(ConnectionError):
                for byte in header[:-1]:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.1)
        assert await asyncio.wait_for(read_until_closed(reader), 10) == b""
        elapsed = loop.time() - started
        await close_writer(writer)
        assert store == []
        assert factory.stats.rejected == {"timeout": 1}
        assert factory.pending == 0
        server.close()
        await server.wait_closed()
        return elapsed

    assert 0.35 <= run(main(drip=False)) < 5
    assert 0.35 <= run(main(drip=True)) < 5

    # The blocking reader: same deadline, whatever the socket's own timeout was.
    with connected() as (_client, srv):
        srv.settimeout(None)
        with pytest.raises(ProxyProtocolError) as info:
            pp_sync.read_header(srv, timeout=0.3)
        assert info.value.kind == "timeout"
        assert srv.gettimeout() is None
    with connected() as (client, srv):
        stop = threading.Event()

        def drip() -> None:
            for byte in header[:-1]:
                if stop.wait(0.1):
                    return
                with contextlib.suppress(OSError):
                    client.send(bytes([byte]))

        dripper = threading.Thread(target=drip)
        dripper.start()
        started = time.monotonic()
        try:
            with pytest.raises(ProxyProtocolError) as info:
                pp_sync.read_header(srv, timeout=0.3)
            assert info.value.kind == "timeout"
            assert time.monotonic() - started < 5
        finally:
            stop.set()
            dripper.join(5)

    # aio.read_header on a stream that stays silent: its documented TimeoutError, in time.
    async def silent_stream() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await aio.read_header(asyncio.StreamReader(), timeout=0.3)
        assert loop.time() - started < 5

    run(silent_stream())
    # The sans-IO parser never decides on its own: nothing fed is "need more", not an error.
    parser = Parser()
    assert parser.feed(b"") is None
    assert parser.needed > 0
    with pytest.raises(ProxyProtocolError) as exc:
        parse(b"")
    assert exc.value.kind == "incomplete"


# -- CVE-2019-14243: address block shorter than the family needs ---------------------------


@pytest.mark.parametrize(
    ("fam", "declared", "needed"),
    [
        (0x11, 0, 12),
        (0x11, 4, 12),
        (0x11, 11, 12),
        (0x12, 0, 12),  # the published reproducer: PROXY, UDP over IPv4, length 0
        (0x21, 35, 36),
        (0x31, 215, 216),
        (0x32, 0, 216),
    ],
    ids=[
        "tcp4-len0",
        "tcp4-len4",
        "tcp4-len11",
        "udp4-len0",
        "tcp6-len35",
        "unix-len215",
        "unix-dgram-len0",
    ],
)
def test_cve_2019_14243_address_block_shorter_than_family(
    run: Runner[Any], fam: int, declared: int, needed: int
) -> None:
    """CVE-2019-14243 (mastercactapus/proxyprotocol, issue #1; caddy-proxyprotocol issue #8).

    The v2 parser read the addresses a family needs without checking that the length field
    left room for them, so a 16-byte PROXY header for UDP over IPv4 declaring 0 bytes of
    addresses made it index past its data and panic: a one-packet crash of the server
    (Caddy with the plugin). The length field
    bounds the header: an address block it cannot hold is refused at the length field
    (byte 14), even when the bytes after the header (here an HTTP request, more than enough
    to fill the block) arrive in the same read.
    """
    data = _wire.v2(0x21, fam, bytes(declared)) + HTTP
    every_door(run, data, Refused("v2_address_truncated", 14))
    assert list(scan(data)) == []  # the scanner refuses the candidate too
    assert needed > declared


# -- HAProxy 488ee7fb: TLV lengths checked against the header, not the read buffer ---------


def test_haproxy_488ee7fb_tlv_crossing_into_the_payload_refused(run: Runner[Any]) -> None:
    """HAProxy commit 488ee7fb ("BUG/MAJOR: proxy_protocol: Properly validate TLV lengths").

    When the payload arrived in the same recv() as a v2 header, HAProxy walked the TLVs to
    the end of what it had read instead of to the end of the header: a TLV whose length ran
    past the header borrowed payload bytes as its value, and the payload's first byte could
    be read as a TLV type. The fix bounds the walk by the header length, refuses a TLV that
    crosses it, and refuses stray bytes after the last TLV. Same here, whatever the split.
    """
    # ALPN declares 10 bytes; the header (length field) holds only 2 of them.
    crossing = tcp4(_wire.tlv(0x01, b"h2", length=10)) + HTTP
    every_door(run, crossing, Refused("tlv_truncated", 29))
    # Two stray bytes after the last TLV: a TLV header cut short inside the header.
    stray = tcp4(_wire.tlv(0x01, b"h2") + b"\x02\x00") + b"\x05hello" + HTTP
    every_door(run, stray, Refused("tlv_truncated"))


def test_haproxy_488ee7fb_payload_that_looks_like_tlvs_stays_payload(run: Runner[Any]) -> None:
    """HAProxy 488ee7fb, the other half: payload after a valid header is never TLVs.

    The bytes after the header here are a well-formed AUTHORITY TLV and a CRC32C TLV; a
    reader that walks TLVs to the end of its buffer would report them (and check a CRC
    over them). They must reach the application as payload, byte for byte.
    """
    header = tcp4(_wire.tlv(0x01, b"h2"))
    payload = _wire.tlv(0x02, b"evil.example") + _wire.tlv(0x03, b"\xde\xad\xbe\xef") + HTTP
    data = header + payload
    got = every_door(run, data, Accepted(len(header)))
    assert got is not None
    assert [t.type for t in got.tlvs] == [0x01]
    assert got.authority is None
    assert got.crc32c is None


# -- Netty: SSL TLV under 5 bytes; SSL TLVs nested inside SSL ------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4])
def test_netty_16866_ssl_tlv_shorter_than_5_bytes(run: Runner[Any], size: int) -> None:
    """Netty PR #16866 ("Reject HAProxyMessages with malformated TLV and not leak memory");
    PEERS.md note 25 (HAProxyMessage.readNextTLV).

    Netty's SSL TLV reader took the client byte and the 4-byte verify field from the value
    without first checking the value had 5 bytes, and retained the buffer before the check
    that should have refused it. A PP2_TYPE_SSL value is at least 5 bytes (client, verify):
    anything shorter is refused at the TLV's length field, at every door.
    """
    data = tcp4(_wire.tlv(0x20, b"\x01" * size)) + HTTP
    every_door(run, data, Refused("tlv_length", 29))


def _nested_ssl(depth: int, innermost: bytes = b"") -> bytes:
    """A PP2_TYPE_SSL TLV holding an SSL TLV holding ... *depth* levels, as one TLV."""
    value = _wire.ssl_value(0x01, 0, [(0x21, b"TLSv1.3")]) + innermost
    for _ in range(depth - 1):
        value = _wire.ssl_value(0x01, 0) + _wire.tlv(0x20, value)
    return _wire.tlv(0x20, value)


@pytest.mark.parametrize("depth", [2, 3, 64])
def test_netty_ghsa_h2qv_fj59_j46j_ssl_tlv_nested_in_ssl(run: Runner[Any], depth: int) -> None:
    """Netty GHSA-h2qv-fj59-j46j (PR #16881, fixed in 4.1.135 / 4.2.15).

    PP2_TYPE_SSL TLVs nested inside an SSL TLV, two levels deep or more, were parsed
    recursively but left out of the flat TLV list, so releasing the message never released
    them: every such header leaked a buffer. (Our own fuzzing found the stack-depth
    variant of the same shape: corpus/parse/fuzz-nested-ssl-tlv-recursion-stack-overflow.)
    Here sub-TLVs are only framed, never parsed as SSL again: the outer SslInfo shows the
    nested TLV as one raw sub-TLV, its fields are not mistaken for the outer one's, and
    every door accepts the header with the payload untouched.
    """
    tlv = _nested_ssl(depth)
    data = tcp4(tlv) + HTTP
    header = every_door(run, data, Accepted(len(data) - len(HTTP)))
    assert header is not None
    assert header.ssl is not None
    assert [t.type for t in header.ssl.tlvs] == [0x20]
    assert header.ssl.version is None  # the TLSv1.3 lives at the innermost level only
    assert header.ssl.tlvs[0].value == tlv[3 + 5 + 3 :]


def test_netty_ghsa_h2qv_fj59_j46j_nesting_to_the_size_cap() -> None:
    """GHSA-h2qv-fj59-j46j at its worst: SSL nested as deep as a 65551-byte header allows.

    Parsing must take no recursion per level (a recursive walk overflowed a 256 KiB thread
    stack at this depth, see fuzz/README.md) and no time per level beyond the framing.
    """
    depth = (MAX_V2_SIZE - 16 - 12 - 100) // 8
    tlv = _nested_ssl(depth)
    data = tcp4(tlv)
    assert len(data) <= MAX_V2_SIZE
    result: list[Any] = []

    def parse_in_small_stack() -> None:
        try:
            h = parse(data, max_size=MAX_V2_SIZE)
            result.append((h.length, h.ssl.client if h.ssl else None, len(pickle.dumps(h))))
        except BaseException as exc:  # pragma: no cover - reported below
            result.append(exc)

    old = threading.stack_size(256 * 1024)
    try:
        worker = threading.Thread(target=parse_in_small_stack)
        worker.start()
        worker.join(30)
    finally:
        threading.stack_size(old)
    assert result, "parse did not finish within 30 s"
    assert not isinstance(result[0], BaseException), result
    assert result[0][:2] == (len(data), 0x01)
    through_parser(data, Accepted(len(data)), max_size=MAX_V2_SIZE)


# -- version byte 0xFF ---------------------------------------------------------------------


@pytest.mark.parametrize("ver_cmd", [0xFF, 0xF1, 0x31, 0x11, 0x01])
def test_spec_version_byte_0xff_refused_at_byte_12(run: Runner[Any], ver_cmd: int) -> None:
    """The spec (doc/proxy-protocol.txt, section 2.2): the high nibble of byte 13 is the
    version and must be 0x2; any other value must be refused. A reader that dispatches on
    the command nibble alone takes 0xF1 for PROXY (the review of Envoy's first v2 reader,
    PR #3668, found that shape for families and protocols: values outside the spec let
    through under PROXY).

    0xFF is the all-ones byte a fuzzer or a corrupted stream produces first; 0x1 and 0x3
    are a confused sender's "v1" and a hypothetical "v3". A full, otherwise valid header
    follows, so only the version byte can be the reason.
    """
    data = _wire.SIGNATURE + bytes([ver_cmd, 0x11, 0x00, 0x0C]) + BLOCK4 + HTTP
    every_door(run, data, Refused("v2_version", 12))
    assert detect(data) == 0  # not a PROXY header, decided at byte 12 too
    assert list(scan(data)) == []


# -- Envoy CVE-2024-23327: a LOCAL header reaching every code path -------------------------

LOCAL_SHAPES = {
    "local-unspec-len0": _wire.v2(0x20, 0x00),
    "local-tcp4-len0": _wire.v2(0x20, 0x11),  # the crash: a family, but no address block
    "local-tcp6-len0": _wire.v2(0x20, 0x21),
    "local-unix-len0": _wire.v2(0x20, 0x31),
    "local-tcp4-with-addresses": _wire.v2(0x20, 0x11, BLOCK4),
    "local-tlvs-only": _wire.v2(0x20, 0x00, _wire.tlv(0x05, b"check-1")),
    "local-junk-body": _wire.v2(0x20, 0x00, b"\xff" * 7),
}


@pytest.mark.parametrize("name", sorted(LOCAL_SHAPES))
def test_envoy_cve_2024_23327_local_header_reaches_every_code_path(
    run: Runner[Any], name: str
) -> None:
    """Envoy CVE-2024-23327 (GHSA-4h5x-x9vh-m29j, fixed in 1.26.7 / 1.27.3 / 1.28.1 / 1.29.1).

    With PROXY protocol on both the listener and the upstream cluster, a downstream v2
    LOCAL header (what an AWS NLB health check sends) carries no addresses, and the code
    that wrote the upstream header dereferenced the absent source and destination: a
    one-packet crash. Here a LOCAL header, with or without a family, with or without an
    address block, TLVs or junk after it, goes through every entry point and every use a
    server makes of a header: parse, Parser, the aio server (served with the real socket
    addresses), the blocking reader (``client_address`` falls back to the socket), every
    accessor, pickling, building a header again from its fields (the Envoy crash path),
    sending it upstream with ``aio.open_connection``, ``scan()`` over a capture, and the
    CLI's text and JSON decoders.
    """
    data = LOCAL_SHAPES[name] + HTTP
    want = Accepted(len(LOCAL_SHAPES[name]))
    header = every_door(run, data, want)
    assert header is not None
    assert header.command == Command.LOCAL
    assert header.source is None
    assert header.destination is None

    for served in aio_doors(run, data, want):
        assert served is not None
        assert isinstance(served.peername, tuple)
        assert served.peername[0] == "127.0.0.1"
        assert served.sockname[0] == "127.0.0.1"
    with connected() as (client, server):
        client.sendall(data)
        got = pp_sync.read_header(server, timeout=5)
        assert pp_sync.client_address(server, got) == server.getpeername()
        assert pp_sync.server_address(server, got) == server.getsockname()
    datagram = pp_sync.parse_datagram(data, ("192.0.2.9", 53))
    assert datagram.client == ("192.0.2.9", 53)
    assert datagram.payload == HTTP

    # Every accessor and every protocol a Header takes part in.
    for attr in (
        "version",
        "family",
        "protocol",
        "tlvs",
        "alpn",
        "authority",
        "crc32c",
        "unique_id",
        "ssl",
        "netns",
        "aws_vpce_id",
        "azure_link_id",
        "gcp_psc_connection_id",
        "source_inet",
        "destination_inet",
    ):
        getattr(header, attr)
    assert header.source_inet is None
    assert list(scan(b"junk" + data)) == [(4, header)]
    assert pickle.loads(pickle.dumps(header)) == header
    assert hash(header) == hash(parse(bytes(header)))
    assert "LOCAL" in repr(header)

    # Regenerate a header for the next hop from the one received (Envoy's crash path).
    rebuilt = build_v2(
        header.source, header.destination, command=header.command, protocol=header.protocol
    )
    again = parse(rebuilt)
    assert again.command == Command.LOCAL
    assert again.source is None

    async def upstream() -> bytes:
        received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.set_result(await reader.readexactly(header.length))
            writer.close()

        server = await asyncio.start_server(sink, "127.0.0.1", 0)
        _reader, writer = await aio.open_connection("127.0.0.1", port_of(server), header=header)
        got = await asyncio.wait_for(received, 10)
        await close_writer(writer)
        server.close()
        await server.wait_closed()
        return got

    assert run(upstream()) == bytes(header)

    for extra in ([], ["--json"]):
        cli = subprocess.run(
            [sys.executable, "-m", "proxyproto_rs", "decode", *extra, bytes(header).hex()],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert b"Traceback" not in cli.stderr
        assert b"LOCAL" in cli.stdout


# -- Envoy CVE-2024-23324: non-UTF-8 TLV bytes never reach a policy as a different string ---

NON_UTF8 = [b"ex\xffample.com", b"ex\xfeample.com", b"\xed\xa0\x80.example", b"ok\xc3"]


def test_envoy_cve_2024_23324_non_utf8_tlv_reaches_policy_unchanged(run: Runner[Any]) -> None:
    """Envoy CVE-2024-23324 (GHSA-gq3v-vvhj-96j6, fixed in 1.26.7 / 1.27.3 / 1.28.1 / 1.29.1).

    Envoy copied PROXY protocol TLV values into request metadata as strings; a value that
    was not valid UTF-8 made the metadata unserialisable, the ext_authz check request was
    dropped, and with failure_mode_allow the request went through unchecked: the
    authorisation step never saw what the client sent. The general shape: a policy deciding
    on TLV text must see the exact bytes, or a string that maps back to them, and never a
    lossy replacement under which two different values compare equal.

    Here text accessors decode like ``os.fsdecode`` (undecodable bytes become lone
    surrogates), so each string round-trips to the wire bytes with ``surrogateescape``,
    and different bytes stay different strings. The policy hook of the aio server and of
    the blocking reader sees exactly that, and ``tlvs`` gives the raw bytes.
    """
    seen: list[tuple[str | None, str | None, str | None, bytes]] = []

    def policy(peer: Any, header: Any, sockname: Any) -> bool:
        ssl_info = header.ssl
        seen.append(
            (
                header.authority,
                header.netns,
                ssl_info.cn if ssl_info else None,
                next(t.value for t in header.tlvs if t.type == 0x02),
            )
        )
        return True

    texts = set()
    for raw in NON_UTF8:
        tlvs = (
            _wire.tlv(0x02, raw)
            + _wire.tlv(0x30, raw)
            + _wire.tlv(0x20, _wire.ssl_value(0x03, 0, [(0x22, raw)]))
        )
        header_bytes = tcp4(tlvs)
        data = header_bytes + HTTP
        seen.clear()
        every_door(run, data, Accepted(len(header_bytes)), server={"policy": policy})
        assert len(seen) == 3  # sync once, the aio server twice (whole, then in pieces)
        for authority, netns, cn, tlv_value in seen:
            assert tlv_value == raw
            for text in (authority, netns, cn):
                assert text is not None
                assert text.encode("utf-8", "surrogateescape") == raw
            texts.add(authority)
    assert len(texts) == len(NON_UTF8), "two different TLV values became the same string"


# -- Netty 409621c: CRLF or NUL injected through builder inputs ----------------------------

INJECTIONS = ["\r\n", "\n", "\r", "\x00", " ", "\r\nPROXY TCP4 6.6.6.6 6.6.6.6 1 1\r\n", "\x1b[2J"]


@pytest.mark.parametrize("bad", INJECTIONS, ids=[repr(s) for s in INJECTIONS])
def test_netty_409621c_crlf_nul_in_builder_inputs_never_reach_the_wire(bad: str) -> None:
    """Netty commit 409621c ("HAProxy: Reject illegal characters in UNIX socket files",
    merged in PR #17065).

    Netty's v1 encoder wrote AF_UNIX addresses into the text line as given, so a path
    holding CR LF (or a space) ended the line early and let its remainder be read as a
    second header or as the start of the application stream: field injection through an
    address. Every text field a builder takes here (hosts, IPv6 zone ids, UNIX paths, the
    string TLVs) is tried with CR, LF, NUL, a space, a whole forged line and an escape
    sequence in three places: either the builder refuses with ``BuildError``, or the bytes
    it writes are one header that parses back to exactly its own length, holding none of
    the injected text where a v1 reader would look for it.
    """
    v4, v6 = ("192.0.2.1", 1), ("2001:db8::1", 2)
    candidates: list[Callable[[], bytes]] = []
    for host in (bad + "192.0.2.1", "192.0.2.1" + bad, "192.0" + bad + ".2.1"):
        candidates += [
            lambda h=host: build_v1((h, 1), v4),
            lambda h=host: build_v1(v4, (h, 1)),
            lambda h=host: build_v2((h, 1), v4),
        ]
    for zone in ("eth0" + bad, bad + "eth0", bad):
        candidates += [
            lambda z=zone: build_v1((f"fe80::1%{z}", 1), v6),
            lambda z=zone: build_v2((f"fe80::1%{z}", 1), v6),
        ]
    candidates += [
        lambda: build_v1(f"/tmp/a{bad}b", "/tmp/c"),
        lambda: build_v1(f"/tmp/a{bad}b".encode(), b"/tmp/c"),
        lambda: build_v2(f"/tmp/a{bad}b", "/tmp/c"),
        lambda: build_v2(v4, ("192.0.2.2", 2), authority=f"a{bad}b"),
        lambda: build_v2(v4, ("192.0.2.2", 2), netns=f"n{bad}s"),
        lambda: build_v2(v4, ("192.0.2.2", 2), aws_vpce_id=f"vpce-{bad}1"),
    ]
    built = 0
    for make in candidates:
        try:
            out = make()
        except BuildError:
            continue
        built += 1
        header = parse(out + HTTP)
        assert header.length == len(out), f"{out!r} is not exactly one header"
        if header.version == 1:
            assert out.count(b"\r\n") == 1, out
            assert out.endswith(b"\r\n"), out
            assert not any(c in out for c in (b"\x00", b"\x1b", b"  ")), out
            assert len(out.split(b" ")) in (2, 6), out
    assert built < len(candidates), "every injection was accepted"


@pytest.mark.parametrize(
    "bad", ["\r\nFORGED log line", "\x1b[2J", "\u202e"], ids=["crlf", "esc", "rlo"]
)
def test_netty_409621c_build_error_message_escapes_control_characters(bad: str) -> None:
    """Netty 409621c, carried into logs: the injected text must not come back as an error
    message either. A refused address is quoted in ``BuildError``'s text, which servers log;
    raw CR LF there forges a log line, ESC sequences rewrite a terminal, U+202E reorders
    what an operator reads. The quoted text must be escaped visibly (as ``repr`` does).
    """
    with pytest.raises(BuildError) as info:
        build_v1(("192.0.2.1" + bad, 1), ("192.0.2.2", 2))
    text = str(info.value)
    assert not any(ch in text for ch in "\r\n\x1b\u202e"), repr(text)


# -- a builder never emits bytes it was not asked for --------------------------------------

_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(str)
_port = st.integers(0, 65535)
_tlv = st.tuples(
    st.integers(0, 255).filter(
        lambda t: t not in (0x01, 0x02, 0x03, 0x04, 0x05, 0x20, 0x30, 0xE0, 0xEA, 0xEE)
    ),
    st.binary(max_size=40),
)


@settings(max_examples=150, deadline=None)
@given(
    v6=st.booleans(),
    hosts=st.tuples(_ipv4, _ipv4, _ipv6, _ipv6),
    ports=st.tuples(_port, _port),
    tlvs=st.lists(_tlv, max_size=5),
    dgram=st.booleans(),
)
def test_proxy_protocol_pypi_builder_emits_only_what_was_asked(
    v6: bool,
    hosts: tuple[str, str, str, str],
    ports: tuple[int, int],
    tlvs: list[tuple[int, bytes]],
    dgram: bool,
) -> None:
    """PEERS.md: the ``proxy-protocol`` package (PyPI 0.11.3) adds a CRC32C TLV to every v2
    header it builds and writes ``PROXY UNKNOWN`` with trailing spaces; libproxyprotocol's
    round trip grew each TLV length by one. Receivers that compare headers byte for byte,
    or have a TLV budget, then refuse or misread them.

    The builders here are checked against ``_wire``, an independent field-by-field packer:
    the bytes are exactly the signature, version/command, family/protocol, length, the
    address block and the TLVs asked for, in order; nothing added (no CRC32C unless asked,
    no padding), nothing dropped, and ``Header.v2`` and a rebuild from a parsed header give
    the same bytes.
    """
    src, dst = (
        ((hosts[2], ports[0]), (hosts[3], ports[1]))
        if v6
        else ((hosts[0], ports[0]), (hosts[1], ports[1]))
    )
    proto = 0x2 if dgram else 0x1
    if v6:
        fam, block = 0x20 | proto, _wire.inet6_block(src[0], dst[0], src[1], dst[1])
    else:
        fam, block = 0x10 | proto, _wire.inet4_block(src[0], dst[0], src[1], dst[1])
    protocol = Protocol.DGRAM if dgram else Protocol.STREAM
    expected = _wire.v2(0x21, fam, block + b"".join(_wire.tlv(t, v) for t, v in tlvs))
    out = build_v2(src, dst, protocol=protocol, tlvs=tlvs)
    assert out == expected
    assert Header.v2(src, dst, protocol=protocol, tlvs=tlvs).to_bytes() == expected
    parsed = parse(out)
    assert parsed.crc32c is None
    assert (
        build_v2(parsed.source, parsed.destination, protocol=parsed.protocol, tlvs=parsed.tlvs)
        == expected
    )
    assert (
        build_v2(
            parsed.source,
            parsed.destination,
            protocol=parsed.protocol,
            tlvs=[Tlv(t.type, t.value) for t in parsed.tlvs],
        )
        == expected
    )
    if not dgram and not tlvs:
        line = build_v1(src, dst)
        family = b"TCP6" if v6 else b"TCP4"
        assert line == b"PROXY %s %s %s %d %d\r\n" % (
            family,
            parse(line).source[0].encode(),
            parse(line).destination[0].encode(),
            src[1],
            dst[1],
        )


def test_proxy_protocol_pypi_builder_fixed_forms_exact() -> None:
    """The fixed forms, byte for byte: the short UNKNOWN line HAProxy and nginx send, the
    16-byte LOCAL header, and a CRC32C TLV only when ``crc32c=True``."""
    assert build_v1(None, None) == b"PROXY UNKNOWN\r\n"
    assert build_v2() == _wire.SIGNATURE + b"\x20\x00\x00\x00"
    assert Header.local().to_bytes() == build_v2()
    plain = build_v2(CLIENT, SERVICE)
    assert plain == _wire.v2(0x21, 0x11, BLOCK4)
    with_crc = build_v2(CLIENT, SERVICE, crc32c=True)
    assert with_crc == _wire.with_crc(_wire.v2(0x21, 0x11, BLOCK4 + _wire.tlv(0x03, bytes(4))))


# -- Exim bug 2018: reading past the header never swallows a TLS ClientHello ---------------


def _client_hello() -> bytes:
    """The first flight of a real TLS client (a ClientHello record), made in memory."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="example.com")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"  # handshake record
    return hello


@pytest.mark.parametrize("version", [1, 2])
def test_exim_bug_2018_clienthello_after_header_not_swallowed(
    run: Runner[Any], version: int, tmp_path: Path
) -> None:
    """Exim commit da88acae ("Handle Proxy Protocol v2 safely as well", Exim bug 2018).

    Exim read the PROXY header with a fixed-size read, so on a TLS-on-connect port the
    start of the client's TLS handshake, sent right behind the header, was read (and then
    dropped) along with it: the handshake failed. The fix reads exactly the header (the v2
    fixed part first, then the length it announces). Here: a real ClientHello behind the
    header, in the same segment, reaches the application whole through parse, Parser (also
    when reading ``needed`` bytes at a time, which must stop exactly at the header's end),
    the aio server with and without TLS after the header, and ``sync.read_header``, which
    must leave every byte of it in the socket (``sync.accept`` then finishes the handshake).
    """
    header = (
        build_v1(CLIENT, SERVICE)
        if version == 1
        else build_v2(CLIENT, SERVICE, tlvs=[(0x05, b"conn-1")], crc32c=True)
    )
    hello = _client_hello()
    data = header + hello
    every_door(run, data, Accepted(len(header)))

    # A reader that asks for ``needed`` bytes each time never reads past the header.
    parser, pos, got = Parser(), 0, None
    while got is None:
        step = max(1, parser.needed)
        got = parser.feed(data[pos : pos + step])
        pos += step
    assert pos == len(header)
    assert parser.trailing_data == b""

    # The blocking reader leaves the ClientHello in the kernel; TLS then starts on it.
    with connected() as (client, server):
        client.sendall(data)
        assert pp_sync.read_header(server, timeout=5) == parse(header)
        assert server.recv(len(hello), socket.MSG_PEEK) == hello

    # TLS terminated by the aio server right after the header, same segment.
    server_ctx, client_ctx = aio_support.tls_contexts(tmp_path)

    # ... and by the blocking accept helper: the handshake runs on the bytes it left.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        replies: list[bytes] = []

        def tls_client() -> None:
            with socket.create_connection(listener.getsockname(), timeout=10) as raw:
                raw.sendall(header)
                with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"ping")
                    replies.append(tls.recv(4))

        client_thread = threading.Thread(target=tls_client)
        client_thread.start()
        listener.settimeout(10)
        tls_sock, client_addr, got_header = pp_sync.accept(listener, timeout=5, ssl=server_ctx)
        with tls_sock:
            assert got_header == parse(header)
            assert client_addr == CLIENT
            assert recv_exactly(tls_sock, 4) == b"ping"
            tls_sock.sendall(b"pong")
        client_thread.join(10)
        assert replies == [b"pong"]

    async def tls_after_header() -> bytes:
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            got.set_result(await reader.readexactly(4))
            writer.write(b"pong")
            await writer.drain()
            writer.close()

        server = await aio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection(
            "127.0.0.1", port, header=header, ssl=client_ctx, server_hostname="localhost"
        )
        writer.write(b"ping")
        reply = await asyncio.wait_for(reader.readexactly(4), 10)
        assert await asyncio.wait_for(got, 10) == b"ping"
        await close_writer(writer)
        server.close()
        await server.wait_closed()
        return reply

    assert run(tls_after_header()) == b"pong"
