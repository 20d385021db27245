"""Atheris harness `py_spp`: Cloudflare's Simple Proxy Protocol and per-datagram rules.

Input: one datagram; its last byte picks the server options (SPP or PROXY headers, trusted
sender or not, ``untrusted`` reject or direct). Invariants: ``parse_spp`` fails only with
``InvalidHeaderError`` (kind ``spp_magic``, offset 0 or 1, exactly when the magic differs)
or ``IncompleteHeaderError`` (under 38 bytes); a parsed header writes back the input's first
38 bytes, rebuilds from its addresses, pickles and hashes equal. ``detect(spp=True)`` says
``"spp"`` exactly for the magic; ``scan(spp=True)`` yields only headers found at their
offsets. ``sync.parse_datagram`` lets only ProxyProtocolError subclasses escape, and what it
returns is the input's tail after the header it reports.
"""

# A libFuzzer harness, not a pytest module: assertions are the crash oracle.
# ruff: noqa: PT017, PT018

from __future__ import annotations

import pickle
from types import ModuleType
from typing import Any

from _common import main

pp: Any = None
OPTIONS: list[Any] = []
SENDER = ("127.0.0.1", 5353)


def test_one(data: bytes) -> None:
    magic = data[:2] == pp.SPP_MAGIC
    try:
        h = pp.parse_spp(data)
    except pp.InvalidHeaderError as e:
        assert e.kind == "spp_magic" and e.offset in (0, 1) and not magic, (e.kind, e.offset)
        assert data[: e.offset] == pp.SPP_MAGIC[: e.offset] != data[: e.offset + 1]
    except pp.IncompleteHeaderError as e:
        assert len(data) < pp.SPP_SIZE and e.kind == "incomplete"
        assert data == pp.SPP_MAGIC[: len(data)] or (magic and e.offset == len(data))
    else:
        assert magic and h.length == pp.SPP_SIZE
        assert h.to_bytes() == bytes(h) == data[: pp.SPP_SIZE]
        assert pp.build_spp(h.client, h.proxy) == h.to_bytes()
        again = pp.SppHeader(h.client, h.proxy)
        assert again == h and hash(again) == hash(h)
        assert pickle.loads(pickle.dumps(h)) == h
        repr(h)
    found = pp.detect(data, spp=True)
    assert (found == "spp") == magic, found
    assert found in (0, 1, 2, "spp", None)
    for off, header in pp.scan(data, spp=True):
        assert data[off : off + header.length] == header.to_bytes()
    options = OPTIONS[(data[-1] if data else 0) % len(OPTIONS)]
    try:
        got = pp.sync.parse_datagram(data, SENDER, options)
    except pp.ProxyProtocolError as e:
        assert isinstance(e.kind, str) and e.kind
    else:
        if got.header is None:
            assert got.payload == data and got.client == SENDER
        else:
            assert got.payload == data[got.header.length :]
            assert data[: got.header.length] == got.header.to_bytes()


def setup(mod: ModuleType) -> None:
    global pp
    pp = mod
    from proxyproto_rs.options import ServerOptions

    OPTIONS.extend(
        ServerOptions(spp=spp, trusted=trusted, untrusted=untrusted, allow_v1=v1)
        for spp in (True, False)
        for trusted in (None, ["10.0.0.0/8"])
        for untrusted in ("reject", "direct")
        for v1 in (False, True)
    )


if __name__ == "__main__":
    main(test_one, setup)
