"""Everything the subcommands print: header reports (text and JSON), endpoints, hex dumps and
error records.

Text goes to people, JSON to programs. The writers here are the only ones that touch stdout
and stderr, so each subcommand renders through the same few functions.

Terminal safety: every field a peer controls (UNIX paths, abstract names, TLV text, error
messages, corpus file names) goes through ``escape`` before it is printed as text, so no
control character, bidi override or invalid UTF-8 reaches a terminal; the escapes are
visible and unambiguous (a literal backslash is doubled). JSON is written with
``ensure_ascii``: lossless, and as safe.
"""

from __future__ import annotations

import codecs
import json
import sys
from typing import Final

from proxyproto_rs._core import Header, Tlv
from proxyproto_rs._enums import Family, Protocol
from proxyproto_rs._errors import ProxyProtocolError
from proxyproto_rs.cli._common import JSON

# --------------------------------------------------------------------------- escaping

_NAMED_ESCAPES: Final = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(value: str | bytes) -> str:
    r"""*value* as printable text: ``\\``, ``\n``, ``\r``, ``\t`` named; other ASCII
    controls as ``\xHH``; a byte that is not UTF-8 (from bytes, or a surrogate escape the
    codec uses for such a byte) as ``\xHH`` too; any other non-printable character (C1
    controls, bidi overrides, zero-width and line separators) as ``\uHHHH``."""
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    named = _NAMED_ESCAPES.get(ch)
    if named is not None:
        return named
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def error_text(exc: BaseException) -> str:
    """An exception's message, escaped: messages may quote what the peer sent."""
    return escape(str(exc))


def make_output_safe() -> None:
    """Never let an unencodable character end a command in a traceback: a printable
    character the stream cannot encode (``é`` on an ASCII terminal) is written as
    ``\\uHHHH``, the same escape ``escape`` uses, never ``\\xHH`` (which means a byte that
    is not UTF-8)."""
    codecs.register_error(_ERRORS, _unencodable)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors=_ERRORS)


_ERRORS: Final = "proxyproto_rs.cli.escape"


def _unencodable(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(
        f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}" for c in bad
    ), exc.end


# --------------------------------------------------------------------------- writers


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def json_line(obj: JSON) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- endpoints


def format_endpoint(addr: object) -> str:
    """Text form of a socket or header address: ``1.2.3.4:5``, ``[::1]:5``, a path."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = escape(str(addr[0])), addr[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(addr, bytes):
        return "@" + escape(addr[1:])
    if addr is None or addr == "":
        return "-"
    return escape(str(addr))


def endpoint_json(addr: object) -> JSON | None:
    if addr is None:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return {"host": str(addr[0]), "port": int(addr[1])}
    if isinstance(addr, bytes):
        return {"abstract": addr[1:].decode("utf-8", "surrogateescape")}
    return {"path": str(addr)}


# --------------------------------------------------------------------------- headers

TLV_NAMES: Final[dict[int, str]] = {
    0x01: "ALPN",
    0x02: "AUTHORITY",
    0x03: "CRC32C",
    0x04: "NOOP",
    0x05: "UNIQUE_ID",
    0x20: "SSL",
    0x30: "NETNS",
    0xEA: "AWS",
    0xEE: "AZURE",
}
SSL_SUB_NAMES: Final[dict[int, str]] = {
    0x21: "SSL_VERSION",
    0x22: "SSL_CN",
    0x23: "SSL_CIPHER",
    0x24: "SSL_SIG_ALG",
    0x25: "SSL_KEY_ALG",
    0x26: "SSL_GROUP",
    0x27: "SSL_SIG_SCHEME",
    0x28: "SSL_CLIENT_CERT",
}


def tlv_name(kind: int) -> str:
    """The registry name of a TLV type (SPEC rules 32-40)."""
    name = TLV_NAMES.get(kind) or SSL_SUB_NAMES.get(kind)
    if name:
        return name
    if 0xE0 <= kind <= 0xEF:
        return "CUSTOM"
    if 0xF0 <= kind <= 0xF7:
        return "EXPERIMENTAL"
    if kind >= 0xF8:
        return "FUTURE"
    return "UNASSIGNED"


def _text_or_hex(value: bytes) -> str:
    if value and all(0x20 <= b < 0x7F for b in value):
        return repr(value.decode())
    return "0x" + value.hex() if value else "(empty)"


def header_json(header: Header) -> JSON:
    """A JSON-ready dict of every field; typed TLV views appear only when present."""
    obj: JSON = {
        "version": header.version,
        "command": header.command.name,
        "family": header.family.name,
        "protocol": header.protocol.name,
        "source": endpoint_json(header.source),
        "destination": endpoint_json(header.destination),
        "length": header.length,
        "tlvs": [
            {"type": t.type, "name": tlv_name(t.type), "length": len(t.value), "hex": t.value.hex()}
            for t in header.tlvs
        ],
    }
    if header.alpn is not None:
        obj["alpn"] = header.alpn.decode("utf-8", "surrogateescape")
    if header.authority is not None:
        obj["authority"] = header.authority
    if header.crc32c is not None:
        obj["crc32c"] = header.crc32c
    if header.unique_id is not None:
        obj["unique_id"] = header.unique_id.hex()
    if header.netns is not None:
        obj["netns"] = header.netns
    if header.aws_vpce_id is not None:
        obj["aws_vpce_id"] = header.aws_vpce_id
    if header.azure_link_id is not None:
        obj["azure_link_id"] = header.azure_link_id
    ssl = header.ssl
    if ssl is not None:
        obj["ssl"] = {
            "client": ssl.client,
            "verify": ssl.verify,
            "client_cert_verified": ssl.client_cert_verified,
            "version": ssl.version,
            "cn": ssl.cn,
            "cipher": ssl.cipher,
            "sig_alg": ssl.sig_alg,
            "key_alg": ssl.key_alg,
            "group": ssl.group,
            "sig_scheme": ssl.sig_scheme,
            "client_cert": None if ssl.client_cert is None else ssl.client_cert.hex(),
        }
    obj["hex"] = header.to_bytes().hex()
    return obj


def _family_text(header: Header) -> str:
    if header.version == 1:
        return {Family.INET: "TCP4", Family.INET6: "TCP6"}.get(header.family, "UNKNOWN")
    names = {
        (Family.INET, Protocol.STREAM): "TCP over IPv4",
        (Family.INET, Protocol.DGRAM): "UDP over IPv4",
        (Family.INET6, Protocol.STREAM): "TCP over IPv6",
        (Family.INET6, Protocol.DGRAM): "UDP over IPv6",
        (Family.UNIX, Protocol.STREAM): "UNIX stream",
        (Family.UNIX, Protocol.DGRAM): "UNIX datagram",
    }
    return names.get(
        (header.family, header.protocol), f"{header.family.name}/{header.protocol.name}"
    )


def header_summary(header: Header) -> str:
    """One line: ``v2 PROXY TCP over IPv4 203.0.113.7:51234 -> 10.0.0.5:443 [CRC32C]``."""
    parts = [f"v{header.version}", header.command.name, _family_text(header)]
    if header.source is not None:
        parts.append(f"{format_endpoint(header.source)} -> {format_endpoint(header.destination)}")
    if header.tlvs:
        parts.append("[" + ", ".join(tlv_name(t.type) for t in header.tlvs) + "]")
    parts.append(f"({header.length} bytes)")
    return " ".join(parts)


def header_lines(header: Header) -> list[str]:
    """The text report of ``decode``: one field per line, TLVs indented."""
    lines = [
        f"version      {header.version} ({'text' if header.version == 1 else 'binary'})",
        f"command      {header.command.name}",
        f"family       {header.family.name} ({_family_text(header)})",
        f"protocol     {header.protocol.name}",
    ]
    if header.source is None:
        lines.append("source       - (use the connection's own addresses)")
        lines.append("destination  -")
    else:
        lines.append(f"source       {format_endpoint(header.source)}")
        lines.append(f"destination  {format_endpoint(header.destination)}")
    lines.append(f"length       {header.length} bytes")
    if header.version == 2:
        lines.append(f"tlvs         {len(header.tlvs)}")
    for tlv in header.tlvs:
        lines.append(
            f"  0x{tlv.type:02X} {tlv_name(tlv.type):<12} {len(tlv.value):>5} B"
            f"  {_tlv_detail(header, tlv)}"
        )
        if tlv.type == 0x20 and header.ssl is not None:
            lines += [
                f"       0x{sub.type:02X} {tlv_name(sub.type):<15} "
                + (
                    f"{len(sub.value)} bytes of DER"
                    if sub.type == 0x28
                    else _text_or_hex(sub.value)
                )
                for sub in header.ssl.tlvs
            ]
    return lines


def _tlv_detail(header: Header, tlv: Tlv) -> str:
    """The value of a TLV as ``decode`` shows it: decoded where the type says how."""
    ssl = header.ssl
    if tlv.type == 0x03 and header.crc32c is not None:
        return f"0x{header.crc32c:08x}"
    if tlv.type == 0x04:
        return f"{len(tlv.value)} bytes of padding"
    if tlv.type == 0xEA and header.aws_vpce_id is not None:
        return f"vpce_id={escape(header.aws_vpce_id)}"
    if tlv.type == 0xEE and header.azure_link_id is not None:
        return f"link_id={header.azure_link_id}"
    if tlv.type == 0xE0 and header.gcp_psc_connection_id is not None:
        gcp = header.gcp_psc_connection_id
        return f"{_text_or_hex(tlv.value)} (as GCP pscConnectionId: {gcp})"
    if tlv.type == 0x20 and ssl is not None:
        return (
            f"client=0x{ssl.client:02x} verify={ssl.verify}"
            f" cert_verified={ssl.client_cert_verified}"
        )
    return _text_or_hex(tlv.value)


def hexdump_around(data: bytes, offset: int, *, context: int = 32) -> list[str]:
    """Rows of 16 bytes around *offset*, with ``^^`` under the offending byte."""
    if not data:
        return ["(no bytes)"]
    at = min(max(offset, 0), len(data))
    first = max(0, (at - context) // 16 * 16)
    last = min(len(data), (at + context) // 16 * 16 + 16)
    rows: list[str] = []
    for row in range(first, last, 16):
        chunk = data[row : row + 16]
        cells = " ".join(f"{b:02x}" for b in chunk[:8])
        if len(chunk) > 8:
            cells += "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        rows.append(f"{row:08x}  {cells:<48}  |{text}|")
        if offset >= 0 and row <= at < row + 16:
            i = at - row
            rows.append(" " * (10 + 3 * i + (1 if i >= 8 else 0)) + "^^")
    if offset >= len(data):
        rows.append(f"(offset {offset} is past the {len(data)} bytes given: more were expected)")
    return rows


def error_json(exc: ProxyProtocolError) -> JSON:
    return {
        "kind": exc.kind,
        "offset": exc.offset,
        "message": str(exc),
        "type": type(exc).__name__,
    }
