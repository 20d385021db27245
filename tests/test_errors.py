"""The exception hierarchy and its contract (DESIGN "Errors", STYLE "Error model").

Every error carries a stable snake_case ``kind`` and an ``offset`` (byte index, or -1);
everything derives from ``ValueError``; errors pickle; nothing but our errors escapes the
codec for any bytes.
"""

from __future__ import annotations

import copy
import inspect
import pickle
import re
from typing import Any

import proxyproto_rs as pp
import pytest
from _util import inet4_block, tlv, v2, with_crc
from proxyproto_rs import _errors


def test_hierarchy() -> None:
    assert issubclass(pp.ProxyProtocolError, ValueError)
    assert issubclass(pp.InvalidHeaderError, pp.ProxyProtocolError)
    assert issubclass(pp.HeaderTooLargeError, pp.InvalidHeaderError)
    assert issubclass(pp.ChecksumError, pp.InvalidHeaderError)
    assert issubclass(pp.IncompleteHeaderError, pp.ProxyProtocolError)
    assert issubclass(pp.BuildError, pp.ProxyProtocolError)
    assert not issubclass(pp.IncompleteHeaderError, pp.InvalidHeaderError)
    assert not issubclass(pp.BuildError, pp.InvalidHeaderError)
    assert not issubclass(pp.ChecksumError, pp.HeaderTooLargeError)
    assert pp.HeaderTooLargeError.__mro__[:5] == (
        pp.HeaderTooLargeError,
        pp.InvalidHeaderError,
        pp.ProxyProtocolError,
        ValueError,
        Exception,
    )


def test_errors_are_exported_from_the_package() -> None:
    for name in _errors.__all__:
        assert getattr(pp, name) is getattr(_errors, name)
        assert name in pp.__all__


def raised(data: bytes, **opts: object) -> pp.ProxyProtocolError:
    with pytest.raises(pp.ProxyProtocolError) as exc:
        pp.parse(data, **opts)  # type: ignore[arg-type]
    return exc.value


BLOCK = inet4_block("1.2.3.4", "5.6.7.8", 1, 2)
BAD_CRC = bytearray(with_crc(v2(0x21, 0x11, BLOCK + tlv(0x03, bytes(4)))))
BAD_CRC[-1] ^= 1

EXAMPLES: list[tuple[bytes, dict[str, object], type[pp.ProxyProtocolError], str]] = [
    (b"GET /", {}, pp.InvalidHeaderError, "not_proxy_protocol"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", {}, pp.InvalidHeaderError, "v1_syntax"),
    (b"PROXY TCP9", {}, pp.InvalidHeaderError, "v1_protocol"),
    (b"PROXY TCP4 1.2.3.04", {}, pp.InvalidHeaderError, "v1_address"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 +1", {}, pp.InvalidHeaderError, "v1_port"),
    (b"PROXY UNKNOWN " + b"x" * 100, {}, pp.HeaderTooLargeError, "v1_too_long"),
    (v2(0x11, 0x11), {}, pp.InvalidHeaderError, "v2_version"),
    (v2(0x2F, 0x11), {}, pp.InvalidHeaderError, "v2_command"),
    (v2(0x21, 0x91), {}, pp.InvalidHeaderError, "v2_family"),
    (v2(0x21, 0x19), {}, pp.InvalidHeaderError, "v2_protocol"),
    (v2(0x21, 0x11, bytes(4)), {}, pp.InvalidHeaderError, "v2_address_truncated"),
    (v2(0x21, 0x11, length=5000), {}, pp.HeaderTooLargeError, "header_too_large"),
    (v2(0x21, 0x11, BLOCK + b"\x01\x00"), {}, pp.InvalidHeaderError, "tlv_truncated"),
    (v2(0x21, 0x11, BLOCK + tlv(3, b"")), {}, pp.InvalidHeaderError, "tlv_length"),
    (bytes(BAD_CRC), {}, pp.ChecksumError, "checksum_mismatch"),
    (b"PROXY UNKNOWN\r\n", {"allow_v1": False}, pp.InvalidHeaderError, "version_not_allowed"),
    (b"PROXY TCP4 ", {}, pp.IncompleteHeaderError, "incomplete"),
]


@pytest.mark.parametrize(("data", "opts", "cls", "kind"), EXAMPLES, ids=[e[3] for e in EXAMPLES])
def test_every_kind_has_its_class(
    data: bytes, opts: dict[str, object], cls: type[pp.ProxyProtocolError], kind: str
) -> None:
    """Each stable kind maps to one class; the message names the byte offset."""
    e = raised(data, **opts)
    assert type(e) is cls
    assert e.kind == kind
    assert re.fullmatch(r"[a-z][a-z0-9_]*", e.kind)
    assert isinstance(e.offset, int)
    assert 0 <= e.offset <= len(data)
    assert str(e)
    if cls is not pp.IncompleteHeaderError:
        assert f"byte {e.offset}" in str(e)


@pytest.mark.parametrize(("data", "opts", "cls", "kind"), EXAMPLES, ids=[e[3] for e in EXAMPLES])
def test_errors_pickle_and_copy(
    data: bytes, opts: dict[str, object], cls: type[pp.ProxyProtocolError], kind: str
) -> None:
    """Errors cross process boundaries (multiprocessing, logging queues) intact."""
    e = raised(data, **opts)
    for again in (pickle.loads(pickle.dumps(e)), copy.copy(e), copy.deepcopy(e)):
        assert type(again) is cls
        assert (again.kind, again.offset, str(again)) == (e.kind, e.offset, str(e))


def test_build_error_pickles() -> None:
    with pytest.raises(pp.BuildError) as exc:
        pp.build_v1(("1.2.3.4", 70000), ("1.2.3.4", 1))
    e = pickle.loads(pickle.dumps(exc.value))
    assert type(e) is pp.BuildError
    assert (e.kind, e.offset) == ("port", -1)


def test_except_value_error_keeps_working() -> None:
    with pytest.raises(ValueError, match="byte 0"):
        pp.parse(b"GET /")


def test_errors_can_be_made_by_users() -> None:
    """The classes are plain Python: tests and shims can raise them too."""
    e = pp.ChecksumError("boom", kind="checksum_mismatch", offset=31)
    assert (str(e), e.kind, e.offset) == ("boom", "checksum_mismatch", 31)
    assert pp.ProxyProtocolError("x").offset == -1


@pytest.mark.parametrize("bad", ["PROXY UNKNOWN\r\n", 42, None, [1, 2]])
def test_non_buffers_are_type_errors(bad: object) -> None:
    """Only the buffer protocol is accepted; a str is a programming error, not a header."""
    with pytest.raises(TypeError):
        pp.parse(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pp.Parser().feed(bad)  # type: ignore[arg-type]


def test_non_contiguous_buffer() -> None:
    """A strided memoryview is either read correctly or refused with a clean error."""
    data = b"PROXY UNKNOWN\r\n"
    doubled = bytes(b for c in data for b in (c, 0))
    view = memoryview(doubled)[::2]
    try:
        h = pp.parse(view)
    except (TypeError, ValueError, BufferError):
        return
    assert h.to_bytes() == data


# parse() is a hand-written fast-call entry (rust/python/fastcall.rs): it takes the usual
# calls itself and hands every unusual one to a PyO3-checked twin. Both must behave as one
# function with the signature of the stubs.
V2 = pp.build_v2(("192.0.2.1", 56324), ("198.51.100.2", 443))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"allow_v1": False},
        {"allow_v2": True, "verify_checksum": False},
        {"max_size": 28, "haproxy_limits": True},
        {"haproxy_limits": False, "max_size": 65551, "allow_v1": True, "allow_v2": True},
    ],
)
def test_parse_keywords_are_taken(kwargs: dict[str, Any]) -> None:
    for data in (V2, bytearray(V2), memoryview(V2 + b"payload")):
        h = pp.parse(data, **kwargs)
        assert (h.source, h.length) == (("192.0.2.1", 56324), 28)


@pytest.mark.parametrize(
    ("args", "kwargs", "cls", "message"),
    [
        ((V2,), {"max_size": 27}, pp.HeaderTooLargeError, "larger than max_size"),
        ((V2,), {"allow_v2": False}, pp.InvalidHeaderError, "version not allowed"),
        ((V2,), {"max_size": 15}, ValueError, "max_size must be between 16 and 65551"),
        ((V2,), {"max_size": 2**80}, ValueError, "max_size must be between"),
        ((V2,), {"allow_v1": False, "allow_v2": False}, ValueError, "cannot both be False"),
        ((V2,), {"allow_v1": 1}, TypeError, "bool"),
        ((V2,), {"max_size": "28"}, TypeError, "integer"),
        ((V2,), {"max_sise": 28}, TypeError, "unexpected keyword argument 'max_sise'"),
        ((V2, True), {}, TypeError, "positional"),
        ((), {}, TypeError, "missing 1 required positional argument: 'data'"),
        ((), {"data": V2}, TypeError, "positional-only"),
        ((V2[:20],), {}, pp.IncompleteHeaderError, "incomplete"),
    ],
)
def test_parse_argument_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], cls: type[Exception], message: str
) -> None:
    with pytest.raises(cls, match=message):
        pp.parse(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "cls", "message"),
    [
        ((b"abc", -1), {}, None, None),
        ((b"abc", 2**32 + 5), {}, None, None),
        ((bytearray(b"abc"), 5), {}, None, None),
        ((b"abc", 1, 2), {}, TypeError, "positional"),
        ((b"abc",), {"value": 1}, TypeError, "keyword"),
        ((b"abc", "1"), {}, TypeError, "integer"),
        (("abc",), {}, TypeError, "bytes-like"),
    ],
)
def test_crc32c_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], cls: type[Exception] | None, message: str | None
) -> None:
    """crc32c's fast entry takes (bytes, int fitting 32 bits); the rest goes to its twin."""
    if cls is None:
        value = args[1] % 2**32
        assert pp.crc32c(*args) == pp.crc32c(bytes(args[0]), value)
        return
    with pytest.raises(cls, match=message):
        pp.crc32c(*args, **kwargs)


def test_build_v2_arguments() -> None:
    """build_v2's fast entry takes two positional addresses; the rest goes to its twin."""
    src, dst = ("192.0.2.1", 56324), ("198.51.100.2", 443)
    assert pp.build_v2(src, dst) == pp.build_v2(source=src, destination=dst) == V2
    assert pp.build_v2(src, destination=dst) == V2
    assert pp.build_v2() == pp.build_v2(None, None) == pp.Header.local().to_bytes()
    with pytest.raises(pp.BuildError, match="different families"):
        pp.build_v2(src, ("2001:db8::1", 1))
    with pytest.raises(TypeError):
        pp.build_v2(src, dst, None)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'crc'"):
        pp.build_v2(src, dst, crc=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'source'"):
        pp.build_v2(src, source=src)  # type: ignore[misc]
    for bad in ({"authority": 5}, {"command": "1"}, {"crc32c": 1}):
        with pytest.raises(TypeError):
            pp.build_v2(src, dst, **bad)
    every = pp.build_v2(
        source=src,
        destination=dst,
        command=pp.Command.PROXY,
        protocol=pp.Protocol.STREAM,
        crc32c=True,
        alpn=b"h2",
        authority="example.com",
        unique_id=b"u",
        netns="ns",
        aws_vpce_id="vpce-1",
        tlvs=[(0xE0, b"x")],
    )
    h = pp.parse(every)
    assert (h.source, h.alpn, h.authority, h.netns, h.aws_vpce_id) == (
        src,
        b"h2",
        "example.com",
        "ns",
        "vpce-1",
    )
    assert pp.build_v2(src, dst, alpn=None, authority=None) == V2


def test_build_v1_arguments() -> None:
    """build_v1's fast entry takes positional addresses; the rest goes to its twin."""
    src, dst = ("192.0.2.1", 56324), ("198.51.100.2", 443)
    line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
    assert pp.build_v1(src, dst) == pp.build_v1(source=src, destination=dst) == line
    assert pp.build_v1() == pp.build_v1(None, None) == b"PROXY UNKNOWN\r\n"
    with pytest.raises(pp.BuildError, match="both source and destination"):
        pp.build_v1(src)
    with pytest.raises(TypeError, match="positional"):
        pp.build_v1(src, dst, None)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        pp.build_v1(src, dst, x=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["parse", "build_v1", "build_v2", "crc32c"])
def test_fast_entries_are_normal_builtins(name: str) -> None:
    """Introspection, pickling and docstrings work as for any C function."""
    f = getattr(pp, name)
    assert f.__module__ == "proxyproto_rs._core"
    assert f.__name__ == name
    assert pickle.loads(pickle.dumps(f)) is f
    assert f.__doc__
    assert "data" in str(inspect.signature(f)) or "source" in str(inspect.signature(f))


def test_parse_signature() -> None:
    sig = inspect.signature(pp.parse)
    assert list(sig.parameters) == [
        "data",
        "allow_v1",
        "allow_v2",
        "verify_checksum",
        "max_size",
        "haproxy_limits",
    ]
    assert sig.parameters["max_size"].default == 4096


# --- huge integers and odd buffers ---------------------------------------------------------

HUGE = [2**64, 2**200, -(2**200)]


@pytest.mark.parametrize("value", HUGE)
def test_huge_max_size_is_a_value_error(value: int) -> None:
    for call in (lambda: pp.parse(V2, max_size=value), lambda: pp.Parser(max_size=value)):
        with pytest.raises(ValueError, match="max_size must be between") as e:
            call()
        assert not isinstance(e.value, OverflowError)


@pytest.mark.parametrize("value", HUGE)
def test_huge_command_protocol_and_tlv_type_are_value_errors(value: int) -> None:
    src, dst = ("192.0.2.1", 1), ("198.51.100.2", 2)
    for kwargs in ({"command": value}, {"protocol": value}, {"tlvs": [(value, b"")]}):
        with pytest.raises(pp.BuildError):
            pp.build_v2(src, dst, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(pp.BuildError):
            pp.Header.v2(src, dst, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not in 0-255") as e:
        pp.Tlv(value, b"")
    assert not isinstance(e.value, OverflowError)


@pytest.mark.parametrize("value", [*HUGE, 2**32 + 5, -1, 2**128 + 7])
def test_crc32c_start_value_wraps_modulo_2_32_like_zlib(value: int) -> None:
    """Any int is taken modulo 2**32, however large (zlib.crc32's rule)."""
    for data in (b"abc", bytearray(b"abc")):
        assert pp.crc32c(data, value) == pp.crc32c(data, value % 2**32)


@pytest.mark.parametrize(("start", "found"), [(2**200, -1), (-(2**200), 3), (2**64, -1)])
def test_find_signature_huge_start_is_clamped_like_bytes_find(start: int, found: int) -> None:
    data = b"abcPROXY TCP4"
    assert pp.find_signature(data, start) == found
    assert pp.find_signature(bytearray(data), start) == found
    assert data.find(b"PROXY ", start) == found


def _odd_buffers(data: bytes) -> list[Any]:
    """The same bytes behind exporters whose item format is not ``B``."""
    import array

    out: list[Any] = [memoryview(data).cast("b"), memoryview(data).cast("c")]
    if len(data) % 4 == 0:
        out.append(array.array("i", data))
        out.append(memoryview(data).cast("I"))
    return out


def test_crc32c_takes_any_contiguous_buffer_like_zlib() -> None:
    import zlib

    data = b"0123456789abcdef" * 3
    for buf in _odd_buffers(data):
        assert pp.crc32c(buf) == pp.crc32c(data), buf
        zlib.crc32(buf)  # what the rule copies: zlib accepts it too


def test_parsers_take_any_contiguous_buffer() -> None:
    data = V2 + b"\0" * (-len(V2) % 4)
    for buf in _odd_buffers(data):
        assert pp.parse(buf).to_bytes() == V2
        assert pp.detect(buf) == 2
        assert pp.find_signature(buf) == 0
        p = pp.Parser()
        assert p.feed(buf) is not None


def test_non_contiguous_buffer_is_a_value_error() -> None:
    view = memoryview(V2 * 2)[::2]
    for call in (
        lambda: pp.parse(view),
        lambda: pp.crc32c(view),
        lambda: pp.detect(view),
        lambda: pp.find_signature(view),
        lambda: pp.Parser().feed(view),
    ):
        with pytest.raises(ValueError, match="contiguous") as e:
            call()
        assert type(e.value) is ValueError


@pytest.mark.parametrize("host", ["1.2.3.4%lo l", "1.2.3.4%eth0", "1.2.3.4%"])
def test_zone_on_ipv4_is_invalid(host: str) -> None:
    for build in (pp.build_v1, pp.build_v2):
        with pytest.raises(pp.BuildError, match="not an IPv4 or IPv6 address"):
            build((host, 1), ("5.6.7.8", 2))


def test_zone_on_ipv6_is_dropped() -> None:
    """A socket's IPv6 name may carry a zone; the wire has no room for it."""
    assert pp.build_v1(("fe80::1%eth0", 1), ("::1", 2)) == b"PROXY TCP6 fe80::1 ::1 1 2\r\n"
