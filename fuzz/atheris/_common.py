"""Shared set-up of the atheris harnesses (fuzz/atheris/py_*.py).

Run a harness with the fuzz venv's Python (fuzz/tools.sh builds it): the proxyproto_rs in
that venv is compiled with sanitizer-coverage instrumentation, so libFuzzer inside atheris
sees the Rust core's edges as well as the Python ones. With an uninstrumented build it still
runs (then only the Python bytecode is instrumented).

The instrumented extension calls the ``__sanitizer_cov_*`` hooks that libFuzzer defines.
Atheris keeps its own libFuzzer private (Python loads extension modules with RTLD_LOCAL), so
importing the extension fails with "undefined symbol: __sanitizer_cov_trace_const_cmp8".
The supported way (atheris' native-extension guide) is to preload a libFuzzer build the
atheris wheel ships: this module re-executes the harness with
``LD_PRELOAD=<site-packages>/ubsan_with_fuzzer.so`` (libFuzzer plus the UBSan runtime;
Rust needs no ASan here), and atheris then reports "Using preloaded libfuzzer".
``proxyproto_rs`` is imported after ``atheris.Setup``, under ``instrument_imports`` so its
Python modules (aio.py, _scan.py) are instrumented too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import ModuleType

import atheris

__all__ = ["atheris", "main"]

_PRELOAD = os.path.join(os.path.dirname(os.path.dirname(atheris.__file__)), "ubsan_with_fuzzer.so")
if os.path.exists(_PRELOAD) and _PRELOAD not in os.environ.get("LD_PRELOAD", ""):
    env = dict(os.environ, LD_PRELOAD=_PRELOAD)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main(test_one: Callable[[bytes], None], setup: Callable[[ModuleType], None]) -> None:
    """Start libFuzzer on *test_one*; *setup* receives the imported package first."""
    # libFuzzer's -merge re-runs argv[0] through sh: make that "python harness.py".
    argv = [f"{sys.executable} {os.path.abspath(sys.argv[0])}", *sys.argv[1:]]
    atheris.Setup(argv, test_one)
    with atheris.instrument_imports(include=["proxyproto_rs"]):
        import proxyproto_rs
        import proxyproto_rs.aio
        import proxyproto_rs.sync
    setup(proxyproto_rs)
    atheris.Fuzz()
