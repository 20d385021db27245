"""The real headers captured from HAProxy and nginx (tests/vectors/*.bin, see its README)
parse and give back exactly their bytes; they also seed the fuzz corpus."""

from __future__ import annotations

from pathlib import Path

import proxyproto_rs as pp
import pytest
from proxyproto_rs import Family

pytestmark = pytest.mark.interop

VECTORS = sorted((Path(__file__).resolve().parent.parent / "vectors").glob("*.bin"))
TAIL = b"\x00payload\r\nPROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"


def test_vectors_exist():
    """The captured set is there (regenerate with PROXYPROTO_WRITE_VECTORS=1)."""
    assert len(VECTORS) >= 5, VECTORS


@pytest.mark.parametrize("path", VECTORS, ids=[p.name for p in VECTORS])
def test_vector_round_trips(path):
    """Whole, one byte at a time and with payload appended, each vector gives the same
    header and ``to_bytes()`` is the file (rules 8, 18, 26; v1 lines fit in 107 bytes,
    rule 14; CRC32C verified where present, rule 34)."""
    data = path.read_bytes()
    header = pp.parse(data)
    assert header.length == len(data)
    assert header.to_bytes() == data
    assert pp.parse(data + TAIL) == header
    parser = pp.Parser()
    for i in range(len(data)):
        assert (parser.feed(data[i : i + 1]) is None) == (i < len(data) - 1)
    assert parser.feed(TAIL) == header
    assert parser.trailing_data == TAIL

    name = path.stem
    assert header.version == (1 if "-v1-" in name else 2)
    if header.version == 1:
        assert len(data) <= pp.MAX_V1_SIZE
    if "tcp4" in name:
        assert header.family is Family.INET
    if "tcp6" in name:
        assert header.family is Family.INET6
    if "tls" in name:
        assert header.ssl is not None
        assert header.crc32c is not None
    if "local" in name or "unknown" in name:  # rules 17, 20: use the real endpoints
        assert header.source is None
        assert header.destination is None
    else:
        assert header.source is not None
        assert header.destination is not None
    if "local" in name:
        assert header.command is pp.Command.LOCAL
        assert header.crc32c is not None
