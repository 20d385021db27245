"""Differential check against HAProxy's ``accept-proxy`` on hand-made edge-case headers.

Each header (raw bytes, never built by the code under test) goes to a real HAProxy and to
``parse()``. Where both accept, HAProxy must report the addresses we parsed. Where they
differ, the table says why: our rule is stricter or looser on purpose (SPEC rule / decision),
or HAProxy 2.6 is lax. The HAProxy column was observed with Debian's 2.6.12; the cases
where we and HAProxy agree are asserted for any version, the divergent ones only on 2.6.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import proxyproto_rs as pp
import pytest
from proxyproto_rs._wire import inet4_block, inet6_block, tlv, v2
from proxyproto_rs._wire import with_crc as fill_crc

pytestmark = pytest.mark.interop

HTTP_GET = b"GET / HTTP/1.0\r\nHost: interop\r\n\r\n"
A4 = inet4_block("127.1.2.3", "127.4.5.6", 56324, 443)
A6 = inet6_block("2001:db8::1", "2001:db8:0:1::2", 56324, 443)
V1 = b"PROXY TCP4 127.1.2.3 127.4.5.6 "


def with_crc(
    ver_cmd: int,
    fam: int,
    addr: bytes,
    before: bytes = b"",
    after: bytes = b"",
    *,
    flip: bool = False,
) -> bytes:
    """A v2 header whose CRC32C TLV sits after *before*; *flip* spoils the value."""
    return fill_crc(v2(ver_cmd, fam, addr + before + tlv(0x03, bytes(4)) + after), wrong=flip)


@dataclass(frozen=True)
class Case:
    wire: bytes
    ours: bool
    """parse() with default options accepts it."""
    limits: bool
    """parse(haproxy_limits=True) accepts it."""
    haproxy: bool
    """HAProxy 2.6.12 ``accept-proxy`` answers the request that follows."""
    why: str = ""
    """Rule that decides our answer where it differs from HAProxy's."""


CASES: dict[str, Case] = {
    # v1 (rules 8-17)
    "v1-ok": Case(V1 + b"56324 443\r\n", True, True, True),
    "v1-port-0": Case(V1 + b"0 0\r\n", True, True, True, "rule 12: 0 is valid"),
    "v1-port-leading-zero": Case(V1 + b"056324 443\r\n", False, False, True, "rule 12"),
    "v1-port-65536": Case(V1 + b"65536 443\r\n", False, False, True, "rule 12; HAProxy: port 0"),
    "v1-port-plus": Case(V1 + b"+5 443\r\n", False, False, False),
    "v1-ip-leading-zero": Case(
        b"PROXY TCP4 127.01.2.3 127.4.5.6 1 2\r\n", False, False, True, "rule 10"
    ),
    "v1-ip-256": Case(
        b"PROXY TCP4 127.1.2.256 127.4.5.6 1 2\r\n",
        False,
        False,
        True,
        "rule 10; HAProxy 2.6 carries the overflow and reports 127.1.3.0",
    ),
    "v1-double-space": Case(b"PROXY TCP4  127.1.2.3 127.4.5.6 1 2\r\n", False, False, False),
    "v1-trailing-space": Case(V1 + b"1 2 \r\n", False, False, False),
    "v1-lf-only": Case(V1 + b"1 2\n", False, False, False),
    "v1-lowercase-proto": Case(b"PROXY tcp4 127.1.2.3 127.4.5.6 1 2\r\n", False, False, False),
    "v1-tcp6-mapped": Case(b"PROXY TCP6 ::ffff:127.1.2.3 ::1 1 2\r\n", True, True, True),
    "v1-tcp6-mapped-hex": Case(b"PROXY TCP6 ::ffff:7f01:203 ::1 1 2\r\n", True, True, True),
    "v1-tcp6-compat": Case(b"PROXY TCP6 ::127.1.2.3 ::1 1 2\r\n", True, True, True),
    "v1-tcp6-upper": Case(b"PROXY TCP6 2001:DB8::1 ::1 1 2\r\n", True, True, True),
    "v1-tcp6-full": Case(b"PROXY TCP6 2001:db8:0:0:0:0:0:1 ::1 1 2\r\n", True, True, True),
    "v1-tcp6-9-groups": Case(b"PROXY TCP6 1:2:3:4:5:6:7::8 ::1 1 2\r\n", False, False, False),
    "v1-tcp6-v4-text": Case(b"PROXY TCP6 127.1.2.3 127.4.5.6 1 2\r\n", False, False, False),
    "v1-tcp4-v6-text": Case(b"PROXY TCP4 ::1 ::1 1 2\r\n", False, False, False),
    "v1-tcp6-zone": Case(b"PROXY TCP6 fe80::1%lo ::1 1 2\r\n", False, False, False),
    "v1-unknown": Case(b"PROXY UNKNOWN\r\n", True, True, True),
    "v1-unknown-fields": Case(
        b"PROXY UNKNOWN 127.1.2.3 127.4.5.6 1 2\r\n", True, False, False, "D5 / rule 45"
    ),
    "v1-unknown-107": Case(b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n", True, False, False, "D5"),
    "v1-unknown-108": Case(b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n", False, False, False),
    # v2 (rules 18-31)
    "v2-ok": Case(v2(0x21, 0x11, A4), True, True, True),
    "v2-ok6": Case(v2(0x21, 0x21, A6), True, True, True),
    "v2-version-1": Case(v2(0x11, 0x11, A4), False, False, False),
    "v2-command-2": Case(v2(0x22, 0x11, A4), False, False, False),
    "v2-family-4": Case(v2(0x21, 0x41, A4), False, False, False),
    "v2-protocol-3": Case(v2(0x21, 0x13, A4), False, False, False),
    "v2-short-addr4": Case(v2(0x21, 0x11, A4[:11]), False, False, False),
    "v2-short-addr6": Case(v2(0x21, 0x21, A6[:35]), False, False, False),
    "v2-proxy-unspec": Case(v2(0x21, 0x00, b""), True, True, False, "D2, rules 24-25; rule 45"),
    "v2-proxy-inet-unspec": Case(v2(0x21, 0x01, A4), True, True, False, "D2; rule 45"),
    "v2-proxy-udp4": Case(v2(0x21, 0x12, A4), True, True, False, "rules 23, 25; rule 45"),
    "v2-proxy-unix": Case(
        v2(0x21, 0x31, b"/a".ljust(108, b"\0") + b"/b".ljust(108, b"\0")),
        True,
        True,
        False,
        "rules 23, 25; rule 45",
    ),
    "v2-big-5000": Case(
        v2(0x21, 0x11, A4 + tlv(0x04, bytes(1000)) * 5), False, False, True, "D7 max_size 4096"
    ),
    # TLVs (rules 30-38, D4)
    "v2-tlv-crossing": Case(v2(0x21, 0x11, A4 + b"\x04\x00\x0a" + bytes(3)), False, False, False),
    "v2-tlv-header-partial": Case(v2(0x21, 0x11, A4 + b"\x04\x00"), False, False, False),
    "v2-noop-empty": Case(v2(0x21, 0x11, A4 + tlv(0x04, b"")), True, True, True),
    "v2-crc-3-bytes": Case(v2(0x21, 0x11, A4 + tlv(0x03, bytes(3))), False, False, False),
    "v2-authority-255": Case(v2(0x21, 0x11, A4 + tlv(0x02, b"a" * 255)), True, True, True),
    "v2-authority-256": Case(v2(0x21, 0x11, A4 + tlv(0x02, b"a" * 256)), True, False, False, "D4"),
    "v2-custom-1024": Case(v2(0x21, 0x11, A4 + tlv(0xE5, b"c" * 1024)), True, True, True),
    "v2-custom-1025": Case(
        v2(0x21, 0x11, A4 + tlv(0xE5, b"c" * 1025)),
        True,
        False,
        True,
        "D4; rule 43 cap is newer than HAProxy 2.6, which skips unknown TLVs",
    ),
    "v2-unique-id-128": Case(v2(0x21, 0x11, A4 + tlv(0x05, b"u" * 128)), True, True, True),
    "v2-unique-id-129": Case(v2(0x21, 0x11, A4 + tlv(0x05, b"u" * 129)), False, False, False),
    "v2-unique-id-empty": Case(v2(0x21, 0x11, A4 + tlv(0x05, b"")), True, True, True),
    "v2-ssl-4-bytes": Case(
        v2(0x21, 0x11, A4 + tlv(0x20, b"\x01\0\0\0")), False, False, True, "D4 (HAProxy skips SSL)"
    ),
    "v2-ssl-sub-crossing": Case(
        v2(0x21, 0x11, A4 + tlv(0x20, b"\x01\0\0\0\0" + b"\x21\x00\x09TLS")),
        False,
        False,
        True,
        "D4 (HAProxy skips SSL)",
    ),
    "v2-duplicate-authority": Case(
        v2(0x21, 0x11, A4 + tlv(0x02, b"one") + tlv(0x02, b"two")), True, True, True
    ),
    "v2-crc-ok": Case(with_crc(0x21, 0x11, A4), True, True, True),
    "v2-crc-after-authority": Case(
        with_crc(0x21, 0x11, A4, before=tlv(0x02, b"host")), True, True, True
    ),
    "v2-crc-bad": Case(with_crc(0x21, 0x11, A4, flip=True), False, False, False),
    # LOCAL (rules 20, 26, 44, D3)
    "v2-local": Case(v2(0x20, 0x00, b""), True, True, True),
    "v2-local-fam11-len0": Case(v2(0x20, 0x11, b""), True, True, True),
    "v2-local-fam11-addr": Case(v2(0x20, 0x11, A4), True, True, True),
    "v2-local-aws-nlb": Case(
        with_crc(0x20, 0x11, b"", after=tlv(0x04, bytes(74))), True, True, True, "rule 44"
    ),
    "v2-local-garbage": Case(v2(0x20, 0x00, b"\xff\xff\xff"), True, True, True, "D3"),
    "v2-local-crc-bad": Case(
        with_crc(0x20, 0x00, b"", flip=True),
        False,
        False,
        True,
        "D3 / rule 34; HAProxy 2.6 never reads TLVs of a LOCAL header",
    ),
}


@pytest.fixture(scope="module")
def accept_proxy(start_haproxy, peers):
    port = peers.free_port()
    fmt = "src=%[src] sport=%[src_port] dst=%[dst] dport=%[dst_port]"
    start_haproxy(
        f"""
frontend fe_edges
    mode http
    bind 127.0.0.1:{port} accept-proxy
    http-request return status 200 content-type text/plain lf-string "{fmt}"
""",
        [port],
    )
    return port


def ours(wire: bytes, **options: bool) -> pp.Header | None:
    try:
        header = pp.parse(wire, **options)
    except pp.InvalidHeaderError:
        return None
    assert header.length == len(wire)
    assert header.to_bytes() == wire
    return header


def reported(body: bytes) -> dict[str, str]:
    """HAProxy's answer as a dict; an empty port is port 0 (src_port/dst_port print
    nothing for it)."""
    seen = dict(item.split("=", 1) for item in body.decode().split(" "))
    for key in ("sport", "dport"):
        seen[key] = seen[key] or "0"
    return seen


@pytest.mark.parametrize("name", list(CASES))
def test_haproxy_accept_proxy_edge_case(accept_proxy, peers, haproxy_version, name):
    """Edge cases of rules 8-17 (v1), 18-31 (v2), 34, 43-45 and decisions D2-D7 against
    HAProxy: see each case's ``why`` for a deliberate difference."""
    case = CASES[name]
    header = ours(case.wire)
    assert (header is not None) == case.ours
    assert (ours(case.wire, haproxy_limits=True) is not None) == case.limits

    ex = peers.exchange("127.0.0.1", accept_proxy, case.wire + HTTP_GET)
    accepted = ex.reply.startswith(b"HTTP/1.1 200")
    if not accepted:
        assert ex.reply == b"", ex.reply  # refused: closed without a response
    if case.ours == case.haproxy or haproxy_version == (2, 6):
        assert accepted == case.haproxy, f"HAProxy {haproxy_version} on {case.wire!r}"

    if accepted and header is not None:
        seen = reported(ex.reply.partition(b"\r\n\r\n")[2])
        if header.source is None:  # LOCAL, UNSPEC, UNKNOWN: the real endpoints (rule 17, 20)
            assert (seen["src"], int(seen["sport"])) == ex.sockname
            assert (seen["dst"], int(seen["dport"])) == ex.peername
        else:  # the same addresses (text may differ: HAProxy prints ::a.b.c.d, see D8)
            src, dst = header.source, header.destination
            assert isinstance(src, tuple)
            assert isinstance(dst, tuple)
            assert ipaddress.ip_address(seen["src"]) == ipaddress.ip_address(src[0])
            assert ipaddress.ip_address(seen["dst"]) == ipaddress.ip_address(dst[0])
            assert (int(seen["sport"]), int(seen["dport"])) == (src[1], dst[1])
