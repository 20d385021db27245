"""Shared helpers for the codec tests: wire-format builders written independently of the
core (so a bug in the core's builder cannot hide a bug in its parser), and the checks that
every vector and every rejection goes through.

Not a test module (no ``test_`` prefix); the test modules import it by name, pytest puts
this directory on ``sys.path`` (rootdir-relative ``prepend`` import mode).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import proxyproto_rs as pp
import pytest

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
"""The v2 signature (SPEC rule 18), spelled out here rather than taken from the core."""

PAYLOAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + SIG + b"PROXY TCP4 \x00\xff"
"""Bytes that follow a header in the tests: HTTP, then things that look like headers, so a
parser that reads past the end of its header is caught."""

# --- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), pure Python --------------------

_CRC_TABLE: list[int] = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def ref_crc32c(data: bytes, value: int = 0) -> int:
    """Reference CRC32C, chainable like ``zlib.crc32`` (slow; for cross-checking the core)."""
    crc = value ^ 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


# --- v2 wire builders ---------------------------------------------------------------------


def tlv(kind: int, value: bytes, length: int | None = None) -> bytes:
    """One TLV; *length* overrides the length field (to build broken ones)."""
    return struct.pack("!BH", kind, len(value) if length is None else length) + value


def ssl_value(client: int, verify: int, subs: Iterable[tuple[int, bytes]] = ()) -> bytes:
    """A packed PP2_TYPE_SSL value: client (u8), verify (u32 BE), sub-TLVs (SPEC rule 37)."""
    return struct.pack("!BI", client, verify) + b"".join(tlv(t, v) for t, v in subs)


def v2(
    ver_cmd: int, fam: int, body: bytes = b"", length: int | None = None, sig: bytes = SIG
) -> bytes:
    """A v2 header: signature, byte 12 (version|command), byte 13 (family|protocol), the
    big-endian length (of *body* unless given) and *body*."""
    n = len(body) if length is None else length
    return sig + bytes([ver_cmd, fam]) + struct.pack("!H", n) + body


def canonical_ip(text: str) -> str:
    """D8: RFC 5952 text, IPv4-mapped addresses dotted (``::ffff:127.0.0.1``), other
    embedded-IPv4 forms in hex, as Rust's ``Ipv6Addr`` prints them."""
    import ipaddress

    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def inet4_block(src: str, dst: str, sport: int, dport: int) -> bytes:
    import ipaddress

    return (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!HH", sport, dport)
    )


def inet6_block(src: str, dst: str, sport: int, dport: int) -> bytes:
    import ipaddress

    return (
        ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + struct.pack("!HH", sport, dport)
    )


def unix_block(src: bytes, dst: bytes) -> bytes:
    return src.ljust(108, b"\x00") + dst.ljust(108, b"\x00")


def with_crc(header: bytes) -> bytes:
    """Fill in the (first) CRC32C TLV value of a v2 header, the way a sender must (rule 34):
    value zeroed, CRC over the whole header, written big-endian. The TLV is located by
    walking the TLVs after the address block of *header*'s family (or from byte 16)."""
    at = find_crc_value(header)
    zeroed = header[:at] + b"\x00\x00\x00\x00" + header[at + 4 :]
    return header[:at] + struct.pack("!I", ref_crc32c(zeroed)) + header[at + 4 :]


def find_crc_value(header: bytes) -> int:
    """Offset of the value of the first CRC32C TLV: searched from every plausible TLV start
    (after the address block of the family, then byte 16)."""
    fam = header[13] >> 4
    starts = [16 + {1: 12, 2: 36, 3: 216}.get(fam, 0), 16]
    for start in starts:
        pos = start
        while pos + 3 <= len(header):
            kind, n = header[pos], struct.unpack("!H", header[pos + 1 : pos + 3])[0]
            if kind == 0x03 and n == 4 and pos + 7 <= len(header):
                return pos + 3
            pos += 3 + n
    raise AssertionError("no CRC32C TLV")


# --- the three-way vector check and the rejection check ------------------------------------


def check_vector(data: bytes, **opts: object) -> pp.Header:
    """Check a valid header three ways (STYLE "Tests"), plus every proper prefix:

    - whole: ``parse`` gives a header of ``len(data)`` bytes that serialises back to *data*,
      from ``bytes``, ``bytearray`` and ``memoryview`` alike;
    - one byte at a time through ``Parser``: ``None`` until the last byte, ``needed`` >= 1
      and never past the end of the header, then the header;
    - with payload appended: ``length`` is still ``len(data)``, the payload lands untouched
      in ``trailing_data``;
    - every proper prefix: ``parse`` raises ``IncompleteHeaderError``, a ``Parser`` fed it
      returns ``None`` with ``needed`` >= 1 not overshooting the header's end.
    """
    h = pp.parse(data, **opts)  # type: ignore[arg-type]
    assert h.length == len(data)
    assert h.to_bytes() == data
    assert bytes(h) == data
    for buf in (bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        assert pp.parse(buf, **opts) == h  # type: ignore[arg-type]

    # One byte at a time.
    p = pp.Parser(**opts)  # type: ignore[arg-type]
    for i in range(len(data)):
        out = p.feed(data[i : i + 1])
        if i < len(data) - 1:
            assert out is None, f"complete after {i + 1} of {len(data)} bytes"
            assert p.header is None
            assert not p.done
            assert p.needed >= 1
            assert i + 1 + p.needed <= len(data), f"needed overshoots after {i + 1} bytes"
        else:
            assert out == h
    assert p.done
    assert p.needed == 0
    assert p.header == h
    assert p.trailing_data == b""
    assert p.header is not None
    assert p.header.to_bytes() == data

    # With payload appended, in one buffer and then in pieces.
    assert pp.parse(data + PAYLOAD, **opts) == h  # type: ignore[arg-type]
    assert pp.parse(data + PAYLOAD, **opts).length == len(data)  # type: ignore[arg-type]
    p = pp.Parser(**opts)  # type: ignore[arg-type]
    assert p.feed(data + PAYLOAD[:5]) == h
    assert p.trailing_data == PAYLOAD[:5]
    assert p.feed(PAYLOAD[5:]) == h
    assert p.trailing_data == PAYLOAD
    assert p.needed == 0
    p = pp.Parser(**opts)  # type: ignore[arg-type]
    half = len(data) // 2
    assert p.feed(bytearray(data[:half])) is None
    assert p.feed(memoryview(data[half:] + PAYLOAD)) == h
    assert p.trailing_data == PAYLOAD

    # Every proper prefix is incomplete, never invalid.
    check_prefixes_incomplete(data, len(data), **opts)
    return h


def check_prefixes_incomplete(
    data: bytes, total: int | None, upto: int | None = None, **opts: object
) -> None:
    """Every ``data[:k]`` for ``k < upto`` (default ``len(data)``) is a valid, unfinished
    prefix; when *total* (the header's length) is known, ``needed`` never points past it."""
    for k in range(len(data) if upto is None else upto):
        prefix = data[:k]
        with pytest.raises(pp.IncompleteHeaderError) as exc:
            pp.parse(prefix, **opts)  # type: ignore[arg-type]
        assert exc.value.kind == "incomplete"
        p = pp.Parser(**opts)  # type: ignore[arg-type]
        assert p.feed(prefix) is None
        assert p.needed >= 1
        if total is not None:
            assert k + p.needed <= total, f"needed={p.needed} overshoots at {k} of {total}"


def check_invalid(
    data: bytes,
    kind: str,
    offset: int,
    cls: type[pp.ProxyProtocolError] = pp.InvalidHeaderError,
    raise_at: int | None = None,
    **opts: object,
) -> pp.ProxyProtocolError:
    """Check that *data* is rejected with exactly *cls*, *kind* and *offset* (D1), by
    ``parse`` (also with payload appended) and by a ``Parser`` fed whole or byte by byte.

    *raise_at* is the index of the byte whose arrival makes the bytes impossible (default
    *offset*: the first impossible byte; later for errors that need the whole v2 header).
    Every shorter prefix must be reported incomplete, never invalid (D1: not earlier).
    """
    at = offset if raise_at is None else raise_at

    def expect(call: Callable[..., object], *args: object) -> pp.ProxyProtocolError:
        with pytest.raises(pp.ProxyProtocolError) as exc:
            call(*args)
        e = exc.value
        assert type(e) is cls, f"{type(e).__name__} ({e}), expected {cls.__name__}"
        assert (e.kind, e.offset) == (kind, offset), str(e)
        return e

    err = expect(lambda: pp.parse(data, **opts))  # type: ignore[arg-type]
    expect(lambda: pp.parse(bytearray(data) + PAYLOAD, **opts))  # type: ignore[arg-type]

    p = pp.Parser(**opts)  # type: ignore[arg-type]
    expect(p.feed, data + PAYLOAD)
    expect(p.feed, b"")  # a parser that raised stays failed
    expect(p.feed, b"x")
    assert p.header is None

    p = pp.Parser(**opts)  # type: ignore[arg-type]
    for i in range(at):
        assert p.feed(data[i : i + 1]) is None, f"gave up early: byte {i}"
    expect(p.feed, data[at : at + 1])
    expect(p.feed, data[at + 1 :])

    check_prefixes_incomplete(data, None, upto=at + 1, **opts)
    return err
