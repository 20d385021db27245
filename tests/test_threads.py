"""Eight threads at once on the codec: what may be shared, and what must fail cleanly.

Strategy: every test starts 8 threads at a barrier, each running a bounded loop; whatever a
worker did not expect is collected and raised in the main thread, and every value a worker
gets is checked against one computed single-threaded beforehand. On a GIL build the threads
interleave between calls (the switch interval is shortened so that happens often, and
find_signature releases the GIL on large inputs); on a free-threaded build they run at once.
The contract under test (docs/install.md, "Threads"):

- ``Header``, ``Tlv`` and ``SslInfo`` are immutable: share them between threads freely;
- ``parse``, ``build_v1``, ``build_v2``, ``crc32c``, ``detect`` and ``find_signature`` keep no
  state: call them from any thread;
- a ``Parser`` is one connection's state, used by one thread at a time; two threads feeding
  one parser never corrupt it: each call either works or fails with a clear error;
- a ``bytearray`` resized by another thread while it is being parsed gives a result that
  matches one of its contents, or a clear error, never a crash or a mixed read.
"""

import re
import sys
import threading
from collections.abc import Callable, Iterator

import proxyproto_rs as pp
import pytest

THREADS = 8
ROUNDS = 300


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(worker: Callable[[int], None]) -> None:
    """Run ``worker(i)`` in THREADS threads started together; re-raise the first failure."""
    barrier = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            worker(i)
        except BaseException as e:  # reported in the main thread
            failures.append(e)

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not [t for t in threads if t.is_alive()], "a worker hung"
    if failures:
        raise failures[0]


WIRE = [
    pp.build_v1(("192.0.2.1", 56324), ("198.51.100.7", 443)),
    pp.build_v1(("2001:db8::1", 1), ("2001:db8::2", 65535)),
    pp.build_v1(None, None),
    pp.build_v2(
        ("192.0.2.1", 56324),
        ("198.51.100.7", 443),
        crc32c=True,
        alpn=b"h2",
        authority="example.com",
        tlvs=[(0xE0, b"x" * 300)],
    ),
    pp.build_v2(("2001:db8::1", 1), ("2001:db8::2", 2), unique_id=b"\x01" * 16),
    pp.build_v2("/run/a.sock", "/run/b.sock"),
    pp.build_v2(),
]
HEADERS = [pp.parse(w) for w in WIRE]
PAYLOAD = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def describe(h: pp.Header) -> tuple[object, ...]:
    """Everything a reader of a header looks at, materialised."""
    return (
        h.version,
        h.command,
        h.family,
        h.protocol,
        h.source,
        h.destination,
        h.length,
        tuple((t.type, t.value) for t in h.tlvs),
        h.alpn,
        h.authority,
        h.unique_id,
        h.crc32c,
        bytes(h),
    )


EXPECTED = [describe(h) for h in HEADERS]


def test_parse_and_build_from_eight_threads() -> None:
    def worker(i: int) -> None:
        for n in range(ROUNDS):
            k = (i + n) % len(WIRE)
            h = pp.parse(WIRE[k] + PAYLOAD)
            assert describe(h) == EXPECTED[k]
            assert pp.detect(WIRE[k]) == h.version
        for _ in range(ROUNDS // 10):
            assert pp.build_v1(("192.0.2.1", 56324), ("198.51.100.7", 443)) == WIRE[0]
            assert pp.build_v2("/run/a.sock", "/run/b.sock") == WIRE[5]
            assert pp.build_v2() == WIRE[6]

    run_threads(worker)


def test_one_header_shared_by_eight_threads() -> None:
    def worker(i: int) -> None:
        for n in range(ROUNDS):
            k = (i * 3 + n) % len(HEADERS)
            h = HEADERS[k]
            assert describe(h) == EXPECTED[k]
            assert h == pp.parse(WIRE[k])
            assert hash(h) == hash(pp.parse(WIRE[k]))

    run_threads(worker)


def test_one_parser_per_thread_any_split() -> None:
    def worker(i: int) -> None:
        for n in range(ROUNDS // 3):
            k = (i + n) % len(WIRE)
            data = WIRE[k] + PAYLOAD
            step = 1 + (i + n) % 7
            p = pp.Parser()
            got = None
            for at in range(0, len(data), step):
                got = p.feed(data[at : at + step]) or got
            assert got is not None
            assert describe(got) == EXPECTED[k]
            assert p.needed == 0
            assert p.trailing_data == PAYLOAD

    run_threads(worker)


def test_crc32c_from_eight_threads() -> None:
    chunks = [bytes(range(256)) * m for m in (1, 3, 17, 257)]
    whole = [pp.crc32c(c) for c in chunks]
    chained = [pp.crc32c(c[len(c) // 2 :], pp.crc32c(c[: len(c) // 2])) for c in chunks]
    assert chained == whole

    def worker(i: int) -> None:
        for n in range(ROUNDS):
            k = (i + n) % len(chunks)
            c = chunks[k]
            assert pp.crc32c(c) == whole[k]
            half = len(c) // 3
            assert pp.crc32c(memoryview(c)[half:], pp.crc32c(bytearray(c[:half]))) == whole[k]

    run_threads(worker)


def test_find_signature_from_eight_threads() -> None:
    # Over 1 MiB, find_signature runs without the GIL: the threads really overlap here.
    big = bytearray(b"\x00" * (3 << 20))
    spots = [5, 1 << 20, (2 << 20) + 11]
    big[spots[0] : spots[0] + len(WIRE[3])] = WIRE[3]
    big[spots[1] : spots[1] + len(WIRE[0])] = WIRE[0]
    big[spots[2] : spots[2] + len(WIRE[4])] = WIRE[4]
    data = bytes(big)

    def worker(i: int) -> None:
        for n in range(12):
            start = 0 if (i + n) % 2 else spots[0] + 1
            want = spots[0] if start == 0 else spots[1]
            assert pp.find_signature(data, start) == want
            assert pp.find_signature(data, spots[2] + 1) == -1
        found = [(off, describe(h)) for off, h in pp.scan(data)]
        assert found == [(spots[0], EXPECTED[3]), (spots[1], EXPECTED[0]), (spots[2], EXPECTED[4])]

    run_threads(worker)


def test_bytearray_resized_while_parsed() -> None:
    """Readers parse and feed one bytearray that a writer keeps resizing and rewriting.

    Each read must match one of the contents the buffer held (a header the writer put
    there, possibly cut short) or fail with our error; the writer's own resize may fail
    with BufferError while a reader holds the buffer, which is the pinning that makes the
    read safe.
    """
    contents = [w + PAYLOAD for w in WIRE] + [b"", b"PROXY TCP4 ", WIRE[3][:20], b"junk" * 40]
    shared = bytearray(contents[0])
    stop = threading.Event()
    valid = {bytes(w): describe(h) for w, h in zip(WIRE, HEADERS, strict=True)}
    errors: list[pp.ProxyProtocolError] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                shared[:] = contents[n % len(contents)]
                if n % 3 == 0:
                    shared.extend(b"\x00" * (n % 50))
                if n % 5 == 0:
                    del shared[len(shared) // 2 :]
            except BufferError:
                pass  # a reader holds the buffer: it cannot move under the read

    def check(h: pp.Header) -> None:
        wire = bytes(h)
        assert wire in valid, wire
        assert describe(h) == valid[wire]

    def reader(i: int) -> None:
        for _ in range(ROUNDS * 2):
            try:
                if i % 2:
                    check(pp.parse(shared))
                else:
                    p = pp.Parser()
                    got = p.feed(shared)
                    if got is not None:
                        check(got)
                    assert pp.detect(shared) in (None, 0, 1, 2)
                    assert pp.find_signature(shared) >= -1
                    assert isinstance(pp.crc32c(shared), int)
            except pp.ProxyProtocolError as e:
                errors.append(e)

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    try:
        run_threads(reader)
    finally:
        stop.set()
        w.join(timeout=30)
    assert not w.is_alive()
    for e in errors:
        assert e.kind
        assert e.offset >= -1


# What a clear error for two threads in one Parser says: it names the Parser.
CONCURRENT_USE = re.compile(r"\bParser\b")


def test_one_parser_fed_by_eight_threads_stays_consistent() -> None:
    """A Parser is one connection's; sharing one must still never corrupt it.

    Every thread feeds the whole header at once. Whatever the interleaving, exactly the
    calls that did not fail were applied: the first made the header, each later one
    appended its bytes to trailing_data until that would pass max_size, then was refused
    with a ValueError naming max_size and kept nothing. A call that collided with another
    (only possible without the GIL) fails with a ValueError that names the Parser.
    """
    for _ in range(20):
        feed_one_parser_from_all_threads(WIRE[3], EXPECTED[3])


def feed_one_parser_from_all_threads(data: bytes, expected: tuple[object, ...]) -> None:
    p = pp.Parser()
    applied: list[int] = []
    collided: list[ValueError] = []
    capped: list[ValueError] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        for _ in range(5):
            try:
                h = p.feed(data)
            except ValueError as e:
                with lock:
                    (capped if "max_size" in str(e) else collided).append(e)
                continue
            assert h is not None
            assert describe(h) == expected
            with lock:
                applied.append(i)

    run_threads(worker)
    unclear = [e for e in collided if not CONCURRENT_USE.search(str(e))]
    assert not unclear, f"unclear errors: {unclear!r}"
    assert len(applied) + len(collided) + len(capped) == THREADS * 5
    assert applied, "every call failed"
    assert p.header is not None
    assert describe(p.header) == expected
    # Exactly the applied calls after the first are in trailing_data, and it stays capped.
    assert len(p.trailing_data) == (len(applied) - 1) * len(data)
    assert len(p.trailing_data) <= 4096
    assert p.trailing_data == data * (len(applied) - 1)
    assert p.needed == 0
