"""Builders (build_v1, build_v2, Header.v1/v2/local) and the helpers crc32c, detect,
find_signature and scan (DESIGN "Building", "Helpers"; SPEC rules 8-14, 18-34, 46).

Built bytes are compared with headers assembled independently in tests/_util.py, so the
builder is not only checked against its own parser.
"""

from __future__ import annotations

import ipaddress
import random
import struct
import zlib

import proxyproto_rs as pp
import pytest
from _util import (
    SIG,
    canonical_ip,
    check_vector,
    inet4_block,
    inet6_block,
    ref_crc32c,
    tlv,
    unix_block,
    v2,
    with_crc,
)
from proxyproto_rs import Command, Family, Protocol

A4 = ("192.0.2.1", 56324)
B4 = ("198.51.100.2", 443)
A6 = ("2001:db8::1", 1)
B6 = ("::ffff:127.0.0.1", 65535)

# --- build_v1 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst", "line"),
    [
        (A4, B4, b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"),
        (("0.0.0.0", 0), ("255.255.255.255", 65535), None),
        (A6, B6, b"PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 1 65535\r\n"),
        (("2001:0DB8::0:1", 5), ("::", 6), b"PROXY TCP6 2001:db8::1 :: 5 6\r\n"),
        (("::1", 1, 0, 0), ("::1", 2, 0, 0), b"PROXY TCP6 ::1 ::1 1 2\r\n"),
        (None, None, b"PROXY UNKNOWN\r\n"),
    ],
)
def test_rule8_build_v1(src: object, dst: object, line: bytes | None) -> None:
    """Rules 8, 10-12, D8: canonical text, one space, CRLF; no addresses gives the short
    UNKNOWN that HAProxy sends (rule 45), never ``PROXY UNKNOWN    \\r\\n``."""
    out = pp.build_v1(src, dst)  # type: ignore[arg-type]
    if line is not None:
        assert out == line
    h = check_vector(out)
    assert h == pp.Header.v1(src, dst)  # type: ignore[arg-type]
    if src is not None:
        assert h.source is not None
        assert h.source[1] == src[1]  # type: ignore[index]


@pytest.mark.parametrize(
    ("src", "dst", "kind"),
    [
        (("1.2.3.4", 70000), B4, "port"),
        (("1.2.3.4", -1), B4, "port"),
        (A4, ("1.2.3.4", 65536), "port"),
        (("1.2.3.4", "80"), B4, "port"),
        (("1.2.3.4", 1.5), B4, "port"),
        (("example.com", 1), B4, "address"),
        (("999.0.0.1", 1), B4, "address"),
        (("01.2.3.4", 1), B4, "address"),
        (("", 1), B4, "address"),
        (("1.2.3.4",), B4, "address"),
        ((1, 2, 3), B4, "address"),
        (5, B4, "address"),
        (A4, A6, "mixed_families"),
        (A6, A4, "mixed_families"),
        (A4, None, "missing_address"),
        (None, B4, "missing_address"),
        ("/tmp/a", "/tmp/b", "v1_family"),
        (b"\x00abstract", b"\x00x", "v1_family"),
    ],
)
def test_build_v1_errors(src: object, dst: object, kind: str) -> None:
    """DESIGN: an impossible header raises BuildError with a kind; nothing is emitted."""
    with pytest.raises(pp.BuildError) as exc:
        pp.build_v1(src, dst)  # type: ignore[arg-type]
    assert exc.value.kind == kind
    assert exc.value.offset == -1
    with pytest.raises(pp.BuildError):
        pp.Header.v1(src, dst)  # type: ignore[arg-type]


# --- build_v2 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst", "protocol", "wire"),
    [
        (A4, B4, Protocol.STREAM, v2(0x21, 0x11, inet4_block(A4[0], B4[0], A4[1], B4[1]))),
        (A4, B4, Protocol.DGRAM, v2(0x21, 0x12, inet4_block(A4[0], B4[0], A4[1], B4[1]))),
        (A6, B6, Protocol.STREAM, v2(0x21, 0x21, inet6_block(A6[0], B6[0], A6[1], B6[1]))),
        (A6, B6, Protocol.DGRAM, v2(0x21, 0x22, inet6_block(A6[0], B6[0], A6[1], B6[1]))),
        (
            "/run/a.sock",
            "/run/b",
            Protocol.STREAM,
            v2(0x21, 0x31, unix_block(b"/run/a.sock", b"/run/b")),
        ),
        (b"\x00abs", b"/x", Protocol.DGRAM, v2(0x21, 0x32, unix_block(b"\x00abs", b"/x"))),
        (
            "/" + "p" * 107,
            b"\x00" + b"q" * 107,
            Protocol.STREAM,
            v2(0x21, 0x31, unix_block(b"/" + b"p" * 107, b"\x00" + b"q" * 107)),
        ),
    ],
)
def test_rule23_build_v2_every_family(
    src: pp._core.AddressInput, dst: pp._core.AddressInput, protocol: Protocol, wire: bytes
) -> None:
    """Rules 22, 23, 27: the bytes match a hand-assembled header; parse gives the input."""
    out = pp.build_v2(src, dst, protocol=protocol)
    assert out == wire
    h = check_vector(out)
    assert h == pp.Header.v2(src, dst, protocol=protocol)
    assert h.command is Command.PROXY
    assert h.protocol is protocol
    if isinstance(src, tuple):
        assert h.source == (canonical_ip(src[0]), src[1])
    else:
        assert h.source == src
        assert h.family is Family.UNIX


def test_rule23_build_v2_addresses_only_matches_hand_assembled() -> None:
    """`build_v2(source, destination)` with no other argument (written on the stack) gives
    the bytes of a hand-assembled header and of the general builder (any keyword), for
    random IPv4 and IPv6 endpoints, the port edges and socket names with a zone."""
    rng = random.Random(13)
    cases: list[tuple[tuple[object, ...], tuple[object, ...]]] = [
        (("0.0.0.0", 0), ("255.255.255.255", 65535)),
        (("::", 0), ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)),
        (("fe80::1%eth0", 1, 0, 2), ("fe80::2", 2, 0, 2)),
        (A6, B6),
    ]
    for _ in range(300):
        v4 = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(2)]
        v6 = [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(2)]
        ports = [rng.randrange(65536) for _ in range(2)]
        cases.append(((v4[0], ports[0]), (v4[1], ports[1])))
        cases.append(((v6[0], ports[0]), (v6[1], ports[1])))
    for src, dst in cases:
        hosts = [str(h).split("%")[0] for h in (src[0], dst[0])]
        sport, dport = int(src[1]), int(dst[1])  # type: ignore[call-overload]
        if ":" in hosts[0]:
            wire = v2(0x21, 0x21, inet6_block(hosts[0], hosts[1], sport, dport))
        else:
            wire = v2(0x21, 0x11, inet4_block(hosts[0], hosts[1], sport, dport))
        assert pp.build_v2(src, dst) == wire, (src, dst)  # type: ignore[arg-type]
        assert pp.build_v2(src, dst, tlvs=()) == wire  # type: ignore[arg-type]
    with pytest.raises(pp.BuildError) as plain:
        pp.build_v2(A4, A6)
    with pytest.raises(pp.BuildError) as general:
        pp.build_v2(A4, A6, tlvs=())
    assert (plain.value.kind, str(plain.value)) == (general.value.kind, str(general.value))


def test_rule24_build_v2_without_addresses_is_local_unspec() -> None:
    """Rules 20, 24, 46: no addresses gives LOCAL + UNSPEC, len 0 (the health check)."""
    assert pp.build_v2() == v2(0x20, 0x00)
    assert pp.Header.local() == pp.parse(v2(0x20, 0x00))
    assert pp.Header.v2() == pp.Header.local()
    h = pp.Header.local()
    assert (h.command, h.family, h.protocol, h.source) == (
        Command.LOCAL,
        Family.UNSPEC,
        Protocol.UNSPEC,
        None,
    )


def test_build_v2_local_with_crc_and_tlvs() -> None:
    h = pp.Header.local(crc32c=True, tlvs=[(0x05, b"")])
    assert h.command is Command.LOCAL
    assert [t.type for t in h.tlvs] == [0x03, 0x05]
    assert h.to_bytes() == with_crc(v2(0x20, 0x00, tlv(0x03, bytes(4)) + tlv(0x05, b"")))


def test_build_v2_command_and_protocol_arguments() -> None:
    assert pp.build_v2(command=Command.LOCAL)[12] == 0x20
    assert pp.build_v2(A4, B4, command=Command.PROXY)[12] == 0x21
    # Rules 20, 24, 26: LOCAL and UNSPEC carry no addresses; the receiver would ignore them.
    for kwargs in ({"command": Command.LOCAL}, {"protocol": pp.Protocol.UNSPEC}):
        with pytest.raises(pp.BuildError) as exc:
            pp.build_v2(A4, B4, **kwargs)  # type: ignore[arg-type]
        assert exc.value.kind == "addresses_ignored"
    with pytest.raises(pp.BuildError) as exc:
        pp.build_v2(A4, B4, command=2**70)  # type: ignore[arg-type]
    assert exc.value.kind == "command"
    with pytest.raises(pp.BuildError) as exc:
        pp.build_v2(A4, B4, command=5)  # type: ignore[arg-type]
    assert exc.value.kind == "command"
    with pytest.raises(pp.BuildError) as exc:
        pp.build_v2(A4, B4, protocol=7)  # type: ignore[arg-type]
    assert exc.value.kind == "protocol"


def test_rule46_tlv_order_crc_first_then_named_then_tlvs() -> None:
    """Rule 46 and the stub: CRC32C, ALPN, AUTHORITY, UNIQUE_ID, NETNS, AWS, then ``tlvs``
    in the order given (not sorted)."""
    out = pp.build_v2(
        A4,
        B4,
        crc32c=True,
        alpn=b"h2",
        authority="a.example",
        unique_id=b"uid",
        netns="ns",
        aws_vpce_id="vpce-1",
        tlvs=[pp.Tlv(0xE0, bytes(8)), (0x02, b"second"), (0x01, bytearray(b"x"))],
    )
    expected = with_crc(
        v2(
            0x21,
            0x11,
            inet4_block(A4[0], B4[0], A4[1], B4[1])
            + tlv(0x03, bytes(4))
            + tlv(0x01, b"h2")
            + tlv(0x02, b"a.example")
            + tlv(0x05, b"uid")
            + tlv(0x30, b"ns")
            + tlv(0xEA, b"\x01vpce-1")
            + tlv(0xE0, bytes(8))
            + tlv(0x02, b"second")
            + tlv(0x01, b"x"),
        )
    )
    assert out == expected
    h = check_vector(out)
    assert (h.alpn, h.authority, h.unique_id, h.netns, h.aws_vpce_id) == (
        b"h2",
        "a.example",
        b"uid",
        "ns",
        "vpce-1",
    )


@pytest.mark.parametrize("src_dst", [(A4, B4), (A6, B6), ("/a", "/b"), (None, None)])
def test_rule34_crc32c_true_verifies(src_dst: tuple[object, object]) -> None:
    """Rule 34: the builder's CRC32C is right (checked by an independent CRC)."""
    out = pp.build_v2(*src_dst, crc32c=True, tlvs=[(0x01, b"h2")])  # type: ignore[arg-type]
    h = check_vector(out)
    assert h.tlvs[0].type == 0x03
    assert out == with_crc(out)
    at = out.index(b"\x03\x00\x04") + 3
    assert h.crc32c == ref_crc32c(out[:at] + bytes(4) + out[at + 4 :])


def test_build_v2_without_crc_has_no_crc_tlv() -> None:
    """proxy-protocol adds a CRC TLV to every v2 header (PEERS); we do only when asked."""
    assert pp.build_v2(A4, B4) == v2(0x21, 0x11, inet4_block(A4[0], B4[0], A4[1], B4[1]))


def test_build_v2_largest_header() -> None:
    block = 12
    out = pp.build_v2(A4, B4, tlvs=[(0x04, bytes(65535 - block - 3))])
    assert len(out) == 65551
    assert pp.parse(out, max_size=65551).length == 65551


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"source": ("1.2.3.4", 70000), "destination": B4}, "port"),
        ({"source": ("1.2.3.4", -1), "destination": B4}, "port"),
        ({"source": ("not-an-ip", 1), "destination": B4}, "address"),
        ({"source": A4, "destination": A6}, "mixed_families"),
        ({"source": A4, "destination": "/unix"}, "mixed_families"),
        ({"source": A4}, "missing_address"),
        ({"destination": "/b"}, "missing_address"),
        ({"source": "/" + "a" * 108, "destination": "/b"}, "unix_path"),
        ({"source": "/b", "destination": b"\x00" + b"a" * 108}, "unix_path"),
        ({"source": "/a\x00b", "destination": "/b"}, "unix_path"),
        ({"tlvs": [(0x04, bytes(65536))]}, "tlv_too_large"),
        ({"source": A4, "destination": B4, "tlvs": [(0x04, bytes(65521))]}, "header_too_large"),
        ({"tlvs": [(0x04, bytes(40000)), (0x04, bytes(30000))]}, "header_too_large"),
        ({"tlvs": [(0x20, b"\x01\x00\x00\x00")]}, "tlv_length"),
        ({"tlvs": [(0x20, b"\x01\x00\x00\x00\x00\x21")]}, "tlv_length"),
        ({"tlvs": [(0x05, bytes(129))]}, "tlv_length"),
        ({"unique_id": bytes(129)}, "tlv_length"),
        ({"tlvs": [(0x03, bytes(3))]}, "tlv_length"),
        ({"tlvs": [(0x03, bytes(5))], "crc32c": True}, "tlv_length"),
        ({"tlvs": [(0x03, bytes(4)), (0x03, bytes(4))]}, "tlv"),
        ({"tlvs": [(256, b"")]}, "tlv"),
        ({"tlvs": [(-1, b"")]}, "tlv"),
        ({"tlvs": [(1,)]}, "tlv"),
    ],
)
def test_build_v2_errors(kwargs: dict[str, object], kind: str) -> None:
    """DESIGN: port 70000, bad hosts, mixed families, one address only, UNIX path over 108
    bytes, TLV over 65535, total over 65551, SSL under 5, UNIQUE_ID over 128 and a CRC32C
    TLV that is not 4 bytes or comes twice are BuildErrors; nothing invalid is ever emitted
    (a well-formed CRC32C TLV in tlvs is recomputed: see test_tlv.py)."""
    with pytest.raises(pp.BuildError) as exc:
        pp.build_v2(**kwargs)  # type: ignore[arg-type]
    assert exc.value.kind == kind
    assert isinstance(exc.value, pp.ProxyProtocolError)
    assert isinstance(exc.value, ValueError)
    with pytest.raises(pp.BuildError):
        pp.Header.v2(**kwargs)  # type: ignore[arg-type]


def test_builders_take_any_iterable_of_tlvs() -> None:
    gen = (pp.Tlv(k, bytes([k])) for k in (0xE1, 0xE2))
    h = pp.Header.v2(A4, B4, tlvs=gen)
    assert [t.type for t in h.tlvs] == [0xE1, 0xE2]


def test_builders_take_socket_names() -> None:
    """A socket's 4-tuple IPv6 name works; its scope id has no room on the wire, so a zone
    in the host text is dropped rather than emitted (the parser would refuse it, D6)."""
    assert pp.build_v1(("fe80::1%eth0", 1, 0, 2), ("fe80::2", 2, 0, 2)) == (
        b"PROXY TCP6 fe80::1 fe80::2 1 2\r\n"
    )


def test_header_builders_equal_parse_of_builders() -> None:
    assert pp.Header.v1(A4, B4) == pp.parse(pp.build_v1(A4, B4))
    kw: dict[str, object] = {"crc32c": True, "alpn": b"h2", "tlvs": [(0xE0, b"x")]}
    assert pp.Header.v2(A6, B6, **kw) == pp.parse(pp.build_v2(A6, B6, **kw))  # type: ignore[arg-type]
    assert pp.Header.local(crc32c=True) == pp.parse(pp.build_v2(crc32c=True))


# --- crc32c() ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"", 0),
        (b"123456789", 0xE3069283),  # the CRC-32C check value
        (b"a", 0xC1D04330),
        (bytes(32), 0x8A9136AA),  # RFC 3720 B.4
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_rule34_crc32c_known_values(data: bytes, value: int) -> None:
    assert pp.crc32c(data) == value
    assert pp.crc32c(bytearray(data)) == value
    assert pp.crc32c(memoryview(data)) == value
    assert ref_crc32c(data) == value


def test_crc32c_chains_like_zlib_crc32() -> None:
    data = bytes(range(256)) * 41 + b"tail"
    for cut in (0, 1, 7, 8, 15, 16, 63, 64, 1000, len(data)):
        a, b = data[:cut], data[cut:]
        assert pp.crc32c(b, pp.crc32c(a)) == pp.crc32c(data)
        assert zlib.crc32(b, zlib.crc32(a)) == zlib.crc32(data)  # the model it follows
    assert pp.crc32c(b"", 12345) == 12345 == zlib.crc32(b"", 12345)


def test_crc32c_matches_reference_at_every_length_and_alignment() -> None:
    """Hardware and portable paths agree with a table CRC for short, odd and long inputs."""
    blob = bytes((i * 131 + 7) & 0xFF for i in range(5000))
    for n in (*range(0, 70), 127, 128, 129, 255, 256, 257, 1023, 1024, 4095, 4999):
        for off in (0, 1, 3):
            view = memoryview(blob)[off : off + n]
            assert pp.crc32c(view) == ref_crc32c(bytes(view)), (n, off)


def test_crc32c_large_buffer() -> None:
    big = bytes(range(256)) * 65536  # 16 MiB
    half = len(big) // 2
    assert pp.crc32c(big) == pp.crc32c(big[half:], pp.crc32c(big[:half]))


# --- detect() ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "result"),
    [
        (b"", None),
        (b"P", None),
        (b"PROX", None),
        (b"PROXY", 1),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 1),
        (b"PROXZ", 0),
        (b"PRX", 0),
        (b"GET / HTTP/1.1\r\n", 0),
        (b"\x16\x03\x01", 0),
        (b"\r", None),
        (SIG[:11], None),
        (SIG, 2),
        (SIG + b"\x21", 2),
        (SIG + b"\x20\x00\x00\x00", 2),
        (SIG + b"\x11", 0),  # rule 29: version nibble must be 2
        (SIG + b"\x02", 0),  # the wrong byte of the old 1.8 text
        (SIG[:5] + b"x", 0),
        (b"\r\n\r\n\x00\r\nQUIX", 0),
    ],
)
def test_rule29_detect(data: bytes, result: int | None) -> None:
    """Rule 29, D1: 1, 2, 0 (not PROXY protocol), None (need more), decided at the first
    byte that differs."""
    assert pp.detect(data) == result
    assert pp.detect(bytearray(data)) == result
    assert pp.detect(memoryview(data)) == result


# --- find_signature() and scan() ------------------------------------------------------------


def test_find_signature() -> None:
    buf = b"x" * 100 + SIG + b"yy" + b"PROXY " + b"z"
    assert pp.find_signature(buf) == 100
    assert pp.find_signature(buf, 100) == 100
    assert pp.find_signature(buf, 101) == 114
    assert pp.find_signature(buf, 115) == -1
    assert pp.find_signature(buf, 10_000) == -1
    assert pp.find_signature(b"") == -1
    assert pp.find_signature(b"PROXY") == -1  # the v1 marker is "PROXY " (with its space)
    assert pp.find_signature(b"aPROXY b") == 1
    assert pp.find_signature(bytearray(buf)) == 100
    assert pp.find_signature(memoryview(buf)[50:]) == 50


def test_find_signature_in_a_large_buffer() -> None:
    big = bytearray(64 * 1024 * 1024)
    big[-12:] = SIG
    assert pp.find_signature(big) == len(big) - 12
    big[1000:1006] = b"PROXY "
    assert pp.find_signature(big) == 1000
    assert pp.find_signature(big, 1001) == len(big) - 12


def test_scan_yields_every_valid_header_with_offsets() -> None:
    h1 = pp.build_v1(A4, B4)
    h2 = pp.build_v2(A6, B6, crc32c=True)
    bad_crc = bytearray(pp.build_v2(A4, B4, crc32c=True))
    bad_crc[-1] ^= 1
    buf = b"junk" + h1 + b"PROXY nonsense " + h2 + bytes(bad_crc) + SIG + b"\x21" + b"PROXY "
    found = list(pp.scan(buf))
    assert [off for off, _ in found] == [4, 4 + len(h1) + 15]
    assert [h.to_bytes() for _, h in found] == [h1, h2]
    assert [off for off, _ in pp.scan(buf, verify_checksum=False)][-1] == 4 + len(h1) + 15 + len(h2)
    assert list(pp.scan(b"")) == []


def test_scan_does_not_search_inside_a_valid_header() -> None:
    inner = pp.build_v1(A4, B4)
    outer = pp.build_v2(A4, B4, tlvs=[(0xE5, inner)])
    assert [off for off, _ in pp.scan(outer)] == [0]


def test_signature_constants() -> None:
    assert pp.V2_SIGNATURE == SIG
    assert pp.MAX_V1_SIZE == 107
    assert pp.MAX_V2_SIZE == 65551
    assert isinstance(pp.__version__, str)
    assert struct.calcsize("!BH") == 3
