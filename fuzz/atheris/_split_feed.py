"""The split_feed input format, decoded once for every Python reader of it: the atheris
harnesses py_parser and py_aio, and tests/test_fuzz_corpus.py, which replays their corpora.

An input is a control byte (low 3 bits: k, the number of cut bytes; bits 3-7: parse
options), k chunk lengths, then the stream (fuzz/seeds.py writes it; the Rust target
fuzz/fuzz_targets/split_feed.rs reads the same bits). Imports nothing, so a test can load
it without atheris.
"""

from __future__ import annotations

from typing import Any


def options(bits: int, *, haproxy_limits: bool = True) -> dict[str, Any]:
    """The parse options bits 3-7 of the control byte stand for (*bits* shifted down).
    ``haproxy_limits=False``: a reader that draws no HAProxy profile leaves that key out."""
    opts: dict[str, Any] = {
        "verify_checksum": bits & 1 == 0,
        "allow_v1": bits & 0x0C != 0x08,
        "allow_v2": bits & 0x0C != 0x04,
        "max_size": 16 + 200 if bits & 0x10 else 4096,
    }
    if haproxy_limits:
        opts["haproxy_limits"] = bits & 2 != 0
    return opts


def decode(data: bytes, *, haproxy_limits: bool = True) -> tuple[int, bytes, bytes, dict[str, Any]]:
    """(control byte, chunk lengths, stream, parse options) of a non-empty input."""
    control, rest = data[0], data[1:]
    k = min(control & 7, len(rest))
    return control, rest[:k], rest[k:], options(control >> 3, haproxy_limits=haproxy_limits)
