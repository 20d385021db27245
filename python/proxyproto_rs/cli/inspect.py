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

from proxyproto_rs._core import Header, Parser
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
