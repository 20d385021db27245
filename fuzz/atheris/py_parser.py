"""Atheris harness `py_parser`: the streaming ``proxyproto_rs.Parser`` with fuzzed options
and splits.

Input: the split_feed format (fuzz/seeds.py): a control byte (low 3 bits: k cut bytes;
bits 3-7: options), k chunk lengths, then the stream. Invariant: only ProxyProtocolError
subclasses escape ``feed``; feeding the stream in the drawn chunks, one byte at a time,
``needed`` bytes at a time and whole all end the same way as ``parse`` on the whole stream:
the same error class, kind and offset, or an equal header (``to_bytes()`` = the stream's
first ``length`` bytes) with ``trailing_data`` = the bytes fed with the last chunk after it
(feeding stops at completion: the rest is the application's). Reading exactly
``needed`` bytes never leaves trailing data; a failed parser raises the same error again;
``buffered`` never exceeds ``max(max_size, 107)``; ``done``/``header``/``needed`` agree.
"""

# A libFuzzer harness, not a pytest module: assertions are the crash oracle, so the
# pytest-style rules do not apply.
# ruff: noqa: PT017, PT018

from __future__ import annotations

from types import ModuleType
from typing import Any

import _split_feed as split_feed
from _common import main

pp: Any = None


def outcome_of_parse(stream: bytes, opts: dict[str, Any]) -> tuple[Any, ...]:
    try:
        h = pp.parse(stream, **opts)
    except pp.IncompleteHeaderError:
        return ("waiting",)
    except pp.InvalidHeaderError as e:
        return ("error", type(e), e.kind, e.offset)
    return ("header", h, stream[h.length :])


def run(stream: bytes, opts: dict[str, Any], cut: Any, exact: bool = False) -> tuple[Any, ...]:
    p = pp.Parser(**opts)
    cap = max(opts["max_size"], 107)
    pos = 0
    result: tuple[Any, ...] = ("waiting",)
    while pos < len(stream):
        n = min(cut(p, len(stream) - pos), len(stream) - pos)
        chunk = stream[pos : pos + n]
        try:
            h = p.feed(chunk)
        except pp.ProxyProtocolError as e:
            assert isinstance(e, pp.InvalidHeaderError), type(e)
            assert not p.done and p.header is None
            try:
                p.feed(b"x")
            except pp.ProxyProtocolError as e2:
                assert (type(e2), e2.kind, e2.offset) == (type(e), e.kind, e.offset)
            else:
                raise AssertionError("a failed parser accepted more bytes") from None
            return ("error", type(e), e.kind, e.offset)
        assert p.buffered <= cap, (p.buffered, cap)
        pos += n
        if h is None:
            assert not p.done and p.header is None and p.needed >= 1
        else:
            assert p.done and p.header == h and p.needed == 0
            if exact:
                assert p.trailing_data == b"", "reading needed bytes consumed payload"
                return ("header", h, stream[h.length :])
            # Done: the rest of the stream belongs to the application, not to the parser
            # (feeding on past max_size raises ValueError, CHANGELOG).
            result = ("header", h, p.trailing_data + stream[pos:])
            break
    if result[0] == "header":
        assert result[1].to_bytes() == stream[: result[1].length]
    return result


def test_one(data: bytes) -> None:
    if not data:
        return
    _, cuts, stream, opts = split_feed.decode(data)
    expected = outcome_of_parse(stream, opts)
    it = iter(cuts)
    chunked = run(stream, opts, lambda _p, left: next(it, left))
    assert chunked == expected, (chunked, expected)
    assert run(stream, opts, lambda _p, _left: 1) == expected
    assert run(stream, opts, lambda p, _left: max(p.needed, 1), exact=True) == expected
    assert run(stream, opts, lambda _p, left: left) == expected


def setup(mod: ModuleType) -> None:
    global pp
    pp = mod


if __name__ == "__main__":
    main(test_one, setup)
