"""``proxyproto scan`` on adversarial input: throughput (MiB/s) and peak memory (RSS).

Writes three files into a temporary folder and runs the installed ``proxyproto scan`` on
each in a subprocess, reading its peak RSS from ``wait4``:

- a pcap of N UDP datagrams (default 300,000), each carrying a v2 header (issue 15 item 10:
  27 MiB took 135 MiB and printed nothing until the end);
- 64 MiB of back-to-back ``PROXY `` (every position a v1 candidate);
- 64 MiB of back-to-back v2 signatures.

Run: ``python benchmarks/bench_cli_scan.py [--datagrams N] [--mib M]``. The raw-file rows
measure the codec's ``scan()`` through the CLI; the pcap row the CLI's own reading.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import proxyproto_rs as pp


def _udp_pcap(path: Path, count: int) -> None:
    header = pp.build_v2(("203.0.113.9", 5353), ("10.0.0.5", 53), protocol=pp.Protocol.DGRAM)
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        batch = []
        for i in range(count):
            payload = header + b"q" * 40
            udp = struct.pack("!HHHH", 1024 + i % 60000, 53, 8 + len(payload), 0) + payload
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                socket.inet_aton("192.0.2.1"), socket.inet_aton("192.0.2.2"),
            ) + udp  # fmt: skip
            frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip
            batch.append(struct.pack("<IIII", 1700000000, i, len(frame), len(frame)) + frame)
            if len(batch) == 4096:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))


def _repeat(path: Path, unit: bytes, mib: int) -> None:
    block = unit * ((1 << 20) // len(unit) + 1)
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(block[: 1 << 20])


def _run(argv: list[str]) -> tuple[float, int, int]:
    """Seconds, peak RSS in KiB, and the number of output lines."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    lines = sum(1 for _ in proc.stdout)
    proc.stdout.close()
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datagrams", type=int, default=300_000)
    ap.add_argument("--mib", type=int, default=64)
    args = ap.parse_args()
    exe = shutil.which("proxyproto") or str(Path(sys.executable).with_name("proxyproto"))
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            f"pcap, {args.datagrams:,} UDP datagrams": Path(tmp, "udp.pcap"),
            f"{args.mib} MiB of 'PROXY '": Path(tmp, "v1.bin"),
            f"{args.mib} MiB of v2 signatures": Path(tmp, "v2.bin"),
        }
        paths = list(files.values())
        _udp_pcap(paths[0], args.datagrams)
        _repeat(paths[1], b"PROXY ", args.mib)
        _repeat(paths[2], pp.V2_SIGNATURE, args.mib)
        print(f"{'input':<34} {'MiB':>7} {'s':>7} {'MiB/s':>8} {'peak RSS':>10} {'results':>8}")
        for name, path in files.items():
            size = path.stat().st_size / (1 << 20)
            seconds, rss, lines = _run([exe, "scan", "--no-progress", str(path)])
            print(
                f"{name:<34} {size:>7.1f} {seconds:>7.2f} {size / seconds:>8.1f}"
                f" {rss / 1024:>8.1f} MiB {lines:>8}"
            )


if __name__ == "__main__":
    main()
