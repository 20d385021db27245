"""Smoke test of benchmarks/bench_aio.py: it runs every variant and prints its table.

No timing is asserted (the machine is shared and noisy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_aio.py"


def test_bench_aio_quick_prints_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "protocol aio.wrap (asyncio)" in out
    assert "streams aio.start_server (asyncio)" in out
    assert "cost against the same server unwrapped" in out


def test_aio_cost_prints_a_row_per_variant() -> None:
    """benchmarks/aio_cost.py drives the wrapped and plain protocols through its fake
    transport (a broken hand-over would raise there) and prints one row per variant."""
    script = BENCH.parent / "aio_cost.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--rounds", "1", "--n", "20", "--only", "asyncio"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if " asyncio " in line]
    assert [row[:3] for row in rows] == [
        [kind, "asyncio", per]
        for kind in ("protocol", "streams", "uvicorn")
        for per in ("conn", "req")
    ]
