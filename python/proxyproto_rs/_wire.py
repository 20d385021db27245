"""Raw PROXY v2 wire bytes, written field by field, for headers that lie on purpose.

The codec's builders refuse to write a wrong length, an unknown family or a broken TLV; the
conformance battery (``proxyproto check``), the tests and the fuzz seeds need exactly those.
Everything here is plain ``struct`` packing and a bitwise CRC32C, independent of the Rust
core, so a bug in the core's builder or checksum cannot hide the same bug in its parser.
Nothing is validated: every field is written as given.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from typing import Final

__all__ = [
    "SIGNATURE",
    "crc32c_reference",
    "crc_value_offset",
    "inet4_block",
    "inet6_block",
    "ssl_value",
    "tlv",
    "unix_block",
    "v2",
    "with_crc",
]

SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
"""The 12-byte v2 signature (SPEC rule 18), spelled out rather than taken from the core."""

_ADDRESS_BLOCK: Final = {1: 12, 2: 36, 3: 216}
"""Address block size by family nibble (SPEC rule 27)."""


def v2(
    ver_cmd: int,
    fam: int,
    body: bytes = b"",
    length: int | None = None,
    sig: bytes = SIGNATURE,
) -> bytes:
    """A v2 header: *sig*, byte 13 (version|command), byte 14 (family|protocol), the
    big-endian length (of *body* unless *length* says otherwise) and *body*."""
    n = len(body) if length is None else length
    return sig + bytes([ver_cmd, fam]) + struct.pack("!H", n) + body


def tlv(kind: int, value: bytes, length: int | None = None) -> bytes:
    """One TLV; *length* overrides the length field (to build ones that cross the end)."""
    return struct.pack("!BH", kind, len(value) if length is None else length) + value


def ssl_value(client: int, verify: int, subs: Iterable[tuple[int, bytes]] = ()) -> bytes:
    """A packed PP2_TYPE_SSL value: client (u8), verify (u32 BE), sub-TLVs (SPEC rule 37)."""
    return struct.pack("!BI", client, verify) + b"".join(tlv(t, v) for t, v in subs)


def inet4_block(src: str, dst: str, sport: int, dport: int) -> bytes:
    """The 12-byte TCP/UDP over IPv4 address block."""
    packed = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    return packed + struct.pack("!HH", sport, dport)


def inet6_block(src: str, dst: str, sport: int, dport: int) -> bytes:
    """The 36-byte TCP/UDP over IPv6 address block."""
    packed = ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
    return packed + struct.pack("!HH", sport, dport)


def unix_block(src: bytes, dst: bytes) -> bytes:
    """The 216-byte UNIX address block: two NUL-padded 108-byte paths."""
    return src.ljust(108, b"\x00") + dst.ljust(108, b"\x00")


def _crc_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE: Final = _crc_table()


def crc32c_reference(data: bytes, value: int = 0) -> int:
    """CRC32C (Castagnoli, reflected polynomial 0x82F63B78), chainable like ``zlib.crc32``.

    Slow and plainly written, to cross-check the core's accelerated one."""
    crc = value ^ 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


def crc_value_offset(header: bytes) -> int:
    """Offset of the value of the first CRC32C TLV (type 0x03, length 4) of a v2 header.

    TLVs are walked from the end of the address block of the header's family, then, if no
    CRC32C TLV is found that way, from byte 16 (a LOCAL header without addresses, SPEC
    rule 44).

    Raises:
        ValueError: no CRC32C TLV on either walk.
    """
    starts = (16 + _ADDRESS_BLOCK.get(header[13] >> 4, 0), 16)
    for pos in starts:
        while pos + 3 <= len(header):
            kind, n = header[pos], int.from_bytes(header[pos + 1 : pos + 3], "big")
            if kind == 0x03 and n == 4 and pos + 7 <= len(header):
                return pos + 3
            pos += 3 + n
    raise ValueError("no CRC32C TLV in this header")


def with_crc(header: bytes, *, wrong: bool = False) -> bytes:
    """*header* with its first CRC32C TLV filled in as a sender must (SPEC rule 34): the CRC
    of the whole header with that value zeroed, big-endian. *wrong* flips the lowest bit
    of the value, for a checksum that must fail."""
    at = crc_value_offset(header)
    zeroed = header[:at] + bytes(4) + header[at + 4 :]
    value = crc32c_reference(zeroed) ^ int(wrong)
    return header[:at] + struct.pack("!I", value) + header[at + 4 :]
