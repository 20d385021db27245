"""Memory held by proxyproto_rs objects, measured with tracemalloc (and with malloc's own books).

Targets (issue 5): an idle ``Parser`` costs at most 512 bytes; a parsed ``Header`` at most
2x its wire size plus 128 bytes until a field is read.

Each figure is the growth of traced memory divided by the number of objects created
(N of them, kept alive in a preallocated list), after ``gc.collect()``. Inputs are fresh
``bytes`` objects made inside the measured region and dropped by the caller: whatever the
Header keeps alive (a copy of the header, or the caller's whole buffer with its payload) is
counted; what it does not keep is not.

tracemalloc sees only Python's allocators (PyMem/PyObject). Memory that the Rust core takes
from the system allocator (a ``Vec``, a ``Box``) is invisible to it, so the same measurement
is repeated in a child process run with ``PYTHONMALLOC=malloc`` and read from glibc's
``mallinfo2()`` (every allocation, Python's and Rust's, plus malloc's per-chunk overhead).

    python benchmarks/memory.py           # table
    python benchmarks/memory.py --json    # machine-readable
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import handwritten  # noqa: E402

try:
    import proxyproto_rs as ours
except ImportError as exc:
    ours = None
    OURS_IMPORT_ERROR = str(exc)
else:
    OURS_IMPORT_ERROR = ""

# Size of the freelist of `Header` objects (rust/python.rs): see per_object.
FREELIST = 64
PAYLOAD = b"\xaa" * 100
SSL_VALUE = b"\x07\x00\x00\x00\x00" + b"\x21\x00\x07TLSv1.3" + b"\x22\x00\x11client.example.io"
HEADERS = {
    "v1 TCP4": b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
    "v2 IPv4": handwritten.build_v2(("192.0.2.1", 56324), ("198.51.100.2", 443)),
    "v2 IPv6": handwritten.build_v2(("2001:db8::1", 56324), ("2001:db8::2", 443)),
    # The smallest header, so the tightest limit (2 x 16 + 128 = 160 B).
    "v2 LOCAL": handwritten.build_v2(),
    "v2 IPv4 + 6 TLVs": handwritten.build_v2(
        ("192.0.2.1", 56324),
        ("198.51.100.2", 443),
        crc=True,
        alpn=b"h2",
        authority="example.com",
        unique_id=bytes(range(16)),
        aws_vpce_id="vpce-0123456789abcdef0",
        tlvs=[(0x20, SSL_VALUE)],
    ),
}


# ------------------------------------------------------------------------------ meters


class TraceMeter:
    name = "tracemalloc"

    def __enter__(self) -> TraceMeter:
        tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        tracemalloc.stop()

    def now(self) -> int:
        return tracemalloc.get_traced_memory()[0]


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


class MallocMeter:
    """glibc mallinfo2(): bytes in use in malloc's heap plus mmapped chunks."""

    name = "malloc"

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        self._fn = libc.mallinfo2
        self._fn.restype = _MallInfo2

    def __enter__(self) -> MallocMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def now(self) -> int:
        info = self._fn()
        return int(info.uordblks + info.hblkhd)


def per_object(meter: Any, make: Callable[[int], Any], n: int, after: Callable[[Any], Any] | None):
    """Bytes retained per object made by make(i); then per object after after(obj) ran."""
    objs: list[Any] = [None] * n
    # Header keeps up to 64 freed objects for reuse (a PyO3 freelist), which would come back
    # before `base` is read and count as free: hold that many first, so every object measured
    # is a new allocation.
    held = [make(i) for i in range(FREELIST)]
    gc.collect()
    base = meter.now()
    for i in range(n):
        objs[i] = make(i)
    gc.collect()
    made = meter.now()
    read = None
    if after is not None:
        for o in objs:
            after(o)
        gc.collect()
        read = (meter.now() - base) / n
    result = ((made - base) / n, read)
    del objs, held
    gc.collect()
    return result


def fresh(data: bytes) -> bytes:
    return bytes(bytearray(data))  # a new object each time, never an interned or shared one


def read_fields(h: Any) -> Any:
    """Read every field once; values that the Header caches stay alive with it."""
    got = [h.source, h.destination, h.tlvs]
    if h.version == 2:
        got += [h.alpn, h.authority, h.crc32c, h.unique_id, h.aws_vpce_id]
        ssl = h.ssl
        if ssl is not None:
            got += [ssl.version, ssl.cn]
    return got


def measure(meter_name: str, n: int) -> dict[str, Any]:
    meter: Any = TraceMeter() if meter_name == "tracemalloc" else MallocMeter()
    rows: list[dict[str, Any]] = []
    impls: list[tuple[str, Any]] = []
    if ours is not None:
        impls.append(("ours", ours))
    impls.append(("hand-written", handwritten))
    with meter:
        for impl_name, mod in impls:
            idle, _ = per_object(meter, lambda i, m=mod: m.Parser(), n, None)
            rows.append(
                {
                    "impl": impl_name,
                    "what": "idle Parser",
                    "wire": None,
                    "made": idle,
                    "read": None,
                    "limit": 512,
                }
            )
            for name, hdr in HEADERS.items():
                d = hdr + PAYLOAD
                made, read = per_object(
                    meter, lambda i, m=mod, d=d: m.parse(fresh(d)), n, read_fields
                )
                rows.append(
                    {
                        "impl": impl_name,
                        "what": f"Header {name}",
                        "wire": len(hdr),
                        "made": made,
                        "read": read,
                        "limit": 2 * len(hdr) + 128,
                    }
                )

                def fed(i: int, m: Any = mod, d: bytes = d) -> Any:
                    p = m.Parser()
                    p.feed(fresh(d))
                    return p

                made, _ = per_object(meter, fed, n, None)
                rows.append(
                    {
                        "impl": impl_name,
                        "what": f"Parser done, {name} + 100 B",
                        "wire": len(hdr),
                        "made": made,
                        "read": None,
                        "limit": None,
                    }
                )
    return {"meter": meter_name, "n": n, "rows": rows}


def malloc_in_child(n: int) -> dict[str, Any] | None:
    env = dict(os.environ, PYTHONMALLOC="malloc")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-malloc", "-n", str(n)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=True)
        return json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def print_table(results: list[dict[str, Any]]) -> bool:
    all_met = True
    print("# proxyproto_rs memory (bytes per object)")
    if ours is None:
        print(f"ours: NOT IMPORTABLE ({OURS_IMPORT_ERROR}); hand-written only")
    for res in results:
        print()
        label = {
            "tracemalloc": "tracemalloc (Python allocators only; Rust heap invisible)",
            "malloc": "malloc (PYTHONMALLOC=malloc child, mallinfo2: Python + Rust heap"
            " + chunk overhead)",
        }[res["meter"]]
        print(f"## {label}; N = {res['n']}")
        print(
            f"{'impl':<13} {'object':<38} {'wire':>5} {'held':>7} {'+read':>7} {'limit':>6}  target"
        )
        for r in res["rows"]:
            wire = "" if r["wire"] is None else str(r["wire"])
            read = "" if r["read"] is None else f"{r['read']:.0f}"
            limit = "" if r["limit"] is None else str(r["limit"])
            status = ""
            if r["limit"] is not None and r["impl"] == "ours":
                met = r["made"] <= r["limit"]
                status = "met" if met else "NOT MET"
                if res["meter"] == "tracemalloc":
                    all_met = all_met and met
            print(
                f"{r['impl']:<13} {r['what']:<38} {wire:>5} {r['made']:>7.0f} {read:>7}"
                f" {limit:>6}  {status}"
            )
    print()
    print("Headers are parsed from a fresh header + 100 B payload buffer that is then dropped.")
    print("held: retained per object right after it was made; +read: the same after reading")
    print("source, destination, tlvs and every typed TLV accessor (cached values show up here).")
    print("limit: 512 B for an idle Parser; 2 x wire + 128 B for a Header before any read.")
    return all_met


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-n", type=int, default=2000, help="objects per measurement")
    ap.add_argument("--no-malloc", action="store_true", help="skip the PYTHONMALLOC child")
    ap.add_argument("--child-malloc", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_malloc:
        json.dump(measure("malloc", args.n), sys.stdout)
        return 0
    results = [measure("tracemalloc", args.n)]
    if not args.no_malloc:
        child = malloc_in_child(args.n)
        if child is not None:
            results.append(child)
    if args.json:
        json.dump({"results": results}, sys.stdout, indent=1)
        print()
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
