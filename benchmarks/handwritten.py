"""A careful hand-written pure-Python PROXY protocol v1/v2 parser and builder.

This is the "careful hand-written pure Python" peer of the benchmarks: what a competent
developer would write with ``struct`` and ``socket.inet_ntop``/``inet_pton`` instead of
installing a package. It is tuned for speed (precompiled ``Struct`` objects, ``__slots__``,
no per-call allocation that can be avoided) and it does the same checks as proxyproto_rs,
so the comparison is of equal work:

- v1: exact ``PROXY`` prefix, one space between fields, CRLF within 107 bytes, addresses
  checked with ``inet_pton`` (IPv4 without leading zeros, IPv6 canonicalised, no zone ids),
  ports 0-65535 without leading zeros or signs; ``UNKNOWN`` with anything up to CRLF.
- v2: signature, version 2, command, family and protocol nibbles, address block length,
  ``max_size``; TLVs walked eagerly and strictly (no TLV crossing the end, CRC32C of exactly
  4 bytes and verified over the whole header with its value zeroed, SSL value >= 5 bytes with
  sub-TLVs framing exactly, UNIQUE_ID <= 128 bytes).

The checksum uses the ``crc32c`` package (C, hardware accelerated) when it is installed, as a
careful developer would; a table-driven pure-Python fallback is used otherwise.

Not a product: it exists to be measured against. The API mirrors proxyproto_rs closely enough
that the benchmark can feed both the same bytes and compare their answers.

``lean_parse`` is the other baseline: only the hot path a careful developer would write for
one server (no Header object, no typed accessors, no incomplete/invalid distinction beyond
returning None), returning a plain tuple, with the checks that matter kept: v1 grammar and
cap, address and port syntax, v2 lengths, the TLV framing and typed lengths, CRC32C when
present.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton

__all__ = [
    "V2_SIGNATURE",
    "Header",
    "IncompleteHeaderError",
    "InvalidHeaderError",
    "Parser",
    "build_v1",
    "build_v2",
    "crc32c",
    "lean_parse",
    "lean_ssl",
    "parse",
]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
MAX_V1_SIZE = 107

_V4_BLOCK = struct.Struct("!4s4sHH")
_V6_BLOCK = struct.Struct("!16s16sHH")
_TLV_HEAD = struct.Struct("!BH")
_U32 = struct.Struct("!I")
_SSL_HEAD = struct.Struct("!BI")
_new = tuple.__new__
# Shared by every header without TLVs (never mutated): no per-header allocation.
_EMPTY: dict = {}
_NO_TLVS = ((), _EMPTY)

TYPE_ALPN = 0x01
TYPE_AUTHORITY = 0x02
TYPE_CRC32C = 0x03
TYPE_NOOP = 0x04
TYPE_UNIQUE_ID = 0x05
TYPE_SSL = 0x20
TYPE_NETNS = 0x30
TYPE_AWS = 0xEA
SUBTYPE_SSL_VERSION = 0x21
SUBTYPE_SSL_CN = 0x22
SUBTYPE_AWS_VPCE_ID = 0x01


class InvalidHeaderError(ValueError):
    """The bytes can never form a valid header."""


class IncompleteHeaderError(ValueError):
    """The bytes are a valid but unfinished header."""


def _make_crc32c():
    try:
        from crc32c import crc32c as fast  # C, SSE4.2
    except ImportError:  # pragma: no cover - the benchmark installs it
        fast = None
    if fast is not None:
        return fast
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)

    def slow(data, value=0):
        crc = value ^ 0xFFFFFFFF
        for b in data:
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF

    return slow


crc32c = _make_crc32c()


class Header(tuple):
    """A parsed header (a tuple subclass: cheapest object to build in pure Python).

    Addresses are decoded eagerly; ``tlvs`` is a list of (type, value) pairs in wire order;
    item 9 maps each TLV type to its first value, for O(1) typed accessors.
    """

    __slots__ = ()

    version = property(itemgetter(0))
    command = property(itemgetter(1))
    family = property(itemgetter(2))
    protocol = property(itemgetter(3))
    source = property(itemgetter(4))
    destination = property(itemgetter(5))
    length = property(itemgetter(6))
    tlvs = property(itemgetter(7))
    raw = property(itemgetter(8))

    def __repr__(self):
        return (
            f"Header(version={self.version}, command={self.command}, family={self.family}, "
            f"source={self.source!r}, destination={self.destination!r}, length={self.length})"
        )

    @property
    def alpn(self):
        return self[9].get(TYPE_ALPN)

    @property
    def authority(self):
        v = self[9].get(TYPE_AUTHORITY)
        return None if v is None else v.decode("utf-8")

    @property
    def crc32c(self):
        v = self[9].get(TYPE_CRC32C)
        return None if v is None else int.from_bytes(v, "big")

    @property
    def unique_id(self):
        return self[9].get(TYPE_UNIQUE_ID)

    @property
    def netns(self):
        v = self[9].get(TYPE_NETNS)
        return None if v is None else v.decode("ascii")

    @property
    def ssl(self):
        v = self[9].get(TYPE_SSL)
        return None if v is None else SslInfo(v)

    @property
    def aws_vpce_id(self):
        v = self[9].get(TYPE_AWS)
        if v is not None and v[:1] == b"\x01":
            return v[1:].decode("ascii")
        return None


class SslInfo:
    """The SSL TLV: client flags, verify, and sub-TLVs as a list of (type, value)."""

    __slots__ = ("_first", "client", "tlvs", "verify")

    def __init__(self, value):
        self.client = value[0]
        self.verify = int.from_bytes(value[1:5], "big")
        self.tlvs = tlvs = _walk_tlvs(value, 5, len(value))
        self._first = dict(reversed(tlvs))

    @property
    def version(self):
        v = self._first.get(SUBTYPE_SSL_VERSION)
        return None if v is None else v.decode("ascii")

    @property
    def cn(self):
        v = self._first.get(SUBTYPE_SSL_CN)
        return None if v is None else v.decode("utf-8")


def _walk_tlvs(data, pos, end):
    """TLVs in ``data[pos:end]`` as a list of (type, value); raises if they do not frame."""
    out = []
    while pos < end:
        if pos + 3 > end:
            raise InvalidHeaderError("TLV header crosses the end of the header")
        t = data[pos]
        n = data[pos + 1] << 8 | data[pos + 2]
        pos += 3
        stop = pos + n
        if stop > end:
            raise InvalidHeaderError("TLV value crosses the end of the header")
        out.append((t, data[pos:stop]))
        pos = stop
    return out


def _read_tlvs(data, pos, end, verify_checksum):
    """Walk, validate and (optionally) checksum the header's TLVs in one pass.

    Returns the TLV list and a dict of the first value of each type (O(1) typed accessors).
    """
    out = []
    append = out.append
    first = {}
    while pos < end:
        if pos + 3 > end:
            raise InvalidHeaderError("TLV header crosses the end of the header")
        t = data[pos]
        n = data[pos + 1] << 8 | data[pos + 2]
        pos += 3
        stop = pos + n
        if stop > end:
            raise InvalidHeaderError("TLV value crosses the end of the header")
        v = data[pos:stop]
        append((t, v))
        if t not in first:
            first[t] = v
        pos = stop
        if t < 0x03 or t > 0x20:
            continue
        if t == TYPE_CRC32C:
            if n != 4:
                raise InvalidHeaderError("CRC32C TLV is not 4 bytes")
            if verify_checksum:
                crc = crc32c(data[: stop - 4])
                crc = crc32c(b"\x00\x00\x00\x00", crc)
                crc = crc32c(data[stop:end], crc)
                if crc != int.from_bytes(v, "big"):
                    raise InvalidHeaderError("CRC32C mismatch")
        elif t == TYPE_SSL:
            if n < 5:
                raise InvalidHeaderError("SSL TLV shorter than 5 bytes")
            sub = pos - n + 5  # the sub-TLVs must frame exactly inside the value
            while sub < stop:
                if sub + 3 > stop:
                    raise InvalidHeaderError("SSL sub-TLV header crosses the end")
                sub += 3 + (data[sub + 1] << 8 | data[sub + 2])
            if sub != stop:
                raise InvalidHeaderError("SSL sub-TLV value crosses the end")
        elif t == TYPE_UNIQUE_ID and n > 128:
            raise InvalidHeaderError("UNIQUE_ID over 128 bytes")
    return out, first


def _port(text):
    # str.isdigit() is Unicode-aware, but the line was decoded as ASCII first.
    if not text.isdigit() or (text[0] == "0" and len(text) > 1):
        raise InvalidHeaderError("bad port")
    port = int(text)
    if port > 65535:
        raise InvalidHeaderError("port out of range")
    return port


def _parse_v1(data):
    end = data.find(b"\r\n", 0, MAX_V1_SIZE)
    if end < 0:
        if len(data) >= MAX_V1_SIZE or data.find(b"\n", 0, MAX_V1_SIZE) >= 0:
            raise InvalidHeaderError("no CRLF within 107 bytes")
        raise IncompleteHeaderError("v1 line not finished")
    try:
        parts = data[6:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise InvalidHeaderError("non-ASCII v1 line") from None
    proto = parts[0]
    if proto == "TCP4":
        if len(parts) != 5:
            raise InvalidHeaderError("v1 line needs 6 fields")
        _, src, dst, sport, dport = parts
        try:
            # glibc's inet_pton rejects leading zeros and short forms for IPv4.
            inet_pton(AF_INET, src)
            inet_pton(AF_INET, dst)
        except (OSError, ValueError):
            raise InvalidHeaderError("bad IPv4 address") from None
        fam = 1
    elif proto == "TCP6":
        if len(parts) != 5:
            raise InvalidHeaderError("v1 line needs 6 fields")
        _, src, dst, sport, dport = parts
        try:
            # Canonical text (RFC 5952); zone ids make inet_pton fail.
            src = inet_ntop(AF_INET6, inet_pton(AF_INET6, src))
            dst = inet_ntop(AF_INET6, inet_pton(AF_INET6, dst))
        except (OSError, ValueError):
            raise InvalidHeaderError("bad IPv6 address") from None
        fam = 2
    elif proto == "UNKNOWN":
        return _new(Header, (1, 1, 0, 0, None, None, end + 2, (), data[: end + 2], _EMPTY))
    else:
        raise InvalidHeaderError("bad v1 protocol")
    return _new(
        Header,
        (
            1,
            1,
            fam,
            1,
            (src, _port(sport)),
            (dst, _port(dport)),
            end + 2,
            (),
            data[: end + 2],
            _EMPTY,
        ),
    )


def _unix_path(raw):
    if raw[:1] == b"\x00":
        return raw.rstrip(b"\x00")
    return raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def parse(data, *, verify_checksum=True, max_size=4096):
    """Parse one header at the start of ``data`` (bytes); payload after it is left alone.

    The v2 path is inline (one Python call per header) and reads the fixed part by indexing,
    which is cheaper than a Struct call for four small fields.
    """
    if not data or data[0] != 0x0D:
        if data[:6] == b"PROXY ":
            return _parse_v1(data)
        n = len(data)
        if n < 6 and data == b"PROXY "[:n]:
            raise IncompleteHeaderError("not enough bytes to tell")
        raise InvalidHeaderError("not a PROXY header")
    n = len(data)
    if data[:12] != V2_SIGNATURE:
        if n < 12 and data == V2_SIGNATURE[:n]:
            raise IncompleteHeaderError("not enough bytes to tell")
        raise InvalidHeaderError("bad v2 signature")
    if n < 16:
        raise IncompleteHeaderError("v2 fixed part not finished")
    ver_cmd = data[12]
    fam_proto = data[13]
    total = 16 + (data[14] << 8 | data[15])
    if ver_cmd != 0x21 and ver_cmd != 0x20:
        raise InvalidHeaderError("bad version or command")
    if total > max_size:
        raise InvalidHeaderError("header too large")
    if n < total:
        raise IncompleteHeaderError("v2 header not finished")
    family = fam_proto >> 4
    protocol = fam_proto & 0x0F
    source = destination = None
    if ver_cmd == 0x21:
        if family > 3 or protocol > 2:
            raise InvalidHeaderError("bad family or protocol")
        if family == 1 and protocol:
            if total < 28:
                raise InvalidHeaderError("address block too short")
            s, d, sp, dp = _V4_BLOCK.unpack_from(data, 16)
            source = (inet_ntop(AF_INET, s), sp)
            destination = (inet_ntop(AF_INET, d), dp)
            tlv_start = 28
        elif family == 2 and protocol:
            if total < 52:
                raise InvalidHeaderError("address block too short")
            s, d, sp, dp = _V6_BLOCK.unpack_from(data, 16)
            source = (inet_ntop(AF_INET6, s), sp)
            destination = (inet_ntop(AF_INET6, d), dp)
            tlv_start = 52
        elif family == 3 and protocol:
            if total < 232:
                raise InvalidHeaderError("address block too short")
            source = _unix_path(data[16:124])
            destination = _unix_path(data[124:232])
            tlv_start = 232
        else:
            tlv_start = total  # UNSPEC: addresses unusable, nothing to read
    else:
        # LOCAL: addresses ignored; TLVs read from byte 16 (what HAProxy does).
        family = protocol = 0
        tlv_start = 16
    if tlv_start < total:
        tlvs, first = _read_tlvs(data, tlv_start, total, verify_checksum)
    else:
        tlvs, first = _NO_TLVS
    return _new(
        Header,
        (2, ver_cmd & 1, family, protocol, source, destination, total, tlvs, data[:total], first),
    )


def _lean_v1(data):
    end = data.find(b"\r\n", 0, MAX_V1_SIZE)
    if end < 0:
        if len(data) >= MAX_V1_SIZE or b"\n" in data[:MAX_V1_SIZE]:
            raise ValueError("no CRLF within 107 bytes")
        return None
    parts = data[6:end].split(b" ")
    proto = parts[0]
    if proto == b"UNKNOWN":
        return None, None, end + 2, _EMPTY
    if len(parts) != 5 or (proto != b"TCP4" and proto != b"TCP6"):
        raise ValueError("bad v1 line")
    _, src, dst, sport, dport = parts
    try:
        src = src.decode("ascii")
        dst = dst.decode("ascii")
        if proto == b"TCP4":
            inet_pton(AF_INET, src)  # glibc: no leading zeros, no short forms
            inet_pton(AF_INET, dst)
        else:
            src = inet_ntop(AF_INET6, inet_pton(AF_INET6, src))
            dst = inet_ntop(AF_INET6, inet_pton(AF_INET6, dst))
    except (OSError, ValueError):
        raise ValueError("bad address") from None
    # bytes.isdigit() is ASCII-only; no sign, no leading zero.
    if (
        not (sport.isdigit() and dport.isdigit())
        or sport[:1] == b"0" != sport
        or (dport[:1] == b"0" != dport)
    ):
        raise ValueError("bad port")
    sp = int(sport)
    dp = int(dport)
    if sp > 65535 or dp > 65535:
        raise ValueError("port out of range")
    return (src, sp), (dst, dp), end + 2, _EMPTY


def lean_parse(data, verify_checksum=True, max_size=4096):
    """``(source, destination, length, tlvs)`` of the header at the start of ``data``, or
    None when more bytes are needed; ValueError when invalid. ``tlvs`` maps each TLV type to
    its first value (checked: framing, CRC32C of 4 bytes and verified, UNIQUE_ID <= 128,
    SSL >= 5 bytes with whole sub-TLVs)."""
    if data[:6] == b"PROXY ":
        return _lean_v1(data)
    if data[:12] != V2_SIGNATURE:
        if (len(data) < 12 and V2_SIGNATURE.startswith(data)) or b"PROXY ".startswith(data):
            return None
        raise ValueError("not a PROXY header")
    if len(data) < 16:
        return None
    ver_cmd = data[12]
    total = 16 + (data[14] << 8 | data[15])
    if (ver_cmd != 0x21 and ver_cmd != 0x20) or total > max_size:
        raise ValueError("bad version, command or length")
    if len(data) < total:
        return None
    fam_proto = data[13]
    source = destination = None
    pos = 16
    if ver_cmd == 0x21:
        if fam_proto == 0x11 or fam_proto == 0x12:
            if total < 28:
                raise ValueError("address block too short")
            s, d, sp, dp = _V4_BLOCK.unpack_from(data, 16)
            source = (inet_ntop(AF_INET, s), sp)
            destination = (inet_ntop(AF_INET, d), dp)
            pos = 28
        elif fam_proto == 0x21 or fam_proto == 0x22:
            if total < 52:
                raise ValueError("address block too short")
            s, d, sp, dp = _V6_BLOCK.unpack_from(data, 16)
            source = (inet_ntop(AF_INET6, s), sp)
            destination = (inet_ntop(AF_INET6, d), dp)
            pos = 52
        elif fam_proto >> 4 > 3 or fam_proto & 15 > 2:
            raise ValueError("bad family or protocol")
        else:
            pos = total  # UNSPEC or UNIX: not served by this server
    if pos == total:
        return source, destination, total, _EMPTY
    tlvs = {}
    while pos < total:
        if pos + 3 > total:
            raise ValueError("TLV crosses the end")
        t = data[pos]
        stop = pos + 3 + (data[pos + 1] << 8 | data[pos + 2])
        if stop > total:
            raise ValueError("TLV crosses the end")
        v = data[pos + 3 : stop]
        if t not in tlvs:
            tlvs[t] = v
        if t == TYPE_CRC32C:
            if stop - pos != 7:
                raise ValueError("CRC32C TLV is not 4 bytes")
            if verify_checksum:
                crc = crc32c(data[: pos + 3])
                crc = crc32c(b"\x00\x00\x00\x00", crc)
                if crc32c(data[stop:total], crc) != int.from_bytes(v, "big"):
                    raise ValueError("CRC32C mismatch")
        elif t == TYPE_SSL:
            sub = pos + 8
            if sub > stop:
                raise ValueError("SSL TLV shorter than 5 bytes")
            while sub < stop:
                if sub + 3 > stop:
                    raise ValueError("SSL sub-TLV crosses the end")
                sub += 3 + (data[sub + 1] << 8 | data[sub + 2])
            if sub != stop:
                raise ValueError("SSL sub-TLV crosses the end")
        elif t == TYPE_UNIQUE_ID and stop - pos > 131:
            raise ValueError("UNIQUE_ID over 128 bytes")
        pos = stop
    return source, destination, total, tlvs


def lean_ssl(value):
    """The sub-TLVs of an SSL value ``lean_parse`` accepted, first value of each type."""
    subs = {}
    pos = 5
    end = len(value)
    while pos < end:
        t = value[pos]
        stop = pos + 3 + (value[pos + 1] << 8 | value[pos + 2])
        if t not in subs:
            subs[t] = value[pos + 3 : stop]
        pos = stop
    return subs


class Parser:
    """Incremental parser: ``feed(bytes)`` returns the Header once complete, else None."""

    __slots__ = ("_buf", "_max", "_need", "_v1", "header", "trailing_data")

    def __init__(self, *, max_size=4096):
        self._buf = b""
        self._need = 1
        self._v1 = False
        self.header = None
        self.trailing_data = b""
        self._max = max_size

    def feed(self, data):
        if self.header is not None:
            self.trailing_data += data
            return self.header
        buf = self._buf + data if self._buf else bytes(data)
        if len(buf) < self._need or (self._v1 and b"\n" not in data and len(buf) < MAX_V1_SIZE):
            # v1: nothing new to decide until a LF arrives (or the 107-byte cap is reached).
            self._buf = buf
            return None
        try:
            header = parse(buf, max_size=self._max)
        except IncompleteHeaderError:
            self._buf = buf
            if buf[:1] == b"\r":
                if len(buf) < 16:
                    if buf != V2_SIGNATURE[: len(buf)]:
                        raise InvalidHeaderError("bad v2 signature") from None
                    self._need = 16
                else:
                    self._need = 16 + int.from_bytes(buf[14:16], "big")
            else:
                if len(buf) < 6 and buf != b"PROXY "[: len(buf)]:
                    raise InvalidHeaderError("not a PROXY header") from None
                self._need = len(buf) + 1
                self._v1 = True
            return None
        self.header = header
        self.trailing_data = buf[header.length :]
        self._buf = b""
        return header


# ----------------------------------------------------------------------------- builders


def _addr_pair(source, destination):
    """Validate two (host, port) pairs; return (family, packed_src, packed_dst, ports)."""
    try:
        shost, sport = source[0], source[1]
        dhost, dport = destination[0], destination[1]
        fam = AF_INET6 if ":" in shost else AF_INET
        src = inet_pton(fam, shost)
        dst = inet_pton(fam, dhost)
    except (OSError, TypeError, IndexError, ValueError):
        raise ValueError("bad address") from None
    if not (0 <= sport <= 65535 and 0 <= dport <= 65535):
        raise ValueError("port out of range")
    return fam, src, dst, sport, dport


def build_v1(source=None, destination=None):
    """``PROXY TCP4|TCP6 src dst sport dport\\r\\n``; no addresses: ``PROXY UNKNOWN\\r\\n``."""
    if source is None and destination is None:
        return b"PROXY UNKNOWN\r\n"
    fam, src, dst, sport, dport = _addr_pair(source, destination)
    if fam == AF_INET:
        # inet_pton accepted it, so the text is canonical dotted-quad already.
        return b"PROXY TCP4 %s %s %d %d\r\n" % (
            source[0].encode(),
            destination[0].encode(),
            sport,
            dport,
        )
    return b"PROXY TCP6 %s %s %d %d\r\n" % (
        inet_ntop(AF_INET6, src).encode(),
        inet_ntop(AF_INET6, dst).encode(),
        sport,
        dport,
    )


def build_v2(
    source=None,
    destination=None,
    *,
    tlvs=(),
    crc=False,
    alpn=None,
    authority=None,
    unique_id=None,
    aws_vpce_id=None,
):
    """A v2 header; TLV order as proxyproto_rs: CRC32C, ALPN, AUTHORITY, UNIQUE_ID, AWS, tlvs."""
    if source is None and destination is None:
        fixed = V2_SIGNATURE + b"\x20\x00"
        block = b""
    else:
        fam, src, dst, sport, dport = _addr_pair(source, destination)
        if fam == AF_INET:
            fixed = V2_SIGNATURE + b"\x21\x11"
            block = _V4_BLOCK.pack(src, dst, sport, dport)
        else:
            fixed = V2_SIGNATURE + b"\x21\x21"
            block = _V6_BLOCK.pack(src, dst, sport, dport)
    parts = []
    pack = _TLV_HEAD.pack
    if crc:
        parts.append(b"\x03\x00\x04\x00\x00\x00\x00")
    if alpn is not None:
        parts.append(pack(TYPE_ALPN, len(alpn)))
        parts.append(alpn)
    if authority is not None:
        v = authority.encode("utf-8")
        parts.append(pack(TYPE_AUTHORITY, len(v)))
        parts.append(v)
    if unique_id is not None:
        if len(unique_id) > 128:
            raise ValueError("UNIQUE_ID over 128 bytes")
        parts.append(pack(TYPE_UNIQUE_ID, len(unique_id)))
        parts.append(unique_id)
    if aws_vpce_id is not None:
        v = aws_vpce_id.encode("ascii")
        parts.append(pack(TYPE_AWS, len(v) + 1))
        parts.append(b"\x01")
        parts.append(v)
    for t, v in tlvs:
        if len(v) > 65535:
            raise ValueError("TLV value over 65535 bytes")
        parts.append(pack(t, len(v)))
        parts.append(v)
    body = block + b"".join(parts) if parts else block
    if len(body) > 65535:
        raise ValueError("header too large")
    out = fixed + len(body).to_bytes(2, "big") + body
    if crc:
        at = 16 + len(block) + 3
        return out[:at] + _U32.pack(crc32c(out)) + out[at + 4 :]
    return out
