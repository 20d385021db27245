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
