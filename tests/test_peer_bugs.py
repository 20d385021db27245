"""Every peer bug listed in /work/shared/PEERS.md that concerns a codec, one test each,
named ``test_<peer>_<bug>``, showing that we get it right.

Peers: proxy-protocol (PyPI, "IC"), twisted, gunicorn, aiosmtpd, go-proxyproto, netty,
proxy-protocol-js, Rust crates, HAProxy, and the "Correctness / interop" and "Security"
lists. Timeouts and trust policies (CVE-2021-23409, gunicorn's optional header) are the aio
layer's and are tested in tests/test_aio.py, not here.
"""

from __future__ import annotations

import struct

import proxyproto_rs as pp
import pytest
from _util import PAYLOAD, inet4_block, inet6_block, ssl_value, tlv, v2, with_crc

BLOCK4 = inet4_block("203.0.113.7", "10.0.0.5", 51234, 443)


def tcp4(*tlvs: bytes) -> bytes:
    return v2(0x21, 0x11, BLOCK4 + b"".join(tlvs))


def kind_of(data: bytes, **opts: object) -> tuple[type[BaseException], str, int]:
    with pytest.raises(pp.ProxyProtocolError) as exc:
        pp.parse(data, **opts)  # type: ignore[arg-type]
    return type(exc.value), exc.value.kind, exc.value.offset


# --- proxy-protocol (PyPI 0.11.3) ----------------------------------------------------------


def test_proxy_protocol_crc_valid_when_crc_tlv_precedes_authority() -> None:
    """IC re-sorts TLVs by type before checking the CRC, so HAProxy's order (CRC32C first,
    then ALPN/AUTHORITY, SPEC rule 46) fails there. The CRC is over the bytes as received."""
    data = with_crc(tcp4(tlv(0x03, bytes(4)), tlv(0x02, b"example.com"), tlv(0x01, b"h2")))
    h = pp.parse(data)
    assert [t.type for t in h.tlvs] == [0x03, 0x02, 0x01]
    assert h.authority == "example.com"


def test_proxy_protocol_crc_never_silently_skipped() -> None:
    """IC skips CRC checking when its optional C package is missing; ours is built in."""
    data = bytearray(with_crc(tcp4(tlv(0x03, bytes(4)), tlv(0x02, b"example.com"))))
    data[-1] ^= 0x20
    assert kind_of(bytes(data)) == (pp.ChecksumError, "checksum_mismatch", 31)


def test_proxy_protocol_truncated_tlv_rejected() -> None:
    """IC accepts a TLV declaring 200 bytes with 3 present (value silently truncated)."""
    data = tcp4(tlv(0x02, b"abc", length=200))
    assert kind_of(data) == (pp.InvalidHeaderError, "tlv_truncated", 29)


def test_proxy_protocol_v1_capped_at_107() -> None:
    """IC reads the v1 line with readline() (no 107-byte cap)."""
    line = b"PROXY UNKNOWN " + b"a" * 200 + b"\r\n"
    assert kind_of(line) == (pp.HeaderTooLargeError, "v1_too_long", 105)
    p = pp.Parser()
    with pytest.raises(pp.HeaderTooLargeError):
        p.feed(line)


def test_proxy_protocol_short_address_block_no_struct_error() -> None:
    """IC lets struct.error escape for PROXY/TCP4 with len 4."""
    data = v2(0x21, 0x11, bytes(4))
    assert kind_of(data) == (pp.InvalidHeaderError, "v2_address_truncated", 14)


@pytest.mark.parametrize(
    ("port", "offset"),
    [
        (b"5_6324", 28),
        (b"+80", 27),
        (b" 80", 27),
        (b"\t80", 27),
        (b"080", 28),
        (b"1_000", 28),
        (b"\xd9\xa1", 27),  # ARABIC-INDIC DIGIT ONE: int() takes it
        ("\uff18\uff10".encode(), 27),  # FULLWIDTH DIGIT EIGHT, ZERO
    ],
)
def test_proxy_protocol_int_leniency_on_ports_rejected(port: bytes, offset: int) -> None:
    """IC parses ports with int(), which accepts ``5_6324``, ``+80``, `` 80``, ``080``."""
    line = b"PROXY TCP4 1.2.3.4 5.6.7.8 " + port + b" 443\r\n"
    assert kind_of(line) == (pp.InvalidHeaderError, "v1_port", offset)


@pytest.mark.parametrize("addr", [b"fe80::1%eth0", b"fe80::1%1", b"::1%25lo"])
def test_proxy_protocol_zone_ids_rejected(addr: bytes) -> None:
    """IC uses ipaddress, which accepts ``fe80::1%eth0`` (SPEC D6 rejects zone ids)."""
    line = b"PROXY TCP6 " + addr + b" ::1 1 2\r\n"
    assert kind_of(line)[:2] == (pp.InvalidHeaderError, "v1_address")
    assert kind_of(line)[2] == 11 + addr.index(b"%")


def test_proxy_protocol_v1_header_plus_payload() -> None:
    """IC fails on a v1 line followed by payload in the same buffer."""
    line = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"
    h = pp.parse(line + PAYLOAD)
    assert h.length == len(line)
    assert h.source == ("1.2.3.4", 1)


def test_proxy_protocol_v2_payload_not_parsed_as_tlvs() -> None:
    """IC parses the payload after a v2 header as TLVs."""
    data = tcp4(tlv(0x01, b"h2"))
    h = pp.parse(data + b"\x02\x00\x03abc" + PAYLOAD)
    assert h.tlvs == (pp.Tlv(0x01, b"h2"),)
    assert h.authority is None
    p = pp.Parser()
    p.feed(data + b"\x02\x00\x03abc")
    assert p.trailing_data == b"\x02\x00\x03abc"


def test_proxy_protocol_says_how_many_bytes_were_consumed() -> None:
    """IC never says how many bytes belong to the header; ``length`` does."""
    for data in (b"PROXY UNKNOWN\r\n", tcp4(), v2(0x20, 0x00, bytes(50))):
        assert pp.parse(data + PAYLOAD).length == len(data)


def test_proxy_protocol_builder_unknown_without_spaces() -> None:
    """IC's builder emits ``PROXY UNKNOWN    \\r\\n``; ours the short form (rule 45)."""
    assert pp.build_v1() == b"PROXY UNKNOWN\r\n"
    assert pp.build_v1(None, None) == b"PROXY UNKNOWN\r\n"
    assert pp.parse(pp.build_v1(), haproxy_limits=True).length == 15


def test_proxy_protocol_builder_adds_crc_only_when_asked() -> None:
    """IC adds a CRC32C TLV to every v2 header."""
    assert pp.parse(pp.build_v2(("1.2.3.4", 1), ("5.6.7.8", 2))).tlvs == ()
    assert pp.parse(pp.build_v2()).tlvs == ()


def test_proxy_protocol_duplicate_tlvs_and_order_kept() -> None:
    """IC keeps TLVs in a dict keyed by type: duplicates collapse and order is lost."""
    data = tcp4(tlv(0xE5, b"2"), tlv(0xE5, b"1"), tlv(0x01, b"x"))
    h = pp.parse(data)
    assert h.tlvs == (pp.Tlv(0xE5, b"2"), pp.Tlv(0xE5, b"1"), pp.Tlv(0x01, b"x"))
    assert h.to_bytes() == data


def test_proxy_protocol_unknown_family_under_proxy_rejected() -> None:
    """IC returns an "unknown" result for an unknown family under PROXY (rule 22)."""
    assert kind_of(v2(0x21, 0x51, bytes(12))) == (pp.InvalidHeaderError, "v2_family", 13)


# --- twisted -------------------------------------------------------------------------------


def test_twisted_short_unknown_accepted() -> None:
    """Twisted rejects ``PROXY UNKNOWN\\r\\n``, which HAProxy and nginx send."""
    h = pp.parse(b"PROXY UNKNOWN\r\n")
    assert h.source is None
    assert h.length == 15


def test_twisted_999_0_0_1_rejected() -> None:
    line = b"PROXY TCP4 999.0.0.1 5.6.7.8 1 2\r\n"
    assert kind_of(line) == (pp.InvalidHeaderError, "v1_address", 13)


def test_twisted_port_70000_rejected() -> None:
    line = b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n"
    assert kind_of(line) == (pp.InvalidHeaderError, "v1_port", 31)


def test_twisted_ipv6_under_tcp4_rejected() -> None:
    line = b"PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n"
    assert kind_of(line)[:2] == (pp.InvalidHeaderError, "v1_address")


def test_twisted_non_canonical_ipv6_text_canonicalised() -> None:
    """Twisted hands back the text as sent; D8 gives RFC 5952 text."""
    h = pp.parse(b"PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0001 ::FFFF:7F00:1 1 2\r\n")
    assert h.source == ("2001:db8::1", 1)
    assert h.destination == ("::ffff:127.0.0.1", 2)


def test_twisted_short_first_read() -> None:
    """Twisted drops a v2 connection whose first read is under 16 bytes (twisted#8287)."""
    data = tcp4()
    for first in (1, 5, 12, 15):
        p = pp.Parser()
        assert p.feed(data[:first]) is None
        assert p.feed(data[first:]) is not None


def test_twisted_107_cap_also_when_crlf_is_buffered() -> None:
    """Twisted's 107-byte check only fires while no CRLF is buffered."""
    line = b"PROXY UNKNOWN " + b"a" * 120 + b"\r\n" + PAYLOAD
    p = pp.Parser()
    with pytest.raises(pp.HeaderTooLargeError):
        p.feed(line)


def test_twisted_trailing_junk_after_port_rejected() -> None:
    """Twisted takes the first token after the split as the port and ignores the rest."""
    line = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 junk\r\n"
    assert kind_of(line) == (pp.InvalidHeaderError, "v1_syntax", 30)


def test_twisted_tlvs_and_crc_not_ignored() -> None:
    data = bytearray(with_crc(tcp4(tlv(0x03, bytes(4)))))
    data[20] ^= 1  # the source address: the CRC catches it
    assert kind_of(bytes(data))[0] is pp.ChecksumError


# --- gunicorn ------------------------------------------------------------------------------


def test_gunicorn_v1_read_has_a_cap() -> None:
    """gunicorn's WSGI path reads the v1 line with no length cap."""
    p = pp.Parser()
    p.feed(b"PROXY UNKNOWN ")
    for _ in range(9):
        assert p.feed(b"x" * 10) is None
        assert p.buffered <= 107
    with pytest.raises(pp.HeaderTooLargeError):
        p.feed(b"x" * 10)


def test_gunicorn_case_insensitive_proto_token_rejected() -> None:
    """gunicorn's ASGI path upper-cases the proto token; the grammar is exact (rule 8)."""
    assert kind_of(b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n") == (
        pp.InvalidHeaderError,
        "v1_protocol",
        6,
    )
    assert kind_of(b"PROXY Unknown\r\n") == (pp.InvalidHeaderError, "v1_protocol", 7)


def test_gunicorn_no_header_is_an_error_not_plain_http() -> None:
    """gunicorn parses a connection without a header as plain HTTP (header optional = a
    client can spoof its address, rule 6); a Parser rejects it at byte 0."""
    assert kind_of(b"GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\n") == (
        pp.InvalidHeaderError,
        "not_proxy_protocol",
        0,
    )


# --- go-proxyproto -------------------------------------------------------------------------


def test_go_proxyproto_cve_2021_23351_unbounded_v1_read() -> None:
    """CVE-2021-23351: a v1 line without newline was read without limit."""
    p = pp.Parser()
    with pytest.raises(pp.HeaderTooLargeError):
        p.feed(b"PROXY UNKNOWN " + b"A" * (1 << 20))
    assert p.buffered <= 107


def test_go_proxyproto_verified_needs_a_cert_bit() -> None:
    """go-proxyproto's Verified() trusts verify == 0, but HAProxy sends verify 0 when no
    client certificate was given at all (SPEC rule 37)."""
    no_cert = pp.parse(tcp4(tlv(0x20, ssl_value(0x01, 0, [(0x21, b"TLSv1.3")]))))
    assert no_cert.ssl is not None
    assert no_cert.ssl.verify == 0
    assert no_cert.ssl.client_cert_verified is False
    with_cert = pp.parse(tcp4(tlv(0x20, ssl_value(0x03, 0))))
    assert with_cert.ssl is not None
    assert with_cert.ssl.client_cert_verified is True


# --- "Elsewhere", Security and Correctness lists -------------------------------------------


def test_mastercactapus_cve_2019_14243_truncated_address_block() -> None:
    """CVE-2019-14243: panic on v2 PROXY/TCP4 with len 0 (truncated address data)."""
    for fam, n in ((0x11, 0), (0x12, 0), (0x21, 0), (0x21, 12), (0x31, 0), (0x32, 100)):
        data = v2(0x21, fam, bytes(n))
        assert kind_of(data) == (pp.InvalidHeaderError, "v2_address_truncated", 14)
        with pytest.raises(pp.InvalidHeaderError):
            pp.Parser().feed(data + PAYLOAD)


def test_libproxyprotocol_tlv_length_not_inflated_on_round_trip() -> None:
    """libproxyprotocol PR #32: TLV lengths grew by one on every parse-then-build."""
    data = tcp4(tlv(0x01, b"h2"), tlv(0x02, b"a.example"), tlv(0xE5, b""), tlv(0x04, bytes(7)))
    h = pp.parse(data)
    for _ in range(3):
        rebuilt = pp.build_v2(h.source, h.destination, tlvs=h.tlvs)
        assert rebuilt == data
        h = pp.parse(rebuilt)
    assert [len(t.value) for t in h.tlvs] == [2, 9, 0, 7]


def test_libproxyprotocol_oob_tlv_reads() -> None:
    """libproxyprotocol PR #32: out-of-bounds reads on TLVs at the very end."""
    for tail in (b"\x01", b"\x01\x00", b"\x01\x00\x01", b"\x20\x00\x01\x01"):
        with pytest.raises(pp.InvalidHeaderError):
            pp.parse(tcp4(tail))


@pytest.mark.parametrize(
    "data",
    [
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        with_crc(
            v2(
                0x21,
                0x21,
                inet6_block("2001:db8::1", "2001:db8::2", 1, 2)
                + tlv(0x03, bytes(4))
                + tlv(0x01, b"h2"),
            )
        ),
    ],
    ids=["v1", "v2"],
)
def test_nginx_lavinmq_header_split_across_segments(data: bytes) -> None:
    """nginx PR #1403 ("header is too large" on a split v2 header) and lavinmq#2082 (one
    peek on a split gives the wrong address and feeds PROXY bytes to the app): every split
    gives the header and leaves exactly the payload."""
    stream = data + b"AMQP\x00\x00\x09\x01"
    for i in range(1, len(stream)):
        p = pp.Parser()
        first = p.feed(stream[:i])
        second = p.feed(stream[i:])
        assert (first is None) == (i < len(data))
        assert second == pp.parse(data)
        assert p.trailing_data == b"AMQP\x00\x00\x09\x01"


def test_squid_partial_signature_is_not_an_error() -> None:
    """squid PR #342: a partial v2 magic was treated as an error."""
    for k in range(1, 16):
        with pytest.raises(pp.IncompleteHeaderError):
            pp.parse(tcp4()[:k])


def test_squid_unknown_with_lf_only_rejected() -> None:
    """squid PR #342: UNKNOWN framing used LF only (rule 13)."""
    assert kind_of(b"PROXY UNKNOWN\n") == (pp.InvalidHeaderError, "v1_syntax", 13)


def test_aws_nlb_local_health_check_len_skipped() -> None:
    """go-proxyproto PR #12, kubernetes#57250: the NLB's LOCAL health check (fam 0x11,
    len 84) must have its len bytes skipped, or junk precedes the HTTP request."""
    data = with_crc(v2(0x20, 0x11, tlv(0x03, bytes(4)) + tlv(0x04, bytes(74))))
    p = pp.Parser()
    h = p.feed(data + b"GET /health HTTP/1.1\r\n\r\n")
    assert h is not None
    assert h.length == 100
    assert p.trailing_data == b"GET /health HTTP/1.1\r\n\r\n"


def test_cowboy_crc_from_aws_compared_as_integer() -> None:
    """cowboy#1340: the CRC32C failed on AWS traffic (value compared as the wrong type).
    Our check passes on the NLB shape and the accessor is the big-endian integer."""
    data = with_crc(v2(0x20, 0x11, tlv(0x03, bytes(4)) + tlv(0x04, bytes(74))))
    h = pp.parse(data)
    assert h.crc32c == struct.unpack(">I", data[19:23])[0]


def test_matrixone_custom_tlv_body_consumed() -> None:
    """matrixone PR #9484: a balancer's arbitrary-length custom TLV must be consumed."""
    data = tcp4(tlv(0xE7, bytes(range(256)) * 4))
    p = pp.Parser()
    assert p.feed(data + b"SELECT 1") is not None
    assert p.trailing_data == b"SELECT 1"


def test_p2pool_tlv_extended_headers_accepted() -> None:
    """p2pool PR #399: exact address-length checks rejected headers with TLVs."""
    data = with_crc(tcp4(tlv(0x03, bytes(4)), tlv(0x05, b"uid"), tlv(0x20, ssl_value(0x01, 0))))
    h = pp.parse(data)
    assert h.source == ("203.0.113.7", 51234)
    assert len(h.tlvs) == 3


def test_trafficserver_tlvs_with_http_in_same_buffer() -> None:
    """trafficserver PR #12141: TLVs misread when HTTP bytes follow in the same buffer."""
    data = tcp4(tlv(0x01, b"h2"), tlv(0x02, b"example.com"))
    assert pp.parse(data + b"GET / HTTP/1.1\r\n").tlvs == pp.parse(data).tlvs


def test_envoy_tlvs_over_65535_are_an_error_not_dropped() -> None:
    """envoy PR #37591: TLVs exceeding 65535 bytes must be handled, not silently dropped."""
    with pytest.raises(pp.BuildError) as exc:
        pp.build_v2(("1.2.3.4", 1), ("5.6.7.8", 2), tlvs=[(0xE5, bytes(40000))] * 2)
    assert exc.value.kind == "header_too_large"


def test_aws_two_headers_second_left_as_payload() -> None:
    """AWS doc: the NLB forwards a client's own header, so two can arrive; the first is
    the header, the second is payload, untouched (the caller decides)."""
    first = v2(0x21, 0x11, BLOCK4)
    second = b"PROXY TCP4 6.6.6.6 6.6.6.6 1 2\r\n"
    p = pp.Parser()
    h = p.feed(first + second)
    assert h is not None
    assert h.source == ("203.0.113.7", 51234)
    assert p.trailing_data == second
    assert pp.parse(p.trailing_data).source == ("6.6.6.6", 1)


def test_proxy_protocol_js_tlvs_do_not_leak_into_payload() -> None:
    """proxy-protocol-js returns the TLV bytes as payload ``data`` (PEERS evidence 23)."""
    data = tcp4(tlv(0x01, b"h2"))
    p = pp.Parser()
    p.feed(data + b"hello")
    assert p.trailing_data == b"hello"


def test_netty_port_zero_accepted() -> None:
    """Netty rejects v1 port 0 ("expected 1 ~ 65535"), which rule 12 allows."""
    h = pp.parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n")
    assert h.source == ("1.2.3.4", 0)


def test_netty_ssl_tlv_shorter_than_5_rejected() -> None:
    """Netty reads client/verify without checking the SSL value is >= 5 bytes (D4)."""
    assert kind_of(tcp4(tlv(0x20, b"\x01\x00")))[1] == "tlv_length"


def test_netty_trailing_zero_length_tlv_kept() -> None:
    """Netty needs >= 4 remaining bytes per TLV and drops a trailing 3-byte one."""
    assert pp.parse(tcp4(tlv(0x01, b"h2"), tlv(0x04, b""))).tlvs[-1] == pp.Tlv(0x04, b"")


def test_aiosmtpd_empty_ssl_value_is_our_error() -> None:
    """aiosmtpd raises IndexError on an SSL TLV with an empty value (PEERS evidence 26)."""
    assert kind_of(tcp4(tlv(0x20, b""))) == (pp.InvalidHeaderError, "tlv_length", 29)


def test_ppp_local_addresses_not_parsed() -> None:
    """ppp parses addresses by family even for LOCAL; LOCAL uses the real endpoints."""
    h = pp.parse(v2(0x20, 0x11, BLOCK4))
    assert h.source is None
    assert h.destination is None


def test_proxy_protocol_rs_local_malformed_tlvs_not_exposed() -> None:
    """proxy-protocol-rs reads LOCAL TLVs from offset 0 and tolerates malformed ones; we
    expose TLVs only where they frame exactly (D3)."""
    h = pp.parse(v2(0x20, 0x00, tlv(0x01, b"h2") + b"\x02\x00"))
    assert h.tlvs == ()


def test_haproxy_long_unknown_accepted_by_default_refused_by_profile() -> None:
    """HAProxy accepts only the short UNKNOWN (rule 45); D5 accepts the long form, the
    haproxy_limits profile behaves like HAProxy."""
    line = b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"
    assert pp.parse(line).length == len(line)
    assert kind_of(line, haproxy_limits=True) == (pp.InvalidHeaderError, "v1_syntax", 13)


def test_proxy_protocol_crate_plus_and_leading_zero_ports_rejected() -> None:
    """Rust proxy-protocol parses ports with str::parse::<u16>: ``+80`` and ``080`` pass."""
    assert kind_of(b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 1\r\n")[1] == "v1_port"
    assert kind_of(b"PROXY TCP4 1.2.3.4 5.6.7.8 80 080\r\n")[1] == "v1_port"
