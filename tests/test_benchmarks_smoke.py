"""Smoke test of the benchmark scripts: they run, cross-check the peers and print their tables.

No timing is asserted (the machine is shared and noisy); see benchmarks/README.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def run(*args: str, timeout: float) -> str:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_bench_quick_prints_every_table() -> None:
    out = run(str(BENCH / "bench.py"), "--quick", timeout=25)
    for section in ("## parse", "## build", "## feed", "## crc32c", "## find", "## floor"):
        assert section in out
    assert "## targets" in out
    # Peers that are not installed show as n/a; a peer that disagrees with ours is a bug.
    assert "MISMATCH" not in out, out


def test_memory_prints_table() -> None:
    out = run(str(BENCH / "memory.py"), "-n", "200", timeout=25)
    assert "idle Parser" in out
    assert "## tracemalloc" in out


def test_scan_speed_prints_every_input() -> None:
    out = run(str(BENCH / "scan_speed.py"), "--size", "0.1", "--repeat", "1", timeout=60)
    assert "'PROXY ' back to back" in out
    assert "capture-like" in out
    assert "slowest:" in out
