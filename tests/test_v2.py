"""v2 binary header: SPEC §2.2, rules 18-31, 34, 43-44, decisions D1-D3, D7.

Headers are assembled byte by byte with tests/_util.py (independently of the core's
builder); every valid one goes through ``check_vector``, every rejection through
``check_invalid``.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import proxyproto_rs as pp
import pytest
from _util import (
    PAYLOAD,
    SIG,
    check_invalid,
    check_vector,
    find_crc_value,
    inet4_block,
    inet6_block,
    ref_crc32c,
    tlv,
    unix_block,
    v2,
    with_crc,
)
from proxyproto_rs import Command, Family, Protocol

VECTORS = Path(__file__).parent / "vectors"

TCP4_BLOCK = inet4_block("192.0.2.1", "198.51.100.2", 56324, 443)
TCP6_BLOCK = inet6_block("2001:db8::1", "::ffff:127.0.0.1", 1, 65535)


# --- valid headers -------------------------------------------------------------------------


def test_rule20_local_len0() -> None:
    """Rules 20, 24: LOCAL/UNSPEC, len 0 (a health check): no addresses."""
    h = check_vector(v2(0x20, 0x00))
    assert (h.version, h.command, h.family, h.protocol) == (
        2,
        Command.LOCAL,
        Family.UNSPEC,
        Protocol.UNSPEC,
    )
    assert h.source is None
    assert h.destination is None
    assert h.length == 16
    assert h.tlvs == ()


@pytest.mark.parametrize(
    ("fam", "block", "family", "protocol", "src", "dst"),
    [
        pytest.param(
            0x11,
            TCP4_BLOCK,
            Family.INET,
            Protocol.STREAM,
            ("192.0.2.1", 56324),
            ("198.51.100.2", 443),
            id="tcp4",
        ),
        pytest.param(
            0x12,
            inet4_block("0.0.0.0", "255.255.255.255", 0, 65535),
            Family.INET,
            Protocol.DGRAM,
            ("0.0.0.0", 0),
            ("255.255.255.255", 65535),
            id="udp4",
        ),
        pytest.param(
            0x21,
            TCP6_BLOCK,
            Family.INET6,
            Protocol.STREAM,
            ("2001:db8::1", 1),
            ("::ffff:127.0.0.1", 65535),
            id="tcp6-canonical-D8",
        ),
        pytest.param(
            0x22,
            inet6_block("::", "fe80::200:f8ff:fe21:67cf", 53, 5353),
            Family.INET6,
            Protocol.DGRAM,
            ("::", 53),
            ("fe80::200:f8ff:fe21:67cf", 5353),
            id="udp6",
        ),
        pytest.param(
            0x31,
            unix_block(b"/run/client.sock", b"/run/server.sock"),
            Family.UNIX,
            Protocol.STREAM,
            "/run/client.sock",
            "/run/server.sock",
            id="unix-stream-paths",
        ),
        pytest.param(
            0x32,
            unix_block(b"\x00abstract\x00name", b"/x"),
            Family.UNIX,
            Protocol.DGRAM,
            b"\x00abstract\x00name",
            "/x",
            id="unix-dgram-abstract-rule27",
        ),
        pytest.param(
            0x31,
            unix_block(b"/" + b"p" * 107, b"/" + b"q" * 107),
            Family.UNIX,
            Protocol.STREAM,
            "/" + "p" * 107,
            "/" + "q" * 107,
            id="unix-108-bytes-no-NUL",
        ),
    ],
)
def test_rule23_proxy_families_three_ways(
    fam: int,
    block: bytes,
    family: Family,
    protocol: Protocol,
    src: object,
    dst: object,
) -> None:
    """Rules 21-23, 27: PROXY with each family/transport; addresses like a socket's."""
    h = check_vector(v2(0x21, fam, block))
    assert h.command is Command.PROXY
    assert h.family is family
    assert h.protocol is protocol
    assert h.source == src
    assert h.destination == dst
    assert h.tlvs == ()


def test_rule27_abstract_unix_address_keeps_leading_nul() -> None:
    """Rule 27: an abstract address (first byte NUL) is bytes, not cut at the first NUL.

    The 108-byte field's NUL padding is removed (DESIGN: like Python's socket module, which
    returns the name with the length it was bound with); NULs inside the name are kept."""
    h = pp.parse(v2(0x21, 0x31, unix_block(b"\x00sock\x00x", b"\x00")))
    assert h.source == b"\x00sock\x00x"
    # 108 NULs cannot be told from an unnamed socket, which Python names "".
    assert h.destination == ""


def test_rule27_unix_path_ends_at_its_first_nul() -> None:
    """Rule 27: a pathname (first byte not NUL) ends at its first NUL, like sun_path; an
    abstract name keeps inner NULs."""
    h = pp.parse(v2(0x21, 0x31, unix_block(b"/a\x00junk", b"\x00abs\x00\x00x")))
    assert h.source == "/a"
    assert h.destination == b"\x00abs\x00\x00x"


def test_rule27_unix_path_non_utf8_decodes_like_fsdecode() -> None:
    import os

    h = pp.parse(v2(0x21, 0x31, unix_block(b"/tmp/\xff\xfe", b"/tmp/ok")))
    assert h.source == os.fsdecode(b"/tmp/\xff\xfe")
    assert h.destination == "/tmp/ok"


@pytest.mark.parametrize("fam", [0x00, 0x01, 0x02, 0x10, 0x20, 0x30])
@pytest.mark.parametrize("body_len", [0, 12, 36, 216, 300])
def test_D2_proxy_with_unspec_nibble(fam: int, body_len: int) -> None:
    """D2, rules 24-26: PROXY with an UNSPEC family or transport is accepted with no
    addresses; the length is honoured and the block skipped."""
    body = bytes([0xFF]) * body_len  # frames as no TLV at all
    h = check_vector(v2(0x21, fam, body))
    assert h.command is Command.PROXY
    assert h.family == fam >> 4
    assert h.protocol == fam & 0xF
    assert h.source is None
    assert h.destination is None
    assert h.length == 16 + body_len
    assert h.tlvs == ()


def test_D2_unspec_with_tlvs_from_byte_16() -> None:
    body = tlv(0x01, b"h2") + tlv(0x02, b"example.com")
    h = check_vector(v2(0x21, 0x00, body))
    assert h.alpn == b"h2"
    assert h.authority == "example.com"


@pytest.mark.parametrize(
    "fam",
    [0x11, 0x12, 0x21, 0x22, 0x31, 0x32, 0x13, 0x41, 0xF0, 0xFF, 0x4F, 0x03],
)
@pytest.mark.parametrize("body_len", [0, 5, 12, 36, 216, 1000])
def test_D3_local_accepts_any_family_byte_and_length(fam: int, body_len: int) -> None:
    """D3, rules 20, 26: LOCAL is accepted whatever byte 13 and the length say; the length
    is honoured; there are never addresses."""
    body = bytes([0xFF]) * body_len
    h = check_vector(v2(0x20, fam, body))
    assert h.command is Command.LOCAL
    assert h.source is None
    assert h.destination is None
    assert h.length == 16 + body_len
    assert h.tlvs == ()


def test_D3_local_tlvs_after_address_block() -> None:
    """D3: LOCAL with an INET block then TLVs that only frame from byte 28."""
    body = TCP4_BLOCK + tlv(0x02, b"example.com")
    # The address block itself must not frame as TLVs from byte 16 for this to be decisive.
    h = check_vector(v2(0x20, 0x11, body))
    assert h.source is None
    assert h.tlvs == (pp.Tlv(0x02, b"example.com"),)
    assert h.authority == "example.com"


def test_D3_local_tlvs_from_byte_16() -> None:
    body = tlv(0x01, b"h2") + tlv(0x05, b"id-1")
    h = check_vector(v2(0x20, 0x21, body))
    assert h.tlvs == (pp.Tlv(0x01, b"h2"), pp.Tlv(0x05, b"id-1"))


def test_D3_local_crc_is_verified() -> None:
    """D3, rule 44: a CRC32C TLV in a LOCAL header is verified."""
    good = with_crc(v2(0x20, 0x00, tlv(0x03, b"\0\0\0\0") + tlv(0x05, b"")))
    assert pp.parse(good).crc32c == struct.unpack("!I", good[19:23])[0]
    bad = good[:19] + bytes([good[19] ^ 1]) + good[20:]
    check_invalid(bad, "checksum_mismatch", 19, pp.ChecksumError, raise_at=len(bad) - 1)
    assert pp.parse(bad, verify_checksum=False).crc32c is not None


def aws_nlb_health_check() -> bytes:
    """SPEC rule 44 (kubernetes#57250): LOCAL, family byte 0x11, len 84 and no address
    block: a CRC32C TLV, then a NOOP TLV of 74 zero bytes."""
    body = tlv(0x03, b"\0\0\0\0") + tlv(0x04, bytes(74))
    assert len(body) == 84
    return with_crc(v2(0x20, 0x11, body))


def test_rule44_aws_nlb_health_check() -> None:
    """Rule 44, D3: the NLB's LOCAL health check parses, its CRC is read from byte 16 and
    verified, and the NOOP is kept. Damaged, its CRC32C no longer marks byte 16, so D3's
    order reads after the address block, where no CRC32C is (HAProxy 2.6 accepts it too)."""
    data = aws_nlb_health_check()
    h = check_vector(data)
    assert h.command is Command.LOCAL
    assert h.family is Family.INET
    assert h.length == 100
    assert h.source is None
    assert h.crc32c == struct.unpack("!I", data[19:23])[0]
    assert h.tlvs == (pp.Tlv(0x03, data[19:23]), pp.Tlv(0x04, bytes(74)))
    bad = data[:22] + bytes([data[22] ^ 0x80]) + data[23:]
    assert pp.parse(bad).crc32c is None
    # Without an address block to choose instead, a wrong CRC32C is caught.
    local = with_crc(v2(0x20, 0x00, tlv(0x03, bytes(4)) + tlv(0x04, bytes(8))))
    bad = local[:22] + bytes([local[22] ^ 0x80]) + local[23:]
    check_invalid(bad, "checksum_mismatch", 19, pp.ChecksumError, raise_at=len(bad) - 1)


def test_rule26_local_length_honoured_then_payload() -> None:
    """Rule 26, go-proxyproto PR #12: a LOCAL header's len bytes are consumed, so no junk
    precedes the payload."""
    data = v2(0x20, 0x00, b"\xee" * 40)
    p = pp.Parser()
    assert p.feed(data + b"GET /") is not None
    assert p.trailing_data == b"GET /"


# --- TLV-heavy headers ---------------------------------------------------------------------

SSL_SUBS = [
    (0x21, b"TLSv1.3"),
    (0x22, b"client-cn"),
    (0x23, b"TLS_AES_256_GCM_SHA384"),
    (0x24, b"RSA-SHA256"),
    (0x25, b"RSA2048"),
    (0x26, b"secp256r1"),
    (0x27, b"rsa_pss_rsae_sha256"),
    (0x28, b"\x30\x82\x01\x0a" + bytes(range(40))),
]


def ssl_tlv(client: int = 0x07, verify: int = 0) -> bytes:
    from _util import ssl_value

    return tlv(0x20, ssl_value(client, verify, SSL_SUBS))


HEAVY_TLVS = [
    tlv(0x01, b"h2"),
    tlv(0x02, b"proxy.example.test"),
    tlv(0x05, b"uid-" + b"u" * 124),
    ssl_tlv(),
    tlv(0x30, b"netns-blue"),
    tlv(0xEA, b"\x01vpce-0123456789abcdef0"),
    tlv(0xEE, b"\x01" + struct.pack("<I", 0x12345678)),
    tlv(0xE0, struct.pack(">Q", 0x0102030405060708)),
    tlv(0x04, b""),
    tlv(0x04, b"\0\0\0"),
    tlv(0x01, b"http/1.1"),  # duplicate: kept, accessor gives the first
    tlv(0xF7, b"experimental"),
    tlv(0x99, b""),  # unassigned
    tlv(0xFF, b"\xff" * 3),
]


@pytest.mark.parametrize(
    ("fam", "block"),
    [(0x11, TCP4_BLOCK), (0x21, TCP6_BLOCK), (0x31, unix_block(b"/a", b"/b"))],
    ids=["tcp4", "tcp6", "unix"],
)
@pytest.mark.parametrize("crc_at", ["first", "last", "none"])
def test_rule31_tlv_heavy_header(fam: int, block: bytes, crc_at: str) -> None:
    """Rules 30-40, 46, D4: every TLV kept in wire order with duplicates and unknown types;
    a CRC32C first (HAProxy's order) or last verifies; typed accessors read them."""
    crc = [tlv(0x03, b"\0\0\0\0")]
    tlvs = (crc if crc_at == "first" else []) + HEAVY_TLVS + (crc if crc_at == "last" else [])
    data = v2(0x21, fam, block + b"".join(tlvs))
    if crc_at != "none":
        data = with_crc(data)
    h = check_vector(data)
    kinds = [t.type for t in h.tlvs]
    expected = [t[0] for t in tlvs]
    assert kinds == expected
    assert (
        b"".join(struct.pack("!BH", t.type, len(t.value)) + t.value for t in h.tlvs)
        == (data[16 + len(block) :])
    )
    assert h.alpn == b"h2"
    assert h.authority == "proxy.example.test"
    assert h.unique_id == b"uid-" + b"u" * 124
    assert h.netns == "netns-blue"
    assert h.aws_vpce_id == "vpce-0123456789abcdef0"
    assert h.azure_link_id == 0x12345678
    assert h.gcp_psc_connection_id == 0x0102030405060708
    if crc_at == "none":
        assert h.crc32c is None
    else:
        assert h.crc32c is not None
        at = find_crc_value(data)
        assert h.crc32c == struct.unpack("!I", data[at : at + 4])[0]
        assert h.crc32c == ref_crc32c(data[:at] + bytes(4) + data[at + 4 :])
    ssl = h.ssl
    assert ssl is not None
    assert (ssl.client, ssl.verify) == (0x07, 0)
    assert ssl.client_ssl
    assert ssl.client_cert_conn
    assert ssl.client_cert_sess
    assert ssl.client_cert_verified
    assert (ssl.version, ssl.cn, ssl.cipher) == (
        "TLSv1.3",
        "client-cn",
        "TLS_AES_256_GCM_SHA384",
    )
    assert (ssl.sig_alg, ssl.key_alg, ssl.group, ssl.sig_scheme) == (
        "RSA-SHA256",
        "RSA2048",
        "secp256r1",
        "rsa_pss_rsae_sha256",
    )
    assert ssl.client_cert == SSL_SUBS[-1][1]
    assert [(t.type, t.value) for t in ssl.tlvs] == SSL_SUBS


def test_real_captures_v2() -> None:
    """Real headers captured from HAProxy (tests/vectors), three ways; the TLS one has its
    CRC32C first and every SSL sub-TLV HAProxy can send."""
    for path in sorted(VECTORS.glob("haproxy-v2-*.bin")):
        check_vector(path.read_bytes())
    h = pp.parse((VECTORS / "haproxy-v2-tls-tlvs.bin").read_bytes())
    assert h.tlvs[0].type == 0x03
    assert h.ssl is not None
    assert h.ssl.cn == "interop-client"
    assert h.ssl.client_cert_verified


def test_D7_max_size_65551_accepts_the_largest_header() -> None:
    """D7: callers may raise max_size to 16 + 65535."""
    data = v2(0x21, 0x11, TCP4_BLOCK + tlv(0x04, bytes(65535 - 12 - 3)))
    assert len(data) == 65551 == pp.MAX_V2_SIZE
    h = pp.parse(data, max_size=65551)
    assert h.length == 65551
    p = pp.Parser(max_size=65551)
    assert p.feed(data[:1000]) is None
    assert p.needed == 65551 - 1000
    assert p.feed(data[1000:] + b"x") == h
    assert p.trailing_data == b"x"


def test_D7_max_size_bounds_v2_exactly() -> None:
    data = v2(0x21, 0x11, TCP4_BLOCK + tlv(0x04, bytes(100)))
    assert pp.parse(data, max_size=len(data)).length == len(data)
    check_invalid(
        data, "header_too_large", 14, pp.HeaderTooLargeError, raise_at=15, max_size=len(data) - 1
    )


# --- rejections ----------------------------------------------------------------------------


@pytest.mark.parametrize("k", range(12))
def test_rule18_signature_mismatch_fails_at_that_byte(k: int) -> None:
    """Rule 18, D1: a v2 signature mismatch at byte k fails at byte k (the first byte
    starts v1 detection instead, still at byte 0)."""
    data = bytearray(v2(0x21, 0x11, TCP4_BLOCK))
    data[k] ^= 0x40
    check_invalid(bytes(data), "not_proxy_protocol", k)


def test_rule18_signature_has_a_nul() -> None:
    assert pp.V2_SIGNATURE == SIG
    assert SIG[4] == 0


@pytest.mark.parametrize("ver_cmd", [0x01, 0x11, 0x31, 0xF1, 0x10, 0x30, 0x00])
def test_rule19_version_must_be_2(ver_cmd: int) -> None:
    check_invalid(v2(ver_cmd, 0x11, TCP4_BLOCK), "v2_version", 12)


@pytest.mark.parametrize("ver_cmd", [0x22, 0x23, 0x2F])
def test_rule19_unknown_command_rejected(ver_cmd: int) -> None:
    check_invalid(v2(ver_cmd, 0x11, TCP4_BLOCK), "v2_command", 12)


@pytest.mark.parametrize("fam", [0x41, 0x51, 0xF1, 0x40])
def test_rule22_unknown_family_rejected_under_proxy(fam: int) -> None:
    check_invalid(v2(0x21, fam, TCP4_BLOCK), "v2_family", 13)


@pytest.mark.parametrize("fam", [0x13, 0x1F, 0x23, 0x33, 0x03])
def test_rule22_unknown_protocol_rejected_under_proxy(fam: int) -> None:
    check_invalid(v2(0x21, fam, TCP4_BLOCK), "v2_protocol", 13)


@pytest.mark.parametrize(
    ("fam", "short"),
    [(0x11, 0), (0x11, 4), (0x11, 11), (0x12, 8), (0x21, 12), (0x21, 35), (0x31, 215)],
)
def test_rule43_truncated_address_block_rejected(fam: int, short: int) -> None:
    """Rules 27, 28, 43 (CVE-2019-14243): PROXY whose length cannot hold the address
    block is invalid, reported at the length field (byte 14)."""
    data = v2(0x21, fam, bytes(short))
    for buf in (data, data + PAYLOAD):
        with pytest.raises(pp.InvalidHeaderError) as exc:
            pp.parse(buf)
        assert type(exc.value) is pp.InvalidHeaderError
        assert (exc.value.kind, exc.value.offset) == ("v2_address_truncated", 14)
        p = pp.Parser()
        with pytest.raises(pp.InvalidHeaderError) as exc:
            p.feed(buf)
        assert (exc.value.kind, exc.value.offset) == ("v2_address_truncated", 14)


@pytest.mark.parametrize(
    ("fam", "short"),
    [
        (0x11, 0),
        (0x11, 4),
        (0x11, 11),
        (0x12, 8),
        (0x21, 12),
        (0x21, 35),
        (0x31, 215),
    ],
)
def test_D1_truncated_address_block_fails_when_length_is_read(fam: int, short: int) -> None:
    """D1, rule 43: the length field alone makes the header impossible, so a Parser fed
    byte by byte must raise on byte 15, not wait for the short body."""
    data = v2(0x21, fam, bytes(short))
    check_invalid(data, "v2_address_truncated", 14, raise_at=15)


def test_D7_oversize_length_fails_when_16_bytes_are_in() -> None:
    """D7: a length over max_size (default 4096) raises HeaderTooLargeError as soon as the
    length field is read: no waiting for the body."""
    data = v2(0x21, 0x11, b"", length=4096 - 16 + 1)
    check_invalid(data, "header_too_large", 14, pp.HeaderTooLargeError, raise_at=15)
    data = v2(0x21, 0x11, b"", length=0xFFFF)
    check_invalid(data, "header_too_large", 14, pp.HeaderTooLargeError, raise_at=15)
    check_invalid(
        v2(0x20, 0x00, b"", length=1),
        "header_too_large",
        14,
        pp.HeaderTooLargeError,
        raise_at=15,
        max_size=16,
    )


@pytest.mark.parametrize(
    "bad",
    [
        15,
        65552,
        0,
        -1,
        2**64,
    ],
)
def test_D7_max_size_is_checked(bad: int) -> None:
    """D7 and the stub: max_size outside 16-65551 is a ValueError."""
    with pytest.raises(ValueError, match="max_size"):
        pp.Parser(max_size=bad)
    with pytest.raises(ValueError, match="max_size"):
        pp.parse(v2(0x20, 0), max_size=bad)


def test_both_versions_disallowed_is_a_value_error() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError, the message is free
        pp.Parser(allow_v1=False, allow_v2=False)


def test_v2_not_allowed() -> None:
    check_invalid(v2(0x21, 0x11, TCP4_BLOCK), "version_not_allowed", 0, allow_v2=False)
    with pytest.raises(pp.InvalidHeaderError) as exc:
        pp.parse(b"\r\n\r\n\x00", allow_v2=False)
    assert (exc.value.kind, exc.value.offset) == ("version_not_allowed", 0)


def test_v2_only_parser_rejects_v1_and_accepts_v2() -> None:
    check_invalid(b"PROXY UNKNOWN\r\n", "version_not_allowed", 0, allow_v1=False)
    check_vector(v2(0x21, 0x11, TCP4_BLOCK), allow_v1=False)
    check_vector(b"PROXY UNKNOWN\r\n", allow_v2=False)


def tcp4_with(*tlvs: bytes) -> bytes:
    return v2(0x21, 0x11, TCP4_BLOCK + b"".join(tlvs))


@pytest.mark.parametrize(
    ("tail", "kind", "offset"),
    [
        pytest.param(tlv(0x01, b"h2", length=3), "tlv_truncated", 29, id="value-crosses-end"),
        pytest.param(tlv(0x01, b"h2", length=0xFFFF), "tlv_truncated", 29, id="len-ffff"),
        pytest.param(b"\x01", "tlv_truncated", 28, id="1-byte-tlv-header"),
        pytest.param(b"\x01\x00", "tlv_truncated", 28, id="2-byte-tlv-header"),
        pytest.param(tlv(0x03, b"\0\0\0"), "tlv_length", 29, id="crc-3-bytes-rule43"),
        pytest.param(tlv(0x03, b"\0" * 5), "tlv_length", 29, id="crc-5-bytes-rule43"),
        pytest.param(tlv(0x03, b""), "tlv_length", 29, id="crc-0-bytes"),
        pytest.param(tlv(0x20, b"\x01\0\0\0"), "tlv_length", 29, id="ssl-4-bytes-D4"),
        pytest.param(tlv(0x20, b""), "tlv_length", 29, id="ssl-empty-D4"),
        pytest.param(
            tlv(0x20, b"\x01\0\0\0\0" + tlv(0x21, b"TLSv1.3", length=9)),
            "tlv_length",
            29,
            id="ssl-sub-crosses-end-D4",
        ),
        pytest.param(tlv(0x20, b"\x01\0\0\0\0\x21"), "tlv_length", 29, id="ssl-sub-header-cut-D4"),
        pytest.param(tlv(0x05, b"u" * 129), "tlv_length", 29, id="unique-id-129-rule36"),
        pytest.param(tlv(0x01, b"h2") + tlv(0x05, b"u" * 200), "tlv_length", 34, id="second-tlv"),
        pytest.param(
            tlv(0x01, b"h2") + tlv(0x02, b"x", length=2), "tlv_truncated", 34, id="second-crosses"
        ),
    ],
)
def test_D4_tlv_walk_is_strict(tail: bytes, kind: str, offset: int) -> None:
    """D4, rules 31, 36, 37, 43: TLV bounds and type lengths are checked at parse time; the
    error names the TLV (its length field when the value is at fault)."""
    data = tcp4_with(tail)
    check_invalid(data, kind, offset, raise_at=len(data) - 1)


def test_rule36_unique_id_of_128_is_fine() -> None:
    assert pp.parse(tcp4_with(tlv(0x05, b"u" * 128))).unique_id == b"u" * 128


def test_rule43_tlv_crossing_end_also_rejected_under_unspec() -> None:
    """D2: under PROXY+UNSPEC TLVs that do not frame from either start are not TLVs at all;
    the header is still accepted with its length honoured."""
    h = pp.parse(v2(0x21, 0x00, tlv(0x01, b"h2", length=9)))
    assert h.tlvs == ()


def test_rule34_bad_crc_is_a_checksum_error() -> None:
    """Rule 34: a CRC32C that does not match makes the header invalid (ChecksumError at
    the value's offset) unless checking is off."""
    good = with_crc(tcp4_with(tlv(0x03, b"\0\0\0\0"), tlv(0x02, b"example.com")))
    bad = good[:31] + bytes([good[31] ^ 0xFF]) + good[32:]
    err = check_invalid(bad, "checksum_mismatch", 31, pp.ChecksumError, raise_at=len(bad) - 1)
    assert isinstance(err, pp.InvalidHeaderError)
    h = pp.parse(bad, verify_checksum=False)
    assert h.crc32c == struct.unpack("!I", bad[31:35])[0]
    p = pp.Parser(verify_checksum=False)
    assert p.feed(bad) == h


def test_rule34_bad_crc_elsewhere_in_header() -> None:
    """Rule 34: the CRC covers the whole header, address block and later TLVs included."""
    good = with_crc(tcp4_with(tlv(0x03, b"\0\0\0\0"), tlv(0x02, b"example.com")))
    for at in (13, 16, 20, 27, 40, len(good) - 1):
        if at == 13:
            continue  # byte 13 changes the family, tested elsewhere
        bad = bytearray(good)
        bad[at] ^= 0x01
        with pytest.raises(pp.ChecksumError) as exc:
            pp.parse(bytes(bad))
        assert exc.value.offset == 31


def test_rule34_two_crc_tlvs_both_checked() -> None:
    """Each CRC32C TLV is checked with only its own 4 value bytes zeroed: a second one (of
    any value) makes the first wrong, so such a header fails."""
    data = with_crc(tcp4_with(tlv(0x03, b"\0\0\0\0"), tlv(0x03, b"\0\0\0\0")))
    with pytest.raises(pp.ChecksumError):
        pp.parse(data)
    assert len(pp.parse(data, verify_checksum=False).tlvs) == 2


@pytest.mark.parametrize(
    ("tail", "offset"),
    [
        pytest.param(tlv(0x02, b"a" * 256), 29, id="authority-256"),
        pytest.param(tlv(0xE5, b"v" * 1025), 29, id="any-value-1025"),
        pytest.param(tlv(0x04, bytes(1025)), 29, id="noop-1025"),
    ],
)
def test_rule43_haproxy_limits_profile(tail: bytes, offset: int) -> None:
    """Rule 43, D4: HAProxy's caps are opt-in: accepted by default, refused with
    haproxy_limits=True."""
    data = tcp4_with(tail)
    assert pp.parse(data).length == len(data)
    check_invalid(data, "tlv_length", offset, raise_at=len(data) - 1, haproxy_limits=True)


def test_rule43_haproxy_limits_accepts_what_haproxy_accepts() -> None:
    data = tcp4_with(tlv(0x02, b"a" * 255), tlv(0xE5, b"v" * 1024))
    check_vector(data, haproxy_limits=True)


@pytest.mark.parametrize("body_len", [0, 3, 7, 100])
def test_rule29_v1_and_v2_can_be_turned_off_independently(body_len: int) -> None:
    data = v2(0x20, 0x00, tlv(0x04, bytes(body_len)))
    assert pp.parse(data, allow_v1=False).length == len(data)


# --- the Header object (DESIGN "class Header") ----------------------------------------------

SEMANTIC_HEADERS = [
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP6 ::1 2001:db8::1 1 2\r\n",
    b"PROXY UNKNOWN\r\n",
    v2(0x20, 0x00),
    v2(0x21, 0x11, TCP4_BLOCK + tlv(0x01, b"h2")),
    v2(0x21, 0x21, TCP6_BLOCK),
    v2(0x21, 0x32, unix_block(b"\x00abs", b"/b")),
    with_crc(v2(0x21, 0x11, TCP4_BLOCK + tlv(0x03, bytes(4)) + tlv(0x05, b"id"))),
]


@pytest.mark.parametrize("data", SEMANTIC_HEADERS)
def test_header_is_immutable(data: bytes) -> None:
    h = pp.parse(data)
    for name in ("version", "command", "family", "protocol", "source", "destination", "length"):
        with pytest.raises(AttributeError):
            setattr(h, name, None)
    with pytest.raises(AttributeError):
        h.extra = 1  # type: ignore[attr-defined]
    assert isinstance(h.tlvs, tuple)


@pytest.mark.parametrize("data", SEMANTIC_HEADERS)
def test_header_value_semantics_and_pickle(data: bytes) -> None:
    """== by value, hashable (equal headers hash equal), picklable, bytes() round trip."""
    import copy

    h = pp.parse(data)
    h2 = pp.parse(bytearray(data) + b"payload")
    assert h == h2
    assert h.__ne__(h2) is False
    assert hash(h) == hash(h2)
    assert len({h, h2}) == 1
    for again in (pickle.loads(pickle.dumps(h)), copy.copy(h), copy.deepcopy(h)):
        assert again == h
        assert hash(again) == hash(h)
        assert again.to_bytes() == data
        assert again.source == h.source
        assert again.tlvs == h.tlvs
    assert bytes(h) == h.to_bytes() == data
    assert h != data  # a header is not its bytes
    assert h != pp.parse(SEMANTIC_HEADERS[0] if data != SEMANTIC_HEADERS[0] else v2(0x20, 0))


def test_header_equality_is_by_wire_bytes() -> None:
    """Two LOCAL headers with different ignored bodies are different headers."""
    assert pp.parse(v2(0x20, 0x00)) != pp.parse(v2(0x20, 0x00, b"\xff"))
    assert pp.parse(v2(0x20, 0x00)) != pp.parse(v2(0x20, 0x11))


def test_header_repr_is_readable() -> None:
    r = repr(pp.parse(v2(0x21, 0x11, TCP4_BLOCK + tlv(0x01, b"h2"))))
    assert r.startswith("<Header v2 PROXY INET STREAM")
    assert "('192.0.2.1', 56324)" in r
    assert "0x01" in r
    assert "length=33" in r
    assert "UNSPEC" in repr(pp.parse(b"PROXY UNKNOWN\r\n"))
    assert "LOCAL" in repr(pp.parse(v2(0x20, 0x00)))


def test_header_enums_are_the_int_enums() -> None:
    h = pp.parse(v2(0x21, 0x22, TCP6_BLOCK))
    assert type(h.command) is Command
    assert type(h.family) is Family
    assert type(h.protocol) is Protocol
    assert (h.command, h.family, h.protocol) == (1, 2, 2)


def test_header_cannot_be_made_directly() -> None:
    """Headers come from parse() and the builders only (no half-valid objects)."""
    with pytest.raises(TypeError):
        pp.Header()  # type: ignore[call-arg]


@pytest.mark.parametrize("ver_cmd_fam", [(0x20, 0x11), (0x21, 0x10)], ids=["local", "unspec"])
def test_D3_block_that_frames_as_tlvs_is_still_the_address_block(
    ver_cmd_fam: tuple[int, int],
) -> None:
    """D3 (and D2): TLVs are read after the family's address block when they frame
    exactly from there; byte 16 is only the fallback."""
    ver_cmd, fam = ver_cmd_fam
    data = v2(ver_cmd, fam, inet4_block("0.0.0.0", "0.0.0.0", 0, 0) + tlv(0x01, b"h2"))
    assert pp.parse(data).tlvs == (pp.Tlv(0x01, b"h2"),)


def test_D2_unspec_crc_is_verified() -> None:
    """D2, rule 34: a CRC32C in a PROXY+UNSPEC header's TLVs is verified too."""
    good = with_crc(v2(0x21, 0x00, tlv(0x03, bytes(4)) + tlv(0x01, b"h2")))
    assert pp.parse(good).alpn == b"h2"
    bad = good[:-1] + bytes([good[-1] ^ 1])
    check_invalid(bad, "checksum_mismatch", 19, pp.ChecksumError, raise_at=len(bad) - 1)


@pytest.mark.parametrize("ver_cmd", [0x20, 0x21], ids=["local-D3", "proxy-unspec-D2"])
@pytest.mark.parametrize(
    ("bad_tlv", "opts"),
    [
        pytest.param(tlv(0x20, b"\x01"), {}, id="ssl-1-byte"),
        pytest.param(tlv(0x05, bytes(129)), {}, id="unique-id-129"),
        pytest.param(tlv(0x04, bytes(2000)), {"haproxy_limits": True}, id="noop-2000-haproxy"),
    ],
)
def test_D3_local_tlvs_that_frame_but_break_D4_are_not_ignored(
    ver_cmd: int, bad_tlv: bytes, opts: dict[str, bool]
) -> None:
    """D2/D3 + D4, rule 44: a LOCAL (or PROXY+UNSPEC) header whose TLVs frame from byte 16
    has those TLVs; a wrong CRC32C among them, or a TLV of impossible length, makes the
    header invalid."""
    data = v2(ver_cmd, 0x00, tlv(0x03, b"\xde\xad\xbe\xef") + bad_tlv)
    with pytest.raises(pp.InvalidHeaderError):
        pp.parse(data, **opts)


# --- unpickling is parsing -----------------------------------------------------------------


def test_unpickling_verifies_the_crc32c() -> None:
    """An altered pickle whose CRC32C no longer matches fails as parse() would."""
    h = pp.Header.v2(("192.0.2.1", 56324), ("198.51.100.2", 443), crc32c=True)
    wire = h.to_bytes()
    forged = wire.replace(bytes([192, 0, 2, 1]), bytes([10, 0, 0, 1]))
    assert forged != wire
    data = pickle.dumps(h, protocol=4).replace(wire, forged)
    with pytest.raises(pp.ChecksumError):
        pp.parse(forged)
    with pytest.raises(pp.ChecksumError):
        pickle.loads(data)


def test_unpickling_rejects_leftover_bytes() -> None:
    """A pickle whose header bytes carry more after the header is refused, not truncated."""
    h = pp.Header.v1(("192.0.2.1", 1), ("198.51.100.2", 2))
    wire = h.to_bytes()

    class Forged:
        def __reduce__(self) -> tuple[object, tuple[bytes]]:
            return h.__reduce__()[0], (wire + b"GET",)

    with pytest.raises(pp.InvalidHeaderError) as e:
        pickle.loads(pickle.dumps(Forged()))
    assert (e.value.kind, e.value.offset) == ("trailing_data", len(wire))
    assert pickle.loads(pickle.dumps(h)) == h


@pytest.mark.parametrize(
    "data",
    [
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
        b"GET / HTTP/1.1\r\n",
    ],
)
def test_unpickling_applies_parse_checks(data: bytes) -> None:
    with pytest.raises(pp.ProxyProtocolError):
        pp._core._header_from_bytes(data)


def test_unverified_header_round_trips_through_pickle() -> None:
    """A header parsed with verify_checksum=False whose CRC32C is wrong still pickles and
    loads (its pickle records that the CRC32C was not verified); found by the py_parse
    fuzz harness."""
    wire = bytearray(pp.build_v2(("192.0.2.1", 1), ("198.51.100.2", 2), crc32c=True))
    wire[-1] ^= 0xFF
    with pytest.raises(pp.ChecksumError):
        pp.parse(wire)
    h = pp.parse(wire, verify_checksum=False)
    again = pickle.loads(pickle.dumps(h))
    assert again == h
    assert bytes(again) == bytes(wire)


def test_unpickling_takes_any_valid_header_size() -> None:
    """Pickles of headers over parse()'s default max_size still load."""
    h = pp.Header.v2(("192.0.2.1", 1), ("198.51.100.2", 2), tlvs=[(0xE1, bytes(5000))])
    assert pickle.loads(pickle.dumps(h)) == h


# --- a typed INET endpoint -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "source", "destination"),
    [
        (
            pp.Header.v1(("192.0.2.1", 1), ("198.51.100.2", 2)),
            ("192.0.2.1", 1),
            ("198.51.100.2", 2),
        ),
        (pp.Header.v2(("2001:db8::1", 1), ("::1", 2)), ("2001:db8::1", 1), ("::1", 2)),
        (pp.Header.v2("/tmp/a", "/tmp/b"), None, None),
        (pp.Header.v2(b"\0abstract", b"\0b"), None, None),
        (pp.Header.local(), None, None),
        (pp.Header.v1(), None, None),
    ],
)
def test_source_inet_and_destination_inet(
    header: pp.Header, source: tuple[str, int] | None, destination: tuple[str, int] | None
) -> None:
    """``(host, port)`` for INET and INET6 only: ``host, port = h.source_inet`` type-checks."""
    assert header.source_inet == source
    assert header.destination_inet == destination
    if source is not None:
        assert header.source_inet == header.source
        assert header.destination_inet == header.destination
