"""The ``check`` battery as data: each case is the bytes one connection sends, whether a
receiver must take or refuse them, how strongly the spec says so, and the rule it tests.

The built-in cases name shapes every receiver meets (valid ones at the edges of the grammar,
invalid ones one rule broken at a time); ``corpus_cases`` adds the fuzz corpus, classified
by this package's strict parser.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from proxyproto_rs._core import V2_SIGNATURE, build_v1, build_v2, crc32c, parse
from proxyproto_rs._errors import HeaderTooLargeError, IncompleteHeaderError, ProxyProtocolError


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
_A4: Final = bytes([192, 0, 2, 10, 198, 51, 100, 20]) + struct.pack("!HH", 40000, 80)
_A6: Final = (
    socket.inet_pton(socket.AF_INET6, S6[0])
    + socket.inet_pton(socket.AF_INET6, D6[0])
    + struct.pack("!HH", 40000, 80)
)


def _v2(ver_cmd: int, fam: int, body: bytes, *, declared: int | None = None) -> bytes:
    length = len(body) if declared is None else declared
    return V2_SIGNATURE + bytes([ver_cmd, fam]) + struct.pack("!H", length) + body


def _tlv(kind: int, value: bytes, *, declared: int | None = None) -> bytes:
    length = len(value) if declared is None else declared
    return bytes([kind]) + struct.pack("!H", length) + value


def _with_crc(ver_cmd: int, fam: int, addresses: bytes, after: bytes = b"") -> bytes:
    """A v2 header whose CRC32C TLV (first, as HAProxy writes it) is correct."""
    blank = _v2(ver_cmd, fam, addresses + _tlv(0x03, b"\0\0\0\0") + after)
    value = crc32c(blank)
    at = 16 + len(addresses) + 3
    return blank[:at] + struct.pack("!I", value) + blank[at + 4 :]


def builtin_cases() -> list[Case]:
    """The named battery: valid shapes every receiver must take, invalid ones it must drop."""
    v1_4 = build_v1(S4, D4)
    v2_4 = build_v2(S4, D4)
    long_v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    v1_max = f"PROXY UNKNOWN {long_v6} {long_v6} 65535 65535\r\n".encode()
    assert len(v1_max) == 107
    good_crc = _with_crc(0x21, 0x11, _A4, _tlv(0x02, b"example.com"))
    bad_crc = bytearray(good_crc)
    bad_crc[16 + 12 + 3] ^= 0x01
    aws_check = _with_crc(0x20, 0x11, b"", _tlv(0x04, bytes(74)))
    unix_block = b"/run/client.sock".ljust(108, b"\0") + b"/run/server.sock".ljust(108, b"\0")
    ssl_value = b"\x01" + b"\0\0\0\0" + _tlv(0x21, b"TLSv1.3")

    def v(name: str, data: bytes, level: str, rule: str, note: str = "", **kw: Any) -> Case:
        version = 1 if data.startswith(b"PROXY") else 2
        return Case(name, data, True, level, rule, note, version=version, **kw)

    def bad(name: str, data: bytes, level: str, rule: str, note: str = "") -> Case:
        return Case(name, data, False, level, rule, note)

    cases = [
        # ---- valid v1 (SPEC rules 8-17)
        v("v1-tcp4", v1_4, "must", "8", "PROXY TCP4 line"),
        v("v1-tcp6", build_v1(S6, D6), "must", "8, 11", "PROXY TCP6 line"),
        v("v1-unknown-short", b"PROXY UNKNOWN\r\n", "must", "9, 17", "health-check form"),
        v(
            "v1-unknown-with-addresses",
            f"PROXY UNKNOWN {S6[0]} {D6[0]} 40000 80\r\n".encode(),
            "must",
            "9",
            "the receiver must ignore what follows UNKNOWN",
        ),
        v("v1-107-bytes", v1_max, "must", "14", "the longest legal line"),
        v("v1-port-zero", build_v1((S4[0], 0), D4), "must", "12", "port 0 is legal"),
        v(
            "v1-tcp6-ipv4-mapped",
            b"PROXY TCP6 ::ffff:192.0.2.10 ::ffff:198.51.100.20 40000 80\r\n",
            "may",
            "11 (D6)",
            "IPv4-mapped IPv6, as HAProxy sends mixed families",
        ),
        v("v1-split", v1_4, "should", "3", "line in two writes", chunks=(v1_4[:9], v1_4[9:])),
        # ---- valid v2 (SPEC rules 18-40)
        v("v2-tcp4", v2_4, "must", "23", "PROXY TCP over IPv4"),
        v("v2-tcp6", build_v2(S6, D6), "must", "23", "PROXY TCP over IPv6"),
        v("v2-local-empty", _v2(0x20, 0x00, b""), "must", "20, 24", "LOCAL health check"),
        v(
            "v2-local-with-addresses",
            _v2(0x20, 0x11, _A4),
            "must",
            "20, 26",
            "LOCAL: the length is honoured, the addresses ignored",
        ),
        v(
            "v2-local-aws-health-check",
            aws_check,
            "should",
            "44 (D3)",
            "AWS NLB health check: family 0x11, CRC32C + NOOP, no address block",
        ),
        v("v2-proxy-unspec", _v2(0x21, 0x00, b""), "may", "24", "PROXY with UNSPEC family"),
        v("v2-udp4-on-tcp", _v2(0x21, 0x12, _A4), "should", "25", "UDP family: fall back"),
        v("v2-unix-stream", _v2(0x21, 0x31, unix_block), "must", "25", "UNIX: fall back"),
        v(
            "v2-alpn-authority",
            build_v2(S4, D4, alpn=b"h2", authority="example.com"),
            "must",
            "30-33",
        ),
        v("v2-crc32c", good_crc, "must", "34", "correct CRC32C first, then AUTHORITY"),
        v("v2-noop", build_v2(S4, D4, tlvs=[(0x04, bytes(13))]), "must", "35"),
        v(
            "v2-zero-length-tlv-last",
            _v2(0x21, 0x11, _A4 + _tlv(0x04, b"")),
            "must",
            "31, 35",
            "a 3-byte TLV ends the header",
        ),
        v("v2-unique-id-128", build_v2(S4, D4, unique_id=bytes(range(128))), "must", "36"),
        v("v2-ssl", _v2(0x21, 0x11, _A4 + _tlv(0x20, ssl_value)), "must", "37, 38"),
        v("v2-netns", build_v2(S4, D4, netns="blue"), "must", "39"),
        v(
            "v2-custom-and-experimental",
            build_v2(S4, D4, tlvs=[(0xE1, b"\x01\x02"), (0xF0, b"x")]),
            "must",
            "31, 40",
            "unknown TLV types are ignored",
        ),
        v(
            "v2-aws-vpce-id",
            build_v2(S4, D4, aws_vpce_id="vpce-08d2bf15fac5001c9"),
            "must",
            "31",
        ),
        v(
            "v2-large-tlv-1500",
            build_v2(S4, D4, tlvs=[(0xE2, bytes(1500))]),
            "may",
            "3",
            "header over 536 bytes; HAProxy caps TLV values at 1024",
        ),
        v("v2-split", v2_4, "should", "3", "header in two writes", chunks=(v2_4[:10], v2_4[10:])),
        # ---- invalid, both versions
        bad("no-header", b"", "must", "6", "the probe alone: a header is required"),
        # ---- invalid v2
        bad("v2-bad-signature", v2_4[:11] + b"\x0b" + v2_4[12:], "must", "18"),
        bad("v2-version-1", v2_4[:12] + b"\x11" + v2_4[13:], "must", "19"),
        bad("v2-version-3", v2_4[:12] + b"\x31" + v2_4[13:], "must", "19"),
        bad("v2-command-2", v2_4[:12] + b"\x22" + v2_4[13:], "must", "19"),
        bad("v2-command-15", v2_4[:12] + b"\x2f" + v2_4[13:], "must", "19"),
        bad("v2-family-4", _v2(0x21, 0x41, _A4), "must", "22"),
        bad("v2-protocol-3", _v2(0x21, 0x13, _A4), "must", "22"),
        bad("v2-truncated-address-tcp4", _v2(0x21, 0x11, _A4[:4]), "must", "28, 43"),
        bad("v2-truncated-address-tcp6", _v2(0x21, 0x21, _A6[:12]), "must", "28, 43"),
        bad(
            "v2-tlv-crosses-end",
            _v2(0x21, 0x11, _A4 + _tlv(0x02, b"exa", declared=100)),
            "should",
            "30, 43 (D4)",
            "a receiver that skips TLVs may not notice",
        ),
        bad(
            "v2-tlv-header-truncated",
            _v2(0x21, 0x11, _A4 + b"\x02\x00"),
            "should",
            "30, 43 (D4)",
            "a receiver that skips TLVs may not notice",
        ),
        bad(
            "v2-bad-crc32c",
            bytes(bad_crc),
            "should",
            "34",
            "one bit flipped; MUST refuse if the receiver implements CRC32C",
        ),
        bad(
            "v2-crc32c-3-bytes",
            _v2(0x21, 0x11, _A4 + _tlv(0x03, b"\0\0\0")),
            "should",
            "34, 43 (D4)",
        ),
        bad("v2-ssl-too-short", _v2(0x21, 0x11, _A4 + _tlv(0x20, b"\x01\0")), "should", "37 (D4)"),
        bad(
            "v2-unique-id-129",
            _v2(0x21, 0x11, _A4 + _tlv(0x05, bytes(129))),
            "should",
            "36 (D4)",
            "UNIQUE_ID is at most 128 bytes",
        ),
        # ---- invalid v1
        bad("v1-lf-only", v1_4[:-2] + b"\n", "must", "13", "LF without CR"),
        bad("v1-cr-only", v1_4[:-2] + b"\r", "must", "13", "CR without LF"),
        bad("v1-no-terminator", v1_4[:-2], "must", "15", "the probe follows the ports"),
        bad(
            "v1-108-bytes",
            b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n",
            "must",
            "14, 15",
            "no CRLF within 107 bytes",
        ),
        bad(
            "v1-ip-leading-zero", b"PROXY TCP4 192.0.2.010 198.51.100.20 40000 80\r\n", "must", "10"
        ),
        bad("v1-ip-octet-256", b"PROXY TCP4 192.0.2.256 198.51.100.20 40000 80\r\n", "must", "10"),
        bad("v1-ip-three-octets", b"PROXY TCP4 192.0.2 198.51.100.20 40000 80\r\n", "must", "10"),
        bad(
            "v1-port-leading-zero",
            b"PROXY TCP4 192.0.2.10 198.51.100.20 040000 80\r\n",
            "must",
            "12",
        ),
        bad("v1-port-65536", b"PROXY TCP4 192.0.2.10 198.51.100.20 65536 80\r\n", "must", "12"),
        bad(
            "v1-port-plus-sign", b"PROXY TCP4 192.0.2.10 198.51.100.20 +40000 80\r\n", "must", "12"
        ),
        bad("v1-double-space", b"PROXY TCP4  192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-tab-separator", b"PROXY\tTCP4 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-trailing-space", b"PROXY TCP4 192.0.2.10 198.51.100.20 40000 80 \r\n", "must", "8"),
        bad("v1-lowercase-proxy", b"proxy TCP4 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-lowercase-tcp4", b"PROXY tcp4 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-proto-tcp5", b"PROXY TCP5 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-missing-port", b"PROXY TCP4 192.0.2.10 198.51.100.20 40000\r\n", "must", "8"),
        bad("v1-extra-field", b"PROXY TCP4 192.0.2.10 198.51.100.20 40000 80 9\r\n", "must", "8"),
        bad(
            "v1-tcp4-with-ipv6", b"PROXY TCP4 2001:db8::10 2001:db8::20 40000 80\r\n", "must", "10"
        ),
        bad("v1-tcp6-with-ipv4", b"PROXY TCP6 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "11"),
        bad(
            "v1-tcp6-zone-id",
            b"PROXY TCP6 fe80::1%eth0 2001:db8::20 40000 80\r\n",
            "should",
            "11 (D6)",
        ),
    ]
    return cases


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
