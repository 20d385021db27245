"""Shared helpers for the codec tests: the raw wire builders of ``proxyproto_rs._wire``
(written independently of the core, so a bug in the core's builder cannot hide a bug in its
parser) under the names the tests use, and the checks that every vector and every rejection
goes through.

Not a test module (no ``test_`` prefix); the test modules import it by name, pytest puts
this directory on ``sys.path`` (rootdir-relative ``prepend`` import mode).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterator

import proxyproto_rs as pp
import pytest
from proxyproto_rs._wire import SIGNATURE as SIG
from proxyproto_rs._wire import crc32c_reference as ref_crc32c
from proxyproto_rs._wire import crc_value_offset as find_crc_value
from proxyproto_rs._wire import inet4_block, inet6_block, ssl_value, tlv, unix_block, v2, with_crc

__all__ = [
    "PAYLOAD",
    "SIG",
    "canonical_ip",
    "check_invalid",
    "check_prefixes_incomplete",
    "check_vector",
    "find_crc_value",
    "inet4_block",
    "inet6_block",
    "ref_crc32c",
    "ssl_value",
    "tlv",
    "unix_block",
    "v2",
    "with_crc",
]

PAYLOAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + SIG + b"PROXY TCP4 \x00\xff"
"""Bytes that follow a header in the tests: HTTP, then things that look like headers, so a
parser that reads past the end of its header is caught."""


def canonical_ip(text: str) -> str:
    """D8: RFC 5952 text, IPv4-mapped addresses dotted (``::ffff:127.0.0.1``), other
    embedded-IPv4 forms in hex, as Rust's ``Ipv6Addr`` prints them."""
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


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


@contextlib.contextmanager
def connected() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client, server) ends of one loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
    with client, server:
        yield client, server
