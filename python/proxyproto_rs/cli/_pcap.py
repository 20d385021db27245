"""Packets out of pcap and pcapng captures, and TCP payload joined back into streams.

Nothing here knows about PROXY headers. The capture is read incrementally from any binary
stream (a file or a pipe), one record at a time, so memory follows the largest packet, not
the file: ``packets`` yields the captured bytes of each packet of a pcap or pcapng file,
``ip_payload`` peels the link and IP layers down to TCP or UDP, and ``Reassembler`` joins
each direction of a TCP connection into a ``Flow``: a byte stream that remembers which
packet each slice came from and can forget what its reader is done with. A damaged file
raises ``CaptureError`` at the first bad record.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final, TypeAlias

PCAP_MAGICS: Final = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",  # nanosecond resolution
    b"\xa1\xb2\x3c\x4d": ">",
}
PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"

LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276


MAX_RECORD: Final = 64 * 1024 * 1024
"""A record claiming more bytes than this is damage, not a packet (snap lengths are far
smaller); reading it would allocate what the file claims."""


@dataclass
class Packet:
    number: int
    """1-based, as Wireshark counts."""
    file_offset: int
    """Where the captured bytes of this packet start in the file."""
    linktype: int
    data: memoryview


class CaptureError(Exception):
    """The pcap/pcapng file is damaged beyond the point reached."""


class Reader:
    """A binary stream read in exact-size pieces, counting the offset."""

    def __init__(self, stream: BinaryIO, head: bytes = b"") -> None:
        self._stream = stream
        self._head = head
        self.offset = 0

    def read(self, n: int) -> bytes:
        """*n* bytes, fewer only at the end of the stream."""
        if n > MAX_RECORD:
            raise CaptureError(f"a record of {n} bytes at byte {self.offset}: damaged file")
        data, self._head = self._head[:n], self._head[n:]
        while len(data) < n:
            more = self._stream.read(n - len(data))
            if not more:
                break
            data += more
        self.offset += len(data)
        return data


def packets(reader: Reader, kind: str) -> Iterator[Packet]:
    """The packets of a ``pcap`` or ``pcapng`` capture, in file order."""
    return _pcap_records(reader) if kind == "pcap" else _pcapng_blocks(reader)


def _pcap_records(reader: Reader) -> Iterator[Packet]:
    """Records of a classic pcap file (both byte orders, µs or ns)."""
    head = reader.read(24)
    if len(head) < 24:
        raise CaptureError("pcap global header is truncated")
    endian = PCAP_MAGICS[head[:4]]
    (linktype,) = struct.unpack_from(endian + "I", head, 20)
    linktype &= 0x0FFFFFFF  # the top bits may carry FCS information
    number = 0
    while record := reader.read(16):
        pos = reader.offset - len(record)
        if len(record) < 16:
            raise CaptureError(f"{len(record)} stray bytes after packet {number}")
        _sec, _frac, incl, _orig = struct.unpack(endian + "IIII", record)
        data = reader.read(incl)
        if len(data) < incl:
            raise CaptureError(f"packet {number + 1} is truncated at byte {pos}")
        number += 1
        yield Packet(number, pos + 16, linktype, memoryview(data))


def _pcapng_blocks(reader: Reader) -> Iterator[Packet]:
    """Packets of a pcapng file (SHB, IDB, EPB, SPB and the obsolete PB)."""
    endian = "<"
    links: list[int] = []
    number = 0
    while len(start := reader.read(12)) == 12:
        pos = reader.offset - 12
        if start[:4] == PCAPNG_SHB:
            endian = _byte_order(start[8:12], pos)
            links = []
        block_type, block_len = struct.unpack_from(endian + "II", start)
        if block_len < 12 or block_len % 4:
            raise CaptureError(f"bad pcapng block length {block_len} at byte {pos}")
        block = start + reader.read(block_len - 12)
        if len(block) < block_len:
            raise CaptureError(f"bad pcapng block length {block_len} at byte {pos}")
        if block_type == 1:  # interface description
            links.append(struct.unpack_from(endian + "H", block, 8)[0])
            continue
        found = _pcapng_packet(block_type, block, endian, links)
        if found is not None:
            number += 1
            start_at, caplen, link = found
            yield Packet(
                number, pos + start_at, link, memoryview(block)[start_at : start_at + caplen]
            )


def _byte_order(bom: bytes, pos: int) -> str:
    if bom == b"\x4d\x3c\x2b\x1a":
        return "<"
    if bom == b"\x1a\x2b\x3c\x4d":
        return ">"
    raise CaptureError(f"bad pcapng byte-order magic at byte {pos + 8}")


def _pcapng_packet(
    block_type: int, block: bytes, endian: str, links: list[int]
) -> tuple[int, int, int] | None:
    """``(offset of the packet bytes in the block, captured length, link type)`` of a
    packet block, None for any other block."""
    if block_type == 6:  # enhanced packet
        iface, _hi, _lo, caplen, _orig = struct.unpack_from(endian + "IIIII", block, 8)
        return 28, caplen, links[iface] if iface < len(links) else LINKTYPE_ETHERNET
    if block_type == 3:  # simple packet
        (orig,) = struct.unpack_from(endian + "I", block, 8)
        return 12, min(orig, len(block) - 16), links[0] if links else LINKTYPE_ETHERNET
    if block_type == 2:  # obsolete packet block
        iface, _drops, _hi, _lo, caplen, _orig = struct.unpack_from(endian + "HHIIII", block, 8)
        return 28, caplen, links[iface] if iface < len(links) else LINKTYPE_ETHERNET
    return None


# --------------------------------------------------------------------------- TCP streams


@dataclass
class Segment:
    """Where a slice of a flow's joined payload came from."""

    stream_offset: int
    packet: int
    file_offset: int
    length: int


FlowKey: TypeAlias = tuple[str, int, str, int]
"""``(source ip, source port, destination ip, destination port)``: one direction."""


@dataclass
class Flow:
    """One direction of a TCP connection: its payload from ``base`` on (what comes before
    was dropped by ``forget``), in stream order, retransmissions removed."""

    key: FlowKey
    data: bytearray = field(default_factory=bytearray)
    base: int = 0
    """Stream offset of ``data[0]``."""
    segments: list[Segment] = field(default_factory=list)
    next_seq: int | None = None
    kept: int = 0
    """Payload bytes taken so far (at most the reassembler's limit)."""
    ended: bool = False
    """A FIN or RST was seen: no more bytes will come."""

    def locate(self, stream_offset: int) -> tuple[int, int]:
        """``(packet, file offset)`` of a byte of the joined payload."""
        for seg in self.segments:
            if seg.stream_offset <= stream_offset < seg.stream_offset + seg.length:
                return seg.packet, seg.file_offset + (stream_offset - seg.stream_offset)
        last = self.segments[-1]
        return last.packet, last.file_offset + last.length

    def forget(self, stream_offset: int) -> None:
        """Drop the payload before *stream_offset*: its reader is done with it."""
        cut = min(stream_offset - self.base, len(self.data))
        if cut <= 0:
            return
        del self.data[:cut]
        self.base += cut
        while (
            len(self.segments) > 1
            and self.segments[0].stream_offset + self.segments[0].length <= self.base
        ):
            self.segments.pop(0)


_CLOSED_REMEMBERED: Final = 65536
"""Ended flows whose late retransmissions are still recognised (and ignored)."""


class Reassembler:
    """TCP payload joined per flow and direction, up to *limit* bytes of each. Only open
    flows are held; an ended one is handed back once and forgotten."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.flows: dict[FlowKey, Flow] = {}
        self._closed: dict[FlowKey, None] = {}
        """Recently ended flows, oldest first (a dict as an ordered set)."""

    def add(self, packet: Packet, key: FlowKey, tcp: memoryview, l4_offset: int) -> Flow | None:
        """Take one TCP segment; the flow it grew or ended, None if it added nothing."""
        _sport, _dport, seq = struct.unpack_from("!HHI", tcp, 0)
        data_off = (tcp[12] >> 4) * 4
        flags = tcp[13]
        if flags & 0x02:  # SYN: a new connection; the stream starts after it
            self._closed.pop(key, None)
            old = self.flows.get(key)
            self.flows[key] = Flow(key, next_seq=(seq + 1) & 0xFFFFFFFF)
            if old is not None and old.data:
                old.ended = True  # the 4-tuple was reused without a FIN: that stream is over
                return old
            return None
        if key in self._closed:
            return None  # retransmissions after the end
        flow = self.flows.setdefault(key, Flow(key))
        grew = self._append(flow, packet, seq, tcp[data_off:], l4_offset + data_off)
        if flags & 0x05:  # FIN or RST
            self._end(flow)
            return flow
        return flow if grew else None

    def _end(self, flow: Flow) -> None:
        flow.ended = True
        del self.flows[flow.key]
        self._closed[flow.key] = None
        if len(self._closed) > _CLOSED_REMEMBERED:
            del self._closed[next(iter(self._closed))]

    def _append(self, flow: Flow, packet: Packet, seq: int, payload: memoryview, at: int) -> bool:
        skip = 0
        if flow.next_seq is not None:
            delta = (seq - flow.next_seq) & 0xFFFFFFFF
            if delta >= 0x80000000:  # retransmission: keep only the new part
                skip = (flow.next_seq - seq) & 0xFFFFFFFF
        if skip >= len(payload):
            return False
        flow.next_seq = (seq + len(payload)) & 0xFFFFFFFF
        piece = payload[skip : skip + max(self.limit - flow.kept, 0)]
        if not piece:
            return False
        flow.segments.append(
            Segment(
                flow.base + len(flow.data),
                packet.number,
                packet.file_offset + at + skip,
                len(piece),
            )
        )
        flow.data += piece
        flow.kept += len(piece)
        return True

    def remaining(self) -> list[Flow]:
        """The flows still open at the end of the capture, ended now."""
        flows = list(self.flows.values())
        self.flows.clear()
        for flow in flows:
            flow.ended = True
        return flows


L4: TypeAlias = tuple[int, str, str, memoryview, int]
"""``(ip_proto, src, dst, l4 bytes, offset of l4 in the packet)``."""


def ip_payload(packet: Packet) -> L4 | None:
    """The transport layer of a packet, or None when it is not IPv4/IPv6 or not the first
    fragment."""
    data = packet.data
    link = _link_layer(data, packet.linktype)
    if link is None:
        return None
    off, ethertype = link
    if len(data) <= off or (ethertype is not None and ethertype not in (0x0800, 0x86DD)):
        return None
    version = data[off] >> 4
    if version == 4:
        return _ipv4(data, off)
    if version == 6:
        return _ipv6(data, off)
    return None


def _link_layer(data: memoryview, link: int) -> tuple[int, int | None] | None:
    """``(offset of the IP header, ethertype or None)``; None for an unknown link type."""
    if link == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        (ethertype,) = struct.unpack_from("!H", data, 12)
        off = 14
        while ethertype in (0x8100, 0x88A8) and len(data) >= off + 4:  # VLAN tags
            (ethertype,) = struct.unpack_from("!H", data, off + 2)
            off += 4
        return off, ethertype
    if link == LINKTYPE_LINUX_SLL:
        return None if len(data) < 16 else (16, struct.unpack_from("!H", data, 14)[0])
    if link == LINKTYPE_LINUX_SLL2:
        return None if len(data) < 20 else (20, struct.unpack_from("!H", data, 0)[0])
    if link in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return 4, None
    if link in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14):
        return 0, None
    return None


def _ipv4(data: memoryview, off: int) -> L4 | None:
    if len(data) < off + 20:
        return None
    ihl = (data[off] & 0x0F) * 4
    total, _id, frag = struct.unpack_from("!HHH", data, off + 2)
    if frag & 0x1FFF:  # not the first fragment: no L4 header here
        return None
    proto = data[off + 9]
    src = socket.inet_ntop(socket.AF_INET, bytes(data[off + 12 : off + 16]))
    dst = socket.inet_ntop(socket.AF_INET, bytes(data[off + 16 : off + 20]))
    end = min(len(data), off + total) if total else len(data)
    l4 = off + ihl
    return proto, src, dst, data[l4:end], l4


_IPV6_EXTENSIONS: Final = (0, 43, 60, 44)
"""Hop-by-hop, routing, destination options, fragment: skipped to reach the transport."""


def _ipv6(data: memoryview, off: int) -> L4 | None:
    if len(data) < off + 40:
        return None
    (plen,) = struct.unpack_from("!H", data, off + 4)
    proto = data[off + 6]
    src = socket.inet_ntop(socket.AF_INET6, bytes(data[off + 8 : off + 24]))
    dst = socket.inet_ntop(socket.AF_INET6, bytes(data[off + 24 : off + 40]))
    end = min(len(data), off + 40 + plen)
    l4 = off + 40
    while proto in _IPV6_EXTENSIONS and l4 + 8 <= end:
        nxt = data[l4]
        if proto == 44:
            (fragoff,) = struct.unpack_from("!H", data, l4 + 2)
            if fragoff & 0xFFF8:
                return None
            l4 += 8
        else:
            l4 += (data[l4 + 1] + 1) * 8
        proto = nxt
    return proto, src, dst, data[l4:end], l4
