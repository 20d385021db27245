"""The ``proxyproto`` command: decode, encode, scan, inspect, relay and check PROXY headers.

Every subcommand is a small function over the public codec (and :mod:`proxyproto_rs.aio` for
the client side of ``relay``). Only the standard library is used at run time.

Exit status, for every subcommand: 0 success, 1 "the answer is no" (a bad header, nothing
found, findings), 2 bad usage (one line on stderr, never a traceback), 3 an I/O failure
(file missing, address in use, target unreachable), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import mmap
import os
import re
import secrets
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn, TypeAlias

from proxyproto_rs._core import (
    V2_SIGNATURE,
    Header,
    Parser,
    build_v1,
    build_v2,
    crc32c,
    detect,
    find_signature,
    parse,
)
from proxyproto_rs._enums import Command, Family, Protocol
from proxyproto_rs._errors import (
    BuildError,
    HeaderTooLargeError,
    IncompleteHeaderError,
    ProxyProtocolError,
)

__all__ = ["main"]

PROG: Final = "proxyproto"

EXIT_OK: Final = 0
EXIT_NO: Final = 1
EXIT_USAGE: Final = 2
EXIT_IO: Final = 3
EXIT_INTERRUPTED: Final = 130

Endpoint: TypeAlias = tuple[str, int] | str | bytes
"""A header address: ``(ip, port)``, a UNIX path, or an abstract UNIX name (bytes, NUL first)."""

JSON: TypeAlias = dict[str, Any]


class UsageError(Exception):
    """Bad arguments found after argparse: reported like argparse's own errors (exit 2)."""


class IOFailure(Exception):
    """A file or socket could not be used (exit 3)."""


# =========================================================================== output


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _json_line(obj: JSON) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# =========================================================================== addresses


def parse_endpoint(text: str) -> Endpoint:
    """``203.0.113.7:51234``, ``[2001:db8::1]:443``, ``/run/app.sock`` or ``@abstract``.

    Raises:
        UsageError: not one of those forms, a bad IP address or a bad port.
    """
    if text.startswith(("/", "./", "../")):
        return text
    if text.startswith("@"):
        return b"\x00" + text[1:].encode()
    if text.startswith("unix:"):
        return text[5:]
    host, port = split_hostport(text)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"{host!r} is not an IP address (a header carries addresses)") from None
    return (str(ip), port)


def split_hostport(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into ``(host, port)``; host names are kept.

    Raises:
        UsageError: no port, an unbracketed IPv6 address, or a bad port.
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise UsageError(f"{text!r}: write IPv6 as [2001:db8::1]:443")
        host, port_text = text[1:end], text[end + 2 :]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise UsageError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
        if ":" in host:
            raise UsageError(f"{text!r}: write IPv6 as [{host}]:{port_text}")
    if not port_text.isdigit() or (len(port_text) > 1 and port_text[0] == "0"):
        raise UsageError(f"{text!r}: bad port {port_text!r}")
    port = int(port_text)
    if port > 65535:
        raise UsageError(f"{text!r}: port {port} is over 65535")
    return host, port


def format_endpoint(addr: object) -> str:
    """Text form of a socket or header address: ``1.2.3.4:5``, ``[::1]:5``, a path."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = str(addr[0]), addr[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(addr, bytes):
        return "@" + addr[1:].decode(errors="backslashreplace")
    if addr is None or addr == "":
        return "-"
    return str(addr)


def _endpoint_json(addr: object) -> JSON | None:
    if addr is None:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return {"host": str(addr[0]), "port": int(addr[1])}
    if isinstance(addr, bytes):
        return {"abstract": addr[1:].decode(errors="backslashreplace")}
    return {"path": str(addr)}


# =========================================================================== header views

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
        "source": _endpoint_json(header.source),
        "destination": _endpoint_json(header.destination),
        "length": header.length,
        "tlvs": [
            {"type": t.type, "name": tlv_name(t.type), "length": len(t.value), "hex": t.value.hex()}
            for t in header.tlvs
        ],
    }
    if header.alpn is not None:
        obj["alpn"] = header.alpn.decode(errors="backslashreplace")
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
    ssl = header.ssl
    for tlv in header.tlvs:
        name = tlv_name(tlv.type)
        detail = _text_or_hex(tlv.value)
        if tlv.type == 0x03 and header.crc32c is not None:
            detail = f"0x{header.crc32c:08x}"
        elif tlv.type == 0x04:
            detail = f"{len(tlv.value)} bytes of padding"
        elif tlv.type == 0xEA and header.aws_vpce_id is not None:
            detail = f"vpce_id={header.aws_vpce_id}"
        elif tlv.type == 0xEE and header.azure_link_id is not None:
            detail = f"link_id={header.azure_link_id}"
        elif tlv.type == 0xE0 and header.gcp_psc_connection_id is not None:
            detail += f" (as GCP pscConnectionId: {header.gcp_psc_connection_id})"
        elif tlv.type == 0x20 and ssl is not None:
            detail = (
                f"client=0x{ssl.client:02x} verify={ssl.verify}"
                f" cert_verified={ssl.client_cert_verified}"
            )
        lines.append(f"  0x{tlv.type:02X} {name:<12} {len(tlv.value):>5} B  {detail}")
        if tlv.type == 0x20 and ssl is not None:
            for sub in ssl.tlvs:
                sub_detail = (
                    f"{len(sub.value)} bytes of DER"
                    if sub.type == 0x28
                    else _text_or_hex(sub.value)
                )
                lines.append(f"       0x{sub.type:02X} {tlv_name(sub.type):<15} {sub_detail}")
    return lines


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


# =========================================================================== argparse


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``proxyproto decode: error: ...`` and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int_auto(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _max_size(text: str) -> int:
    value = _int_auto(text)
    if not 16 <= value <= 65551:
        raise argparse.ArgumentTypeError(f"must be within 16..65551, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _int_auto(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _tlv_arg(text: str) -> tuple[int, bytes]:
    kind_text, sep, value_text = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected TYPE=HEX (e.g. 0xE1=0102), got {text!r}")
    try:
        kind = int(kind_text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad TLV type {kind_text!r}") from None
    if not 0 <= kind <= 255:
        raise argparse.ArgumentTypeError(f"TLV type {kind_text} is not a byte (0-255)")
    try:
        value = _unhex(value_text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"TLV 0x{kind:02X}: {exc}") from None
    return kind, value


def _endpoint_arg(text: str) -> Endpoint:
    try:
        return parse_endpoint(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hostport_arg(text: str) -> tuple[str, int] | str:
    if text.startswith(("/", "./", "unix:")):
        return text.removeprefix("unix:")
    try:
        return split_hostport(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _unhex(text: str) -> bytes:
    """Hex with optional ``0x``, spaces, colons or dashes between bytes."""
    cleaned = "".join(text.split()).replace(":", "").replace("-", "")
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"not valid hex: {text[:40]!r}") from None


def _unescape(text: str) -> bytes:
    r"""``\r``, ``\n``, ``\t``, ``\0``, ``\\`` and ``\xHH`` escapes, as a shell user types them."""
    out = bytearray()
    i = 0
    simple = {"r": 13, "n": 10, "t": 9, "0": 0, "\\": 92, "'": 39, '"': 34}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
            if nxt == "x" and _is_hex(text[i + 2 : i + 4]):
                out.append(int(text[i + 2 : i + 4], 16))
                i += 4
                continue
        out += ch.encode()
        i += 1
    return bytes(out)


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


# =========================================================================== decode

DECODE_EPILOG = r"""
input:
  A hex argument (spaces, colons and a 0x prefix are fine), --file PATH, or stdin.
  Files and stdin may hold raw bytes or hex text: the format is detected
  (--input raw|hex forces it). Bytes after the header are reported, not decoded.

examples:
  proxyproto decode 50524f5859205443503420...
  printf 'PROXY TCP4 203.0.113.7 10.0.0.5 51234 443\r\n' | proxyproto decode
  proxyproto decode --file header.bin --json | jq .source
  proxyproto encode --source 203.0.113.7:51234 --destination 10.0.0.5:443 --crc32c \
      | proxyproto decode

exit status: 0 a valid header, 1 not a valid header (kind, offset and the bytes
around it are shown), 2 bad usage, 3 the file cannot be read.
"""


def _read_input(args: argparse.Namespace) -> bytes:
    if args.hex is not None:
        if args.file is not None:
            raise UsageError("give either a hex argument or --file, not both")
        if args.hex.startswith("PROXY"):  # a v1 line typed on the command line
            return _unescape(args.hex)
        try:
            return _unhex(args.hex)
        except ValueError as exc:
            raise UsageError(f"{exc}; use --file for raw bytes") from None
    if args.file is not None and args.file != "-":
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise IOFailure(f"cannot read {args.file}: {exc.strerror or exc}") from None
    else:
        if sys.stdin.isatty():
            raise UsageError("no input: give hex, --file PATH, or pipe bytes into stdin")
        data = sys.stdin.buffer.read()
    mode = args.input
    if mode == "raw":
        return data
    if mode == "hex":
        try:
            return _unhex(data.decode("ascii", errors="strict"))
        except (UnicodeDecodeError, ValueError):
            raise UsageError("--input hex: the input is not hex text") from None
    # auto: raw if it starts like a header, hex if it is all hex digits, else raw.
    if data.startswith((b"PROXY", V2_SIGNATURE[:4])):
        return data
    stripped = b"".join(data.split())
    if stripped:
        try:
            return _unhex(stripped.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    return data


def cmd_decode(args: argparse.Namespace) -> int:
    data = _read_input(args)
    try:
        header = parse(
            data,
            verify_checksum=not args.no_verify_checksum,
            max_size=args.max_size,
            haproxy_limits=args.haproxy_limits,
        )
    except ProxyProtocolError as exc:
        if args.json:
            _json_line({"ok": False, "error": error_json(exc), "input_length": len(data)})
        else:
            what = "" if isinstance(exc, IncompleteHeaderError) else "not a valid header: "
            _err(f"{PROG} decode: {what}{exc}")
            _err(f"  kind:   {exc.kind} ({type(exc).__name__})")
            _err(f"  offset: {exc.offset}")
            for row in hexdump_around(data, exc.offset):
                _err("  " + row)
        return EXIT_NO
    payload = data[header.length :]
    stacked = detect(payload) in (1, 2) if payload else False
    if args.json:
        _json_line(
            {
                "ok": True,
                "header": header_json(header),
                "payload_length": len(payload),
                "payload_starts_with_header": stacked,
            }
        )
        return EXIT_OK
    for line in header_lines(header):
        _out(line)
    _out(f"payload      {len(payload)} bytes after the header")
    if stacked:
        _out("note         the payload starts with another PROXY header (two headers stacked?)")
    return EXIT_OK


# =========================================================================== encode

ENCODE_EPILOG = r"""
addresses:
  203.0.113.7:51234   [2001:db8::1]:443   /run/app.sock (UNIX)   @name (abstract UNIX)
  v1 needs TCP addresses; v1 without addresses is "PROXY UNKNOWN", v2 without
  addresses is LOCAL (a health check). --local keeps the addresses but says LOCAL.

output:
  Raw bytes when stdout is a pipe or a file, hex on a terminal; --raw or --hex
  forces either.

examples:
  proxyproto encode --source 203.0.113.7:51234 --destination 10.0.0.5:443 --hex
  proxyproto encode --v1 --source [2001:db8::1]:51234 --destination [2001:db8::5]:443
  proxyproto encode --source 203.0.113.7:51234 --destination 10.0.0.5:443 \
      --aws-vpce-id vpce-08d2bf15fac5001c9 --crc32c > nlb-header.bin
  proxyproto encode --local --crc32c --hex                 # an NLB-style health check
  (proxyproto encode --source 203.0.113.7:1 --destination 127.0.0.1:8080; \
      printf 'GET / HTTP/1.0\r\n\r\n') | nc 127.0.0.1 8080

exit status: 0 header written, 2 bad usage or a header that cannot exist.
"""


@dataclass(frozen=True)
class TlvOptions:
    """The TLV flags ``encode`` and ``relay`` share."""

    authority: str | None = None
    alpn: bytes | None = None
    unique_id: bytes | None = None
    aws_vpce_id: str | None = None
    netns: str | None = None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    crc32c: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TlvOptions:
        return cls(
            authority=args.authority,
            alpn=None if args.alpn is None else args.alpn.encode(),
            unique_id=None if args.unique_id is None else args.unique_id.encode(),
            aws_vpce_id=args.aws_vpce_id,
            netns=args.netns,
            tlvs=tuple(args.tlv or ()),
            crc32c=args.crc32c,
        )

    def any(self) -> bool:
        return self != TlvOptions()


def _add_tlv_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("v2 TLVs")
    g.add_argument("--authority", metavar="HOST", help="AUTHORITY (0x02): the TLS SNI host name")
    g.add_argument("--alpn", metavar="PROTO", help="ALPN (0x01), e.g. h2 or http/1.1")
    g.add_argument("--unique-id", metavar="TEXT", help="UNIQUE_ID (0x05), at most 128 bytes")
    g.add_argument(
        "--aws-vpce-id", metavar="ID", help="AWS (0xEA/0x01): the PrivateLink VPC endpoint id"
    )
    g.add_argument("--netns", metavar="NAME", help="NETNS (0x30): network namespace name")
    g.add_argument(
        "--tlv",
        metavar="TYPE=HEX",
        type=_tlv_arg,
        action="append",
        help="any TLV, repeatable, e.g. --tlv 0xE1=0102ff (written after the named ones)",
    )
    g.add_argument(
        "--crc32c", action="store_true", help="add a CRC32C TLV (0x03) over the whole header"
    )


def build_header(
    version: int,
    source: Endpoint | None,
    destination: Endpoint | None,
    tlvs: TlvOptions,
    *,
    local: bool = False,
    dgram: bool = False,
) -> bytes:
    """The bytes ``encode`` writes (and ``relay`` sends per connection).

    Raises:
        UsageError: a combination v1 cannot express, or one address without the other.
        BuildError: from the core (bad port, mixed families...).
    """
    if (source is None) != (destination is None):
        raise UsageError("give both --source and --destination, or neither")
    if version == 1:
        if tlvs.any():
            raise UsageError("TLV options need v2 (drop --v1)")
        if local:
            raise UsageError("v1 has no LOCAL command; omit the addresses for PROXY UNKNOWN")
        if dgram:
            raise UsageError("v1 describes TCP only; --dgram needs v2")
        for addr in (source, destination):
            if addr is not None and not isinstance(addr, tuple):
                raise UsageError("v1 carries TCP addresses only; UNIX paths need v2")
        return build_v1(source, destination)
    return build_v2(
        source,
        destination,
        command=Command.LOCAL if local else None,
        protocol=(
            Protocol.DGRAM if dgram else Protocol.UNSPEC if source is None else Protocol.STREAM
        ),
        tlvs=tlvs.tlvs,
        crc32c=tlvs.crc32c,
        alpn=tlvs.alpn,
        authority=tlvs.authority,
        unique_id=tlvs.unique_id,
        netns=tlvs.netns,
        aws_vpce_id=tlvs.aws_vpce_id,
    )


def cmd_encode(args: argparse.Namespace) -> int:
    version = 1 if args.v1 else 2
    try:
        data = build_header(
            version,
            args.source,
            args.destination,
            TlvOptions.from_args(args),
            local=args.local,
            dgram=args.dgram,
        )
    except BuildError as exc:
        raise UsageError(f"cannot build this header: {exc}") from None
    raw = args.raw or (not args.hex and not sys.stdout.isatty())
    if raw:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        _out(data.hex())
    return EXIT_OK


# =========================================================================== scan

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
            _err(self._text(done))

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
            _err(self._text(self.total))


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


# -- pcap / pcapng ---------------------------------------------------------------------

_PCAP_MAGICS: Final = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",  # nanosecond resolution
    b"\xa1\xb2\x3c\x4d": ">",
}
_PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"

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
    endian = _PCAP_MAGICS[bytes(buf[:4])]
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
        if block_type_raw == _PCAPNG_SHB:
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

    @property
    def label(self) -> str:
        src, sport, dst, dport = self.key
        return f"{format_endpoint((src, sport))} > {format_endpoint((dst, dport))}"

    def locate(self, stream_offset: int) -> tuple[int, int]:
        """``(packet, file offset)`` of a byte of the joined payload."""
        for seg in self.segments:
            if seg.stream_offset <= stream_offset < seg.stream_offset + seg.length:
                return seg.packet, seg.file_offset + (stream_offset - seg.stream_offset)
        last = self.segments[-1]
        return last.packet, last.file_offset + last.length


def _ip_payload(packet: Packet) -> tuple[int, str, str, memoryview, int] | None:
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
            parsed = _ip_payload(packet)
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
                        flow=flow.label,
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


def cmd_scan(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise IOFailure(f"cannot read {args.file}: {exc.strerror or exc}") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            _err(f"{PROG} scan: {args.file} is empty")
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
                if magic in _PCAP_MAGICS:
                    kind = "pcap"
                elif magic == _PCAPNG_SHB:
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
                if magic not in _PCAP_MAGICS and kind == "pcap":
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
                        _json_line(_found_json(found))
                    else:
                        _out(_found_text(found))
            except CaptureError as exc:
                _err(f"{PROG} scan: {args.file}: {exc}; results above are complete up to it")
            except (struct.error, IndexError) as exc:
                _err(f"{PROG} scan: {args.file}: damaged capture ({exc}); stopped")
            progress.finish()
        finally:
            # A slice still referenced somewhere pins the map: then the OS unmaps at exit.
            with contextlib.suppress(BufferError):
                view.release()
                if isinstance(mapped, mmap.mmap):
                    mapped.close()
    if not args.json:
        _err(f"{count} header(s) found in {args.file} ({kind})")
    return EXIT_OK if count else EXIT_NO


# =========================================================================== servers


async def _start_listener(
    listen: tuple[str, int] | str,
    callback: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
) -> asyncio.Server:
    try:
        if isinstance(listen, str):
            return await asyncio.start_unix_server(callback, listen)
        return await asyncio.start_server(callback, listen[0], listen[1], reuse_address=True)
    except OSError as exc:
        raise IOFailure(
            f"cannot listen on {format_endpoint(listen)}: {exc.strerror or exc}"
        ) from None


def _bound(server: asyncio.Server) -> str:
    names = [format_endpoint(s.getsockname()) for s in server.sockets]
    return ", ".join(names)


class Counter:
    """Stops the command after ``limit`` connections are finished (``--count``)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.done = 0
        self.event = asyncio.Event()

    def tick(self) -> None:
        self.done += 1
        if self.limit is not None and self.done >= self.limit:
            self.event.set()


async def _serve_until(server: asyncio.Server, counter: Counter) -> None:
    async with server:
        await counter.event.wait()
    # Let the handlers of the last connections finish their writes.
    await asyncio.sleep(0)


# -- inspect -------------------------------------------------------------------------

INSPECT_EPILOG = r"""
Each connection gives one JSON line on stdout:
  {"time": ..., "peer": "<the proxy's address>", "header": {...}}      a valid header
  {"time": ..., "peer": "...", "error": {"kind": ..., "offset": ...},
   "received_hex": "..."}                                              anything else
The header must arrive within --timeout seconds (kind "timeout"), whole before EOF
(kind "eof"). With --respond auto (the default) an HTTP request after the header gets
"200 OK" with the JSON line as body, so curl through the proxy shows it too.

examples:
  proxyproto inspect --listen 127.0.0.1:8080
  # haproxy.cfg:  server app 127.0.0.1:8080 send-proxy-v2 proxy-v2-options crc32c
  curl -s http://127.0.0.1:80/ | jq .header.source
  proxyproto inspect --listen 127.0.0.1:0 --count 1     # the chosen port is on stderr

exit status: 0 after --count connections (or runs until interrupted: 130), 2 bad
usage, 3 cannot listen.
"""

_HTTP_METHODS: Final = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")


async def _inspect_one(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    args: argparse.Namespace,
    counter: Counter,
) -> None:
    peer = writer.get_extra_info("peername")
    parser = Parser(verify_checksum=not args.no_verify_checksum, max_size=args.max_size)
    received = bytearray()
    record: JSON = {"time": round(time.time(), 6), "peer": format_endpoint(peer)}
    header: Header | None = None
    try:
        async with asyncio.timeout(args.timeout):
            while header is None:
                chunk = await reader.read(max(parser.needed, 1))
                if not chunk:
                    raise IncompleteHeaderError(
                        f"connection closed after {len(received)} bytes, before a complete header",
                        kind="eof",
                        offset=len(received),
                    )
                received += chunk
                header = parser.feed(chunk)
    except TimeoutError:
        record["error"] = {
            "kind": "timeout",
            "offset": len(received),
            "message": f"no complete header within {args.timeout} s",
            "type": "TimeoutError",
        }
    except ProxyProtocolError as exc:
        record["error"] = error_json(exc)
    except OSError as exc:
        record["error"] = {
            "kind": "connection_error",
            "offset": len(received),
            "message": str(exc),
            "type": type(exc).__name__,
        }
    if header is not None:
        record["header"] = header_json(header)
    else:
        record["received_hex"] = bytes(received[:256]).hex()
    line = json.dumps(record, separators=(",", ":"))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    try:
        if header is not None and args.respond != "none":
            head = b""
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    head = await reader.read(4096)
            if args.respond == "http" or head.startswith(_HTTP_METHODS):
                body = (line + "\n").encode()
                writer.write(
                    b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        counter.tick()


async def _inspect(args: argparse.Namespace) -> int:
    counter = Counter(args.count)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _inspect_one(reader, writer, args, counter)

    server = await _start_listener(args.listen, handle)
    _err(f"{PROG} inspect: listening on {_bound(server)}")
    await _serve_until(server, counter)
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    return asyncio.run(_inspect(args))


# -- relay ---------------------------------------------------------------------------

RELAY_EPILOG = r"""
A load-balancer emulator: for every client it connects to --upstream, writes a
PROXY header naming the client's real address (source) and the address the client
connected to (destination), then copies bytes both ways. --version 2 behaves like an
AWS NLB (add --aws-vpce-id for PrivateLink), --version 1 like a Classic ELB.

examples:
  proxyproto relay --listen 127.0.0.1:8000 --upstream 127.0.0.1:8080 --version 2
  proxyproto relay --listen 127.0.0.1:8000 --upstream 127.0.0.1:8080 --version 2 \
      --aws-vpce-id vpce-08d2bf15fac5001c9 --crc32c --tlv 0xE1=cafe
  # backend test in two terminals:
  proxyproto inspect --listen 127.0.0.1:8080
  proxyproto relay --listen 127.0.0.1:8000 --upstream 127.0.0.1:8080 --version 1
  curl http://127.0.0.1:8000/

exit status: 0 after --count connections (or runs until interrupted: 130), 2 bad
usage, 3 cannot listen.
"""


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    total = 0
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            total += len(data)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.close()
    return total


def _socket_endpoint(addr: object) -> Endpoint | None:
    """A socket address as the header builders take it (None for an unnamed UNIX peer)."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        return (str(addr[0]).partition("%")[0], int(addr[1]))
    if isinstance(addr, str | bytes) and addr:
        return addr
    return None


async def _relay_one(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    args: argparse.Namespace,
    tlvs: TlvOptions,
    counter: Counter,
) -> None:
    peer = writer.get_extra_info("peername")
    sockname = writer.get_extra_info("sockname")
    source, destination = _socket_endpoint(peer), _socket_endpoint(sockname)
    if (
        source is None
        or destination is None
        or (
            args.version == 1 and not (isinstance(source, tuple) and isinstance(destination, tuple))
        )
    ):
        source = destination = None  # UNIX client: LOCAL (v2) or UNKNOWN (v1)
    try:
        if args.random_unique_id:
            tlvs = TlvOptions(**{**tlvs.__dict__, "unique_id": secrets.token_hex(16).encode()})
        header = build_header(args.version, source, destination, tlvs, local=args.local)
        upstream = args.upstream
        from proxyproto_rs import aio  # only relay needs it: keep other commands quick to start

        async with asyncio.timeout(args.connect_timeout):
            if isinstance(upstream, str):
                up_reader, up_writer = await aio.open_unix_connection(upstream, header=header)
            else:
                up_reader, up_writer = await aio.open_connection(
                    upstream[0], upstream[1], header=header
                )
    except (OSError, TimeoutError, BuildError, UsageError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
        _err(f"{PROG} relay: {format_endpoint(peer)}: upstream failed: {reason}")
        writer.close()
        counter.tick()
        return
    if not args.quiet:
        _err(
            f"{PROG} relay: {format_endpoint(peer)} -> {format_endpoint(args.upstream)}:"
            f" sent v{args.version} header ({len(header)} bytes)"
        )
    try:
        sent, received = await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        if not args.quiet:
            _err(
                f"{PROG} relay: {format_endpoint(peer)} closed:"
                f" {sent} bytes up, {received} bytes down"
            )
    finally:
        for w in (writer, up_writer):
            w.close()
        for w in (writer, up_writer):
            with contextlib.suppress(OSError):
                await w.wait_closed()
        counter.tick()


async def _relay(args: argparse.Namespace) -> int:
    tlvs = TlvOptions.from_args(args)
    if args.version == 1 and (tlvs.any() or args.random_unique_id):
        raise UsageError("TLV options need --version 2")
    if args.version == 1 and args.local:
        raise UsageError("--local needs --version 2")
    # Fail now, not per connection, if the TLVs cannot be encoded.
    try:
        build_header(args.version, None, None, tlvs)
    except BuildError as exc:
        raise UsageError(f"cannot build this header: {exc}") from None
    counter = Counter(args.count)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _relay_one(reader, writer, args, tlvs, counter)

    server = await _start_listener(args.listen, handle)
    _err(
        f"{PROG} relay: listening on {_bound(server)}, upstream {format_endpoint(args.upstream)},"
        f" PROXY v{args.version}"
    )
    await _serve_until(server, counter)
    return EXIT_OK


def cmd_relay(args: argparse.Namespace) -> int:
    return asyncio.run(_relay(args))


# =========================================================================== check

CHECK_EPILOG = r"""
Sends each case of a battery to the target on its own connection: a PROXY header
(valid or deliberately broken, each named after the rule it tests), then --probe.
A case is "accepted" when the target sends any byte back (or bytes matching
--expect), "refused" when it closes, resets or stays silent for --timeout seconds.
Findings: an invalid header accepted, or a valid one refused, at level "must" (the
spec's MUST); level "should" cases give warnings (findings with --strict); level
"may" cases are reported only. Cases also come from fuzz/corpus when present
(--corpus DIR; each file is classified by this package's strict parser).

examples:
  proxyproto check --target 127.0.0.1:8080
  proxyproto check --target 127.0.0.1:25 --probe 'EHLO check\r\n' --expect '^2'
  proxyproto check --target 127.0.0.1:8080 --json | jq 'select(.verdict != "ok")'
  proxyproto check --target 127.0.0.1:8080 --versions 2     # a v2-only receiver

exit status: 0 no findings, 1 findings, 2 bad usage, 3 target unreachable or it
refused the valid baseline header (wrong probe, or no PROXY protocol there).
"""

DEFAULT_PROBE: Final = r"GET / HTTP/1.0\r\nHost: proxyproto-check\r\n\r\n"


@dataclass(frozen=True)
class Case:
    """One connection of the ``check`` battery."""

    name: str
    data: bytes
    valid: bool
    level: str
    """``must``, ``should`` or ``may``: how strongly the spec asks for the expected outcome."""
    rule: str
    note: str = ""
    chunks: tuple[bytes, ...] = ()
    """When set, sent in this many writes 0.2 s apart instead of ``data`` at once."""
    version: int = 0


_S4: Final = ("192.0.2.10", 40000)
_D4: Final = ("198.51.100.20", 80)
_S6: Final = ("2001:db8::10", 40000)
_D6: Final = ("2001:db8::20", 80)
_A4: Final = bytes([192, 0, 2, 10, 198, 51, 100, 20]) + struct.pack("!HH", 40000, 80)
_A6: Final = (
    socket.inet_pton(socket.AF_INET6, _S6[0])
    + socket.inet_pton(socket.AF_INET6, _D6[0])
    + struct.pack("!HH", 40000, 80)
)


def _v2(ver_cmd: int, fam: int, body: bytes, *, declared: int | None = None) -> bytes:
    length = len(body) if declared is None else declared
    return V2_SIGNATURE + bytes([ver_cmd, fam]) + struct.pack("!H", length) + body


def _tlv(kind: int, value: bytes, *, declared: int | None = None) -> bytes:
    length = len(value) if declared is None else declared
    return bytes([kind]) + struct.pack("!H", length) + value


def _with_crc(ver_cmd: int, fam: int, addresses: bytes, after: bytes = b"") -> bytes:
    """A v2 header whose CRC32C TLV (first, as HAProxy writes it) is correct."""
    blank = _v2(ver_cmd, fam, addresses + _tlv(0x03, b"\0\0\0\0") + after)
    value = crc32c(blank)
    at = 16 + len(addresses) + 3
    return blank[:at] + struct.pack("!I", value) + blank[at + 4 :]


def builtin_cases() -> list[Case]:
    """The named battery: valid shapes every receiver must take, invalid ones it must drop."""
    v1_4 = build_v1(_S4, _D4)
    v2_4 = build_v2(_S4, _D4)
    long_v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    v1_max = f"PROXY UNKNOWN {long_v6} {long_v6} 65535 65535\r\n".encode()
    assert len(v1_max) == 107
    good_crc = _with_crc(0x21, 0x11, _A4, _tlv(0x02, b"example.com"))
    bad_crc = bytearray(good_crc)
    bad_crc[16 + 12 + 3] ^= 0x01
    aws_check = _with_crc(0x20, 0x11, b"", _tlv(0x04, bytes(74)))
    unix_block = b"/run/client.sock".ljust(108, b"\0") + b"/run/server.sock".ljust(108, b"\0")
    ssl_value = b"\x01" + b"\0\0\0\0" + _tlv(0x21, b"TLSv1.3")

    def v(name: str, data: bytes, level: str, rule: str, note: str = "", **kw: Any) -> Case:
        version = 1 if data.startswith(b"PROXY") else 2
        return Case(name, data, True, level, rule, note, version=version, **kw)

    def bad(name: str, data: bytes, level: str, rule: str, note: str = "") -> Case:
        return Case(name, data, False, level, rule, note)

    cases = [
        # ---- valid v1 (SPEC rules 8-17)
        v("v1-tcp4", v1_4, "must", "8", "PROXY TCP4 line"),
        v("v1-tcp6", build_v1(_S6, _D6), "must", "8, 11", "PROXY TCP6 line"),
        v("v1-unknown-short", b"PROXY UNKNOWN\r\n", "must", "9, 17", "health-check form"),
        v(
            "v1-unknown-with-addresses",
            f"PROXY UNKNOWN {_S6[0]} {_D6[0]} 40000 80\r\n".encode(),
            "must",
            "9",
            "the receiver must ignore what follows UNKNOWN",
        ),
        v("v1-107-bytes", v1_max, "must", "14", "the longest legal line"),
        v("v1-port-zero", build_v1((_S4[0], 0), _D4), "must", "12", "port 0 is legal"),
        v(
            "v1-tcp6-ipv4-mapped",
            b"PROXY TCP6 ::ffff:192.0.2.10 ::ffff:198.51.100.20 40000 80\r\n",
            "may",
            "11 (D6)",
            "IPv4-mapped IPv6, as HAProxy sends mixed families",
        ),
        v("v1-split", v1_4, "should", "3", "line in two writes", chunks=(v1_4[:9], v1_4[9:])),
        # ---- valid v2 (SPEC rules 18-40)
        v("v2-tcp4", v2_4, "must", "23", "PROXY TCP over IPv4"),
        v("v2-tcp6", build_v2(_S6, _D6), "must", "23", "PROXY TCP over IPv6"),
        v("v2-local-empty", _v2(0x20, 0x00, b""), "must", "20, 24", "LOCAL health check"),
        v(
            "v2-local-with-addresses",
            _v2(0x20, 0x11, _A4),
            "must",
            "20, 26",
            "LOCAL: the length is honoured, the addresses ignored",
        ),
        v(
            "v2-local-aws-health-check",
            aws_check,
            "should",
            "44 (D3)",
            "AWS NLB health check: family 0x11, CRC32C + NOOP, no address block",
        ),
        v("v2-proxy-unspec", _v2(0x21, 0x00, b""), "may", "24", "PROXY with UNSPEC family"),
        v("v2-udp4-on-tcp", _v2(0x21, 0x12, _A4), "should", "25", "UDP family: fall back"),
        v("v2-unix-stream", _v2(0x21, 0x31, unix_block), "must", "25", "UNIX: fall back"),
        v(
            "v2-alpn-authority",
            build_v2(_S4, _D4, alpn=b"h2", authority="example.com"),
            "must",
            "30-33",
        ),
        v("v2-crc32c", good_crc, "must", "34", "correct CRC32C first, then AUTHORITY"),
        v("v2-noop", build_v2(_S4, _D4, tlvs=[(0x04, bytes(13))]), "must", "35"),
        v(
            "v2-zero-length-tlv-last",
            _v2(0x21, 0x11, _A4 + _tlv(0x04, b"")),
            "must",
            "31, 35",
            "a 3-byte TLV ends the header",
        ),
        v("v2-unique-id-128", build_v2(_S4, _D4, unique_id=bytes(range(128))), "must", "36"),
        v("v2-ssl", _v2(0x21, 0x11, _A4 + _tlv(0x20, ssl_value)), "must", "37, 38"),
        v("v2-netns", build_v2(_S4, _D4, netns="blue"), "must", "39"),
        v(
            "v2-custom-and-experimental",
            build_v2(_S4, _D4, tlvs=[(0xE1, b"\x01\x02"), (0xF0, b"x")]),
            "must",
            "31, 40",
            "unknown TLV types are ignored",
        ),
        v(
            "v2-aws-vpce-id",
            build_v2(_S4, _D4, aws_vpce_id="vpce-08d2bf15fac5001c9"),
            "must",
            "31",
        ),
        v(
            "v2-large-tlv-1500",
            build_v2(_S4, _D4, tlvs=[(0xE2, bytes(1500))]),
            "may",
            "3",
            "header over 536 bytes; HAProxy caps TLV values at 1024",
        ),
        v("v2-split", v2_4, "should", "3", "header in two writes", chunks=(v2_4[:10], v2_4[10:])),
        # ---- invalid, both versions
        bad("no-header", b"", "must", "6", "the probe alone: a header is required"),
        # ---- invalid v2
        bad("v2-bad-signature", v2_4[:11] + b"\x0b" + v2_4[12:], "must", "18"),
        bad("v2-version-1", v2_4[:12] + b"\x11" + v2_4[13:], "must", "19"),
        bad("v2-version-3", v2_4[:12] + b"\x31" + v2_4[13:], "must", "19"),
        bad("v2-command-2", v2_4[:12] + b"\x22" + v2_4[13:], "must", "19"),
        bad("v2-command-15", v2_4[:12] + b"\x2f" + v2_4[13:], "must", "19"),
        bad("v2-family-4", _v2(0x21, 0x41, _A4), "must", "22"),
        bad("v2-protocol-3", _v2(0x21, 0x13, _A4), "must", "22"),
        bad("v2-truncated-address-tcp4", _v2(0x21, 0x11, _A4[:4]), "must", "28, 43"),
        bad("v2-truncated-address-tcp6", _v2(0x21, 0x21, _A6[:12]), "must", "28, 43"),
        bad(
            "v2-tlv-crosses-end",
            _v2(0x21, 0x11, _A4 + _tlv(0x02, b"exa", declared=100)),
            "should",
            "30, 43 (D4)",
            "a receiver that skips TLVs may not notice",
        ),
        bad(
            "v2-tlv-header-truncated",
            _v2(0x21, 0x11, _A4 + b"\x02\x00"),
            "should",
            "30, 43 (D4)",
            "a receiver that skips TLVs may not notice",
        ),
        bad(
            "v2-bad-crc32c",
            bytes(bad_crc),
            "should",
            "34",
            "one bit flipped; MUST refuse if the receiver implements CRC32C",
        ),
        bad(
            "v2-crc32c-3-bytes",
            _v2(0x21, 0x11, _A4 + _tlv(0x03, b"\0\0\0")),
            "should",
            "34, 43 (D4)",
        ),
        bad("v2-ssl-too-short", _v2(0x21, 0x11, _A4 + _tlv(0x20, b"\x01\0")), "should", "37 (D4)"),
        bad(
            "v2-unique-id-129",
            _v2(0x21, 0x11, _A4 + _tlv(0x05, bytes(129))),
            "should",
            "36 (D4)",
            "UNIQUE_ID is at most 128 bytes",
        ),
        # ---- invalid v1
        bad("v1-lf-only", v1_4[:-2] + b"\n", "must", "13", "LF without CR"),
        bad("v1-cr-only", v1_4[:-2] + b"\r", "must", "13", "CR without LF"),
        bad("v1-no-terminator", v1_4[:-2], "must", "15", "the probe follows the ports"),
        bad(
            "v1-108-bytes",
            b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n",
            "must",
            "14, 15",
            "no CRLF within 107 bytes",
        ),
        bad(
            "v1-ip-leading-zero", b"PROXY TCP4 192.0.2.010 198.51.100.20 40000 80\r\n", "must", "10"
        ),
        bad("v1-ip-octet-256", b"PROXY TCP4 192.0.2.256 198.51.100.20 40000 80\r\n", "must", "10"),
        bad("v1-ip-three-octets", b"PROXY TCP4 192.0.2 198.51.100.20 40000 80\r\n", "must", "10"),
        bad(
            "v1-port-leading-zero",
            b"PROXY TCP4 192.0.2.10 198.51.100.20 040000 80\r\n",
            "must",
            "12",
        ),
        bad("v1-port-65536", b"PROXY TCP4 192.0.2.10 198.51.100.20 65536 80\r\n", "must", "12"),
        bad(
            "v1-port-plus-sign", b"PROXY TCP4 192.0.2.10 198.51.100.20 +40000 80\r\n", "must", "12"
        ),
        bad("v1-double-space", b"PROXY TCP4  192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-tab-separator", b"PROXY\tTCP4 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-trailing-space", b"PROXY TCP4 192.0.2.10 198.51.100.20 40000 80 \r\n", "must", "8"),
        bad("v1-lowercase-proxy", b"proxy TCP4 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-lowercase-tcp4", b"PROXY tcp4 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-proto-tcp5", b"PROXY TCP5 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "8"),
        bad("v1-missing-port", b"PROXY TCP4 192.0.2.10 198.51.100.20 40000\r\n", "must", "8"),
        bad("v1-extra-field", b"PROXY TCP4 192.0.2.10 198.51.100.20 40000 80 9\r\n", "must", "8"),
        bad(
            "v1-tcp4-with-ipv6", b"PROXY TCP4 2001:db8::10 2001:db8::20 40000 80\r\n", "must", "10"
        ),
        bad("v1-tcp6-with-ipv4", b"PROXY TCP6 192.0.2.10 198.51.100.20 40000 80\r\n", "must", "11"),
        bad(
            "v1-tcp6-zone-id",
            b"PROXY TCP6 fe80::1%eth0 2001:db8::20 40000 80\r\n",
            "should",
            "11 (D6)",
        ),
    ]
    return cases


def corpus_cases(directory: Path, limit: int) -> list[Case]:
    """Cases from a fuzz corpus: every file our strict parser accepts or rejects outright.

    Skipped: files that are only an unfinished prefix (a receiver would just wait) and
    headers over the common 4096-byte cap (a size policy, not conformance)."""
    cases: list[Case] = []
    seen: set[bytes] = set()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if len(cases) >= limit:
            break
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if not data or len(data) > 70000:
            continue
        try:
            header = parse(data)
        except (IncompleteHeaderError, HeaderTooLargeError):
            continue  # a receiver would wait, or a size policy decides: not conformance
        except ProxyProtocolError:
            if data[:1] not in (b"P", b"\r") or data in seen:
                continue
            seen.add(data)
            rel = path.relative_to(directory)
            cases.append(Case(f"corpus:{rel}", data, False, "should", "corpus"))
            continue
        wire = header.to_bytes()
        if wire in seen:
            continue
        seen.add(wire)
        rel = path.relative_to(directory)
        cases.append(Case(f"corpus:{rel}", wire, True, "should", "corpus", version=header.version))
    return cases


@dataclass
class Outcome:
    accepted: bool
    how: str
    """``response``, ``closed``, ``reset``, ``timeout`` or ``unexpected-response``."""
    response: bytes = b""


async def run_case(
    target: tuple[str, int] | str,
    case: Case,
    probe: bytes,
    wait: float,
    expect: bytes | None,
) -> Outcome:
    """One connection: the case's bytes, the probe, then wait for the first answer."""
    try:
        async with asyncio.timeout(wait):
            if isinstance(target, str):
                reader, writer = await asyncio.open_unix_connection(target)
            else:
                reader, writer = await asyncio.open_connection(target[0], target[1])
    except TimeoutError:
        raise IOFailure(f"connecting to {format_endpoint(target)} timed out") from None
    except OSError as exc:
        raise IOFailure(
            f"cannot connect to {format_endpoint(target)}: {exc.strerror or exc}"
        ) from None
    try:
        try:
            if case.chunks:
                for i, chunk in enumerate(case.chunks):
                    if i:
                        await asyncio.sleep(0.2)
                    writer.write(chunk)
                    await writer.drain()
                writer.write(probe)
            else:
                writer.write(case.data + probe)
            await writer.drain()
        except OSError:
            return Outcome(False, "reset")
        received = bytearray()
        try:
            async with asyncio.timeout(wait):
                while True:
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    received += chunk
                    if expect is None or _matches(expect, bytes(received)):
                        break
        except TimeoutError:
            if not received:
                return Outcome(False, "timeout")
        except OSError:
            if not received:
                return Outcome(False, "reset")
        data = bytes(received)
        if not data:
            return Outcome(False, "closed")
        if expect is not None and not _matches(expect, data):
            return Outcome(False, "unexpected-response", data)
        return Outcome(True, "response", data)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _matches(pattern: bytes, data: bytes) -> bool:
    return re.search(pattern, data) is not None


def verdict(case: Case, outcome: Outcome, strict: bool) -> str:
    """``ok``, ``finding``, ``warning`` or ``info``."""
    if outcome.accepted == case.valid:
        return "ok"
    if case.level == "must" or (case.level == "should" and strict):
        return "finding"
    if case.level == "should":
        return "warning"
    return "info"


def _short(data: bytes, limit: int = 60) -> str:
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    text = repr(first[:limit])[1:]
    return text + ("..." if len(first) > limit else "")


def _check_cases(args: argparse.Namespace, versions: set[int]) -> list[Case]:
    cases = builtin_cases()
    if args.corpus is not None:
        corpus_dir: Path | None = Path(args.corpus)
        assert corpus_dir is not None
        if not corpus_dir.is_dir():
            raise UsageError(f"--corpus {args.corpus}: not a directory")
    else:
        # The checkout's corpus: from the current directory, or beside an editable install.
        candidates = (Path("fuzz/corpus"), Path(__file__).resolve().parents[2] / "fuzz/corpus")
        corpus_dir = next((p for p in candidates if p.is_dir()), None)
    if corpus_dir is not None and not args.no_corpus:
        cases += corpus_cases(corpus_dir, args.corpus_limit)
    if args.only:
        cases = [c for c in cases if any(sel in c.name for sel in args.only)]
        if not cases:
            raise UsageError(f"--only {' '.join(args.only)} selects no case")
    # Valid headers of a version the target is not configured for are not expected to pass.
    adjusted: list[Case] = []
    for c in cases:
        if c.valid and c.version and c.version not in versions:
            c = Case(
                c.name, c.data, True, "may", c.rule, c.note + " (version off)", c.chunks, c.version
            )
        adjusted.append(c)
    cases = adjusted

    return cases


async def _check(args: argparse.Namespace, cases: list[Case]) -> int:
    probe = _unescape(args.probe)
    expect = None if args.expect is None else args.expect.encode()
    versions = {int(x) for x in args.versions.split(",") if x.strip()}
    # Baseline: a plain valid header of an enabled version must be accepted, or the
    # target, probe or --expect is wrong and every result would be noise.
    base = build_v2(_S4, _D4) if 2 in versions else build_v1(_S4, _D4)
    baseline = await run_case(
        args.target, Case("baseline", base, True, "must", ""), probe, args.timeout, expect
    )
    if not baseline.accepted:
        _err(
            f"{PROG} check: {format_endpoint(args.target)} {baseline.how} on a valid"
            f" v{2 if 2 in versions else 1} header + probe: wrong --probe/--expect, or no"
            " PROXY protocol receiver there"
        )
        return EXIT_IO

    sem = asyncio.Semaphore(args.concurrency)

    async def one(case: Case) -> tuple[Case, Outcome]:
        async with sem:
            return case, await run_case(args.target, case, probe, args.timeout, expect)

    results = await asyncio.gather(*(one(c) for c in cases))
    counts = {"ok": 0, "finding": 0, "warning": 0, "info": 0}
    if not args.json:
        _out(
            f"check {format_endpoint(args.target)}: {len(cases)} cases, probe"
            f" {_short(probe)!s}, timeout {args.timeout} s"
        )
    for case, outcome in results:
        v = verdict(case, outcome, args.strict)
        counts[v] += 1
        if args.json:
            _json_line(
                {
                    "type": "case",
                    "name": case.name,
                    "expect": "accepted" if case.valid else "refused",
                    "outcome": "accepted" if outcome.accepted else "refused",
                    "how": outcome.how,
                    "verdict": v,
                    "level": case.level,
                    "rule": case.rule,
                    "note": case.note,
                    "response": _short(outcome.response) if outcome.response else None,
                    "hex": case.data.hex(),
                }
            )
        elif v != "ok" or args.verbose:
            mark = {"ok": "ok  ", "finding": "FAIL", "warning": "warn", "info": "info"}[v]
            what = (
                ("valid header refused" if case.valid else "invalid header accepted")
                if v != "ok"
                else ("accepted" if outcome.accepted else "refused")
            )
            extra = f" -> {_short(outcome.response)}" if outcome.response else f" ({outcome.how})"
            _out(
                f"  {mark}  {case.name:<32} {what}{extra}  [{case.level}, rule {case.rule}]"
                + (f" {case.note}" if case.note and v != "ok" else "")
            )
    findings = counts["finding"]
    summary = {
        "type": "summary",
        "target": format_endpoint(args.target),
        "cases": len(cases),
        "ok": counts["ok"],
        "findings": findings,
        "warnings": counts["warning"],
        "info": counts["info"],
        "invalid_accepted": sorted(
            c.name
            for c, o in results
            if not c.valid and o.accepted and verdict(c, o, args.strict) == "finding"
        ),
        "valid_refused": sorted(
            c.name
            for c, o in results
            if c.valid and not o.accepted and verdict(c, o, args.strict) == "finding"
        ),
    }
    if args.json:
        _json_line(summary)
    else:
        _out(
            f"{findings} finding(s), {counts['warning']} warning(s), {counts['info']} info,"
            f" {counts['ok']} ok"
        )
    return EXIT_NO if findings else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    versions = {int(x) for x in args.versions.split(",") if x.strip()}
    return asyncio.run(_check(args, _check_cases(args, versions)))


# =========================================================================== parser

MAIN_EPILOG = r"""
commands:
  decode    what does this header say?          proxyproto decode 0d0a0d0a000d0a5155...
  encode    write a header (v1/v2, TLVs, CRC)   proxyproto encode --source 1.2.3.4:5 ...
  scan      every header in a capture           proxyproto scan capture.pcap
  inspect   what is my load balancer sending?   proxyproto inspect --listen 127.0.0.1:8080
  relay     pretend to be an NLB / ELB          proxyproto relay --listen ... --upstream ...
  check     test someone's PROXY receiver       proxyproto check --target 127.0.0.1:8080

Run 'proxyproto COMMAND --help' for examples. Exit status: 0 ok, 1 no (invalid
header, nothing found, findings), 2 bad usage, 3 I/O failure.
"""


def build_parser() -> argparse.ArgumentParser:
    from proxyproto_rs import __version__

    parser = _Parser(
        prog=PROG,
        description="Decode, encode, find, observe, relay and conformance-check PROXY protocol"
        " (v1 text, v2 binary) headers.",
        epilog=MAIN_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # decode
    p = subs.add_parser(
        "decode",
        help="decode one header from hex, a file or stdin",
        description="Decode one PROXY header and print its fields, or say exactly what is"
        " wrong with it and at which byte.",
        epilog=DECODE_EPILOG,
        formatter_class=_Formatter,
    )
    p.add_argument("hex", nargs="?", help="the header as hex (else --file or stdin)")
    p.add_argument("-f", "--file", metavar="PATH", help="read the header from PATH ('-': stdin)")
    p.add_argument(
        "--input",
        choices=("auto", "raw", "hex"),
        default="auto",
        help="how to read --file/stdin (default: auto)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--no-verify-checksum", action="store_true", help="do not check a CRC32C TLV")
    p.add_argument(
        "--max-size",
        type=_max_size,
        default=4096,
        metavar="N",
        help="largest v2 header accepted, 16-65551 (default 4096)",
    )
    p.add_argument(
        "--haproxy-limits",
        action="store_true",
        help="HAProxy's receiver limits (short UNKNOWN only, AUTHORITY <= 255, TLV <= 1024)",
    )
    p.set_defaults(func=cmd_decode)

    # encode
    p = subs.add_parser(
        "encode",
        help="build a v1 or v2 header",
        description="Build a PROXY header: v2 by default (--v1 for the text form).",
        epilog=ENCODE_EPILOG,
        formatter_class=_Formatter,
    )
    ver = p.add_mutually_exclusive_group()
    ver.add_argument("--v1", action="store_true", help="the text format")
    ver.add_argument("--v2", action="store_true", help="the binary format (default)")
    p.add_argument("--source", type=_endpoint_arg, metavar="ADDR", help="the client's address")
    p.add_argument(
        "--destination", type=_endpoint_arg, metavar="ADDR", help="the address it connected to"
    )
    p.add_argument("--local", action="store_true", help="v2 LOCAL command (health check)")
    p.add_argument("--dgram", action="store_true", help="v2 DGRAM transport (UDP)")
    _add_tlv_options(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--raw", action="store_true", help="write raw bytes even on a terminal")
    out.add_argument("--hex", action="store_true", help="write hex even into a pipe")
    p.set_defaults(func=cmd_encode)

    # scan
    p = subs.add_parser(
        "scan",
        help="find every header in a raw capture or a pcap/pcapng file",
        description="Find every PROXY header in a file: raw bytes, pcap or pcapng.",
        epilog=SCAN_EPILOG,
        formatter_class=_Formatter,
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
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", action="store_true", help="always show progress on stderr")
    prog.add_argument("--no-progress", action="store_true", help="never show progress")
    p.add_argument("--no-verify-checksum", action="store_true", help="do not check CRC32C TLVs")
    p.add_argument("--max-size", type=_max_size, default=4096, metavar="N", help="v2 size cap")
    p.add_argument(
        "--flow-limit",
        type=_positive_int,
        default=1 << 20,
        metavar="BYTES",
        help="TCP payload kept per flow and direction (default 1 MiB)",
    )
    p.set_defaults(func=cmd_scan)

    # inspect
    p = subs.add_parser(
        "inspect",
        help="listen and print the header of every incoming connection",
        description="Listen and print, as one JSON line per connection, the PROXY header"
        " the peer sent (or why it was not one).",
        epilog=INSPECT_EPILOG,
        formatter_class=_Formatter,
    )
    p.add_argument(
        "--listen",
        type=_hostport_arg,
        required=True,
        metavar="ADDR",
        help="HOST:PORT ([::1]:8080 for IPv6, port 0 for any) or a UNIX socket path",
    )
    p.add_argument("--count", type=_positive_int, metavar="N", help="exit after N connections")
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="seconds allowed for the header (default 5)",
    )
    p.add_argument(
        "--respond",
        choices=("auto", "http", "none"),
        default="auto",
        help="answer HTTP requests with the JSON line (auto), always (http), or never",
    )
    p.add_argument("--no-verify-checksum", action="store_true", help="do not check CRC32C TLVs")
    p.add_argument("--max-size", type=_max_size, default=4096, metavar="N", help="v2 size cap")
    p.set_defaults(func=cmd_inspect)

    # relay
    p = subs.add_parser(
        "relay",
        help="a load-balancer emulator that prepends a header",
        description="Accept clients, connect each to the upstream, send a PROXY header with"
        " the client's real address first, then pipe bytes both ways.",
        epilog=RELAY_EPILOG,
        formatter_class=_Formatter,
    )
    p.add_argument("--listen", type=_hostport_arg, required=True, metavar="ADDR", help="HOST:PORT")
    p.add_argument(
        "--upstream", type=_hostport_arg, required=True, metavar="ADDR", help="HOST:PORT or path"
    )
    p.add_argument(
        "--version", type=int, choices=(1, 2), default=2, help="PROXY protocol version (default 2)"
    )
    p.add_argument("--local", action="store_true", help="send LOCAL headers (v2 health checks)")
    _add_tlv_options(p)
    p.add_argument(
        "--random-unique-id",
        action="store_true",
        help="a fresh UNIQUE_ID per connection (32 hex characters)",
    )
    p.add_argument("--count", type=_positive_int, metavar="N", help="exit after N connections")
    p.add_argument(
        "--connect-timeout", type=_positive_float, default=5.0, metavar="S", help="default 5"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-connection log on stderr")
    p.set_defaults(func=cmd_relay)

    # check
    p = subs.add_parser(
        "check",
        help="conformance-check someone else's PROXY receiver",
        description="Send a battery of valid and invalid PROXY headers to a receiver and"
        " report the invalid ones it accepted and the valid ones it refused.",
        epilog=CHECK_EPILOG,
        formatter_class=_Formatter,
    )
    p.add_argument(
        "--target", type=_hostport_arg, required=True, metavar="ADDR", help="HOST:PORT or path"
    )
    p.add_argument(
        "--probe",
        default=DEFAULT_PROBE,
        help=r"bytes sent after each header; \r \n \t \0 \xHH escapes (default: an HTTP"
        " GET)",
    )
    p.add_argument(
        "--expect", metavar="REGEX", help="a response counts as accepted only if it matches"
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=2.0,
        metavar="S",
        help="seconds to wait for an answer (default 2)",
    )
    p.add_argument(
        "--versions",
        default="1,2",
        metavar="1,2",
        help="versions the target is configured to accept (default 1,2)",
    )
    p.add_argument("--strict", action="store_true", help="count 'should' warnings as findings")
    p.add_argument("--corpus", metavar="DIR", help="corpus directory (default: fuzz/corpus)")
    p.add_argument("--no-corpus", action="store_true", help="built-in cases only")
    p.add_argument(
        "--corpus-limit", type=_positive_int, default=200, metavar="N", help="default 200"
    )
    p.add_argument(
        "--only", nargs="+", metavar="NAME", help="run only cases whose name contains NAME"
    )
    p.add_argument("--concurrency", type=_positive_int, default=8, metavar="N", help="default 8")
    p.add_argument("--json", action="store_true", help="JSON lines: one per case, then a summary")
    p.add_argument("-v", "--verbose", action="store_true", help="also list the cases that pass")
    p.set_defaults(func=cmd_check)
    return parser


def _validate(args: argparse.Namespace) -> None:
    if getattr(args, "command", None) == "check":
        parts = [x.strip() for x in args.versions.split(",")]
        if not parts or any(x not in ("1", "2") for x in parts):
            raise UsageError(f"--versions: expected 1, 2 or 1,2, got {args.versions!r}")
        if args.expect is not None:
            try:
                re.compile(args.expect.encode())
            except re.error as exc:
                raise UsageError(f"--expect: bad regular expression: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``proxyproto`` console script and ``python -m proxyproto_rs``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    sub = f"{PROG} {args.command}"
    try:
        _validate(args)
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except UsageError as exc:
        _err(f"{sub}: error: {exc} (see '{sub} --help')")
        return EXIT_USAGE
    except IOFailure as exc:
        _err(f"{sub}: {exc}")
        return EXIT_IO
    except KeyboardInterrupt:
        _err(f"{sub}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time
        # flush from raising again on the dead pipe.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
