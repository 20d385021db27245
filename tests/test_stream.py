"""The streaming Parser (DESIGN "class Parser", SPEC rules 3, 15, 28, D1, D7).

Any split of the same bytes gives the same outcome as one buffer; ``needed`` is a lower
bound that never points past the header (exact for v2 once 16 bytes are in); payload is
handed back untouched; a failed parser stays failed; nothing is buffered beyond the cap.
"""

from __future__ import annotations

import itertools

import proxyproto_rs as pp
import pytest
from _util import PAYLOAD, inet4_block, inet6_block, ssl_value, tlv, v2, with_crc

V1 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
V2_TLVS = with_crc(
    v2(
        0x21,
        0x21,
        inet6_block("2001:db8::1", "2001:db8::2", 1, 2)
        + tlv(0x03, bytes(4))
        + tlv(0x01, b"h2")
        + tlv(0x20, ssl_value(0x07, 0, [(0x21, b"TLSv1.3")])),
    )
)
V2_LOCAL = v2(0x20, 0x00)
VECTORS = [V1, b"PROXY UNKNOWN\r\n", V2_TLVS, V2_LOCAL]
IDS = ["v1", "v1-unknown", "v2-tlvs", "v2-local"]


def outcome(chunks: list[bytes], **opts: object) -> tuple[object, ...]:
    """What a Parser makes of *chunks*: the header and trailing data, or the error."""
    p = pp.Parser(**opts)  # type: ignore[arg-type]
    try:
        for c in chunks:
            p.feed(c)
    except pp.ProxyProtocolError as e:
        return ("error", type(e), e.kind, e.offset)
    return ("ok", p.header, p.trailing_data, p.needed)


def whole(data: bytes, **opts: object) -> tuple[object, ...]:
    try:
        h = pp.parse(data, **opts)  # type: ignore[arg-type]
    except pp.IncompleteHeaderError:
        return ("incomplete",)
    except pp.ProxyProtocolError as e:
        return ("error", type(e), e.kind, e.offset)
    return ("ok", h, data[h.length :], 0)


@pytest.mark.parametrize("data", VECTORS, ids=IDS)
def test_rule3_every_two_and_three_way_split_is_the_same(data: bytes) -> None:
    """Rule 3, nginx PR #1403, lavinmq#2082: segment splits anywhere give one outcome."""
    stream = data + PAYLOAD[:9]
    expected = ("ok", pp.parse(data), PAYLOAD[:9], 0)
    n = len(stream)
    for i in range(n + 1):
        assert outcome([stream[:i], stream[i:]]) == expected, i
    for i, j in itertools.combinations(range(0, n + 1, 3), 2):
        assert outcome([stream[:i], stream[i:j], stream[j:]]) == expected, (i, j)


def test_needed_starts_at_the_shortest_header() -> None:
    """15 = ``PROXY UNKNOWN\\r\\n`` (rule 14); 16 = the v2 prefix when v1 is off."""
    assert pp.Parser().needed == 15
    assert pp.Parser(allow_v1=False).needed == 16
    p = pp.Parser()
    assert p.feed(b"") is None
    assert p.needed == 15
    assert p.buffered == 0


def test_needed_is_exact_for_v2_once_16_bytes_are_in() -> None:
    p = pp.Parser()
    assert p.feed(V2_TLVS[:16]) is None
    assert p.needed == len(V2_TLVS) - 16
    assert p.buffered == 16
    for k in range(17, len(V2_TLVS)):
        assert p.feed(V2_TLVS[k - 1 : k]) is None
        assert p.needed == len(V2_TLVS) - k


def test_needed_lets_a_reader_read_exactly_the_header() -> None:
    """DESIGN, PEERS idea 3: reading ``needed`` bytes at a time never reads past the
    header, so a MSG_PEEK / TLS-passthrough user leaves the payload in the socket."""
    for data in [*VECTORS, UNKNOWN_LONG]:
        stream = data + PAYLOAD
        p = pp.Parser()
        pos = 0
        while not p.done:
            n = p.needed
            assert n >= 1
            assert pos + n <= len(data)
            p.feed(stream[pos : pos + n])
            pos += n
        assert pos == len(data)
        assert p.trailing_data == b""


UNKNOWN_LONG = b"PROXY UNKNOWN " + b"z" * 91 + b"\r\n"


def test_after_completion_data_goes_to_trailing_data() -> None:
    p = pp.Parser()
    h = p.feed(V1 + b"ab")
    assert h is not None
    assert p.done
    assert p.header is h or p.header == h
    assert p.feed(b"cd") == h
    assert p.feed(bytearray(b"ef")) == h
    assert p.feed(memoryview(b"gh")) == h
    assert p.feed(b"") == h
    assert p.trailing_data == b"abcdefgh"
    assert isinstance(p.trailing_data, bytes)
    assert p.needed == 0


def test_trailing_data_is_a_copy() -> None:
    """The caller may reuse its buffer: header and trailing data do not change."""
    buf = bytearray(V2_TLVS + b"payload")
    p = pp.Parser()
    h = p.feed(buf)
    assert h is not None
    buf[:] = bytes(len(buf))
    assert h.to_bytes() == V2_TLVS
    assert h.source == ("2001:db8::1", 1)
    assert p.trailing_data == b"payload"


def test_failed_parser_stays_failed() -> None:
    p = pp.Parser()
    with pytest.raises(pp.InvalidHeaderError) as first:
        p.feed(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n")
    for more in (b"", b"\r\n", V1):
        with pytest.raises(pp.InvalidHeaderError) as again:
            p.feed(more)
        assert (again.value.kind, again.value.offset) == (first.value.kind, first.value.offset)
    assert not p.done
    assert p.header is None
    assert p.needed == 0


def test_big_chunk_beyond_max_size_after_a_short_header() -> None:
    """A chunk far larger than max_size is fine when the header inside it is short: the
    rest is payload, not buffered header."""
    payload = bytes(range(256)) * 100
    p = pp.Parser(max_size=64)
    assert p.feed(V1 + payload) is not None
    assert p.trailing_data == payload
    p = pp.Parser(max_size=256)
    assert p.feed(V2_TLVS + payload) is not None
    assert p.trailing_data == payload


def test_D7_parser_never_buffers_past_max_size() -> None:
    """D7: a header announcing more than max_size fails on its length field, before any
    of its body is buffered."""
    data = v2(0x21, 0x11, inet4_block("1.2.3.4", "5.6.7.8", 1, 2) + tlv(0x04, bytes(200)))
    p = pp.Parser(max_size=100)
    with pytest.raises(pp.HeaderTooLargeError) as exc:
        p.feed(data)
    assert (exc.value.kind, exc.value.offset) == ("header_too_large", 14)
    p = pp.Parser(max_size=100)
    assert p.feed(data[:15]) is None
    assert p.buffered == 15
    with pytest.raises(pp.HeaderTooLargeError):
        p.feed(data[15:16])


def test_rule15_v1_capped_at_107_whatever_max_size() -> None:
    p = pp.Parser(max_size=65551)
    with pytest.raises(pp.HeaderTooLargeError):
        p.feed(b"PROXY UNKNOWN " + b"x" * 1000)


def test_buffered_counts_held_bytes() -> None:
    p = pp.Parser()
    p.feed(V1[:10])
    assert p.buffered == 10
    p.feed(V1[10:20])
    assert p.buffered == 20


@pytest.mark.parametrize(
    ("data", "kind", "offset"),
    [
        (b"GET / HTTP/1.1\r\n", "not_proxy_protocol", 0),
        (b"\x16\x03\x01\x02\x00", "not_proxy_protocol", 0),  # TLS ClientHello (rule 41)
        (b"SSH-2.0-OpenSSH\r\n", "not_proxy_protocol", 0),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1_syntax", 30),
        (v2(0x21, 0x41, bytes(12)), "v2_family", 13),
    ],
)
def test_rule41_fail_fast_any_split(data: bytes, kind: str, offset: int) -> None:
    """Rules 16, 41: the same error whatever the split, and as early as possible."""
    for i in range(len(data) + 1):
        assert outcome([data[:i], data[i:]]) == (
            "error",
            pp.HeaderTooLargeError if kind == "header_too_large" else pp.InvalidHeaderError,
            kind,
            offset,
        )


def test_parser_options_match_parse() -> None:
    bad_crc = bytearray(V2_TLVS)
    bad_crc[-1] ^= 1
    for opts in (
        {},
        {"verify_checksum": False},
        {"allow_v1": False},
        {"allow_v2": False},
        {"haproxy_limits": True},
        {"max_size": 16},
    ):
        for data in [*VECTORS, bytes(bad_crc), UNKNOWN_LONG + b"x"]:
            stream = data + b"zz"
            want = whole(stream, **opts)
            got = outcome([stream[:7], stream[7:]], **opts)
            if want == ("incomplete",):
                assert got[0] == "ok"
                assert got[1] is None
            else:
                assert got == want, (opts, data)


def test_feed_after_completion_is_bounded_by_max_size() -> None:
    """After the header, feed() keeps at most max_size bytes of trailing data: the bytes that
    came with the header are always kept, later ones only while the total fits; past that
    feed() raises ValueError and keeps nothing of that call (hand the stream to the
    application instead of feeding it)."""
    p = pp.Parser(max_size=64)
    assert p.feed(V1 + b"x" * 100) is not None  # arrived with the header: kept whole
    assert p.trailing_data == b"x" * 100
    with pytest.raises(ValueError, match="max_size") as e:
        p.feed(b"y")
    assert type(e.value) is ValueError
    assert p.trailing_data == b"x" * 100
    p = pp.Parser(max_size=64)
    h = p.feed(V1)
    assert p.feed(b"a" * 60) == h
    assert p.feed(b"b" * 4) == h
    with pytest.raises(ValueError, match="max_size"):
        p.feed(b"c")
    assert p.trailing_data == b"a" * 60 + b"b" * 4
    assert p.feed(b"") == h
    p = pp.Parser()
    assert p.feed(V1) is not None
    with pytest.raises(ValueError, match="max_size"):
        p.feed(bytes(10 * 1024 * 1024))
    assert p.trailing_data == b""
