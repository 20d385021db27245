"""Hypothesis properties (STYLE "Tests, fuzz, benches").

- build-then-parse round trips every field, for every family, protocol and command, with
  arbitrary TLV lists and CRC32C on or off; ``parse(h.to_bytes()) == h``;
- random bytes, and random mutations of valid headers, only ever give a Header or one of
  our errors (h11's fuzz invariant);
- a Parser fed any split gives the same outcome as ``parse()`` of the whole.
"""

from __future__ import annotations

import os
import pickle

import proxyproto_rs as pp
import pytest
from _util import SIG, canonical_ip, ref_crc32c, ssl_value, tlv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxyproto_rs import Command, Family, Protocol

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ports = st.integers(0, 65535)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
inet4 = st.tuples(ipv4, ports)
inet6 = st.tuples(ipv6, ports)
unix_path = st.binary(max_size=108).filter(lambda b: b"\0" not in b).map(os.fsdecode)
abstract = st.binary(min_size=1, max_size=107).filter(lambda b: b[-1] != 0).map(b"\0".__add__)
unix = st.one_of(unix_path, abstract)

plain_tlv = st.tuples(
    st.integers(0, 255).filter(lambda t: t not in (0x03, 0x05, 0x20)),
    st.binary(max_size=64),
)
unique_id_tlv = st.tuples(st.just(0x05), st.binary(max_size=128))
sub_type = st.integers(0, 255)
ssl_tlv = st.builds(
    lambda client, verify, subs: (0x20, ssl_value(client, verify, subs)),
    st.integers(0, 255),
    st.integers(0, 2**32 - 1),
    st.lists(st.tuples(sub_type, st.binary(max_size=24)), max_size=8),
)
tlv_lists = st.lists(st.one_of(plain_tlv, unique_id_tlv, ssl_tlv), max_size=10)


def canonical(addr: object) -> object:
    """What parse gives back for a builder input (D8 for IP text)."""
    if isinstance(addr, tuple):
        return (canonical_ip(addr[0]), addr[1])
    return addr


def expected_tlvs(
    alpn: bytes | None, authority: str | None, tlvs: list[tuple[int, bytes]]
) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    if alpn is not None:
        out.append((0x01, alpn))
    if authority is not None:
        out.append((0x02, authority.encode()))
    out += [(t, bytes(v)) for t, v in tlvs]
    return out


def check_round_trip(h: pp.Header) -> None:
    data = h.to_bytes()
    again = pp.parse(data, max_size=65551)
    assert again == h
    assert hash(again) == hash(h)
    assert pickle.loads(pickle.dumps(h)) == h
    assert bytes(h) == data
    assert h.length == len(data)


@FAST
@given(
    ends=st.one_of(st.tuples(inet4, inet4), st.tuples(inet6, inet6), st.tuples(unix, unix)),
    protocol=st.sampled_from([Protocol.STREAM, Protocol.DGRAM]),
    tlvs=tlv_lists,
    crc=st.booleans(),
    alpn=st.none() | st.binary(max_size=20),
    authority=st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
)
def test_build_v2_round_trips_every_field(
    ends: tuple[object, object],
    protocol: Protocol,
    tlvs: list[tuple[int, bytes]],
    crc: bool,
    alpn: bytes | None,
    authority: str | None,
) -> None:
    """Rules 21-23, 27, 31, 34, 46, D8: every field survives build then parse."""
    src, dst = ends
    data = pp.build_v2(
        src, dst, protocol=protocol, tlvs=tlvs, crc32c=crc, alpn=alpn, authority=authority
    )
    h = pp.parse(data, max_size=65551)
    assert h.version == 2
    assert h.command is Command.PROXY
    assert h.protocol is protocol
    family = {str: Family.UNIX, bytes: Family.UNIX}.get(type(src))
    if family is None:
        family = Family.INET if ":" not in src[0] else Family.INET6  # type: ignore[index]
    assert h.family is family
    assert h.source == canonical(src)
    assert h.destination == canonical(dst)
    got = [(t.type, t.value) for t in h.tlvs]
    if crc:
        assert got[0][0] == 0x03
        at = 16 + {Family.INET: 12, Family.INET6: 36, Family.UNIX: 216}[family] + 3
        assert h.crc32c == ref_crc32c(data[:at] + bytes(4) + data[at + 4 :])
        got = got[1:]
    else:
        assert h.crc32c is None
    assert got == expected_tlvs(alpn, authority, tlvs)
    alpns = [v for t, v in got if t == 0x01]
    assert h.alpn == (alpns[0] if alpns else None)
    authorities = [v for t, v in got if t == 0x02]
    assert h.authority == (
        authorities[0].decode("utf-8", "surrogateescape") if authorities else None
    )
    assert h == pp.Header.v2(
        src, dst, protocol=protocol, tlvs=tlvs, crc32c=crc, alpn=alpn, authority=authority
    )
    check_round_trip(h)


@FAST
@given(tlvs=tlv_lists, crc=st.booleans())
def test_local_round_trips(tlvs: list[tuple[int, bytes]], crc: bool) -> None:
    """Rules 20, 24, 44, D3: LOCAL without addresses keeps its TLVs (from byte 16)."""
    h = pp.Header.local(tlvs=tlvs, crc32c=crc)
    assert h.command is Command.LOCAL
    assert h.family is Family.UNSPEC
    assert h.source is None
    got = [(t.type, t.value) for t in h.tlvs]
    assert got == ([(0x03, got[0][1])] if crc else []) + [(t, bytes(v)) for t, v in tlvs]
    check_round_trip(h)


@FAST
@given(ends=st.one_of(st.tuples(inet4, inet4), st.tuples(inet6, inet6)))
def test_build_v1_round_trips(ends: tuple[tuple[str, int], tuple[str, int]]) -> None:
    """Rules 8-12, 14, D6, D8: a built line parses to the canonical addresses."""
    src, dst = ends
    line = pp.build_v1(src, dst)
    assert len(line) <= 107
    h = pp.parse(line)
    assert h.version == 1
    assert h.family is (Family.INET6 if ":" in src[0] else Family.INET)
    assert h.source == canonical(src)
    assert h.destination == canonical(dst)
    assert h == pp.Header.v1(src, dst)
    check_round_trip(h)


# --- only a Header or our error ------------------------------------------------------------

OUR_ERRORS = (
    pp.InvalidHeaderError,
    pp.HeaderTooLargeError,
    pp.ChecksumError,
    pp.IncompleteHeaderError,
)

options = st.fixed_dictionaries(
    {},
    optional={
        "allow_v1": st.booleans(),
        "verify_checksum": st.booleans(),
        "max_size": st.integers(16, 65551),
        "haproxy_limits": st.booleans(),
    },
)


def outcome_of_parse(data: bytes, opts: dict[str, object]) -> tuple[object, ...]:
    err: pp.ProxyProtocolError | None = None
    try:
        h = pp.parse(data, **opts)  # type: ignore[arg-type]
    except pp.ProxyProtocolError as e:
        err = e
    if err is not None:
        assert type(err) in OUR_ERRORS
        assert isinstance(err.kind, str)
        assert err.kind
        assert 0 <= err.offset <= len(data)
        if isinstance(err, pp.IncompleteHeaderError):
            return ("incomplete",)
        return ("error", type(err), err.kind, err.offset)
    assert 0 < h.length <= len(data)
    assert h.to_bytes() == data[: h.length]
    assert pp.parse(h.to_bytes(), verify_checksum=False, max_size=65551) == h
    # Every accessor materialises without raising anything but nothing.
    for name in (
        "source",
        "destination",
        "tlvs",
        "alpn",
        "authority",
        "crc32c",
        "unique_id",
        "ssl",
        "netns",
        "aws_vpce_id",
        "azure_link_id",
        "gcp_psc_connection_id",
    ):
        getattr(h, name)
    if h.ssl is not None:
        for name in ("version", "cn", "cipher", "client_cert", "tlvs", "client_cert_verified"):
            getattr(h.ssl, name)
    repr(h)
    return ("ok", h, data[h.length :])


def outcome_of_feeds(chunks: list[bytes], opts: dict[str, object]) -> tuple[object, ...]:
    p = pp.Parser(**opts)  # type: ignore[arg-type]
    err: pp.ProxyProtocolError | None = None
    try:
        for c in chunks:
            p.feed(c)
    except pp.ProxyProtocolError as e:
        err = e
    if err is not None:
        assert type(err) in OUR_ERRORS
        return ("error", type(err), err.kind, err.offset)
    if p.header is None:
        assert p.needed >= 1
        return ("incomplete",)
    assert p.needed == 0
    return ("ok", p.header, p.trailing_data)


prefixed_bytes = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(SIG.__add__),
    st.builds(lambda b, c: SIG + b[:2] + c, st.binary(min_size=2, max_size=4), st.binary()),
    st.binary(max_size=120).map(b"PROXY ".__add__),
    st.sampled_from([b"PROXY TCP4 ", b"PROXY TCP6 ", b"PROXY UNKNOWN"]).flatmap(
        lambda p: st.text("0123456789abcdef:. \r\n%", max_size=110).map(lambda s: p + s.encode())
    ),
)


@settings(max_examples=200, deadline=None)
@given(data=prefixed_bytes, opts=options)
def test_random_bytes_give_a_header_or_our_error(data: bytes, opts: dict[str, object]) -> None:
    """Nothing but our errors escapes the codec (DESIGN "Errors"), for any bytes."""
    outcome_of_parse(data, opts)


def valid_headers() -> st.SearchStrategy[bytes]:
    v2_headers = st.builds(
        lambda ends, proto, tlvs, crc: pp.build_v2(*ends, protocol=proto, tlvs=tlvs, crc32c=crc),
        st.one_of(
            st.tuples(inet4, inet4),
            st.tuples(inet6, inet6),
            st.tuples(unix, unix),
            st.just((None, None)),
        ),
        st.sampled_from([Protocol.STREAM, Protocol.DGRAM]),
        st.lists(st.one_of(plain_tlv, ssl_tlv), max_size=4),
        st.booleans(),
    )
    v1_headers = st.one_of(
        st.builds(pp.build_v1, inet4, inet4),
        st.builds(pp.build_v1, inet6, inet6),
        st.just(b"PROXY UNKNOWN\r\n"),
    )
    return st.one_of(v2_headers, v1_headers)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_headers()))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[at]
    return bytes(data) + draw(st.binary(max_size=8))


@settings(max_examples=200, deadline=None)
@given(data=mutated(), opts=options)
def test_mutated_headers_give_a_header_or_our_error(data: bytes, opts: dict[str, object]) -> None:
    outcome_of_parse(data, opts)


# --- any split, same outcome ---------------------------------------------------------------


@st.composite
def split(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(st.one_of(valid_headers().map(lambda b: b + b"payload"), mutated()))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return data, chunks


@settings(max_examples=150, deadline=None)
@given(case=split(), opts=options)
def test_any_split_same_outcome_as_whole(
    case: tuple[bytes, list[bytes]], opts: dict[str, object]
) -> None:
    """DESIGN "Parser": feeding the same bytes in any split gives the same outcome."""
    data, chunks = case
    assert b"".join(chunks) == data
    assert outcome_of_feeds(chunks, opts) == outcome_of_parse(data, opts)


@FAST
@given(data=valid_headers(), payload=st.binary(max_size=40))
def test_valid_header_with_payload(data: bytes, payload: bytes) -> None:
    """A valid header followed by anything: length is the header's, payload untouched."""
    h = pp.parse(data + payload)
    assert h.length == len(data)
    p = pp.Parser()
    assert p.feed(data + payload) == h
    assert p.trailing_data == payload


@FAST
@given(
    block=st.binary(min_size=0, max_size=40), value=st.binary(max_size=40), kind=st.integers(0, 255)
)
def test_tlv_crossing_the_end_never_accepted(block: bytes, value: bytes, kind: int) -> None:
    """D4: a TLV whose declared length passes the end is never silently truncated."""
    body = bytes(12) + tlv(kind, value, length=len(value) + 1 + len(block) % 5)
    data = SIG + b"\x21\x11" + len(body).to_bytes(2, "big") + body
    with pytest.raises(pp.InvalidHeaderError) as exc:
        pp.parse(data)
    assert exc.value.kind in ("tlv_truncated", "tlv_length")


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=3000),
    offset=st.integers(0, 15),
    cut=st.integers(0, 3000),
    seed=st.integers(0, 2**32 - 1),
)
def test_crc32c_matches_reference_and_chains(data: bytes, offset: int, cut: int, seed: int) -> None:
    """Rule 34: the accelerated CRC32C equals a table CRC at any length, alignment and
    starting value, and chains like zlib.crc32."""
    view = memoryview(b"\xaa" * offset + data)[offset:]
    assert pp.crc32c(view, seed) == ref_crc32c(data, seed)
    a, b = data[:cut], data[cut:]
    assert pp.crc32c(b, pp.crc32c(a, seed)) == pp.crc32c(data, seed)
