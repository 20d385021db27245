"""Atheris harness `py_build`: ``build_v1``, ``build_v2``, ``Header.v1/v2/local`` with fuzzed
arguments.

Invariant: with arguments of the types the stub (_core.pyi) declares, only ``BuildError``
escapes, and what is built parses back (max_size 65551) to the same header: same bytes,
``Header.v2(...) == parse(build_v2(...))``, addresses as given (canonical text), the TLVs
in the documented order (CRC32C, ALPN, AUTHORITY, UNIQUE_ID, NETNS, AWS, then ``tlvs``).
Wrong-typed arguments (an ``int`` where bytes are expected, a non-iterable ``tlvs``) may
raise ``TypeError``: that is how every Python API reports a call its signature forbids (a
type checker flags those calls), so it is accepted only in the harness's wrong-type mode.
Known and reported, tolerated here so the run goes on: a ``str`` argument holding a lone
surrogate (``authority``, ``netns``, ``aws_vpce_id``, a ``str`` UNIX path) raises
``UnicodeEncodeError`` (a ValueError, but not a BuildError); set PROXYPROTO_FUZZ_STRICT=1 to
fail on it. fuzz/corpus/py_build/fuzz-host-str-surrogate-unicode-encode-error is the input
that first showed it, through a host string (a host string raises BuildError).
"""

# A libFuzzer harness, not a pytest module: assertions are the crash oracle, so the
# pytest-style rules do not apply.
# ruff: noqa: PT017, PT018

from __future__ import annotations

import ipaddress
import os
from types import ModuleType
from typing import Any

from _common import atheris, main

pp: Any = None
# PROXYPROTO_FUZZ_STRICT=1: tolerate no known issue (to check whether one is fixed).
STRICT = os.environ.get("PROXYPROTO_FUZZ_STRICT") == "1"

HOSTS_V4 = ["0.0.0.0", "127.0.0.1", "255.255.255.255", "10.0.0.1"]
HOSTS_V6 = ["::", "::1", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1%eth0", "1:2:3:4:5:6:7:8"]


def has_surrogate(*values: Any) -> bool:
    """A str (or a tuple's host str) holding a surrogate code point."""
    for v in values:
        if isinstance(v, tuple) and v:
            v = v[0]
        if isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v):
            return True
    return False


def text(fdp: Any, n: int) -> str:
    return str(fdp.ConsumeUnicode(n))


def port(fdp: Any) -> int:
    if fdp.ConsumeProbability() < 0.9:
        return int(fdp.ConsumeIntInRange(0, 65535))
    return int(fdp.ConsumeIntInRange(-(2**70), 2**70))


def address(fdp: Any, kind: int) -> Any:
    if kind == 0:
        return None
    if kind == 1:
        return (fdp.PickValueInList(HOSTS_V4), port(fdp))
    if kind == 2:
        host = fdp.PickValueInList(HOSTS_V6)
        if fdp.ConsumeBool():
            return (host, port(fdp), fdp.ConsumeIntInRange(0, 9), fdp.ConsumeIntInRange(0, 9))
        return (host, port(fdp))
    if kind == 3:
        return (text(fdp, 40), port(fdp))
    if kind == 4:
        return text(fdp, 120)
    return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 120))


def expect_text(host: str) -> str:
    """Canonical text (SPEC D8): RFC 5952, IPv4-mapped dotted; a zone id is dropped."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def check_address(got: Any, given: Any) -> None:
    if isinstance(given, tuple):
        assert got == (expect_text(given[0]), given[1]), (got, given)


def check_tlvs(parsed: Any, kwargs: dict[str, Any]) -> None:
    """The documented order: CRC32C, ALPN, AUTHORITY, UNIQUE_ID, NETNS, AWS, then tlvs."""
    want: list[tuple[int, bytes]] = []
    if kwargs.get("alpn") is not None:
        want.append((0x01, bytes(kwargs["alpn"])))
    if kwargs.get("authority") is not None:
        want.append((0x02, kwargs["authority"].encode()))
    if kwargs.get("unique_id") is not None:
        want.append((0x05, bytes(kwargs["unique_id"])))
    if kwargs.get("netns") is not None:
        want.append((0x30, kwargs["netns"].encode()))
    if kwargs.get("aws_vpce_id") is not None:
        want.append((0xEA, b"\x01" + kwargs["aws_vpce_id"].encode()))
    want += [(int(t[0]), bytes(t[1])) for t in kwargs.get("tlvs", ())]
    # A CRC32C TLV given in tlvs keeps its place and is recomputed; crc32c=True then adds
    # no second one (CHANGELOG).
    crc_in_tlvs = any(t == 0x03 for t, _ in want)
    crc = bool(kwargs.get("crc32c")) and not crc_in_tlvs
    block = parsed.length - 16 - sum(3 + len(v) for _, v in want) - (7 if crc else 0)
    if parsed.source is None and block > 0:
        # LOCAL/UNSPEC with an address block: its TLVs may be read from byte 16 (D3, the
        # known ambiguity reported with the roundtrip target); nothing more to compare.
        return
    got = [(t.type, t.value) for t in parsed.tlvs]
    if crc:
        assert got[0][0] == 0x03 and parsed.crc32c is not None, got
        got = got[1:]
    if crc_in_tlvs:
        assert parsed.crc32c is not None, got
        got = [(t, b"" if t == 0x03 else v) for t, v in got]
        want = [(t, b"" if t == 0x03 else v) for t, v in want]
    assert got == want, (got, want)


def test_one(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    wrong_types = fdp.ConsumeProbability() < 0.05
    src_kind = fdp.ConsumeIntInRange(0, 5)
    dst_kind = src_kind if fdp.ConsumeProbability() < 0.8 else fdp.ConsumeIntInRange(0, 5)
    src, dst = address(fdp, src_kind), address(fdp, dst_kind)
    which = fdp.ConsumeIntInRange(0, 4)
    as_iterator = False
    kwargs: dict[str, Any] = {}
    strings: list[Any] = [src, dst]
    if which in (1, 3):
        cmd = fdp.ConsumeIntInRange(0, 4)
        if cmd < 2:
            kwargs["command"] = pp.Command(cmd)
        elif cmd == 2:
            kwargs["command"] = fdp.ConsumeIntInRange(0, 255)
        kwargs["protocol"] = pp.Protocol(fdp.ConsumeIntInRange(0, 2))
    if which in (1, 3, 4):
        kwargs["crc32c"] = fdp.ConsumeBool()
        tlvs: list[Any] = []
        for _ in range(fdp.ConsumeIntInRange(0, 4)):
            kind = fdp.ConsumeIntInRange(-2, 258)
            size = fdp.ConsumeIntInRange(0, 300) if fdp.ConsumeProbability() < 0.97 else 70000
            value = fdp.ConsumeBytes(size) if size < 1000 else bytes(size)
            form = fdp.ConsumeIntInRange(0, 3)
            if form == 0 and 0 <= kind <= 255:
                tlvs.append(pp.Tlv(kind, value))
            elif form == 1:
                tlvs.append((kind, bytearray(value)))
            elif form == 2:
                tlvs.append([kind, memoryview(value)])
            else:
                tlvs.append((kind, value))
        kwargs["tlvs"] = tlvs
        as_iterator = fdp.ConsumeBool()
    if which in (1, 3):
        for name in ("alpn", "authority", "unique_id", "netns", "aws_vpce_id"):
            if fdp.ConsumeProbability() < 0.3:
                if name in ("alpn", "unique_id"):
                    kwargs[name] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 140))
                else:
                    kwargs[name] = text(fdp, 60)
                    strings.append(kwargs[name])
    if wrong_types:
        bad = [5, 1.5, object(), ["x"], {"a": 1}]
        name = fdp.PickValueInList(["alpn", "authority", "unique_id", "tlvs", "netns", "crc32c"])
        kwargs[name] = fdp.PickValueInList(bad)
    try:
        if which == 0:
            built = pp.build_v1(src, dst)
            header = pp.Header.v1(src, dst)
        elif which == 1:
            built = pp.build_v2(src, dst, **kwargs)
            header = pp.Header.v2(src, dst, **kwargs)
        elif which == 2:
            built = pp.build_v1(src, dst)
            header = pp.parse(built)
        elif which == 3:
            # Any iterable will do for tlvs: a fresh iterator for each call.
            fresh = (lambda: iter(kwargs["tlvs"])) if as_iterator else (lambda: kwargs["tlvs"])
            built = pp.build_v2(src, dst, **{**kwargs, "tlvs": fresh()})
            header = pp.Header.v2(src, dst, **{**kwargs, "tlvs": fresh()})
        else:
            kwargs.pop("tlvs", None)
            header = pp.Header.local(**kwargs)
            built = header.to_bytes()
    except pp.BuildError as e:
        assert isinstance(e.kind, str) and e.kind
        return
    except TypeError:
        if wrong_types:
            return
        raise
    except UnicodeEncodeError:
        if has_surrogate(*strings) and not STRICT:
            return  # known, reported: should be a BuildError
        raise
    parsed = pp.parse(built, max_size=65551)
    assert parsed.to_bytes() == built == header.to_bytes()
    assert parsed == header, (parsed, header)
    if parsed.source is not None:
        check_address(parsed.source, src)
        check_address(parsed.destination, dst)
    if which in (1, 3) and not wrong_types:
        check_tlvs(parsed, kwargs)


def setup(mod: ModuleType) -> None:
    global pp
    pp = mod


if __name__ == "__main__":
    main(test_one, setup)
