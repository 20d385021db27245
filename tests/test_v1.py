"""v1 text header: SPEC §2.1, rules 8-17, decisions D1, D5, D6, D8.

Every valid vector goes through ``check_vector`` (whole, byte by byte, with payload, every
prefix incomplete); every rejection through ``check_invalid`` (exact class, kind and the
offset of the first impossible byte, D1).
"""

from __future__ import annotations

import proxyproto_rs as pp
import pytest
from _util import check_invalid, check_vector
from proxyproto_rs import Command, Family, Protocol

V6_MAX = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

# (line, source, destination): valid lines and what they mean.
VALID_TCP = [
    pytest.param(
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        ("192.168.0.1", 56324),
        ("192.168.0.11", 443),
        id="tcp4-spec-example",
    ),
    pytest.param(
        b"PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n",
        ("0.0.0.0", 0),
        ("0.0.0.0", 0),
        id="tcp4-shortest-rule12-port-0",
    ),
    pytest.param(
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        ("255.255.255.255", 65535),
        ("255.255.255.255", 65535),
        id="tcp4-longest-56-rule14",
    ),
    pytest.param(
        b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n",
        ("2001:db8::1", 1),
        ("2001:db8::2", 65535),
        id="tcp6",
    ),
    pytest.param(
        b"PROXY TCP6 :: :: 0 0\r\n",
        ("::", 0),
        ("::", 0),
        id="tcp6-shortest-22",
    ),
    pytest.param(
        b"PROXY TCP6 :: ::1 10 20\r\n",
        ("::", 10),
        ("::1", 20),
        id="tcp6-short-forms",
    ),
    pytest.param(
        f"PROXY TCP6 {V6_MAX} {V6_MAX} 65535 65535\r\n".encode(),
        (V6_MAX, 65535),
        (V6_MAX, 65535),
        id="tcp6-longest-104-rule14",
    ),
    pytest.param(
        b"PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0001 FE80::A 1 2\r\n",
        ("2001:db8::1", 1),
        ("fe80::a", 2),
        id="tcp6-upper-case-and-zeros-rule11-canonical-D8",
    ),
    pytest.param(
        b"PROXY TCP6 ::ffff:127.0.0.1 ::FFFF:10.0.0.1 1 2\r\n",
        ("::ffff:127.0.0.1", 1),
        ("::ffff:10.0.0.1", 2),
        id="tcp6-ipv4-mapped-D6-D8",
    ),
    pytest.param(
        b"PROXY TCP6 1:2:3:4:5:6:1.2.3.4 ::1 1 2\r\n",
        ("1:2:3:4:5:6:102:304", 1),
        ("::1", 2),
        id="tcp6-dotted-suffix-full-D6",
    ),
]


@pytest.mark.parametrize(("line", "src", "dst"), VALID_TCP)
def test_rule8_tcp_lines_three_ways(
    line: bytes, src: tuple[str, int], dst: tuple[str, int]
) -> None:
    """Rules 8, 10-12, 14: a valid TCP4/TCP6 line, whole, byte by byte, with payload."""
    h = check_vector(line)
    assert h.version == 1
    assert h.command is Command.PROXY
    assert h.family is (Family.INET if line[9:10] == b"4" else Family.INET6)
    assert h.protocol is Protocol.STREAM
    assert h.source == src
    assert h.destination == dst
    assert h.tlvs == ()


UNKNOWN_LONGEST = f"PROXY UNKNOWN {V6_MAX} {V6_MAX} 65535 65535\r\n".encode()


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"PROXY UNKNOWN\r\n", id="short-15"),
        pytest.param(b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", id="with-fields"),
        pytest.param(b"PROXY UNKNOWN garbage \x00\xff  !\r\n", id="any-bytes-D5"),
        pytest.param(b"PROXY UNKNOWN \r\n", id="space-only-D5"),
        pytest.param(UNKNOWN_LONGEST, id="longest-107-rule14"),
        pytest.param(b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n", id="107-bytes-of-anything"),
    ],
)
def test_rule9_unknown_three_ways(line: bytes) -> None:
    """Rules 9, 14, 17, D5: UNKNOWN, short or with ignored fields up to 107 bytes; no
    addresses (the receiver uses the real connection's)."""
    h = check_vector(line)
    assert h.version == 1
    assert h.command is Command.PROXY
    assert h.family is Family.UNSPEC
    assert h.protocol is Protocol.UNSPEC
    assert h.source is None
    assert h.destination is None


def test_rule14_longest_unknown_is_107_bytes() -> None:
    assert len(UNKNOWN_LONGEST) == 107 == pp.MAX_V1_SIZE


def test_rule14_line_of_108_bytes_is_too_large() -> None:
    """Rules 14, 15: no CRLF within 107 bytes: HeaderTooLargeError at the byte where CR had
    to be at the latest (byte 105, so that LF is byte 106)."""
    line = b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n"
    assert len(line) == 108
    check_invalid(line, "v1_too_long", 105, pp.HeaderTooLargeError)


def test_rule14_cr_as_byte_107_is_too_large() -> None:
    line = b"PROXY UNKNOWN " + b"x" * 92 + b"\r"
    check_invalid(line, "v1_too_long", 105, pp.HeaderTooLargeError)


def test_rule15_parser_never_buffers_more_than_107_bytes() -> None:
    """Rule 15 / CVE-2021-23351 shape: an endless UNKNOWN line fails at 107 bytes at most."""
    p = pp.Parser()
    assert p.feed(b"PROXY UNKNOWN ") is None
    fed = 14
    while True:
        try:
            assert p.feed(b"y") is None
        except pp.HeaderTooLargeError:
            break
        fed += 1
        assert p.buffered == fed <= 107
    assert fed == 105


REJECT = [
    # D1 detection
    pytest.param(b"GET / HTTP/1.1\r\n", "not_proxy_protocol", 0, id="http-D1"),
    pytest.param(b"PRX", "not_proxy_protocol", 2, id="PRX-fails-at-2-D1"),
    pytest.param(b"proxy TCP4", "not_proxy_protocol", 0, id="lower-case-PROXY"),
    pytest.param(b"PROXY\tTCP4", "v1_syntax", 5, id="tab-not-space-rule8"),
    pytest.param(b"PROXY .", "v1_protocol", 6, id="PROXY-dot-fails-at-6-D1"),
    # rule 8: proto token and exactly one space
    pytest.param(b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "v1_protocol", 6, id="two-spaces-1"),
    pytest.param(b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "v1_address", 11, id="two-spaces-2"),
    pytest.param(b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "v1_address", 19, id="two-spaces-3"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "v1_port", 29, id="two-spaces-4"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "v1_syntax", 30, id="trailing-space"),
    pytest.param(b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "v1_protocol", 9, id="TCP5"),
    pytest.param(b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "v1_protocol", 6, id="lower-tcp4"),
    pytest.param(b"PROXY TCP4\r\n", "v1_protocol", 10, id="TCP4-no-fields"),
    pytest.param(b"PROXY UNKNOWNX\r\n", "v1_syntax", 13, id="UNKNOWNX"),
    pytest.param(b"PROXY TCP ", "v1_protocol", 9, id="TCP-space-D1"),
    pytest.param(b"PROXY TCP4X", "v1_protocol", 10, id="TCP4X-D1"),
    pytest.param(b"PROXY UNK ", "v1_protocol", 9, id="UNK-space-D1"),
    pytest.param(b"PROXY X", "v1_protocol", 6, id="X-D1"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8\r\n", "v1_address", 26, id="no-ports"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "v1_syntax", 28, id="one-port"),
    # rule 13: CRLF only
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1_syntax", 30, id="lone-LF-rule13"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "v1_syntax", 31, id="lone-CR-rule13"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "v1_syntax", 31, id="CR-CR-LF-rule13"),
    pytest.param(b"PROXY UNKNOWN\n", "v1_syntax", 13, id="unknown-lone-LF-rule13"),
    pytest.param(b"PROXY UNKNOWN foo\nbar\r\n", "v1_syntax", 17, id="unknown-LF-inside-rule13"),
    pytest.param(b"PROXY UNKNOWN foo\rbar\r\n", "v1_syntax", 18, id="unknown-CR-inside-rule13"),
    # rule 10: IPv4
    pytest.param(b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "v1_address", 12, id="ipv4-lead-0"),
    pytest.param(b"PROXY TCP4 1.2.3.00 5.6.7.8 1 2\r\n", "v1_address", 18, id="ipv4-00"),
    pytest.param(b"PROXY TCP4 999.0.0.1 5.6.7.8 1 2\r\n", "v1_address", 13, id="ipv4-999"),
    pytest.param(b"PROXY TCP4 256.0.0.1 5.6.7.8 1 2\r\n", "v1_address", 13, id="ipv4-256"),
    pytest.param(b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "v1_address", 16, id="ipv4-3-parts"),
    pytest.param(b"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "v1_address", 18, id="ipv4-5-parts"),
    pytest.param(b"PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", "v1_address", 13, id="ipv4-empty-part"),
    pytest.param(b"PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n", "v1_address", 12, id="ipv4-hex"),
    pytest.param(b"PROXY TCP4 ::1 ::1 1 2\r\n", "v1_address", 11, id="ipv6-under-TCP4-D6"),
    pytest.param(
        b"PROXY TCP4 ::ffff:1.2.3.4 5.6.7.8 1 2\r\n", "v1_address", 11, id="mapped-under-TCP4"
    ),
    # rule 11 and D6: IPv6
    pytest.param(b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "v1_address", 12, id="ipv4-under-TCP6-D6"),
    pytest.param(b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "v1_address", 18, id="zone-id-D6"),
    pytest.param(b"PROXY TCP6 ::1%1 ::1 1 2\r\n", "v1_address", 14, id="numeric-zone-id-D6"),
    pytest.param(b"PROXY TCP6 1::2::3 ::1 1 2\r\n", "v1_address", 16, id="two-double-colons"),
    pytest.param(b"PROXY TCP6 12345:: ::1 1 2\r\n", "v1_address", 15, id="group-of-5"),
    pytest.param(b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "v1_address", 26, id="nine-groups"),
    pytest.param(b"PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", "v1_address", 24, id="seven-groups"),
    pytest.param(b"PROXY TCP6 ::g ::1 1 2\r\n", "v1_address", 13, id="non-hex"),
    pytest.param(b"PROXY TCP6 :1::2 ::1 1 2\r\n", "v1_address", 12, id="lone-leading-colon"),
    pytest.param(b"PROXY TCP6 [::1] ::1 1 2\r\n", "v1_address", 11, id="brackets"),
    pytest.param(b"PROXY TCP6 ::ffff:01.2.3.4 ::1 1 2\r\n", "v1_address", 20, id="mapped-lead-0"),
    pytest.param(b"PROXY TCP6 ::ffff:1.2.3.256 ::1 1 2\r\n", "v1_address", 26, id="mapped-256"),
    pytest.param(
        b"PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n", "v1_address", 26, id="v4-suffix-no-room"
    ),
    # rule 12: ports
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "v1_port", 28, id="port-lead-0"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", "v1_port", 30, id="port-00"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", "v1_port", 27, id="port-plus"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "v1_port", 27, id="port-minus"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 5_6324 2\r\n", "v1_port", 28, id="port-underscore"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8  80 2\r\n", "v1_port", 27, id="port-space"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "v1_port", 31, id="port-65536"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "v1_port", 33, id="dport-65536"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "v1_port", 33, id="dport-99999"),
    pytest.param(b"PROXY TCP4 1.2.3.4 5.6.7.8 8\xd9\xa0 2\r\n", "v1_port", 28, id="unicode-digit"),
]


@pytest.mark.parametrize(("line", "kind", "offset"), REJECT)
def test_rule16_rejected_at_first_impossible_byte(line: bytes, kind: str, offset: int) -> None:
    """Rules 8-16, D1, D6: anything not matching exactly fails, at its first impossible
    byte; every shorter prefix is still incomplete."""
    check_invalid(line, kind, offset)


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY UNKNOWN\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP6 ::1 ::1 1 2\r\n",
    ],
)
def test_rule45_haproxy_limits_v1(line: bytes) -> None:
    """haproxy_limits keeps every short form (rule 45)."""
    assert pp.parse(line, haproxy_limits=True).length == len(line)


def test_rule45_haproxy_limits_refuses_long_unknown() -> None:
    """Rule 45: HAProxy accepts only the short ``PROXY UNKNOWN\\r\\n``; D5's long form is
    refused at the byte after UNKNOWN under haproxy_limits."""
    check_invalid(b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", "v1_syntax", 13, haproxy_limits=True)


def test_v1_not_allowed() -> None:
    """allow_v1=False: a v1 line is refused as version_not_allowed at byte 0."""
    check_invalid(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "version_not_allowed", 0, allow_v1=False)


def test_v1_ignores_max_size() -> None:
    """D7: max_size bounds v2 only; a 107-byte v1 line passes with max_size=16."""
    assert pp.parse(UNKNOWN_LONGEST, max_size=16).length == 107


def test_rule14_tcp6_line_cannot_grow_past_104() -> None:
    """Rule 14: a TCP6 address cannot be longer than 45 characters."""
    long_addr = b"0000:" * 9
    err = check_invalid(b"PROXY TCP6 " + long_addr + b" ::1 1 2\r\n", "v1_address", 50)
    assert err.offset < 107


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:DB8::0:1", "2001:db8::1"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("::ffff:7f00:1", "::ffff:127.0.0.1"),
        ("0:0:0:0:0:ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("fe80:0:0:0:200:f8ff:fe21:67cf", "fe80::200:f8ff:fe21:67cf"),
    ],
)
def test_D8_ipv6_text_is_canonical(text: str, canonical: str) -> None:
    """D8: IPv6 comes back in RFC 5952 form, IPv4-mapped addresses dotted."""
    h = pp.parse(f"PROXY TCP6 {text} {text} 1 2\r\n".encode())
    assert h.source == (canonical, 1)
    assert h.destination == (canonical, 2)


def test_real_captures_v1() -> None:
    """Real lines captured from HAProxy and nginx (tests/vectors), three ways."""
    from pathlib import Path

    vectors = Path(__file__).parent / "vectors"
    for name in ("haproxy-v1-tcp4", "haproxy-v1-tcp6", "haproxy-v1-unknown-unix"):
        check_vector((vectors / f"{name}.bin").read_bytes())
    for name in ("nginx-v1-tcp4", "nginx-v1-tcp6"):
        check_vector((vectors / f"{name}.bin").read_bytes())
