"""``proxyproto inspect``: listen, and print as one JSON line per connection the PROXY
header the peer sent, or why it was not one.

Each connection is read through the codec's incremental ``Parser`` under ``--timeout``;
an HTTP request after the header can be answered with the same JSON line, so a client
behind the proxy sees what the proxy sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Final

from proxyproto_rs._core import Header, Parser, detect, parse
from proxyproto_rs._errors import IncompleteHeaderError, ProxyProtocolError
from proxyproto_rs.cli._args import (
    Subcommands,
    add_codec_options,
    add_command,
    hostport_arg,
    positive_float,
    positive_int,
)
from proxyproto_rs.cli._common import EXIT_OK, JSON, PROG
from proxyproto_rs.cli._render import err, error_json, format_endpoint, header_json
from proxyproto_rs.cli._servers import Counter, bound, serve_until, start_listener

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


_FIRST_BYTES_WAIT: Final = 1.0
"""Seconds to wait for the first bytes after the header (a second header, a request)."""


async def _inspect_one(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    args: argparse.Namespace,
    counter: Counter,
) -> None:
    peer = writer.get_extra_info("peername")
    record: JSON = {"time": round(time.time(), 6), "peer": format_endpoint(peer)}
    try:
        header, after = await _read_header(reader, args, record)
        if header is not None:
            record["header"] = header_json(header)
            after = await _first_bytes(reader, after)
            after = _note_second_header(after, args, record)
        line = json.dumps(record, separators=(",", ":"))
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if header is not None and args.respond != "none":
            await _respond(writer, args.respond, line, after)
    except OSError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        counter.tick()


async def _read_header(
    reader: asyncio.StreamReader, args: argparse.Namespace, record: JSON
) -> tuple[Header | None, bytes]:
    """The header and the bytes read after it; on failure None, and *record* says why."""
    parser = Parser(verify_checksum=not args.no_verify_checksum, max_size=args.max_size)
    received = bytearray()
    try:
        async with asyncio.timeout(args.timeout):
            while parser.header is None:
                chunk = await reader.read(max(parser.needed, 1))
                if not chunk:
                    raise IncompleteHeaderError(
                        f"connection closed after {len(received)} bytes, before a complete header",
                        kind="eof",
                        offset=len(received),
                    )
                received += chunk
                parser.feed(chunk)
        return parser.header, parser.trailing_data
    except TimeoutError:
        record["error"] = _failure(
            "timeout", received, f"no complete header within {args.timeout} s"
        )
    except ProxyProtocolError as exc:
        record["error"] = error_json(exc)
    except OSError as exc:
        record["error"] = _failure("connection_error", received, str(exc), type(exc).__name__)
    record["received_hex"] = bytes(received[:256]).hex()
    return None, b""


def _failure(kind: str, received: bytearray, message: str, type_name: str = "TimeoutError") -> JSON:
    return {"kind": kind, "offset": len(received), "message": message, "type": type_name}


async def _first_bytes(reader: asyncio.StreamReader, after: bytes) -> bytes:
    """*after* and what follows, until it can be told whether a PROXY header starts it (or
    the peer stays silent for a second: a server-speaks-first protocol)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_FIRST_BYTES_WAIT):
            while detect(after) is None or (detect(after) and _incomplete(after)):
                chunk = await reader.read(4096)
                if not chunk:
                    break
                after += chunk
    return after


def _incomplete(data: bytes) -> bool:
    try:
        parse(data)
    except IncompleteHeaderError:
        return True
    except ProxyProtocolError:
        return False
    return False


def _note_second_header(after: bytes, args: argparse.Namespace, record: JSON) -> bytes:
    """A second PROXY header right after the first (two proxies in a row both adding one)
    is a finding of its own; returns the bytes after it, for the HTTP answer."""
    if not after or detect(after) not in (1, 2):
        return after
    record["findings"] = ["second_header"]
    try:
        second = parse(after, verify_checksum=not args.no_verify_checksum, max_size=args.max_size)
    except ProxyProtocolError as exc:
        record["second_header"] = {"error": error_json(exc)}
        return b""
    record["second_header"] = {"header": header_json(second)}
    return after[second.length :]


async def _respond(writer: asyncio.StreamWriter, respond: str, line: str, head: bytes) -> None:
    if respond == "http" or head.startswith(_HTTP_METHODS):
        body = (line + "\n").encode()
        writer.write(
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()


async def _inspect(args: argparse.Namespace) -> int:
    counter = Counter(args.count)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _inspect_one(reader, writer, args, counter)

    server = await start_listener(args.listen, handle)
    err(f"{PROG} inspect: listening on {bound(server)}")
    await serve_until(server, counter)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_inspect(args))


def add_parser(subs: Subcommands) -> None:
    p = add_command(
        subs,
        "inspect",
        help="listen and print the header of every incoming connection",
        description="Listen and print, as one JSON line per connection, the PROXY header"
        " the peer sent (or why it was not one).",
        epilog=INSPECT_EPILOG,
    )
    p.add_argument(
        "--listen",
        type=hostport_arg,
        required=True,
        metavar="ADDR",
        help="HOST:PORT ([::1]:8080 for IPv6, port 0 for any) or a UNIX socket path",
    )
    p.add_argument("--count", type=positive_int, metavar="N", help="exit after N connections")
    p.add_argument(
        "--timeout",
        type=positive_float,
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
    add_codec_options(p)
    p.set_defaults(func=run)
