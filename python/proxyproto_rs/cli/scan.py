"""``proxyproto scan``: every PROXY header in a raw file or a pcap/pcapng capture.

A raw file is searched signature by signature; a capture is read packet by packet through
``_pcap`` (UDP datagrams scanned one by one, TCP payload joined per flow first) and every
result is reported with its byte offset in the file.
"""

from __future__ import annotations

import argparse
import contextlib
import mmap
import os
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from proxyproto_rs._core import Header, find_signature, parse
from proxyproto_rs._errors import ProxyProtocolError
from proxyproto_rs.cli._args import Subcommands, add_codec_options, add_command, positive_int
from proxyproto_rs.cli._common import EXIT_NO, EXIT_OK, JSON, PROG, IOFailure, UsageError
from proxyproto_rs.cli._pcap import (
    PCAP_MAGICS,
    PCAPNG_SHB,
    CaptureError,
    Flow,
    Packet,
    Segment,
    ip_payload,
    iter_pcap,
    iter_pcapng,
)
from proxyproto_rs.cli._render import (
    err,
    error_json,
    format_endpoint,
    header_json,
    header_summary,
    json_line,
    out,
)

SCAN_EPILOG = r"""
input:
  A raw capture (any file: every v1/v2 signature is tried), or a pcap / pcapng file
  (Ethernet, Linux cooked, raw IP or loopback link types; IPv4/IPv6, TCP and UDP).
  TCP payloads are joined per flow and direction (up to --flow-limit bytes from the
  first packet seen), so a header split over segments is still found; each UDP
  datagram is scanned on its own.

output:
  One line per header: byte offset in the file (and, for pcap, packet number and
  flow). --json gives one JSON object per line. Progress goes to stderr when it is
  a terminal and the file is large, or always with --progress.

examples:
  proxyproto scan capture.pcap
  proxyproto scan --json dump.bin | jq -r '.header.source.host' | sort | uniq -c
  proxyproto scan --invalid capture.pcapng        # also show signatures that fail

exit status: 0 at least one header found, 1 none, 2 bad usage, 3 unreadable file.
"""

_PROGRESS_MIN: Final = 16 * 1024 * 1024
"""Files at least this large show progress on a terminal without --progress."""


class Progress:
    """Throttled progress on stderr: ``\\r`` updates on a terminal, lines otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.last_decile = -1
        self.found = 0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self.last < 0.2:
                return
            self.last = now
            sys.stderr.write(f"\r{self._text(done)}")
            sys.stderr.flush()
            return
        decile = done * 10 // self.total
        if decile > self.last_decile:
            self.last_decile = decile
            err(self._text(done))

    def _text(self, done: int) -> str:
        pct = 100.0 * done / self.total
        mib = 1024 * 1024
        return (
            f"scan: {pct:5.1f}% ({done / mib:.1f}/{self.total / mib:.1f} MiB),"
            f" {self.found} header(s)"
        )

    def finish(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            sys.stderr.write(f"\r{self._text(self.total)}\n")
            sys.stderr.flush()
        elif self.last_decile < 10:
            err(self._text(self.total))


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


def _scan_buffer(
    view: memoryview,
    *,
    verify: bool,
    max_size: int,
    invalid: bool,
    progress: Progress | None = None,
) -> Iterator[tuple[int, Header | None, ProxyProtocolError | None]]:
    pos = find_signature(view, 0)
    while pos >= 0:
        if progress is not None:
            progress.update(pos)
        try:
            header = parse(view[pos:], verify_checksum=verify, max_size=max_size)
        except ProxyProtocolError as exc:
            if invalid:
                yield pos, None, exc
            pos = find_signature(view, pos + 1)
            continue
        yield pos, header, None
        pos = find_signature(view, pos + header.length)


def scan_capture(
    buf: memoryview,
    kind: str,
    *,
    verify: bool,
    max_size: int,
    invalid: bool,
    flow_limit: int,
    progress: Progress,
) -> Iterator[Found]:
    """Every header in a pcap/pcapng capture, in packet order."""
    packets = iter_pcap(buf) if kind == "pcap" else iter_pcapng(buf)
    flows: dict[tuple[str, int, str, int], Flow] = {}
    results: list[Found] = []
    damage: list[CaptureError] = []
    for packet in _until_damage(packets, damage):
        progress.update(packet.file_offset)
        try:
            parsed = ip_payload(packet)
        except (struct.error, IndexError, ValueError):  # a malformed packet: skip it
            continue
        if parsed is None:
            continue
        proto, src, dst, l4, l4_off = parsed
        if proto == 17 and len(l4) >= 8:  # UDP: every datagram on its own (SPEC rule 5)
            sport, dport = struct.unpack_from("!HH", l4, 0)
            payload = l4[8:]
            for pos, header, error in _scan_buffer(
                payload, verify=verify, max_size=max_size, invalid=invalid
            ):
                results.append(
                    Found(
                        offset=packet.file_offset + l4_off + 8 + pos,
                        header=header,
                        error=error,
                        packet=packet.number,
                        flow=f"{format_endpoint((src, sport))} > {format_endpoint((dst, dport))}",
                        transport="udp",
                        stream_offset=pos,
                    )
                )
                if header is not None:
                    progress.found += 1
        elif proto == 6 and len(l4) >= 20:
            sport, dport, seq = struct.unpack_from("!HHI", l4, 0)
            data_off = (l4[12] >> 4) * 4
            flags = l4[13]
            payload = l4[data_off:]
            key = (src, sport, dst, dport)
            flow = flows.get(key)
            if flow is None:
                flow = flows[key] = Flow(key, packet.number)
            if flags & 0x02:  # SYN: the stream starts after it
                flow.next_seq = (seq + 1) & 0xFFFFFFFF
                continue
            if not payload:
                continue
            skip = 0
            if flow.next_seq is not None:
                delta = (seq - flow.next_seq) & 0xFFFFFFFF
                if delta >= 0x80000000:  # retransmission: keep only the new part
                    skip = (flow.next_seq - seq) & 0xFFFFFFFF
                    if skip >= len(payload):
                        continue
            flow.next_seq = (seq + len(payload)) & 0xFFFFFFFF
            room = flow_limit - len(flow.data)
            if room <= 0:
                flow.truncated = True
                continue
            piece = payload[skip : skip + room]
            flow.segments.append(
                Segment(
                    len(flow.data),
                    packet.number,
                    packet.file_offset + l4_off + data_off + skip,
                    len(piece),
                )
            )
            flow.data += piece
    for flow in sorted(flows.values(), key=lambda f: f.first_packet):
        if not flow.data:
            continue
        view = memoryview(flow.data)
        try:
            for pos, header, error in _scan_buffer(
                view, verify=verify, max_size=max_size, invalid=invalid
            ):
                number, file_offset = flow.locate(pos)
                results.append(
                    Found(
                        offset=file_offset,
                        header=header,
                        error=error,
                        packet=number,
                        flow=_flow_label(flow.key),
                        transport="tcp",
                        stream_offset=pos,
                    )
                )
                if header is not None:
                    progress.found += 1
        finally:
            view.release()
    results.sort(key=lambda f: (f.packet or 0, f.offset))
    yield from results
    if damage:
        raise damage[0]


def _until_damage(packets: Iterator[Packet], damage: list[CaptureError]) -> Iterator[Packet]:
    """The packets up to the first damaged record, which is noted in *damage*."""
    try:
        yield from packets
    except CaptureError as exc:
        damage.append(exc.with_traceback(None))  # its frames would pin the file's buffer


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
    return f"{where}  INVALID [{found.error.kind}] {found.error}"


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise IOFailure(f"cannot read {args.file}: {exc.strerror or exc}") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            err(f"{PROG} scan: {args.file} is empty")
            return EXIT_NO
        try:
            mapped: mmap.mmap | bytes = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # not mappable (a pipe, /proc): read it
            mapped = handle.read()
            size = len(mapped)
        enabled = args.progress or (
            not args.no_progress and sys.stderr.isatty() and size >= _PROGRESS_MIN
        )
        progress = Progress(size, enabled)
        view = memoryview(mapped)
        count = 0
        try:
            magic = bytes(view[:4])
            kind = args.format
            if kind == "auto":
                if magic in PCAP_MAGICS:
                    kind = "pcap"
                elif magic == PCAPNG_SHB:
                    kind = "pcapng"
                else:
                    kind = "raw"
            verify = not args.no_verify_checksum
            results: Iterator[Found]
            if kind == "raw":
                results = (
                    Found(pos, header, error)
                    for pos, header, error in _scan_buffer(
                        view,
                        verify=verify,
                        max_size=args.max_size,
                        invalid=args.invalid,
                        progress=progress,
                    )
                )
            else:
                if magic not in PCAP_MAGICS and kind == "pcap":
                    raise UsageError(f"{args.file} is not a pcap file (magic {magic.hex()})")
                results = scan_capture(
                    view,
                    kind,
                    verify=verify,
                    max_size=args.max_size,
                    invalid=args.invalid,
                    flow_limit=args.flow_limit,
                    progress=progress,
                )
            try:
                for found in results:
                    if found.header is not None:
                        count += 1
                        if kind == "raw":
                            progress.found = count
                    if args.json:
                        json_line(_found_json(found))
                    else:
                        out(_found_text(found))
            except CaptureError as exc:
                err(f"{PROG} scan: {args.file}: {exc}; results above are complete up to it")
            except (struct.error, IndexError) as exc:
                err(f"{PROG} scan: {args.file}: damaged capture ({exc}); stopped")
            progress.finish()
        finally:
            # A slice still referenced somewhere pins the map: then the OS unmaps at exit.
            with contextlib.suppress(BufferError):
                view.release()
                if isinstance(mapped, mmap.mmap):
                    mapped.close()
    if not args.json:
        err(f"{count} header(s) found in {args.file} ({kind})")
    return EXIT_OK if count else EXIT_NO


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
