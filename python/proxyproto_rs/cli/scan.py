"""``proxyproto scan``: every PROXY header in a raw file or a pcap/pcapng capture.

The input (a file or stdin) is read as a stream and searched with the codec's public
``scan()``. A result is printed as soon as it is final: no later byte can change it. For a
stream that grows (a raw file read in chunks, a TCP flow packet by packet) that is a header
followed by enough bytes that any earlier candidate is decided (``_Stream``), or sooner when
nothing precedes it; a UDP datagram is complete on arrival. Memory therefore follows the
largest datagram and the open TCP flows, never the whole file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

from proxyproto_rs._core import MAX_V1_SIZE, Header, find_signature, parse
from proxyproto_rs._errors import ProxyProtocolError
from proxyproto_rs._scan import scan
from proxyproto_rs.cli._args import Subcommands, add_codec_options, add_command, positive_int
from proxyproto_rs.cli._common import EXIT_NO, EXIT_OK, JSON, PROG, IOFailure, UsageError
from proxyproto_rs.cli._pcap import (
    PCAP_MAGICS,
    PCAPNG_SHB,
    CaptureError,
    Flow,
    Packet,
    Reader,
    Reassembler,
    ip_payload,
    packets,
)
from proxyproto_rs.cli._progress import Progress
from proxyproto_rs.cli._render import (
    err,
    error_json,
    error_text,
    format_endpoint,
    header_json,
    header_summary,
    json_line,
    out,
)

SCAN_EPILOG = r"""
input:
  A raw capture (any file: every v1/v2 signature is tried), or a pcap / pcapng file
  (Ethernet, Linux cooked, raw IP or loopback link types; IPv4/IPv6, TCP and UDP);
  FILE '-' reads stdin. TCP payloads are joined per flow and direction (up to
  --flow-limit bytes from the first packet seen), so a header split over segments is
  still found; each UDP datagram is scanned on its own. The input is read as a
  stream: memory follows the largest packet and the open TCP flows, not the file.

output:
  One line per header, printed as soon as no later byte can change it: byte offset
  in the file (and, for pcap, packet number and flow). --json gives one JSON object
  per line. Progress goes to stderr when it is
  a terminal and the file is large, or always with --progress.

examples:
  proxyproto scan capture.pcap
  proxyproto scan --json dump.bin | jq -r '.header.source.host' | sort | uniq -c
  proxyproto scan --invalid capture.pcapng        # also show signatures that fail

exit status: 0 at least one header found, 1 none, 2 bad usage, 3 unreadable file.
"""

_PROGRESS_MIN: Final = 16 * 1024 * 1024
"""Files at least this large show progress on a terminal without --progress."""

_CHUNK: Final = 1024 * 1024
"""Bytes of a raw file read at a time."""

Hit = tuple[int, Header | None, ProxyProtocolError | None]
"""``(offset, header, None)`` for a header, ``(offset, None, error)`` with --invalid."""


@dataclass(frozen=True)
class _Options:
    verify: bool
    max_size: int
    invalid: bool

    @property
    def reach(self) -> int:
        """The most bytes a header can span: a candidate this far from the end is decided."""
        return max(self.max_size, MAX_V1_SIZE)


@dataclass
class Found:
    """One scan result: a header, or (with --invalid) a signature that failed."""

    offset: int
    header: Header | None = None
    error: ProxyProtocolError | None = None
    packet: int | None = None
    flow: str | None = None
    transport: str | None = None
    stream_offset: int | None = None


class _Stream:
    """The headers of a stream that grows at its end, each reported once, when final."""

    def __init__(self, opts: _Options, done: int = 0) -> None:
        self.opts = opts
        self.done = done
        """Stream offset before which every candidate is reported or skipped for good."""

    def advance(self, view: memoryview, base: int, *, final: bool) -> list[Hit]:
        """What is final in *view* (the stream from offset *base*); *final*: no more bytes."""
        start = self.done - base
        limit = len(view) if final else len(view) - self.opts.reach
        hits: list[Hit] = []
        for at, header in self._final_headers(view, start, limit):
            hits += self._invalid(view, base, start, at)
            hits.append((base + at, header, None))
            start = at + header.length
        if limit > start:
            hits += self._invalid(view, base, start, limit)
            start = limit
        self.done = base + start
        return hits

    def _final_headers(self, view: memoryview, start: int, limit: int) -> list[tuple[int, Header]]:
        """The headers ``scan()`` finds from *start* that no later byte can change: before
        *limit*, or with no candidate at all between the previous one and them."""
        headers: list[tuple[int, Header]] = []
        end = start
        opts = self.opts
        for pos, header in scan(view[start:], verify_checksum=opts.verify, max_size=opts.max_size):
            at = start + pos
            if at >= limit and find_signature(view, end) != at:
                break  # an earlier candidate may still grow into a header covering this one
            headers.append((at, header))
            end = at + header.length
        return headers

    def _invalid(self, view: memoryview, base: int, start: int, stop: int) -> list[Hit]:
        """With --invalid, the signatures in ``view[start:stop]`` (none of which ``scan()``
        took) and why each fails."""
        hits: list[Hit] = []
        pos = find_signature(view, start) if self.opts.invalid else -1
        while 0 <= pos < stop:
            try:
                parse(view[pos:], verify_checksum=self.opts.verify, max_size=self.opts.max_size)
            except ProxyProtocolError as exc:
                hits.append((base + pos, None, exc))
            pos = find_signature(view, pos + 1)
        return hits


def _scan_raw(reader: Reader, opts: _Options, progress: Progress) -> Iterator[Found]:
    """A raw file, read in chunks; only the undecided tail is kept between reads."""
    stream = _Stream(opts)
    data, base = b"", 0
    while True:
        chunk = reader.read(_CHUNK)
        data = data[stream.done - base :] + chunk
        base = stream.done
        for offset, header, error in stream.advance(memoryview(data), base, final=not chunk):
            yield Found(offset, header, error)
        progress.update(reader.offset)
        if not chunk:
            return


def _scan_capture(
    reader: Reader, kind: str, opts: _Options, flow_limit: int, progress: Progress
) -> Iterator[Found]:
    """Every header in a pcap/pcapng capture, each as soon as it is final."""
    tcp = Reassembler(flow_limit)
    for packet in packets(reader, kind):
        progress.update(packet.file_offset)
        try:
            parsed = ip_payload(packet)
        except (struct.error, IndexError, ValueError):  # a malformed packet: skip it
            continue
        if parsed is None:
            continue
        proto, src, dst, l4, l4_off = parsed
        if proto == 17 and len(l4) >= 8:  # UDP: every datagram on its own (SPEC rule 5)
            yield from _udp_hits(packet, src, dst, l4, l4_off, opts)
        elif proto == 6 and len(l4) >= 20:
            sport, dport = struct.unpack_from("!HH", l4, 0)
            flow = tcp.add(packet, (src, sport, dst, dport), l4, l4_off)
            if flow is not None:
                yield from _flow_hits(flow, opts)
    for flow in tcp.remaining():
        yield from _flow_hits(flow, opts)


def _udp_hits(
    packet: Packet, src: str, dst: str, l4: memoryview, l4_off: int, opts: _Options
) -> Iterator[Found]:
    sport, dport = struct.unpack_from("!HH", l4, 0)
    label = _flow_label((src, sport, dst, dport))
    for pos, header, error in _Stream(opts).advance(l4[8:], 0, final=True):
        offset = packet.file_offset + l4_off + 8 + pos
        yield Found(offset, header, error, packet.number, label, "udp", pos)


def _flow_hits(flow: Flow, opts: _Options) -> Iterator[Found]:
    """What a flow's new bytes made final; the bytes before that are forgotten, so the
    flow's ``base`` is where the next search starts."""
    stream = _Stream(opts, flow.base)
    view = memoryview(flow.data)
    try:
        hits = stream.advance(view, flow.base, final=flow.ended)
    finally:
        view.release()
    label = _flow_label(flow.key)
    for pos, header, error in hits:
        number, offset = flow.locate(pos)
        yield Found(offset, header, error, number, label, "tcp", pos)
    if not flow.ended:
        flow.forget(stream.done)


def _found_json(found: Found) -> JSON:
    obj: JSON = {"offset": found.offset}
    if found.packet is not None:
        obj["packet"] = found.packet
        obj["flow"] = found.flow
        obj["transport"] = found.transport
        obj["stream_offset"] = found.stream_offset
    if found.header is not None:
        obj["header"] = header_json(found.header)
    if found.error is not None:
        obj["error"] = error_json(found.error)
    return obj


def _found_text(found: Found) -> str:
    where = f"{found.offset:>10}"
    if found.packet is not None:
        where += f"  #{found.packet:<6} {found.transport} {found.flow}"
        if found.stream_offset:
            where += f" +{found.stream_offset}"
    if found.header is not None:
        return f"{where}  {header_summary(found.header)}"
    assert found.error is not None
    return f"{where}  INVALID [{found.error.kind}] {error_text(found.error)}"


def _open(path: str) -> tuple[BinaryIO, int]:
    """The input stream and its size (0 when unknown: stdin or a pipe)."""
    if path == "-":
        if sys.stdin.isatty():
            raise UsageError("stdin is a terminal: pipe a capture into 'scan -'")
        return sys.stdin.buffer, 0
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by run)
    except OSError as exc:
        raise IOFailure(f"cannot read {path}: {exc.strerror or exc}") from None
    return handle, os.fstat(handle.fileno()).st_size  # 0 for a pipe: progress without %


def _detect(magic: bytes, wanted: str, name: str) -> str:
    kind = wanted
    if kind == "auto":
        kind = "pcap" if magic in PCAP_MAGICS else "pcapng" if magic == PCAPNG_SHB else "raw"
    if kind == "pcap" and magic not in PCAP_MAGICS:
        raise UsageError(f"{name} is not a pcap file (magic {magic.hex()})")
    return kind


def run(args: argparse.Namespace) -> int:
    stream, size = _open(args.file)
    name = "stdin" if args.file == "-" else args.file
    with contextlib.ExitStack() as closing:
        if stream is not sys.stdin.buffer:
            closing.enter_context(stream)
        magic = stream.read(4)
        if not magic:
            err(f"{PROG} scan: {name} is empty")
            return EXIT_NO
        kind = _detect(magic, args.format, name)
        enabled = args.progress or (
            not args.no_progress and sys.stderr.isatty() and size >= _PROGRESS_MIN
        )
        progress = Progress(size, enabled)
        reader = Reader(stream, magic)
        opts = _Options(not args.no_verify_checksum, args.max_size, args.invalid)
        results = (
            _scan_raw(reader, opts, progress)
            if kind == "raw"
            else _scan_capture(reader, kind, opts, args.flow_limit, progress)
        )
        count = _report(results, args, name, progress)
        progress.finish(reader.offset)
    if not args.json:
        err(f"{count} header(s) found in {name} ({kind})")
    return EXIT_OK if count else EXIT_NO


def _report(
    results: Iterator[Found], args: argparse.Namespace, name: str, progress: Progress
) -> int:
    """Print each result as it comes; the number of headers."""
    count = 0
    try:
        for found in results:
            progress.clear()
            if found.header is not None:
                count += 1
                progress.found = count
            if args.json:
                json_line(_found_json(found))
            else:
                out(_found_text(found))
                sys.stdout.flush()
    except CaptureError as exc:
        progress.clear()
        err(f"{PROG} scan: {name}: {exc}; results above are complete up to it")
    except (struct.error, IndexError) as exc:
        progress.clear()
        err(f"{PROG} scan: {name}: damaged capture ({exc}); stopped")
    return count


def _flow_label(key: tuple[str, int, str, int]) -> str:
    src, sport, dst, dport = key
    return f"{format_endpoint((src, sport))} > {format_endpoint((dst, dport))}"


def add_parser(subs: Subcommands) -> None:
    p = add_command(
        subs,
        "scan",
        help="find every header in a raw capture or a pcap/pcapng file",
        description="Find every PROXY header in a file: raw bytes, pcap or pcapng.",
        epilog=SCAN_EPILOG,
    )
    p.add_argument("file", metavar="FILE", help="the file to scan")
    p.add_argument("--json", action="store_true", help="JSON lines on stdout")
    p.add_argument(
        "--format",
        choices=("auto", "raw", "pcap", "pcapng"),
        default="auto",
        help="file format (default: from the magic number)",
    )
    p.add_argument(
        "--invalid", action="store_true", help="also report signatures that fail to parse"
    )
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", action="store_true", help="always show progress on stderr")
    progress.add_argument("--no-progress", action="store_true", help="never show progress")
    add_codec_options(p)
    p.add_argument(
        "--flow-limit",
        type=positive_int,
        default=1 << 20,
        metavar="BYTES",
        help="TCP payload kept per flow and direction (default 1 MiB)",
    )
    p.set_defaults(func=run)
