"""Smoke test of benchmarks/bench_servers.py: it starts a server with and without its
integration, drives both, and prints a row per mode. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_servers.py"


def test_bench_servers_quick_prints_a_row_per_mode() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--only", "aiohttp"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| aiohttp |")]
    assert [row.split("|")[2].strip() for row in rows] == ["conn", "keep"], proc.stdout
