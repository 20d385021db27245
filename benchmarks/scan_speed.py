"""Throughput of ``proxyproto_rs.scan()`` on adversarial buffers and on a capture-like one.

Each input is built in memory (``--size`` MiB, 64 by default) and consumed whole by
``for offset, header in scan(buf)``; the table gives MiB/s (best of ``--repeat`` runs) and the
number of headers found. The adversarial shapes are the ones a hostile capture can hold: a
signature candidate every few bytes that never starts a valid header (each one must be
refused without a Python round trip), near-miss headers that fail at their last byte, and
valid headers back to back (each one a result). Goal (issue 15 item 10): at least 200 MiB/s
on every input.

    python benchmarks/scan_speed.py              # 64 MiB per input
    python benchmarks/scan_speed.py --size 4     # quicker
    python benchmarks/scan_speed.py --only PROXY # inputs whose name contains the text
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from collections.abc import Callable

import proxyproto_rs as pp

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V1_TCP4 = b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"
V2_IPV4 = pp.build_v2(("192.0.2.1", 56324), ("198.51.100.7", 443))
V2_LOCAL = pp.build_v2(None, None)
V2_TLVS = pp.build_v2(
    ("192.0.2.1", 56324),
    ("198.51.100.7", 443),
    tlvs=[(0x01, b"h2"), (0x02, b"example.com"), (0x05, b"\x07" * 32)],
    crc32c=True,
)


def repeat_to(unit: bytes, size: int) -> bytes:
    """*unit* back to back, cut to *size* bytes."""
    return (unit * (size // len(unit) + 1))[:size]


def v1_near_miss() -> bytes:
    """The longest v1 line with its LF replaced: read to byte 107, then refused."""
    line = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
    line += b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r"
    return line + b"X"


def v2_bad_last_tlv() -> bytes:
    """A v2 IPv4 header of 4096 bytes whose zero-length NOOP TLVs end one byte short, so
    the TLV walk (1,355 TLVs) fails at the last one."""
    region = b"\x04\x00\x00" * 1355 + b"\x04\x00"
    body = struct.pack("!4s4sHH", bytes(4), bytes(4), 1, 2) + region
    return SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def v2_long_prefixes() -> bytes:
    """Signatures whose prefix claims a 4 KiB header: each one is read, its block found to
    hold the next signatures, and refused."""
    return SIG + b"\x21\x11\x0f\xf0"


def capture_like(size: int) -> bytes:
    """Random payload with a header (v1, v2, v2 with TLVs) every 1.5 KiB on average, like
    the first bytes of many connections in one capture."""
    rng = random.Random(7)
    out = bytearray()
    headers = [V1_TCP4, V2_IPV4, V2_TLVS]
    while len(out) < size:
        out += rng.choice(headers)
        out += rng.randbytes(rng.randrange(500, 2500))
    return bytes(out[:size])


INPUTS: dict[str, Callable[[int], bytes]] = {
    "'PROXY ' back to back": lambda n: repeat_to(b"PROXY ", n),
    "v2 signatures back to back": lambda n: repeat_to(SIG, n),
    "v1 near-miss lines (107 B, no LF)": lambda n: repeat_to(v1_near_miss(), n),
    "v2 prefixes claiming 4 KiB": lambda n: repeat_to(v2_long_prefixes(), n),
    "v2 4 KiB headers, last TLV cut": lambda n: repeat_to(v2_bad_last_tlv(), n),
    "valid v1 TCP4 back to back": lambda n: repeat_to(V1_TCP4, n),
    "valid v2 LOCAL back to back (16 B)": lambda n: repeat_to(V2_LOCAL, n),
    "valid v2 + TLVs + CRC back to back": lambda n: repeat_to(V2_TLVS, n),
    "capture-like (a header per ~1.5 KiB)": capture_like,
    "random bytes": lambda n: random.Random(1).randbytes(n),
}


def time_scan(buf: bytes) -> tuple[float, int]:
    """Seconds to consume ``scan(buf)`` and the number of headers it yielded."""
    start = time.perf_counter()
    found = 0
    for _offset, _header in pp.scan(buf):
        found += 1
    return time.perf_counter() - start, found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=64, help="MiB per input (default 64)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per input, best kept")
    ap.add_argument("--only", default="", help="inputs whose name contains this text")
    args = ap.parse_args(argv)
    size = int(args.size * (1 << 20))
    print(f"scan() throughput, {args.size:g} MiB per input, best of {args.repeat}")
    print(f"{'input':40} {'MiB/s':>9} {'headers':>9}  goal >= 200 MiB/s")
    worst = float("inf")
    for name, make in INPUTS.items():
        if args.only not in name:
            continue
        buf = make(size)
        best, found = min(time_scan(buf) for _ in range(args.repeat))
        rate = len(buf) / best / (1 << 20)
        worst = min(worst, rate)
        verdict = "met" if rate >= 200 else "NOT MET"
        print(f"{name:40} {rate:9.1f} {found:9d}  {verdict}")
    if worst != float("inf"):
        print(f"slowest: {worst:.1f} MiB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
