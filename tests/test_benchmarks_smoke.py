"""Smoke test of the benchmark scripts: they run, cross-check the peers and print their tables.

No timing is asserted (the machine is shared and noisy); see benchmarks/README.md.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
PEERS = ("proxyprotocol", "twisted", "crc32c", "google_crc32c")
missing = [m for m in PEERS if importlib.util.find_spec(m) is None]


def run(*args: str, timeout: float) -> str:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.skipif(bool(missing), reason=f"benchmark peers not installed: {missing}")
def test_bench_quick_prints_every_table() -> None:
    out = run(str(BENCH / "bench.py"), "--quick", timeout=25)
    for section in ("## parse", "## build", "## feed", "## crc32c", "## find", "## floor"):
        assert section in out
    assert "## targets (issue 5)" in out
    assert "MISMATCH" not in out, out


def test_memory_prints_table() -> None:
    out = run(str(BENCH / "memory.py"), "-n", "200", timeout=25)
    assert "idle Parser" in out
    assert "## tracemalloc" in out
