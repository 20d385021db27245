"""Atheris harness `py_parse`: ``proxyproto_rs.parse`` with fuzzed options.

Input: the wire bytes; the options are drawn from the input's last byte (so the raw
headers of fuzz/corpus/parse seed it as they are). Invariant: only ProxyProtocolError
subclasses escape (IncompleteHeaderError or InvalidHeaderError and its subclasses, with a
str ``kind`` and an ``offset`` naming a byte of the input, the end for an incomplete one,
or -1); an out-of-range
``max_size`` is the documented ValueError, raised before any byte is read. A parsed header's
``to_bytes()`` is the input's first ``length`` bytes, it re-parses equal (also from a
bytearray and a memoryview), pickles, hashes, and every accessor returns without raising.
``detect``, ``find_signature``, ``crc32c`` and ``scan`` raise nothing.
"""

# A libFuzzer harness, not a pytest module: assertions are the crash oracle, so the
# pytest-style rules do not apply.
# ruff: noqa: PT017, PT018

from __future__ import annotations

import pickle
from types import ModuleType
from typing import Any

from _common import main

pp: Any = None

# Valid sizes around the limits, then out-of-range ones (a ValueError by the stub).
MAX_SIZES = [16, 17, 28, 52, 107, 108, 232, 4096, 65551, 4096, 15, 0, 65552, 4096, 1000, 300]


def options(sel: int) -> dict[str, Any]:
    allow_v1 = sel & 1 == 0 or sel & 2 == 0
    allow_v2 = sel & 1 == 1 or sel & 2 == 0
    return {
        "allow_v1": allow_v1,
        "allow_v2": allow_v2,
        "verify_checksum": sel & 4 == 0,
        "haproxy_limits": sel & 8 != 0,
        "max_size": MAX_SIZES[sel >> 4],
    }


def touch(h: Any) -> None:
    """Every accessor, as a user would read them."""
    for name in (
        "version", "command", "family", "protocol", "source", "destination", "length",
        "tlvs", "alpn", "authority", "crc32c", "unique_id", "netns", "aws_vpce_id",
        "azure_link_id", "gcp_psc_connection_id",
    ):  # fmt: skip
        getattr(h, name)
    for t in h.tlvs:
        kind, value = t
        assert (kind, value) == (t.type, t.value) and 0 <= kind <= 255
    ssl = h.ssl
    if ssl is not None:
        for name in (
            "client", "verify", "client_ssl", "client_cert_conn", "client_cert_sess",
            "client_cert_verified", "version", "cn", "cipher", "sig_alg", "key_alg", "group",
            "sig_scheme", "client_cert", "tlvs",
        ):  # fmt: skip
            getattr(ssl, name)
    repr(h)


def test_one(data: bytes) -> None:
    opts = options(data[-1] if data else 0)
    valid = 16 <= opts["max_size"] <= 65551
    try:
        h = pp.parse(data, **opts)
    except pp.ProxyProtocolError as e:
        assert valid, "an invalid max_size must be refused first"
        assert isinstance(e, pp.IncompleteHeaderError | pp.InvalidHeaderError), type(e)
        assert isinstance(e.kind, str) and e.kind
        # An invalid header names one of its bytes; an incomplete one may name the end.
        end = len(data) + isinstance(e, pp.IncompleteHeaderError)
        assert e.offset == -1 or 0 <= e.offset < end, (e.kind, e.offset)
        for other in (bytearray(data), memoryview(data)):
            try:
                pp.parse(other, **opts)
            except pp.ProxyProtocolError as e2:
                assert (type(e2), e2.kind, e2.offset) == (type(e), e.kind, e.offset)
            else:
                raise AssertionError("bytes and buffer disagree")
    except ValueError as e:
        if valid:
            raise
        assert "max_size" in str(e)
    else:
        assert valid
        raw = h.to_bytes()
        assert raw == data[: h.length] == bytes(h)
        again = pp.parse(raw, **opts)
        assert again == h and hash(again) == hash(h)
        assert pp.parse(bytearray(data), **opts) == h == pp.parse(memoryview(data), **opts)
        try:
            assert pickle.loads(pickle.dumps(h)) == h
        except pp.ChecksumError:
            # Unpickling applies parse()'s default checks: a wrong CRC32C that was let
            # through with verify_checksum=False does not unpickle (CHANGELOG).
            assert not opts["verify_checksum"] and h.crc32c is not None
        touch(h)
    d = pp.detect(data)
    assert d in (0, 1, 2, None)
    at = pp.find_signature(data, data[0] if data else 0)
    assert at == -1 or 0 <= at < len(data)
    pp.crc32c(data, pp.crc32c(data[:7]))
    for off, found in pp.scan(data):  # skips what does not parse: raises nothing
        assert data[off : off + found.length] == found.to_bytes()


def setup(mod: ModuleType) -> None:
    global pp
    pp = mod


if __name__ == "__main__":
    main(test_one, setup)
