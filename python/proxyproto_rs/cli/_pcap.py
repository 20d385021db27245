"""Packets out of pcap and pcapng captures, and TCP payload joined back into streams.

Nothing here knows about PROXY headers: ``iter_pcap`` / ``iter_pcapng`` yield the captured
bytes of each packet, ``ip_payload`` peels the link and IP layers down to TCP or UDP, and
``Flow`` keeps one direction of a TCP connection as a byte stream with the packet each
slice came from. A damaged file raises ``CaptureError`` at the first bad record.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

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


def iter_pcap(buf: memoryview) -> Iterator[Packet]:
    """Records of a classic pcap file (both byte orders, µs or ns)."""
    endian = PCAP_MAGICS[bytes(buf[:4])]
    if len(buf) < 24:
        raise CaptureError("pcap global header is truncated")
    (linktype,) = struct.unpack_from(endian + "I", buf, 20)
    linktype &= 0x0FFFFFFF  # the top bits may carry FCS information
    pos, number = 24, 0
    while pos + 16 <= len(buf):
        _sec, _frac, incl, _orig = struct.unpack_from(endian + "IIII", buf, pos)
        start = pos + 16
        if start + incl > len(buf):
            raise CaptureError(f"packet {number + 1} is truncated at byte {pos}")
        number += 1
        yield Packet(number, start, linktype, buf[start : start + incl])
        pos = start + incl
    if pos < len(buf):
        raise CaptureError(f"{len(buf) - pos} stray bytes after packet {number}")


def iter_pcapng(buf: memoryview) -> Iterator[Packet]:
    """Packets of a pcapng file (SHB, IDB, EPB, SPB and the obsolete PB)."""
    pos, number = 0, 0
    endian = "<"
    links: list[int] = []
    while pos + 12 <= len(buf):
        block_type_raw = bytes(buf[pos : pos + 4])
        if block_type_raw == PCAPNG_SHB:
            bom = bytes(buf[pos + 8 : pos + 12])
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise CaptureError(f"bad pcapng byte-order magic at byte {pos + 8}")
            links = []
        block_type, block_len = struct.unpack_from(endian + "II", buf, pos)
        if block_len < 12 or block_len % 4 or pos + block_len > len(buf):
            raise CaptureError(f"bad pcapng block length {block_len} at byte {pos}")
        body = pos + 8
        if block_type == 1:  # interface description
            (link,) = struct.unpack_from(endian + "H", buf, body)
            links.append(link)
        elif block_type == 6:  # enhanced packet
            iface, _hi, _lo, caplen, _orig = struct.unpack_from(endian + "IIIII", buf, body)
            start = body + 20
            number += 1
            link = links[iface] if iface < len(links) else LINKTYPE_ETHERNET
            yield Packet(number, start, link, buf[start : start + caplen])
        elif block_type == 3:  # simple packet
            (orig,) = struct.unpack_from(endian + "I", buf, body)
            start = body + 4
            caplen = min(orig, block_len - 16)
            number += 1
            link = links[0] if links else LINKTYPE_ETHERNET
            yield Packet(number, start, link, buf[start : start + caplen])
        elif block_type == 2:  # obsolete packet block
            iface, _drops, _hi, _lo, caplen, _orig = struct.unpack_from(
                endian + "HHIIII", buf, body
            )
            start = body + 20
            number += 1
            link = links[iface] if iface < len(links) else LINKTYPE_ETHERNET
            yield Packet(number, start, link, buf[start : start + caplen])
        pos += block_len


@dataclass
class Segment:
    """Where a slice of a flow's joined payload came from."""

    stream_offset: int
    packet: int
    file_offset: int
    length: int


@dataclass
class Flow:
    key: tuple[str, int, str, int]
    first_packet: int
    data: bytearray = field(default_factory=bytearray)
    segments: list[Segment] = field(default_factory=list)
    next_seq: int | None = None
    truncated: bool = False

    def locate(self, stream_offset: int) -> tuple[int, int]:
        """``(packet, file offset)`` of a byte of the joined payload."""
        for seg in self.segments:
            if seg.stream_offset <= stream_offset < seg.stream_offset + seg.length:
                return seg.packet, seg.file_offset + (stream_offset - seg.stream_offset)
        last = self.segments[-1]
        return last.packet, last.file_offset + last.length


def ip_payload(packet: Packet) -> tuple[int, str, str, memoryview, int] | None:
    """``(ip_proto, src, dst, l4 bytes, offset of l4 in the packet)`` or None."""
    data = packet.data
    link = packet.linktype
    off = 0
    ethertype: int | None = None
    if link == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        (ethertype,) = struct.unpack_from("!H", data, 12)
        off = 14
        while ethertype in (0x8100, 0x88A8) and len(data) >= off + 4:  # VLAN tags
            (ethertype,) = struct.unpack_from("!H", data, off + 2)
            off += 4
    elif link == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return None
        (ethertype,) = struct.unpack_from("!H", data, 14)
        off = 16
    elif link == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return None
        (ethertype,) = struct.unpack_from("!H", data, 0)
        off = 20
    elif link in (LINKTYPE_NULL, LINKTYPE_LOOP):
        off = 4
    elif link not in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14):
        return None
    if len(data) <= off:
        return None
    version = data[off] >> 4
    if ethertype is not None and ethertype not in (0x0800, 0x86DD):
        return None
    if version == 4:
        if len(data) < off + 20:
            return None
        ihl = (data[off] & 0x0F) * 4
        (total,) = struct.unpack_from("!H", data, off + 2)
        (frag,) = struct.unpack_from("!H", data, off + 6)
        if frag & 0x1FFF:  # not the first fragment: no L4 header here
            return None
        proto = data[off + 9]
        src = socket.inet_ntop(socket.AF_INET, bytes(data[off + 12 : off + 16]))
        dst = socket.inet_ntop(socket.AF_INET, bytes(data[off + 16 : off + 20]))
        end = min(len(data), off + total) if total else len(data)
        l4 = off + ihl
        return proto, src, dst, data[l4:end], l4
    if version == 6:
        if len(data) < off + 40:
            return None
        (plen,) = struct.unpack_from("!H", data, off + 4)
        proto = data[off + 6]
        src = socket.inet_ntop(socket.AF_INET6, bytes(data[off + 8 : off + 24]))
        dst = socket.inet_ntop(socket.AF_INET6, bytes(data[off + 24 : off + 40]))
        end = min(len(data), off + 40 + plen)
        l4 = off + 40
        while proto in (0, 43, 60, 44) and l4 + 8 <= end:  # extension headers
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
    return None
