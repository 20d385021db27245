"""``scan()``: every valid header of a large buffer, found at the core's speed on any input.

The obvious loop (``find_signature`` then ``parse`` in Python for each candidate) is the
reference the results must equal; the time bounds are far above what the core needs and far
below what one Python step per candidate costs (measured with that loop: 64 MiB of ``PROXY `` took
25 s, 64 MiB of v2 signatures 9 s).
"""

from __future__ import annotations

import random
import time

import proxyproto_rs as pp
import pytest

SIG = pp.V2_SIGNATURE
V1 = pp.build_v1(("192.0.2.1", 56324), ("198.51.100.7", 443))
V2 = pp.build_v2(("192.0.2.1", 56324), ("198.51.100.7", 443), tlvs=[(0x01, b"h2")], crc32c=True)


def reference(data: bytes, **kw: object) -> list[tuple[int, bytes]]:
    """The obvious loop, one Python step per candidate."""
    out = []
    pos = pp.find_signature(data, 0)
    while pos >= 0:
        try:
            h = pp.parse(data[pos:], **kw)  # type: ignore[arg-type]
        except pp.ProxyProtocolError:
            pos = pp.find_signature(data, pos + 1)
            continue
        out.append((pos, h.to_bytes()))
        pos = pp.find_signature(data, pos + h.length)
    return out


def found(data: object, **kw: object) -> list[tuple[int, bytes]]:
    return [(off, h.to_bytes()) for off, h in pp.scan(data, **kw)]  # type: ignore[arg-type]


def test_scan_equals_the_obvious_loop_on_random_mixtures() -> None:
    pieces = [V1, V2, b"PROXY ", SIG, V2[:-1], SIG + b"\x21\x11\xff\xff", b"x" * 50, b"\r\n"]
    rng = random.Random(15)
    for _ in range(200):
        data = b"".join(
            p if rng.random() < 0.7 else p[: rng.randrange(len(p))]
            for p in rng.choices(pieces, k=rng.randrange(30))
        )
        assert found(data) == reference(data)
        assert found(data, verify_checksum=False) == reference(data, verify_checksum=False)


def test_scan_takes_any_contiguous_buffer_and_resumes() -> None:
    data = b"junk" + V1 + b"PROXY \r\n" + V2 + b"tail"
    want = [(4, V1), (4 + len(V1) + 8, V2)]
    assert found(data) == want
    assert found(bytearray(data)) == want
    assert found(memoryview(data)) == want
    import array

    assert found(array.array("B", data)) == want
    it = pp.scan(data)
    assert iter(it) is it
    assert next(it)[0] == 4
    assert next(it)[0] == 4 + len(V1) + 8
    with pytest.raises(StopIteration):
        next(it)
    with pytest.raises(StopIteration):
        next(it)


def test_scan_checks_its_arguments_at_the_call() -> None:
    with pytest.raises(ValueError, match="max_size"):
        pp.scan(b"", max_size=15)
    with pytest.raises(ValueError, match="max_size"):
        pp.scan(b"", max_size=2**200)
    with pytest.raises(TypeError):
        pp.scan("text")  # type: ignore[arg-type]
    assert found(V2 + V2, max_size=len(V2) - 1) == []


def test_scan_stays_safe_when_the_buffer_changes_between_steps() -> None:
    data = bytearray(V1 * 3)
    it = pp.scan(data)
    assert next(it)[0] == 0
    # Resized: refused, the memoryview the scanner reads through pins it.
    with pytest.raises(BufferError):
        data.extend(b"x")
    data[len(V1) :] = bytes(len(data) - len(V1))  # same size, new contents
    assert list(it) == []


@pytest.mark.parametrize(
    "unit",
    [b"PROXY ", SIG, SIG + b"\x21\x11\x0f\xf0", V1[:-1] + b"X"],
    ids=["v1-markers", "v2-signatures", "v2-prefixes-claiming-4k", "v1-near-miss"],
)
def test_issue15_10_adversarial_scan_is_not_one_python_step_per_candidate(unit: bytes) -> None:
    """4 MiB with a candidate every 6-45 bytes and no header: the core's scan takes
    milliseconds; one Python step per candidate took 1-2 s (25 s per 64 MiB)."""
    data = (unit * ((4 << 20) // len(unit) + 1))[: 4 << 20]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        assert next(pp.scan(data), None) is None
        best = min(best, time.perf_counter() - start)
    assert best < 0.5, f"{best:.3f} s for 4 MiB"
