"""``proxyproto decode``: one header from hex, a file or stdin, printed field by field, or
what is wrong with it and at which byte.

The input is taken as it comes (raw bytes or hex text, detected), parsed once with the
codec's own ``parse()``, and rendered by ``_render``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from proxyproto_rs._core import V2_SIGNATURE, detect, parse
from proxyproto_rs._errors import IncompleteHeaderError, ProxyProtocolError
from proxyproto_rs.cli._args import Subcommands, add_codec_options, add_command, unescape, unhex
from proxyproto_rs.cli._common import EXIT_NO, EXIT_OK, PROG, IOFailure, UsageError
from proxyproto_rs.cli._render import (
    err,
    error_json,
    error_text,
    header_json,
    header_lines,
    hexdump_around,
    json_line,
    out,
)

DECODE_EPILOG = r"""
input:
  A hex argument (spaces, colons and a 0x prefix are fine), --file PATH, or stdin
  ('-' as the argument or the path, or no input named).
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
    """The bytes to decode: the hex (or v1 text) argument, else the file, else stdin."""
    source = args.file
    if args.hex is not None:
        if args.file is not None:
            raise UsageError("give either a hex argument or --file, not both")
        if args.hex != "-":
            return _from_argument(args.hex)
        source = "-"
    return _as_bytes(_read_all(source), args.input)


def _from_argument(text: str) -> bytes:
    if text.startswith("PROXY"):  # a v1 line typed on the command line
        return unescape(text)
    try:
        return unhex(text)
    except ValueError as exc:
        raise UsageError(f"{exc}; use --file for raw bytes") from None


def _read_all(path: str | None) -> bytes:
    """The whole file, or stdin for ``-`` or no path (refused when stdin is a terminal)."""
    if path is not None and path != "-":
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise IOFailure(f"cannot read {path}: {exc.strerror or exc}") from None
    if sys.stdin.isatty():
        raise UsageError("no input: give hex, --file PATH, or pipe bytes into stdin")
    return sys.stdin.buffer.read()


def _as_bytes(data: bytes, mode: str) -> bytes:
    """Raw bytes or hex text, as ``--input`` says or as detected."""
    if mode == "raw":
        return data
    if mode == "hex":
        try:
            return unhex(data.decode("ascii", errors="strict"))
        except (UnicodeDecodeError, ValueError):
            raise UsageError("--input hex: the input is not hex text") from None
    # auto: raw if it starts like a header, hex if it is all hex digits, else raw.
    if data.startswith((b"PROXY", V2_SIGNATURE[:4])):
        return data
    stripped = b"".join(data.split())
    if stripped:
        try:
            return unhex(stripped.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    return data


def run(args: argparse.Namespace) -> int:
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
            json_line({"ok": False, "error": error_json(exc), "input_length": len(data)})
        else:
            what = "" if isinstance(exc, IncompleteHeaderError) else "not a valid header: "
            err(f"{PROG} decode: {what}{error_text(exc)}")
            err(f"  kind:   {exc.kind} ({type(exc).__name__})")
            err(f"  offset: {exc.offset}")
            for row in hexdump_around(data, exc.offset):
                err("  " + row)
        return EXIT_NO
    payload = data[header.length :]
    stacked = detect(payload) in (1, 2) if payload else False
    if args.json:
        json_line(
            {
                "ok": True,
                "header": header_json(header),
                "payload_length": len(payload),
                "payload_starts_with_header": stacked,
            }
        )
        return EXIT_OK
    for line in header_lines(header):
        out(line)
    out(f"payload      {len(payload)} bytes after the header")
    if stacked:
        out("note         the payload starts with another PROXY header (two headers stacked?)")
    return EXIT_OK


def add_parser(subs: Subcommands) -> None:
    p = add_command(
        subs,
        "decode",
        help="decode one header from hex, a file or stdin",
        description="Decode one PROXY header and print its fields, or say exactly what is"
        " wrong with it and at which byte.",
        epilog=DECODE_EPILOG,
    )
    p.add_argument("hex", nargs="?", help="the header as hex ('-' or none: --file or stdin)")
    p.add_argument("-f", "--file", metavar="PATH", help="read the header from PATH ('-': stdin)")
    p.add_argument(
        "--input",
        choices=("auto", "raw", "hex"),
        default="auto",
        help="how to read --file/stdin (default: auto)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_codec_options(p, limits=True)
    p.set_defaults(func=run)
