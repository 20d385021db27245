"""Side-by-side benchmark of proxyproto_rs against the Python PROXY protocol peers.

One process, identical inputs, best-of-N timing with autoranging (like ``timeit``), and a
check before timing that every implementation returns the same answer as ours (same source
address, same TLV values, a build that parses back to the same header), so that the ratios
compare equal work. See benchmarks/README.md for what each case means.

    python benchmarks/bench.py            # full run, a few minutes
    python benchmarks/bench.py --quick    # smoke run, all cases, < 20 s
    python benchmarks/bench.py --json     # machine-readable results on stdout
    python benchmarks/bench.py --only "parse v2"   # cases whose name contains the text
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import ipaddress
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import handwritten  # noqa: E402

try:
    import proxyproto_rs as ours
except ImportError as exc:  # the package is not built yet: peers only
    ours = None
    OURS_IMPORT_ERROR = str(exc)
else:
    OURS_IMPORT_ERROR = ""

OURS = "ours"
HAND = "hand-written"
LEAN = "lean hand-written"
# Not a column: the faster of HAND and LEAN in each case, the baseline the targets quote.
PURE = "fastest pure Python"
PP = "proxy-protocol"
TW = "twisted"
CRC_PKG = "crc32c"
GCRC = "google-crc32c"
FIND = "bytes.find"
FLOOR = "floor"
OURS_V1 = "ours, v1 TCP4"

# ------------------------------------------------------------------------------ inputs

PAYLOAD = (b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n" * 2)[
    :100
]
SRC4, DST4 = ("192.0.2.1", 56324), ("198.51.100.2", 443)
SRC6, DST6 = ("2001:db8::1", 56324), ("2001:db8::2", 443)
UID = bytes(range(0x40, 0x50))
VPCE = "vpce-0123456789abcdef0"
SSL_VALUE = b"\x07\x00\x00\x00\x00" + b"\x21\x00\x07TLSv1.3" + b"\x22\x00\x11client.example.io"
V2_SIG = handwritten.V2_SIGNATURE


def _tlv_header() -> bytes:
    """v2 IPv4 with ALPN, AUTHORITY, CRC32C, UNIQUE_ID, SSL (VERSION, CN) and AWS, 137 B.

    TLVs in ascending type order: proxy-protocol recomputes the CRC over its own type-sorted
    re-serialisation, so any other order would make it reject a valid header (PEERS.md).
    """
    tlvs = [
        (0x01, b"h2"),
        (0x02, b"example.com"),
        (0x03, b"\x00\x00\x00\x00"),
        (0x05, UID),
        (0x20, SSL_VALUE),
        (0xEA, b"\x01" + VPCE.encode()),
    ]
    raw = handwritten.build_v2(SRC4, DST4, tlvs=tlvs)
    at = 16 + 12 + 5 + 14 + 3  # value of the CRC32C TLV
    assert raw[at - 3 : at] == b"\x03\x00\x04"
    return raw[:at] + handwritten.crc32c(raw).to_bytes(4, "big") + raw[at + 4 :]


HEADERS = {
    "v1 TCP4": b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
    "v1 TCP6": b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n",
    "v1 UNKNOWN": b"PROXY UNKNOWN\r\n",
    "v2 IPv4": handwritten.build_v2(SRC4, DST4),
    "v2 IPv6": handwritten.build_v2(SRC6, DST6),
    "v2 LOCAL": handwritten.build_v2(),
    "v2 IPv4 + 6 TLVs": _tlv_header(),
}
TLV_CASE = "v2 IPv4 + 6 TLVs"

# ------------------------------------------------------------------------------ the floor


def build_floor() -> Any:
    """Compile benchmarks/_floor.c (see there) into a temp folder and import it; None if no cc."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    src = HERE / "_floor.c"
    if cc is None or not src.exists():
        return None
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    key = hashlib.sha256(src.read_bytes() + sys.version.encode()).hexdigest()[:16]
    out_dir = Path(tempfile.gettempdir()) / f"proxyproto_rs_bench_floor_{key}"
    target = out_dir / f"_pp_floor{suffix}"
    if not target.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / f"_pp_floor.{os.getpid()}.tmp"
        cmd = [cc, "-O2", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"]]
        cmd += [str(src), "-o", str(tmp)]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
        os.replace(tmp, target)
    spec = importlib.util.spec_from_file_location("_pp_floor", target)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError:
        return None
    return module


# ------------------------------------------------------------------------------ cases


@dataclass
class Impl:
    """One implementation of one case: statements timed as-is; they leave the answer in r."""

    stmt: str
    ns: dict[str, Any]
    norm: Callable[[Any], Any] | None = None  # answer -> comparable form
    note: str = ""


@dataclass
class Case:
    group: str
    name: str
    impls: dict[str, Impl | str]  # a str is the reason the peer cannot do it ("n/a")
    nbytes: int = 0  # for throughput (GB/s)
    results: dict[str, Any] = field(default_factory=dict)


def _canon(host: str) -> str:
    return str(ipaddress.ip_address(host))


def _norm_pair(pair: Any) -> Any:
    """(host, port) with the host canonicalised; None stays None."""
    if pair is None:
        return None
    return (_canon(str(pair[0])), int(pair[1]))


def _norm_tlv_read(r: Any) -> Any:
    return (_norm_pair(r[0]), *r[1:])


def _norm_twisted(addr: Any) -> Any:
    return None if addr is None else (_canon(addr.host), addr.port)


def _reader() -> Callable[[bytes], Any]:
    """The parser used to check what builders emitted: ours, or the hand-written one."""
    return ours.parse if ours is not None else handwritten.parse


def _norm_built(raw: Any) -> Any:
    """A built header as (version, source, destination, TLVs sorted, CRC32C excluded)."""
    h = _reader()(bytes(raw))
    assert h.length == len(raw), "trailing bytes after the built header"
    tlvs = sorted((int(t[0]), bytes(t[1])) for t in h.tlvs if t[0] != 0x03)
    return (h.version, _norm_pair(h.source), _norm_pair(h.destination), tlvs)


class _Missing:
    """Stand-in for a peer class when the peer is not installed (its cells become n/a)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


def _peer_imports() -> dict[str, Any]:
    names: dict[str, Any] = {}
    try:
        from proxyprotocol.result import (
            ProxyResultIPv4,
            ProxyResultIPv6,
            ProxyResultLocal,
            ProxyResultUnknown,
        )
        from proxyprotocol.tlv import ProxyProtocolSSLTLV, ProxyProtocolTLV
        from proxyprotocol.v1 import ProxyProtocolV1
        from proxyprotocol.v2 import ProxyProtocolV2
    except ImportError:
        names[PP] = None
    else:
        names.update(
            ProxyResultIPv4=ProxyResultIPv4,
            ProxyResultIPv6=ProxyResultIPv6,
            ProxyResultLocal=ProxyResultLocal,
            ProxyResultUnknown=ProxyResultUnknown,
            ProxyProtocolSSLTLV=ProxyProtocolSSLTLV,
            ProxyProtocolTLV=ProxyProtocolTLV,
            ProxyProtocolV1=ProxyProtocolV1,
            ProxyProtocolV2=ProxyProtocolV2,
        )
    try:
        from twisted.protocols.haproxy._v1parser import V1Parser
        from twisted.protocols.haproxy._v2parser import V2Parser
    except ImportError:
        names[TW] = None
    else:
        names.update(V1Parser=V1Parser, V2Parser=V2Parser)
    for mod, key in (("crc32c", CRC_PKG), ("google_crc32c", GCRC)):
        try:
            names[key] = __import__(mod)
        except ImportError:
            names[key] = None
    return names


def make_cases(floor: Any) -> list[Case]:
    peers = _peer_imports()
    missing = {k for k in (PP, TW, CRC_PKG, GCRC) if peers.get(k, True) is None}
    ProxyResultIPv4 = peers.get("ProxyResultIPv4", _Missing)
    ProxyResultIPv6 = peers.get("ProxyResultIPv6", _Missing)
    ProxyResultLocal = peers.get("ProxyResultLocal", _Missing)
    ProxyResultUnknown = peers.get("ProxyResultUnknown", _Missing)
    ProxyProtocolSSLTLV = peers.get("ProxyProtocolSSLTLV", _Missing)
    ProxyProtocolTLV = peers.get("ProxyProtocolTLV", _Missing)
    ProxyProtocolV1 = peers.get("ProxyProtocolV1", _Missing)
    ProxyProtocolV2 = peers.get("ProxyProtocolV2", _Missing)
    V1Parser = peers.get("V1Parser", _Missing)
    V2Parser = peers.get("V2Parser", _Missing)
    crc32c_pkg = peers[CRC_PKG] or _Missing
    google_crc32c = peers[GCRC] or _Missing

    cases: list[Case] = []
    no_pp_feed = "no sans-IO feed API (asyncio reader only)"
    no_tw_tlv = "ignores TLVs"
    no_tw_build = "no builder"

    # --- parse header + 100 B payload, read the source --------------------------------
    for name, hdr in HEADERS.items():
        d = hdr + PAYLOAD
        is_v1 = hdr.startswith(b"PROXY")
        base = {"d": d, "CRLF": b"\r\n"}
        impls: dict[str, Impl | str] = {}
        if name == TLV_CASE:
            read = (
                "s = h.ssl\n"
                "r = (h.source, h.alpn, h.authority, h.crc32c, h.unique_id, s.version, s.cn,"
                " h.aws_vpce_id)"
            )
            if ours is not None:
                impls[OURS] = Impl(
                    "h = parse(d)\n" + read, {**base, "parse": ours.parse}, _norm_tlv_read
                )
            impls[HAND] = Impl(
                "h = parse(d)\n" + read, {**base, "parse": handwritten.parse}, _norm_tlv_read
            )
            impls[LEAN] = Impl(
                "src, dst, n, t = parse(d)\n"
                "s = ssl(t[0x20])\n"
                "r = (src, t.get(1), t[2].decode(), int.from_bytes(t[3], 'big'), t.get(5),"
                " s[0x21].decode('ascii'), s[0x22].decode(), t[0xEA][1:].decode('ascii'))",
                {**base, "parse": handwritten.lean_parse, "ssl": handwritten.lean_ssl},
                _norm_tlv_read,
            )
            impls[PP] = Impl(
                "x = pp.unpack(d[: 16 + int.from_bytes(d[14:16], 'big')])\n"
                "t = x.tlv\n"
                "s = t.ssl\n"
                "r = (x.source, t.alpn, t.authority, t.crc32c, t.unique_id, s.version, s.cn,"
                " t[0xEA][1:].decode('ascii'))",
                {**base, "pp": ProxyProtocolV2()},
                _norm_tlv_read,
                "AWS TLV read from its raw mapping",
            )
            impls[TW] = no_tw_tlv
        else:
            if ours is not None:
                impls[OURS] = Impl("r = parse(d).source", {**base, "parse": ours.parse}, _norm_pair)
            impls[HAND] = Impl(
                "r = parse(d).source", {**base, "parse": handwritten.parse}, _norm_pair
            )
            impls[LEAN] = Impl(
                "r = parse(d)[0]", {**base, "parse": handwritten.lean_parse}, _norm_pair
            )
            if is_v1:
                impls[PP] = Impl(
                    "r = pp.unpack(d[: d.index(CRLF) + 2]).source",
                    {**base, "pp": ProxyProtocolV1()},
                    _norm_pair,
                )
                tw_parse = "V.parse(d[: d.index(CRLF)]).source"
                tw_ns = {**base, "V": V1Parser}
            else:
                impls[PP] = Impl(
                    "r = pp.unpack(d[: 16 + int.from_bytes(d[14:16], 'big')]).source",
                    {**base, "pp": ProxyProtocolV2()},
                    _norm_pair,
                )
                tw_parse = "V.parse(d[: 16 + int.from_bytes(d[14:16], 'big')]).source"
                tw_ns = {**base, "V": V2Parser}
            if name == "v1 UNKNOWN":
                impls[TW] = "n/a: rejects the short PROXY UNKNOWN line HAProxy sends"
            elif name == "v2 LOCAL":
                impls[TW] = Impl("r = " + tw_parse, tw_ns, _norm_twisted)
            else:
                impls[TW] = Impl(
                    f"a = {tw_parse}\nr = (a.host, a.port)",
                    tw_ns,
                    _norm_pair,
                    "non-canonical IPv6 text" if name == "v2 IPv6" else "",
                )
        cases.append(Case("parse", f"parse {name}", impls))

    # --- build each header from (str, int) addresses ------------------------------------
    pp1, pp2 = ProxyProtocolV1(), ProxyProtocolV2()
    ip4, ip6 = ipaddress.IPv4Address, ipaddress.IPv6Address
    stream = socket.SOCK_STREAM
    build_specs: dict[str, tuple[str, str, str]] = {
        # name: (our/hand-written call, proxy-protocol call, note for proxy-protocol)
        "v1 TCP4": ("b1(S4, D4)", "pp1.pack(R4((ip4(S4[0]), S4[1]), (ip4(D4[0]), D4[1])))", ""),
        "v1 TCP6": ("b1(S6, D6)", "pp1.pack(R6((ip6(S6[0]), S6[1]), (ip6(D6[0]), D6[1])))", ""),
        "v1 UNKNOWN": ("b1(None, None)", "pp1.pack(RU())", "emits PROXY UNKNOWN + 4 spaces"),
        "v2 IPv4": (
            "b2(S4, D4)",
            "pp2.pack(R4((ip4(S4[0]), S4[1]), (ip4(D4[0]), D4[1]), protocol=STREAM))",
            "always adds a CRC32C TLV",
        ),
        "v2 IPv6": (
            "b2(S6, D6)",
            "pp2.pack(R6((ip6(S6[0]), S6[1]), (ip6(D6[0]), D6[1]), protocol=STREAM))",
            "always adds a CRC32C TLV",
        ),
        "v2 LOCAL": ("b2()", "pp2.pack(RL())", "always adds a CRC32C TLV"),
        TLV_CASE: (
            "b2(S4, D4, {crc}=True, alpn=b'h2', authority='example.com', unique_id=UID,"
            " aws_vpce_id=VPCE, tlvs=[(0x20, SSL)])",
            "pp2.pack(R4((ip4(S4[0]), S4[1]), (ip4(D4[0]), D4[1]), protocol=STREAM,"
            " tlv=TLV(init={0xEA: b'\\x01' + VPCE.encode()}, alpn=b'h2',"
            " authority='example.com', unique_id=UID, ssl=SSLTLV(has_ssl=True,"
            " has_cert_conn=True, has_cert_sess=True, verified=True, version='TLSv1.3',"
            " cn='client.example.io'))))",
            "TLVs re-sorted by type",
        ),
    }
    bns = {
        "S4": SRC4,
        "D4": DST4,
        "S6": SRC6,
        "D6": DST6,
        "UID": UID,
        "VPCE": VPCE,
        "SSL": SSL_VALUE,
        "pp1": pp1,
        "pp2": pp2,
        "R4": ProxyResultIPv4,
        "R6": ProxyResultIPv6,
        "RU": ProxyResultUnknown,
        "RL": ProxyResultLocal,
        "TLV": ProxyProtocolTLV,
        "SSLTLV": ProxyProtocolSSLTLV,
        "ip4": ip4,
        "ip6": ip6,
        "STREAM": stream,
    }
    for name, (call, pp_call, pp_note) in build_specs.items():
        impls = {}
        if ours is not None:
            impls[OURS] = Impl(
                "r = " + call.format(crc="crc32c"),
                {**bns, "b1": ours.build_v1, "b2": ours.build_v2},
                _norm_built,
            )
        impls[HAND] = Impl(
            "r = " + call.format(crc="crc"),
            {**bns, "b1": handwritten.build_v1, "b2": handwritten.build_v2},
            _norm_built,
        )
        impls[PP] = Impl("r = " + pp_call, bns, _norm_built, pp_note)
        impls[TW] = no_tw_build
        cases.append(Case("build", f"build {name}", impls))

    # --- streaming: Parser.feed, whole and one byte at a time ----------------------------
    for name in ("v1 TCP4", "v2 IPv4", TLV_CASE):
        hdr = HEADERS[name]
        whole = hdr + PAYLOAD
        chunks = [hdr[i : i + 1] for i in range(len(hdr))]
        is_v1 = hdr.startswith(b"PROXY")
        for how, data in (("whole", whole), ("1 byte at a time", chunks)):
            fns = {"d": data}
            body = "h = p.feed(d)\n" if how == "whole" else "for c in d:\n    h = p.feed(c)\n"
            impls = {}
            if ours is not None:
                impls[OURS] = Impl(
                    "p = P()\n" + body + "r = h.source", {**fns, "P": ours.Parser}, _norm_pair
                )
            impls[HAND] = Impl(
                "p = P()\n" + body + "r = h.source",
                {**fns, "P": handwritten.Parser},
                _norm_pair,
            )
            impls[PP] = no_pp_feed
            tw: Impl | str
            if not is_v1 and how != "whole":
                tw = "v2 feed raises on a first chunk < 16 B (twisted#8287)"
            else:
                tw = Impl(
                    "p = P()\n" + body.replace("h = p.feed", "h, rest = p.feed") + "r = h.source",
                    {**fns, "P": V1Parser if is_v1 else V2Parser},
                    _norm_twisted,
                    "TLVs skipped" if name == TLV_CASE else "",
                )
            impls[TW] = tw
            cases.append(Case("feed", f"Parser.feed {name}, {how}", impls))

    # --- CRC32C ---------------------------------------------------------------------------
    rng = random.Random(20261126)
    for size, label in ((64, "64 B"), (1024, "1 KiB"), (64 << 10, "64 KiB"), (16 << 20, "16 MiB")):
        buf = rng.randbytes(size)
        impls = {}
        if ours is not None:
            impls[OURS] = Impl("r = f(b)", {"f": ours.crc32c, "b": buf})
        impls[CRC_PKG] = Impl("r = f(b)", {"f": getattr(crc32c_pkg, "crc32c", None), "b": buf})
        impls[GCRC] = Impl("r = f(b)", {"f": getattr(google_crc32c, "value", None), "b": buf})
        cases.append(Case("crc32c", f"crc32c {label}", impls, nbytes=size))

    # --- signature scan ---------------------------------------------------------------------
    tail = HEADERS["v2 IPv4"]
    for size, label in ((1 << 20, "1 MiB"), (64 << 20, "64 MiB")):
        body = bytearray(rng.randbytes(size - len(tail)))
        for needle in (V2_SIG[:4], b"PROXY"):  # keep the random part free of false starts
            at = body.find(needle)
            while at >= 0:
                body[at] ^= 0xFF
                at = body.find(needle, at)
        buf = bytes(body) + tail
        impls = {}
        if ours is not None:
            impls[OURS] = Impl("r = f(b)", {"f": ours.find_signature, "b": buf})
        impls[FIND] = Impl("r = b.find(S)", {"b": buf, "S": V2_SIG})
        cases.append(Case("find", f"find v2 signature at end of {label}", impls, nbytes=size))

    # --- the floor ------------------------------------------------------------------------
    import codecs

    d = HEADERS["v2 IPv4"] + PAYLOAD
    impls = {}
    if ours is not None:
        impls[OURS] = Impl("r = parse(d).source", {"parse": ours.parse, "d": d})
        impls[OURS_V1] = Impl(
            "r = parse(d).source", {"parse": ours.parse, "d": HEADERS["v1 TCP4"] + PAYLOAD}
        )
    if floor is not None:
        impls["C call + new obj + (str, int)"] = Impl("r = f(d).source", {"f": floor.parse, "d": d})
        impls["same + buffer protocol"] = Impl("r = f(d).source", {"f": floor.parse_buf, "d": d})
    else:
        impls["C call + new obj + (str, int)"] = "no C compiler: floor not built"
    impls["codecs.ascii_decode (str, int)"] = Impl(
        "r = f(h)", {"f": codecs.ascii_decode, "h": b"192.0.2.1"}, lambda r: r
    )
    impls["empty statement"] = Impl("pass", {}, lambda r: r)
    cases.append(Case("floor", "floor vs parse v2 IPv4 + .source", impls))
    for c in cases:
        for k in missing & c.impls.keys():
            if not isinstance(c.impls[k], str):
                c.impls[k] = "n/a: not installed (pip install -r benchmarks/requirements.txt)"
    return cases


# ------------------------------------------------------------------------------ checking


def run_once(impl: Impl) -> Any:
    ns = dict(impl.ns)
    exec(impl.stmt, ns)
    return ns.get("r")


def verify(case: Case) -> dict[str, str]:
    """Run every implementation once; compare with the reference answer. Returns problems."""
    problems: dict[str, str] = {}
    answers: dict[str, Any] = {}
    for impl_name, impl in case.impls.items():
        if isinstance(impl, str):
            continue
        try:
            r = run_once(impl)
            answers[impl_name] = impl.norm(r) if impl.norm is not None else r
        except Exception as exc:
            problems[impl_name] = f"raised {type(exc).__name__}: {exc}"
    if case.group == "floor":
        return problems
    ref_name = OURS if OURS in answers else (HAND if HAND in answers else None)
    if ref_name is None:
        ref_name = next(iter(answers), None)
    if ref_name is None:
        return problems
    ref = answers[ref_name]
    for impl_name, ans in answers.items():
        if impl_name != ref_name and ans != ref:
            problems[impl_name] = f"answer {ans!r} != {ref_name} {ref!r}"
    return problems


# ------------------------------------------------------------------------------ timing


def autorange(timer: timeit.Timer, min_time: float) -> int:
    """Loop count for which one run of `timer` lasts at least `min_time` seconds."""
    number = 1
    while True:
        t = timer.timeit(number)
        if t >= min_time:
            return number
        # Aim a little past min_time; never grow more than 10x at once.
        number = max(number + 1, int(number * min(10.0, 1.2 * min_time / max(t, 1e-9))))


def time_case(impls: dict[str, Impl], min_time: float, repeat: int) -> dict[str, float]:
    """Best ns/op of each implementation, the runs interleaved round-robin.

    Interleaving (ours, peer 1, peer 2, ours, ...) means that a burst of load from other
    processes hits every implementation of the case alike, so the ratios stay honest on a
    shared machine even when the absolute numbers move.
    """
    timers = {k: timeit.Timer(v.stmt, globals=dict(v.ns)) for k, v in impls.items()}
    numbers = {k: autorange(t, min_time) for k, t in timers.items()}
    best = {k: float("inf") for k in timers}
    for _ in range(repeat):
        for k, t in timers.items():
            best[k] = min(best[k], t.timeit(numbers[k]) / numbers[k])
    return {k: v * 1e9 for k, v in best.items()}


# ------------------------------------------------------------------------------ targets


@dataclass
class Target:
    text: str
    case: str
    num: str  # implementation whose time is the numerator
    den: str  # implementation whose time is the denominator
    op: str  # ">=" or "<="
    bound: float


FLOOR_CASE = "floor vs parse v2 IPv4 + .source"
FLOOR_C = "C call + new obj + (str, int)"

TARGETS = [
    Target("parse v2 IPv4: >= 8x pure Python", "parse v2 IPv4", PURE, OURS, ">=", 8),
    Target("parse v2 IPv4: >= 30x proxy-protocol", "parse v2 IPv4", PP, OURS, ">=", 30),
    Target("parse v2 IPv4 .source: <= 1.6x the floor (13)", FLOOR_CASE, OURS, FLOOR_C, "<=", 1.6),
    Target(
        "parse v1 TCP4 .source: <= 1.8x the floor (13)", FLOOR_CASE, OURS_V1, FLOOR_C, "<=", 1.8
    ),
    Target("parse v1 TCP4: >= 10x pure Python", "parse v1 TCP4", PURE, OURS, ">=", 10),
    Target(
        "parse TLV-heavy v2, read every TLV: >= 8x pure Python (13)",
        f"parse {TLV_CASE}",
        PURE,
        OURS,
        ">=",
        8,
    ),
    Target("build v2 IPv4: >= 7x hand-written (13)", "build v2 IPv4", HAND, OURS, ">=", 7),
    Target("crc32c 64 B: <= 0.6x crc32c's time", "crc32c 64 B", OURS, CRC_PKG, "<=", 0.6),
    Target("crc32c 64 KiB: >= 1.5x crc32c's throughput", "crc32c 64 KiB", CRC_PKG, OURS, ">=", 1.5),
    Target(
        "find_signature 64 MiB: >= 3x bytes.find throughput",
        "find v2 signature at end of 64 MiB",
        FIND,
        OURS,
        ">=",
        3,
    ),
]


def _result(case: Case | None, impl: str) -> Any:
    """An implementation's time in a case; PURE is the faster pure-Python parser's."""
    if case is None:
        return None
    if impl != PURE:
        return case.results.get(impl)
    times = [v for k in (HAND, LEAN) if isinstance(v := case.results.get(k), float)]
    return min(times) if times else None


def evaluate(cases: list[Case]) -> list[dict[str, Any]]:
    by_name = {c.name: c for c in cases}
    out = []
    for tg in TARGETS:
        case = by_name.get(tg.case)
        num = _result(case, tg.num)
        den = _result(case, tg.den)
        if not isinstance(num, float) or not isinstance(den, float):
            out.append({"target": tg.text, "value": None, "met": None})
            continue
        value = num / den
        met = value >= tg.bound if tg.op == ">=" else value <= tg.bound
        out.append({"target": tg.text, "value": round(value, 3), "met": met})
    return out


# ------------------------------------------------------------------------------ output


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} us"
    return f"{ns:.0f} ns"


def print_tables(cases: list[Case], targets: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    print(f"# proxyproto_rs benchmark  ({meta['mode']})")
    print(f"machine: {meta['cpu']}, {meta['cores']} cores; Python {meta['python']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    print(
        f"timing: best of {meta['repeat']} runs of a loop autoranged to >= {meta['min_time']} s,"
        " the implementations of a case interleaved run by run; GC off while timing (timeit)"
    )
    if ours is None:
        print(f"ours: NOT IMPORTABLE ({OURS_IMPORT_ERROR}); peers only")
    print("ratio: the peer's time / ours (higher = we are faster); floor: ours / floor")
    groups: dict[str, list[Case]] = {}
    for c in cases:
        groups.setdefault(c.group, []).append(c)
    footnotes: list[str] = []
    for group, gcases in groups.items():
        if group == "floor":
            _print_floor(gcases)
            continue
        cols: list[str] = []
        for c in gcases:
            for k in c.impls:
                if k not in cols:
                    cols.append(k)
        rows: list[list[str]] = []
        for c in gcases:
            cells = [c.name]
            ours_ns = c.results.get(OURS)
            for k in cols:
                v = c.results.get(k, "n/a") if k in c.impls else ""
                if isinstance(v, float):
                    cell = fmt_ns(v)
                    if c.nbytes:
                        cell += f" {c.nbytes / v:5.1f} GB/s"
                    if k != OURS and isinstance(ours_ns, float):
                        cell += f" {v / ours_ns:6.2f}x"
                    impl = c.impls[k]
                    if isinstance(impl, Impl) and impl.note:
                        footnotes.append(f"{c.name} / {k}: {impl.note}")
                        cell += "*"
                else:
                    cell = str(v)
                    if len(cell) > 22:
                        footnotes.append(f"{c.name} / {k}: {cell}")
                        cell = "n/a*" if cell.startswith("n/a") else "ERR*"
                cells.append(cell)
            rows.append(cells)
        widths = [max(len(r[i]) for r in [["case", *cols], *rows]) for i in range(len(cols) + 1)]
        print()
        print(f"## {group}")
        header = "case".ljust(widths[0]) + "".join(
            "  " + k.rjust(w) for k, w in zip(cols, widths[1:], strict=True)
        )
        print(header)
        print("-" * len(header))
        for cells in rows:
            print(
                cells[0].ljust(widths[0])
                + "".join("  " + x.rjust(w) for x, w in zip(cells[1:], widths[1:], strict=True))
            )
    if footnotes:
        print()
        print("notes (*):")
        for f in dict.fromkeys(footnotes):
            print(f"  - {f}")
    print()
    print("## targets (issue 5; (13): issue 13; pure Python: the faster hand-written parser)")
    for t in targets:
        status = {None: "n/a", True: "met", False: "NOT MET"}[t["met"]]
        value = "" if t["value"] is None else f"{t['value']:.2f}"
        print(f"  [{status:^7}] {t['target']:<58} measured {value}")


def _print_floor(gcases: list[Case]) -> None:
    for c in gcases:
        print()
        print(f"## floor ({c.name})")
        ours_ns = c.results.get(OURS)
        for k in c.impls:
            v = c.results.get(k, "n/a")
            if isinstance(v, float):
                cell = fmt_ns(v)
                if k not in (OURS, OURS_V1) and isinstance(ours_ns, float) and v > 0:
                    cell += f"   ours is {ours_ns / v:.2f}x this"
                    ours_v1 = c.results.get(OURS_V1)
                    if isinstance(ours_v1, float):
                        cell += f", ours on v1 TCP4 {ours_v1 / v:.2f}x"
            else:
                cell = str(v)
            print(f"  {k:<34} {cell}")


def machine_meta(args: argparse.Namespace) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for dist in ("proxyproto_rs", "proxy-protocol", "twisted", "crc32c", "google-crc32c"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "missing"
    return {
        "mode": "quick" if args.quick else "full",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "repeat": args.repeat,
        "min_time": args.min_time,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny time budget")
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    ap.add_argument("--only", default="", help="only cases whose name contains this text")
    ap.add_argument("--repeat", type=int, default=None, help="runs per case (best is kept)")
    ap.add_argument("--min-time", type=float, default=None, help="seconds per run (autorange)")
    ap.add_argument(
        "--strict", action="store_true", help="exit 1 when any implementation disagrees"
    )
    args = ap.parse_args(argv)
    if args.repeat is None:
        args.repeat = 2 if args.quick else 15
    if args.min_time is None:
        args.min_time = 0.002 if args.quick else 0.05
    started = time.perf_counter()
    floor = build_floor()
    cases = [c for c in make_cases(floor) if args.only.lower() in c.name.lower()]
    problems_all: dict[str, dict[str, str]] = {}
    for c in cases:
        problems = verify(c)
        if problems:
            problems_all[c.name] = problems
        timed: dict[str, Impl] = {}
        for impl_name, impl in c.impls.items():
            if isinstance(impl, str):
                c.results[impl_name] = impl if impl.startswith("n/a") else f"n/a: {impl}"
            elif impl_name in problems:
                c.results[impl_name] = "MISMATCH: " + problems[impl_name]
            else:
                timed[impl_name] = impl
                c.results[impl_name] = 0.0  # keeps the column order
        c.results.update(time_case(timed, args.min_time, args.repeat))
    targets = evaluate(cases)
    meta = machine_meta(args)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        out = {
            "meta": meta,
            "cases": [
                {
                    "group": c.group,
                    "case": c.name,
                    "bytes": c.nbytes or None,
                    "results": c.results,
                }
                for c in cases
            ],
            "targets": targets,
            "mismatches": problems_all,
        }
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        print_tables(cases, targets, meta)
        if problems_all:
            print()
            print("MISMATCHES (excluded from timing):")
            for case_name, problems in problems_all.items():
                for impl_name, why in problems.items():
                    print(f"  - {case_name} / {impl_name}: {why}")
        print(f"\n(total {meta['seconds']} s)")
    return 1 if (args.strict and problems_all) else 0


if __name__ == "__main__":
    sys.exit(main())
