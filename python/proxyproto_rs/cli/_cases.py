"""The ``check`` battery as data: each case is the bytes one connection sends, whether a
receiver must take or refuse them, how strongly the spec says so, and the rule it tests.

The built-in cases name shapes every receiver meets (valid ones at the edges of the grammar,
invalid ones one rule broken at a time); ``corpus_cases`` adds the fuzz corpus, classified
by this package's strict parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from proxyproto_rs._core import build_v1, build_v2, parse
from proxyproto_rs._errors import HeaderTooLargeError, IncompleteHeaderError, ProxyProtocolError
from proxyproto_rs._wire import (
    inet4_block,
    inet6_block,
    ssl_value,
    tlv,
    unix_block,
    v2,
    with_crc,
)


@dataclass(frozen=True)
class Case:
    """One connection of the ``check`` battery."""

    name: str
    data: bytes
    valid: bool
    level: str
    """``must``, ``should`` or ``may``: how strongly the spec asks for the expected outcome."""
    rule: str
    note: str = ""
    chunks: tuple[bytes, ...] = ()
    """When set, sent in this many writes 0.2 s apart instead of ``data`` at once."""
    version: int = 0


S4: Final = ("192.0.2.10", 40000)
D4: Final = ("198.51.100.20", 80)
S6: Final = ("2001:db8::10", 40000)
D6: Final = ("2001:db8::20", 80)
_A4: Final = inet4_block(S4[0], D4[0], S4[1], D4[1])
_A6: Final = inet6_block(S6[0], D6[0], S6[1], D6[1])


def _crc(
    ver_cmd: int, fam: int, addresses: bytes, after: bytes = b"", wrong: bool = False
) -> bytes:
    """A v2 header whose CRC32C TLV comes first, as HAProxy writes it (*wrong*: spoiled)."""
    return with_crc(v2(ver_cmd, fam, addresses + tlv(0x03, bytes(4)) + after), wrong=wrong)


def _ok(name: str, data: bytes, level: str, rule: str, note: str = "", **kw: Any) -> Case:
    version = 1 if data.startswith(b"PROXY") else 2
    return Case(name, data, True, level, rule, note, version=version, **kw)


def _bad(name: str, data: bytes, level: str, rule: str, note: str = "") -> Case:
    return Case(name, data, False, level, rule, note)


SECOND_HEADER: Final = "-second-header"
"""Name suffix of the cases that send two headers in a row (a finding of their own)."""

_V1_4: Final = build_v1(S4, D4)
_V2_4: Final = build_v2(S4, D4)
_LONG_V6: Final = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
_V1_MAX: Final = f"PROXY UNKNOWN {_LONG_V6} {_LONG_V6} 65535 65535\r\n".encode()
_AUTHORITY: Final = tlv(0x02, b"example.com")
_SSL: Final = ssl_value(0x01, 0, [(0x21, b"TLSv1.3")])
_UNIX: Final = unix_block(b"/run/client.sock", b"/run/server.sock")

BUILTIN_CASES: Final[tuple[Case, ...]] = (
    # ---- valid v1 (SPEC rules 8-17)
    _ok("v1-tcp4", _V1_4, "must", "8", "PROXY TCP4 line"),
    _ok("v1-tcp6", build_v1(S6, D6), "must", "8, 11", "PROXY TCP6 line"),
    _ok("v1-unknown-short", b"PROXY UNKNOWN\r\n", "must", "9, 17", "health-check form"),
    _ok(
        "v1-unknown-with-addresses",
        f"PROXY UNKNOWN {S6[0]} {D6[0]} 40000 80\r\n".encode(),
        "must",
        "9",
        "the receiver must ignore what follows UNKNOWN",
    ),
    _ok("v1-107-bytes", _V1_MAX, "must", "14", "the longest legal line"),
    _ok("v1-port-zero", build_v1((S4[0], 0), D4), "must", "12", "port 0 is legal"),
    _ok(
        "v1-tcp6-ipv4-mapped",
        b"PROXY TCP6 ::ffff:192.0.2.10 ::ffff:198.51.100.20 40000 80\r\n",
        "may",
        "11 (D6)",
        "IPv4-mapped IPv6, as HAProxy sends mixed families",
    ),
    _ok("v1-split", _V1_4, "should", "3", "line in two writes", chunks=(_V1_4[:9], _V1_4[9:])),
    # ---- valid v2 (SPEC rules 18-40)
    _ok("v2-tcp4", _V2_4, "must", "23", "PROXY TCP over IPv4"),
    _ok("v2-tcp6", build_v2(S6, D6), "must", "23", "PROXY TCP over IPv6"),
    _ok("v2-local-empty", v2(0x20, 0x00, b""), "must", "20, 24", "LOCAL health check"),
    _ok(
        "v2-local-with-addresses",
        v2(0x20, 0x11, _A4),
        "must",
        "20, 26",
        "LOCAL: the length is honoured, the addresses ignored",
    ),
    _ok(
        "v2-local-aws-health-check",
        _crc(0x20, 0x11, b"", tlv(0x04, bytes(74))),
        "should",
        "44 (D3)",
        "AWS NLB health check: family 0x11, CRC32C + NOOP, no address block",
    ),
    _ok("v2-proxy-unspec", v2(0x21, 0x00, b""), "may", "24", "PROXY with UNSPEC family"),
    _ok("v2-udp4-on-tcp", v2(0x21, 0x12, _A4), "should", "25", "UDP family: fall back"),
    _ok("v2-unix-stream", v2(0x21, 0x31, _UNIX), "must", "25", "UNIX: fall back"),
    _ok(
        "v2-alpn-authority",
        build_v2(S4, D4, alpn=b"h2", authority="example.com"),
        "must",
        "30-33",
    ),
    _ok(
        "v2-crc32c",
        _crc(0x21, 0x11, _A4, _AUTHORITY),
        "must",
        "34",
        "correct CRC32C first, then AUTHORITY",
    ),
    _ok("v2-noop", build_v2(S4, D4, tlvs=[(0x04, bytes(13))]), "must", "35"),
    _ok(
        "v2-zero-length-tlv-last",
        v2(0x21, 0x11, _A4 + tlv(0x04, b"")),
        "must",
        "31, 35",
        "a 3-byte TLV ends the header",
    ),
    _ok("v2-unique-id-128", build_v2(S4, D4, unique_id=bytes(range(128))), "must", "36"),
    _ok("v2-ssl", v2(0x21, 0x11, _A4 + tlv(0x20, _SSL)), "must", "37, 38"),
    _ok("v2-netns", build_v2(S4, D4, netns="blue"), "must", "39"),
    _ok(
        "v2-custom-and-experimental",
        build_v2(S4, D4, tlvs=[(0xE1, b"\x01\x02"), (0xF0, b"x")]),
        "must",
        "31, 40",
        "unknown TLV types are ignored",
    ),
    _ok(
        "v2-aws-vpce-id",
        build_v2(S4, D4, aws_vpce_id="vpce-08d2bf15fac5001c9"),
        "must",
        "31",
    ),
    _ok(
        "v2-large-tlv-1500",
        build_v2(S4, D4, tlvs=[(0xE2, bytes(1500))]),
        "may",
        "3",
        "header over 536 bytes; HAProxy caps TLV values at 1024",
    ),
    _ok("v2-split", _V2_4, "should", "3", "header in two writes", chunks=(_V2_4[:10], _V2_4[10:])),
    # ---- invalid, both versions
    _bad("no-header", b"", "must", "6", "the probe alone: a header is required"),
    # ---- invalid v2
    _bad("v2-bad-signature", _V2_4[:11] + b"\x0b" + _V2_4[12:], "must", "18"),
    _bad("v2-version-1", _V2_4[:12] + b"\x11" + _V2_4[13:], "must", "19"),
    _bad("v2-version-3", _V2_4[:12] + b"\x31" + _V2_4[13:], "must", "19"),
    _bad("v2-command-2", _V2_4[:12] + b"\x22" + _V2_4[13:], "must", "19"),
    _bad("v2-command-15", _V2_4[:12] + b"\x2f" + _V2_4[13:], "must", "19"),
    _bad("v2-family-4", v2(0x21, 0x41, _A4), "must", "22"),
    _bad("v2-protocol-3", v2(0x21, 0x13, _A4), "must", "22"),
    _bad("v2-truncated-address-tcp4", v2(0x21, 0x11, _A4[:4]), "must", "28, 43"),
    _bad("v2-truncated-address-tcp6", v2(0x21, 0x21, _A6[:12]), "must", "28, 43"),
    _bad(
        "v2-tlv-crosses-end",
        v2(0x21, 0x11, _A4 + tlv(0x02, b"exa", length=100)),
        "should",
        "30, 43 (D4)",
        "a receiver that skips TLVs may not notice",
    ),
    _bad(
        "v2-tlv-header-truncated",
        v2(0x21, 0x11, _A4 + b"\x02\x00"),
        "should",
        "30, 43 (D4)",
        "a receiver that skips TLVs may not notice",
    ),
    _bad(
        "v2-bad-crc32c",
        _crc(0x21, 0x11, _A4, _AUTHORITY, wrong=True),
        "should",
        "34",
        "one bit flipped; MUST refuse if the receiver implements CRC32C",
    ),
    _bad(
        "v2-crc32c-3-bytes",
        v2(0x21, 0x11, _A4 + tlv(0x03, b"\0\0\0")),
        "should",
        "34, 43 (D4)",
    ),
    _bad("v2-ssl-too-short", v2(0x21, 0x11, _A4 + tlv(0x20, b"\x01\0")), "should", "37 (D4)"),
    _bad(
        "v2-unique-id-129",
        v2(0x21, 0x11, _A4 + tlv(0x05, bytes(129))),
        "should",
        "36 (D4)",
        "UNIQUE_ID is at most 128 bytes",
    ),
    # ---- invalid v1
    _bad("v1-lf-only", _V1_4[:-2] + b"\n", "must", "13", "LF without CR"),
    _bad("v1-cr-only", _V1_4[:-2] + b"\r", "must", "13", "CR without LF"),
    _bad("v1-no-terminator", _V1_4[:-2], "must", "15", "the probe follows the ports"),
    _bad(
        "v1-108-bytes",
        b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n",
        "must",
        "14, 15",
        "no CRLF within 107 bytes",
    ),
    _bad("v1-ip-leading-zero", b"PROXY TCP4 192.0.2.010 198.51.100.20 40000 80\r\n", "must", "10"),
    _bad("v1-ip-octet-256", b"PROXY TCP4 192.0.2.256 198.51.100.20 40000 80\r\n", "must", "10"),
    _bad("v1-ip-three-octets", b"PROXY TCP4 192.0.2 198.51.100.20 40000 80\r\n", "must", "10"),
    _bad(
        "v1-port-leading-zero",
        b"PROXY TCP4 192.0.2.10 198.51.100.20 040000 80\r\n",
        "must",
        "12",
    ),
    _bad("v1-port-65536", b"PROXY TCP4 192.0.2.10 198.51.100.20 65536 80\r\n", "must", "12"),
    _bad("v1-port-plus-sign", b"PROXY TCP4 192.0.2.10 198.51.100.20 +40000 80\r\n", "must", "12"),
    _bad("v1-double-space", b"PROXY TCP4  192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
    _bad("v1-tab-separator", b"PROXY\tTCP4 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
    _bad("v1-trailing-space", b"PROXY TCP4 192.0.2.10 198.51.100.20 40000 80 \r\n", "must", "8"),
    _bad("v1-lowercase-proxy", b"proxy TCP4 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
    _bad("v1-lowercase-tcp4", b"PROXY tcp4 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
    _bad("v1-proto-tcp5", b"PROXY TCP5 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
    _bad("v1-missing-port", b"PROXY TCP4 192.0.2.10 198.51.100.20 40000\r\n", "must", "8"),
    _bad("v1-extra-field", b"PROXY TCP4 192.0.2.10 198.51.100.20 40000 80 9\r\n", "must", "8"),
    _bad("v1-tcp4-with-ipv6", b"PROXY TCP4 2001:db8::10 2001:db8::20 40000 80\r\n", "must", "10"),
    _bad("v1-tcp6-with-ipv4", b"PROXY TCP6 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "11"),
    _bad(
        "v1-tcp6-zone-id",
        b"PROXY TCP6 fe80::1%eth0 2001:db8::20 40000 80\r\n",
        "should",
        "11 (D6)",
    ),
    # ---- chained proxies: each adds a header, the application would get the second
    *(
        _bad(f"v{v}{SECOND_HEADER}", first + second, "should", "2, 7", "must not reach the app")
        for v, first, second in ((2, _V2_4, build_v2(S6, D6)), (1, _V1_4, build_v1(S6, D6)))
    ),
)
"""The named battery: valid shapes every receiver must take, invalid ones it must drop."""


def builtin_cases() -> list[Case]:
    """A fresh list of the named battery."""
    return list(BUILTIN_CASES)


def corpus_cases(directory: Path, limit: int) -> list[Case]:
    """Cases from a fuzz corpus: every file our strict parser accepts or rejects outright.

    Skipped: files that are only an unfinished prefix (a receiver would just wait) and
    headers over the common 4096-byte cap (a size policy, not conformance)."""
    cases: list[Case] = []
    seen: set[bytes] = set()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if len(cases) >= limit:
            break
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if not data or len(data) > 70000:
            continue
        try:
            header = parse(data)
        except (IncompleteHeaderError, HeaderTooLargeError):
            continue  # a receiver would wait, or a size policy decides: not conformance
        except ProxyProtocolError:
            if data[:1] not in (b"P", b"\r") or data in seen:
                continue
            seen.add(data)
            rel = path.relative_to(directory)
            cases.append(Case(f"corpus:{rel}", data, False, "should", "corpus"))
            continue
        wire = header.to_bytes()
        if wire in seen:
            continue
        seen.add(wire)
        rel = path.relative_to(directory)
        cases.append(Case(f"corpus:{rel}", wire, True, "should", "corpus", version=header.version))
    return cases
