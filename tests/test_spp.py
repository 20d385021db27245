"""Cloudflare Spectrum's Simple Proxy Protocol (SPP): codec, detect/scan, and UDP servers.

The vectors are packed here field by field from Cloudflare's published table
(https://developers.cloudflare.com/spectrum/reference/simple-proxy-protocol-header/), with
``struct`` and ``ipaddress`` rather than the core's builder, so a mistake in the builder
cannot hide the same mistake in the parser.
"""

from __future__ import annotations

import asyncio
import ipaddress
import pathlib
import pickle
import socket
import struct
from typing import Any

import aio_support
import pytest
from aio_support import DatagramReplies, EchoDatagram, Runner
from hypothesis import given
from hypothesis import strategies as st
from proxyproto_rs import (
    SPP_MAGIC,
    SPP_SIZE,
    BuildError,
    IncompleteHeaderError,
    InvalidHeaderError,
    PeerRefusedError,
    SppHeader,
    aio,
    build_spp,
    build_v2,
    detect,
    parse_spp,
    scan,
    sync,
)
from proxyproto_rs.options import ServerOptions

run = aio_support.run

CLIENT = ("203.0.113.7", 40001)
PROXY = ("198.51.100.1", 53)
CLIENT6 = ("2001:db8::7", 443)
PROXY6 = ("2001:db8::1", 65535)


def packed(host: str) -> bytes:
    """16 address bytes: IPv6 as is, IPv4 as ``::ffff:a.b.c.d`` (RFC 4291 mapped)."""
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv4Address):
        return b"\0" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def spp(client: tuple[str, int], proxy: tuple[str, int]) -> bytes:
    """magic (2) | client address (16) | proxy address (16) | client port | proxy port."""
    return (
        struct.pack("!H", 0x56EC)
        + packed(client[0])
        + packed(proxy[0])
        + struct.pack("!HH", client[1], proxy[1])
    )


V4 = spp(CLIENT, PROXY)
V6 = spp(CLIENT6, PROXY6)


def test_published_layout_constants() -> None:
    assert SPP_MAGIC == b"\x56\xec"
    assert SPP_SIZE == len(V4) == 38
    assert V4.hex() == (
        "56ec" + "00000000000000000000ffffcb007107" + "00000000000000000000ffffc6336401"
        "9c41" + "0035"
    )


@pytest.mark.parametrize(
    ("wire", "client", "proxy"), [(V4, CLIENT, PROXY), (V6, CLIENT6, PROXY6)], ids=["v4", "v6"]
)
def test_vectors(wire: bytes, client: tuple[str, int], proxy: tuple[str, int]) -> None:
    for buf in (wire, bytearray(wire), memoryview(wire + b"payload")):
        header = parse_spp(buf)
        assert header.client == client
        assert header.proxy == proxy
        assert header.length == 38
        assert header.to_bytes() == wire
        assert bytes(header) == wire
    assert build_spp(client, proxy) == wire
    assert SppHeader(client, proxy) == parse_spp(wire)


def test_payload_after_the_header_is_not_read() -> None:
    data = V4 + V6  # an SPP-looking payload
    header = parse_spp(data)
    assert header.client == CLIENT
    assert data[header.length :] == V6


def test_bad_magic_is_a_typed_error_at_the_first_differing_byte() -> None:
    for data, offset in [
        (b"\x57\xec" + V4[2:], 0),
        (b"\x56\xed" + V4[2:], 1),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + b"\0" * 8, 0),
        (build_v2(CLIENT, PROXY), 0),
        (b"\xec\x56", 0),
    ]:
        with pytest.raises(InvalidHeaderError) as info:
            parse_spp(data)
        assert info.value.kind == "spp_magic"
        assert info.value.offset == offset


def test_every_truncation_is_incomplete() -> None:
    for n in range(38):
        with pytest.raises(IncompleteHeaderError) as info:
            parse_spp(V6[:n])
        assert info.value.kind == "incomplete"
        assert info.value.offset == n


def test_value_semantics() -> None:
    header = parse_spp(V6)
    assert pickle.loads(pickle.dumps(header)) == header
    assert hash(header) == hash(SppHeader(CLIENT6, PROXY6))
    assert header != parse_spp(V4)
    assert header != V6
    assert repr(header) == "SppHeader(client=('2001:db8::7', 443), proxy=('2001:db8::1', 65535))"
    # A socket's IPv6 4-tuple is accepted, its flow info and scope dropped (no room on the wire).
    assert SppHeader(("2001:db8::7", 443, 0, 0), PROXY6) == header


def test_mapped_ipv6_reads_back_as_ipv4() -> None:
    wire = build_spp(("::ffff:203.0.113.7", 40001), PROXY)
    assert wire == V4
    assert parse_spp(wire).client == CLIENT


@pytest.mark.parametrize(
    ("client", "kind"),
    [
        ("/tmp/sock", "address"),
        (b"\0abstract", "address"),
        (("not-an-ip", 1), "address"),
        (("1.2.3.4", 70000), "port"),
        (("1.2.3.4", -1), "port"),
        (("1.2.3.4",), "address"),
    ],
)
def test_build_refuses_what_spp_cannot_carry(client: Any, kind: str) -> None:
    with pytest.raises(BuildError) as info:
        build_spp(client, PROXY)
    assert info.value.kind == kind
    with pytest.raises(BuildError):
        SppHeader(PROXY, client)


ips = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).filter(lambda ip: ip.ipv4_mapped is None).map(str),
)
ends = st.tuples(ips, st.integers(0, 65535))


@given(ends, ends)
def test_round_trip(client: tuple[str, int], proxy: tuple[str, int]) -> None:
    wire = build_spp(client, proxy)
    assert wire == spp(client, proxy)
    header = parse_spp(wire)
    assert header.client == client
    assert header.proxy == proxy
    assert header.to_bytes() == wire


@given(st.binary(max_size=80))
def test_any_bytes_parse_or_raise_our_errors(data: bytes) -> None:
    """Decided by the magic alone: an error at its first differing byte, else 38 bytes."""
    if data[:2] != SPP_MAGIC[: len(data)]:
        with pytest.raises(InvalidHeaderError) as info:
            parse_spp(data)
        assert info.value.offset == (0 if data[:1] != b"\x56" else 1)
    elif len(data) < 38:
        with pytest.raises(IncompleteHeaderError):
            parse_spp(data)
    else:
        assert parse_spp(data).to_bytes() == data[:38]


# -- detect and scan ------------------------------------------------------------------------


def test_detect_only_when_asked() -> None:
    assert detect(V4) == 0
    assert detect(V4, spp=True) == "spp"
    assert detect(b"\x56", spp=True) is None
    assert detect(b"\x56", spp=False) == 0
    assert detect(b"\x56\x00", spp=True) == 0
    assert detect(build_v2(), spp=True) == 2
    assert detect(b"PROXY ", spp=True) == 1
    assert detect(b"", spp=True) is None


def test_scan_finds_spp_and_proxy_headers_in_order() -> None:
    v2 = build_v2(CLIENT, PROXY)
    blob = b"junk" + V4 + b"payload" + v2 + b"more" + V6 + b"\x56\xec short"
    assert [(at, type(h).__name__) for at, h in scan(blob)] == [(4 + 38 + 7, "Header")]
    found = list(scan(blob, spp=True))
    assert [(at, type(h).__name__) for at, h in found] == [
        (4, "SppHeader"),
        (4 + 38 + 7, "Header"),
        (4 + 38 + 7 + len(v2) + 4, "SppHeader"),
    ]
    assert found[0][1] == parse_spp(V4)


# -- the blocking UDP API ------------------------------------------------------------------


def test_parse_datagram_spp() -> None:
    opts = ServerOptions(spp=True, trusted=["127.0.0.0/8"])
    got = sync.parse_datagram(V4 + b"query", ("127.0.0.1", 9999), opts)
    assert got.payload == b"query"
    assert got.client == CLIENT
    assert got.header == parse_spp(V4)
    with pytest.raises(InvalidHeaderError) as info:  # a PROXY header where SPP is expected
        sync.parse_datagram(build_v2(CLIENT, PROXY) + b"q", ("127.0.0.1", 9999), opts)
    assert info.value.kind == "spp_magic"
    with pytest.raises(IncompleteHeaderError):
        sync.parse_datagram(V4[:30], ("127.0.0.1", 9999), opts)


def test_parse_datagram_trust_rules_apply_to_spp() -> None:
    opts = ServerOptions(spp=True, trusted=["10.0.0.0/8"])
    with pytest.raises(PeerRefusedError) as info:
        sync.parse_datagram(V4 + b"q", ("127.0.0.1", 9), opts)
    assert info.value.kind == "untrusted_peer"
    direct = sync.parse_datagram(V4 + b"q", ("127.0.0.1", 9), opts.replace(untrusted="direct"))
    assert direct == sync.Datagram(V4 + b"q", ("127.0.0.1", 9), None)
    seen: list[Any] = []

    def policy(peer: Any, header: Any, sockname: Any) -> bool:
        seen.append((peer, header, sockname))
        return header.client[0] != "203.0.113.7"

    with pytest.raises(PeerRefusedError) as info:
        sync.parse_datagram(V4, ("10.0.0.1", 9), opts, sockname=("127.0.0.1", 53), policy=policy)
    assert info.value.kind == "policy"
    assert seen == [(("10.0.0.1", 9), parse_spp(V4), ("127.0.0.1", 53))]
    assert sync.parse_datagram(V6 + b"ok", ("10.0.0.1", 9), opts, policy=policy).client == CLIENT6


def test_parse_datagram_proxy_header_rules() -> None:
    dgram = build_v2(CLIENT, PROXY, protocol=2)
    got = sync.parse_datagram(dgram + b"q", ("127.0.0.1", 9))
    assert (got.payload, got.client) == (b"q", CLIENT)
    with pytest.raises(PeerRefusedError) as info:
        sync.parse_datagram(build_v2(CLIENT, PROXY) + b"q", ("127.0.0.1", 9))
    assert info.value.kind == "stream_header_in_datagram"
    local = sync.parse_datagram(build_v2() + b"q", ("127.0.0.1", 9))
    assert local.client == ("127.0.0.1", 9)


def test_blocking_udp_server_with_spp() -> None:
    """A recvfrom loop behind (a stand-in for) Spectrum: real sockets, real datagrams."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as edge,
    ):
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        edge.settimeout(5)
        opts = ServerOptions(spp=True, trusted=["127.0.0.1/32"])
        for datagram in (V4 + b"one", b"\x00garbage", V6 + b"two"):
            edge.sendto(datagram, server.getsockname())
        answers = []
        for _ in range(3):
            data, addr = server.recvfrom(2048)
            try:
                got = sync.parse_datagram(data, addr, opts)
            except InvalidHeaderError as exc:
                answers.append(exc.kind)
                continue
            answers.append(got.client)
            server.sendto(got.payload.upper(), addr)
        assert answers == [CLIENT, "spp_magic", CLIENT6]
        assert edge.recvfrom(100)[0] == b"ONE"
        assert edge.recvfrom(100)[0] == b"TWO"


# -- aio.wrap_datagram -------------------------------------------------------------------


def test_wrap_datagram_with_spp(run: Runner[None]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        factory = aio.wrap_datagram(EchoDatagram, spp=True, trusted=["127.0.0.0/8"])
        server_t, server_p = await loop.create_datagram_endpoint(
            factory, local_addr=("127.0.0.1", 0)
        )
        inner = server_p.inner  # type: ignore[attr-defined]
        edge_t, edge = await loop.create_datagram_endpoint(
            DatagramReplies, remote_addr=server_t.get_extra_info("sockname")
        )
        try:
            edge_t.sendto(V4 + b"hello")
            edge_t.sendto(build_v2(CLIENT, PROXY, protocol=2) + b"wrong header")
            edge_t.sendto(V6[:20])
            edge_t.sendto(V6 + b"world")
            assert await asyncio.wait_for(edge.replies.get(), 5) == b"pong:hello"
            assert await asyncio.wait_for(edge.replies.get(), 5) == b"pong:world"
        finally:
            edge_t.close()
            server_t.close()
        assert inner.got == [
            (b"hello", CLIENT, parse_spp(V4)),
            (b"world", CLIENT6, parse_spp(V6)),
        ]
        assert factory.stats.dropped_by_kind == {"spp_magic": 1, "incomplete": 1}

    run(main())


CORPUS = sorted(
    (pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "corpus" / "spp").iterdir()
)


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_fuzz_corpus_replays(path: pathlib.Path) -> None:
    """The spp target's invariants, from Python: decided by the magic and the length."""
    data = path.read_bytes()
    if data[:2] != SPP_MAGIC[: len(data)]:
        with pytest.raises(InvalidHeaderError):
            parse_spp(data)
    elif len(data) < SPP_SIZE:
        with pytest.raises(IncompleteHeaderError):
            parse_spp(data)
    else:
        header = parse_spp(data)
        assert header.to_bytes() == data[:SPP_SIZE]
        assert build_spp(header.client, header.proxy) == data[:SPP_SIZE]
