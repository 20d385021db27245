"""TLVs: the lossless list, typed accessors, SSL and the cloud vendors' values.

SPEC rules 30-40 (registry), 37-38 (SSL), the vendor table, D4; DESIGN "Typed accessors".
"""

from __future__ import annotations

import pickle
import struct

import proxyproto_rs as pp
import pytest
from _util import check_vector, inet4_block, ssl_value, tlv, v2, with_crc

BLOCK = inet4_block("203.0.113.7", "10.0.0.5", 51234, 443)


def hdr(*tlvs: bytes) -> pp.Header:
    """A PROXY TCP4 header with these TLVs, checked three ways."""
    return check_vector(v2(0x21, 0x11, BLOCK + b"".join(tlvs)))


# --- the Tlv class -------------------------------------------------------------------------


def test_tlv_unpacks_as_type_value() -> None:
    t = pp.Tlv(0x01, b"h2")
    kind, value = t
    assert (kind, value) == (0x01, b"h2")
    assert (t.type, t.value) == (0x01, b"h2")
    assert (t[0], t[1], t[-1], t[-2]) == (0x01, b"h2", b"h2", 0x01)
    assert len(t) == 2
    assert tuple(t) == (0x01, b"h2")
    with pytest.raises(IndexError):
        t[2]


def test_tlv_value_semantics() -> None:
    t = pp.Tlv(0x01, b"h2")
    assert t == pp.Tlv(0x01, bytearray(b"h2"))
    assert t == pp.Tlv(0x01, memoryview(b"h2"))
    assert t != pp.Tlv(0x02, b"h2")
    assert t != pp.Tlv(0x01, b"h3")
    assert hash(t) == hash(pp.Tlv(1, b"h2"))
    assert len({t, pp.Tlv(1, b"h2"), pp.Tlv(2, b"h2")}) == 2
    assert pickle.loads(pickle.dumps(t)) == t
    assert "0x01" in repr(t)
    assert "h2" in repr(t)
    assert isinstance(t.value, bytes)


def test_tlv_is_immutable() -> None:
    t = pp.Tlv(0x01, b"h2")
    with pytest.raises(AttributeError):
        t.type = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        t.value = b""  # type: ignore[misc]


@pytest.mark.parametrize("kind", [-1, 256, 1 << 70])
def test_tlv_type_out_of_range(kind: int) -> None:
    with pytest.raises((ValueError, OverflowError)):
        pp.Tlv(kind, b"")


def test_tlv_value_must_be_bytes_like() -> None:
    with pytest.raises(TypeError):
        pp.Tlv(1, "h2")  # type: ignore[arg-type]


# --- the list: order, duplicates, unknown types (rule 31, D4) -------------------------------


def test_rule31_wire_order_duplicates_and_unknown_types_kept() -> None:
    tlvs = [
        (0x00, b""),
        (0x02, b"b.example"),
        (0x01, b"h2"),
        (0x02, b"a.example"),
        (0x04, b"\0\0\0"),
        (0x99, b"unassigned"),
        (0xF0, b"experimental"),
        (0xF8, b"reserved"),
        (0xE1, b"alibaba"),
        (0x04, b""),
    ]
    h = hdr(*(tlv(k, v) for k, v in tlvs))
    assert [(t.type, t.value) for t in h.tlvs] == tlvs
    assert all(isinstance(t, pp.Tlv) for t in h.tlvs)
    # First occurrence wins for the typed accessors.
    assert h.authority == "b.example"
    assert h.alpn == b"h2"


def test_rule31_zero_length_last_tlv_is_kept() -> None:
    """Netty drops a trailing 3-byte TLV (PEERS evidence 34); we keep it."""
    h = hdr(tlv(0x01, b"h2"), tlv(0x05, b""))
    assert h.tlvs[-1] == pp.Tlv(0x05, b"")
    assert h.unique_id == b""


def test_v1_and_tlv_less_headers_have_no_tlvs() -> None:
    for h in (
        pp.parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        pp.parse(b"PROXY UNKNOWN\r\n"),
        pp.parse(v2(0x21, 0x11, BLOCK)),
        pp.parse(v2(0x20, 0x00)),
    ):
        assert h.tlvs == ()
        for name in (
            "alpn",
            "authority",
            "crc32c",
            "unique_id",
            "ssl",
            "netns",
            "aws_vpce_id",
            "azure_link_id",
            "gcp_psc_connection_id",
        ):
            assert getattr(h, name) is None, name


# --- typed accessors -----------------------------------------------------------------------


def test_rule32_alpn_is_bytes() -> None:
    assert hdr(tlv(0x01, b"http/1.1")).alpn == b"http/1.1"


def test_rule33_authority_is_utf8_text() -> None:
    assert hdr(tlv(0x02, "bücher.example".encode())).authority == "bücher.example"


def test_rule33_authority_not_utf8_is_lossless() -> None:
    """Undecodable bytes never raise UnicodeDecodeError (DESIGN: nothing else escapes);
    they come back as surrogates, so ``.encode("utf-8", "surrogateescape")`` restores them."""
    h = hdr(tlv(0x02, b"\xff\xfeab"))
    assert h.authority is not None
    assert h.authority.encode("utf-8", "surrogateescape") == b"\xff\xfeab"


def test_rule34_crc32c_accessor_is_the_big_endian_value() -> None:
    data = with_crc(v2(0x21, 0x11, BLOCK + tlv(0x03, bytes(4)) + tlv(0x01, b"h2")))
    h = check_vector(data)
    assert h.crc32c == struct.unpack("!I", data[31:35])[0]
    zeroed = data[:31] + bytes(4) + data[35:]
    assert h.crc32c == pp.crc32c(zeroed)


def test_rule36_unique_id_is_bytes() -> None:
    assert hdr(tlv(0x05, b"\x00\xffid")).unique_id == b"\x00\xffid"


def test_rule39_netns_is_text() -> None:
    assert hdr(tlv(0x30, b"blue")).netns == "blue"


def test_rule35_noop_is_kept_but_means_nothing() -> None:
    h = hdr(tlv(0x04, bytes(10)))
    assert h.tlvs == (pp.Tlv(0x04, bytes(10)),)


# --- SSL (rules 37-38) ---------------------------------------------------------------------

ALL_SUBS = [
    (0x21, b"TLSv1.2"),
    (0x22, "Zoë".encode()),
    (0x23, b"ECDHE-RSA-AES128-GCM-SHA256"),
    (0x24, b"RSA-SHA256"),
    (0x25, b"RSA2048"),
    (0x26, b"X25519"),
    (0x27, b"ecdsa_secp256r1_sha256"),
    (0x28, bytes(range(256)) * 3),
]


def test_rule38_ssl_sub_tlvs_0x21_to_0x28() -> None:
    h = hdr(tlv(0x20, ssl_value(0x05, 0, ALL_SUBS)))
    ssl = h.ssl
    assert ssl is not None
    assert ssl.version == "TLSv1.2"
    assert ssl.cn == "Zoë"
    assert ssl.cipher == "ECDHE-RSA-AES128-GCM-SHA256"
    assert ssl.sig_alg == "RSA-SHA256"
    assert ssl.key_alg == "RSA2048"
    assert ssl.group == "X25519"
    assert ssl.sig_scheme == "ecdsa_secp256r1_sha256"
    assert ssl.client_cert == bytes(range(256)) * 3
    assert [(t.type, t.value) for t in ssl.tlvs] == ALL_SUBS
    assert "SslInfo" in repr(ssl)


def test_rule37_ssl_without_sub_tlvs() -> None:
    ssl = hdr(tlv(0x20, ssl_value(0x01, 0))).ssl
    assert ssl is not None
    assert ssl.tlvs == ()
    for name in ("version", "cn", "cipher", "sig_alg", "key_alg", "group", "sig_scheme"):
        assert getattr(ssl, name) is None, name
    assert ssl.client_cert is None


def test_rule37_ssl_unknown_sub_tlv_kept() -> None:
    ssl = hdr(tlv(0x20, ssl_value(0x01, 0, [(0x2F, b"x"), (0x21, b"TLSv1.3")]))).ssl
    assert ssl is not None
    assert [t.type for t in ssl.tlvs] == [0x2F, 0x21]
    assert ssl.version == "TLSv1.3"


@pytest.mark.parametrize(
    ("client", "verify", "verified"),
    [
        (0x00, 0, False),
        (0x01, 0, False),  # TLS, no certificate: HAProxy zero-fills verify (rule 37)
        (0x03, 0, True),  # CERT_CONN
        (0x05, 0, True),  # CERT_SESS
        (0x07, 0, True),
        (0x02, 0, True),
        (0x03, 1, False),  # certificate presented, verification failed
        (0x07, 0xFFFFFFFF, False),
        (0x01, 1, False),
        (0xF8, 0, False),  # only unassigned bits
    ],
)
def test_rule37_client_cert_verified_needs_a_cert_bit(
    client: int, verify: int, verified: bool
) -> None:
    """Rule 37, DESIGN: client_cert_verified = a CERT bit is set AND verify == 0."""
    ssl = hdr(tlv(0x20, ssl_value(client, verify))).ssl
    assert ssl is not None
    assert ssl.client == client
    assert ssl.verify == verify
    assert ssl.client_ssl == bool(client & 1)
    assert ssl.client_cert_conn == bool(client & 2)
    assert ssl.client_cert_sess == bool(client & 4)
    assert ssl.client_cert_verified is verified


def test_rule37_verify_is_big_endian_u32() -> None:
    ssl = hdr(tlv(0x20, b"\x03\x00\x00\x01\x02")).ssl
    assert ssl is not None
    assert ssl.verify == 0x0102


# --- cloud vendor TLVs ---------------------------------------------------------------------


def test_aws_vpce_id() -> None:
    assert hdr(tlv(0xEA, b"\x01vpce-08d2bf15fac5001c9")).aws_vpce_id == "vpce-08d2bf15fac5001c9"


@pytest.mark.parametrize("value", [b"", b"\x02vpce-1", b"\x00"])
def test_aws_other_subtypes_are_not_a_vpce_id(value: bytes) -> None:
    assert hdr(tlv(0xEA, value)).aws_vpce_id is None


def test_azure_link_id_is_little_endian_u32() -> None:
    assert hdr(tlv(0xEE, b"\x01\x78\x56\x34\x12")).azure_link_id == 0x12345678
    assert hdr(tlv(0xEE, b"\x01\xff\xff\xff\xff")).azure_link_id == 0xFFFFFFFF


@pytest.mark.parametrize(
    "value", [b"\x01\x01\x02\x03", b"\x01\x01\x02\x03\x04\x05", b"\x02\x01\x02\x03\x04", b""]
)
def test_azure_wrong_shape_is_none_not_an_error(value: bytes) -> None:
    assert hdr(tlv(0xEE, value)).azure_link_id is None


def test_gcp_psc_connection_id_is_big_endian_u64() -> None:
    h = hdr(tlv(0xE0, struct.pack(">Q", 0x0102030405060708)))
    assert h.gcp_psc_connection_id == 0x0102030405060708
    assert hdr(tlv(0xE0, b"\xff" * 8)).gcp_psc_connection_id == 2**64 - 1


@pytest.mark.parametrize("value", [b"", b"1234567", b"123456789", b"relay-id"[:5]])
def test_gcp_0xe0_is_custom_space_never_rejected(value: bytes) -> None:
    """Vendor note: 0xE0 is also PP2_TYPE_MIN_CUSTOM; other lengths are not GCP and the
    header is still fine."""
    h = hdr(tlv(0xE0, value))
    assert h.gcp_psc_connection_id is None
    assert h.tlvs == (pp.Tlv(0xE0, value),)


@pytest.mark.parametrize("sub", [(0x03, b"ab"), (0x05, bytes(200)), (0x20, b""), (0x20, b"\x01")])
def test_D4_ssl_sub_tlv_types_are_not_top_level_types(sub: tuple[int, bytes]) -> None:
    """Rule 38, D4: inside SSL only 0x21-0x28 are defined; any other sub-TLV type is kept
    as is, whatever its length (the sub-TLVs only have to frame)."""
    h = hdr(tlv(0x20, ssl_value(0x01, 0, [sub])))
    assert h.ssl is not None
    assert [(t.type, t.value) for t in h.ssl.tlvs] == [sub]


def test_D4_builder_accepts_any_ssl_sub_tlv_type() -> None:
    out = pp.build_v2(("1.2.3.4", 1), ("5.6.7.8", 2), tlvs=[(0x20, ssl_value(0, 0, [(0x03, b"")]))])
    assert pp.parse(out).ssl is not None


# --- several cloud TLVs of one type --------------------------------------------------------


def test_azure_link_id_is_the_first_well_formed_0xee() -> None:
    """Several 0xEE TLVs: another subtype or length first does not hide a LINKID after it
    (as the Go library reads them)."""
    h = hdr(tlv(0xEE, b"\x02\x01\x02\x03\x04"), tlv(0xEE, b"\x01\x01"), tlv(0xEE, b"\x01xV4\x12"))
    assert h.azure_link_id == 0x12345678
    assert hdr(tlv(0xEE, b"\x01\x01\x00\x00\x00"), tlv(0xEE, b"\x01xV4\x12")).azure_link_id == 1


def test_gcp_psc_connection_id_is_the_first_well_formed_0xe0() -> None:
    value = struct.pack(">Q", 0x0102030405060708)
    h = hdr(tlv(0xE0, b"relay"), tlv(0xE0, b""), tlv(0xE0, value), tlv(0xE0, bytes(8)))
    assert h.gcp_psc_connection_id == 0x0102030405060708


@pytest.mark.parametrize(
    "value",
    [
        b"\x01",
        b"\x01vpce-1 2",
        b"\x01vpce\x1b[2J",
        b"\x01vpce\n-1",
        b"\x01vpce_1",
        b"\x01vpce-\xc3\xa9",
        b"\x01\xff",
    ],
)
def test_aws_vpce_id_must_be_a_plausible_endpoint_id(value: bytes) -> None:
    """Letters, digits and ``-``, at least one: anything else (empty, controls, spaces,
    non-ASCII) is not an endpoint id, and is None rather than text to print."""
    assert hdr(tlv(0xEA, value)).aws_vpce_id is None


def test_aws_vpce_id_is_the_first_well_formed_0xea() -> None:
    h = hdr(tlv(0xEA, b"\x02other"), tlv(0xEA, b"\x01"), tlv(0xEA, b"\x01vpce-0a1B"))
    assert h.aws_vpce_id == "vpce-0a1B"


# --- rebuilding a captured header ----------------------------------------------------------


def test_build_v2_recomputes_a_crc32c_tlv_given_in_tlvs_in_place() -> None:
    """``build_v2(h.source, h.destination, tlvs=h.tlvs)`` rebuilds a header that carried a
    CRC32C TLV: the TLV keeps its place and gets the new header's checksum."""
    h = pp.Header.v2(("192.0.2.1", 1), ("198.51.100.2", 2), tlvs=[(0x01, b"h2")], crc32c=True)
    assert [t.type for t in h.tlvs] == [0x03, 0x01]
    again = pp.build_v2(h.source, h.destination, tlvs=h.tlvs)
    assert again == h.to_bytes()
    # Another address: the CRC32C TLV is recomputed, not copied.
    moved = pp.parse(pp.build_v2(("192.0.2.9", 1), h.destination, tlvs=h.tlvs))
    assert [t.type for t in moved.tlvs] == [0x03, 0x01]
    assert moved.crc32c is not None
    assert moved.crc32c != h.crc32c
    # Order kept: a CRC32C TLV given last stays last, whatever value it carried.
    last = pp.parse(pp.build_v2(h.source, h.destination, tlvs=[(0x01, b"h2"), (0x03, b"\0\0\0\0")]))
    assert [t.type for t in last.tlvs] == [0x01, 0x03]
    # crc32c=True with one in tlvs: that one is the checksum, none is added.
    both = pp.parse(pp.build_v2(h.source, h.destination, tlvs=h.tlvs, crc32c=True))
    assert both == pp.parse(again)


@pytest.mark.parametrize("tlvs", [[(0x03, b"abc")], [(0x03, b"\0" * 4), (0x03, b"\0" * 4)]])
def test_build_v2_rejects_a_malformed_or_second_crc32c_tlv(tlvs: list[tuple[int, bytes]]) -> None:
    with pytest.raises(pp.BuildError):
        pp.build_v2(("192.0.2.1", 1), ("198.51.100.2", 2), tlvs=tlvs)
