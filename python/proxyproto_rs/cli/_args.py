"""Argument types and the argparse flavour every subcommand uses.

Each converter turns one command-line word into a value or raises
``argparse.ArgumentTypeError`` with a message that says what is wrong and how to write it;
``CommandParser`` prints argparse's errors on one line and exits 2.
"""

from __future__ import annotations

import argparse
import ipaddress
from typing import NoReturn, TypeAlias

from proxyproto_rs.cli._common import EXIT_USAGE, Endpoint, UsageError


class Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


class CommandParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``proxyproto decode: error: ...`` and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


Subcommands: TypeAlias = "argparse._SubParsersAction[CommandParser]"
"""What ``add_subparsers()`` returns: each subcommand module adds its parser to it."""


def int_auto(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def max_size(text: str) -> int:
    value = int_auto(text)
    if not 16 <= value <= 65551:
        raise argparse.ArgumentTypeError(f"must be within 16..65551, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int_auto(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def tlv_arg(text: str) -> tuple[int, bytes]:
    kind_text, sep, value_text = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected TYPE=HEX (e.g. 0xE1=0102), got {text!r}")
    try:
        kind = int(kind_text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(_bad_tlv_type(kind_text)) from None
    if not 0 <= kind <= 255:
        raise argparse.ArgumentTypeError(f"TLV type {kind_text} is not a byte (0-255)")
    try:
        value = unhex(value_text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"TLV 0x{kind:02X}: {exc}") from None
    return kind, value


def endpoint_arg(text: str) -> Endpoint:
    try:
        return parse_endpoint(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def hostport_arg(text: str) -> tuple[str, int] | str:
    if text.startswith(("/", "./", "unix:")):
        return text.removeprefix("unix:")
    try:
        return split_hostport(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def unhex(text: str) -> bytes:
    """Hex with optional ``0x``, spaces, colons or dashes between bytes."""
    cleaned = "".join(text.split()).replace(":", "").replace("-", "")
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"not valid hex: {text[:40]!r}") from None


def unescape(text: str) -> bytes:
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
            if nxt == "x" and is_hex(text[i + 2 : i + 4]):
                out.append(int(text[i + 2 : i + 4], 16))
                i += 4
                continue
        out += ch.encode()
        i += 1
    return bytes(out)


def is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


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
            raise UsageError(_unbracketed_ipv6(text, host, port_text))
    if not port_text.isdigit() or (len(port_text) > 1 and port_text[0] == "0"):
        raise UsageError(f"{text!r}: bad port {port_text!r}")
    port = int(port_text)
    if port > 65535:
        raise UsageError(f"{text!r}: port {port} is over 65535")
    return host, port


def add_command(
    subs: Subcommands,
    name: str,
    *,
    help: str,
    description: str,
    epilog: str,
) -> CommandParser:
    """A subcommand's parser, formatted like every other one."""
    parser: CommandParser = subs.add_parser(
        name, help=help, description=description, epilog=epilog, formatter_class=Formatter
    )
    return parser


def add_codec_options(p: argparse.ArgumentParser, *, limits: bool = False) -> None:
    """``--no-verify-checksum`` and ``--max-size`` (and ``--haproxy-limits``): the parser's
    options, shared by every subcommand that reads headers."""
    p.add_argument("--no-verify-checksum", action="store_true", help="do not check CRC32C TLVs")
    p.add_argument(
        "--max-size",
        type=max_size,
        default=4096,
        metavar="N",
        help="largest v2 header accepted, 16-65551 (default 4096)",
    )
    if limits:
        p.add_argument(
            "--haproxy-limits",
            action="store_true",
            help="HAProxy's receiver limits (short UNKNOWN only, AUTHORITY <= 255, TLV <= 1024)",
        )


def _unbracketed_ipv6(text: str, host: str, port_text: str) -> str:
    """How to write an IPv6 endpoint given without brackets: ``[v6]:port`` when the text
    ends in a port, ``[v6]:PORT`` when the whole text is an address (``::ffff:1.2.3.4``
    has no port: its last part is not one)."""
    forms = []
    if port_text.isdigit():
        forms.append(f"[{host}]:{port_text}")
    try:
        ipaddress.IPv6Address(text)
        forms.append(f"[{text}]:PORT")
    except ValueError:
        pass
    return f"{text!r}: write IPv6 in brackets, then the port: " + (
        " or ".join(forms) or "[2001:db8::1]:443"
    )


def _bad_tlv_type(kind_text: str) -> str:
    """Why a TLV type is not a number, with the spelling that was probably meant."""
    try:
        meant = int(kind_text, 16)
    except ValueError:
        meant = 0xE1
    return (
        f"TLV type {kind_text!r} is not a number:"
        f" write hex with 0x (0x{meant:02X}) or decimal ({meant})"
    )
