"""``proxyproto relay``: a load-balancer emulator. For every client it connects to the
upstream, sends a PROXY header naming the client's real address, then copies bytes both ways.

The header is built by ``encode.build_header`` from the same TLV flags ``encode`` takes; the
upstream connection goes through :mod:`proxyproto_rs.aio`, imported only when relaying.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets

from proxyproto_rs._errors import BuildError
from proxyproto_rs.cli._args import (
    Subcommands,
    add_command,
    hostport_arg,
    positive_float,
    positive_int,
)
from proxyproto_rs.cli._common import EXIT_OK, PROG, Endpoint, UsageError
from proxyproto_rs.cli._render import err, error_text, format_endpoint
from proxyproto_rs.cli._servers import Counter, bound, serve_until, start_listener
from proxyproto_rs.cli.encode import TlvOptions, add_tlv_options, build_header

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


def _header_for(writer: asyncio.StreamWriter, args: argparse.Namespace, tlvs: TlvOptions) -> bytes:
    """The header naming this client: its address and the one it connected to (none for a
    UNIX client or, in v1, a non-TCP one: LOCAL in v2, UNKNOWN in v1)."""
    source = _socket_endpoint(writer.get_extra_info("peername"))
    destination = _socket_endpoint(writer.get_extra_info("sockname"))
    tcp = isinstance(source, tuple) and isinstance(destination, tuple)
    if source is None or destination is None or (args.version == 1 and not tcp):
        source = destination = None
    if args.random_unique_id:
        tlvs = TlvOptions(**{**tlvs.__dict__, "unique_id": secrets.token_hex(16).encode()})
    return build_header(args.version, source, destination, tlvs, local=args.local)


async def _open_upstream(
    upstream: tuple[str, int] | str, header: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    from proxyproto_rs import aio  # only relay needs it: keep other commands quick to start

    if isinstance(upstream, str):
        return await aio.open_unix_connection(upstream, header=header)
    return await aio.open_connection(upstream[0], upstream[1], header=header)


async def _relay_one(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    args: argparse.Namespace,
    tlvs: TlvOptions,
    counter: Counter,
) -> None:
    peer = format_endpoint(writer.get_extra_info("peername"))
    try:
        header = _header_for(writer, args, tlvs)
        async with asyncio.timeout(args.connect_timeout):
            up_reader, up_writer = await _open_upstream(args.upstream, header)
    except (OSError, TimeoutError, BuildError, UsageError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else error_text(exc)
        err(f"{PROG} relay: {peer}: upstream failed: {reason}")
        writer.close()
        counter.tick()
        return
    if not args.quiet:
        err(
            f"{PROG} relay: {peer} -> {format_endpoint(args.upstream)}:"
            f" sent v{args.version} header ({len(header)} bytes)"
        )
    try:
        sent, received = await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        if not args.quiet:
            err(f"{PROG} relay: {peer} closed: {sent} bytes up, {received} bytes down")
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

    server = await start_listener(args.listen, handle)
    err(
        f"{PROG} relay: listening on {bound(server)}, upstream {format_endpoint(args.upstream)},"
        f" PROXY v{args.version}"
    )
    await serve_until(server, counter)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_relay(args))


def add_parser(subs: Subcommands) -> None:
    p = add_command(
        subs,
        "relay",
        help="a load-balancer emulator that prepends a header",
        description="Accept clients, connect each to the upstream, send a PROXY header with"
        " the client's real address first, then pipe bytes both ways.",
        epilog=RELAY_EPILOG,
    )
    p.add_argument("--listen", type=hostport_arg, required=True, metavar="ADDR", help="HOST:PORT")
    p.add_argument(
        "--upstream", type=hostport_arg, required=True, metavar="ADDR", help="HOST:PORT or path"
    )
    p.add_argument(
        "--version", type=int, choices=(1, 2), default=2, help="PROXY protocol version (default 2)"
    )
    p.add_argument("--local", action="store_true", help="send LOCAL headers (v2 health checks)")
    add_tlv_options(p)
    p.add_argument(
        "--random-unique-id",
        action="store_true",
        help="a fresh UNIQUE_ID per connection (32 hex characters)",
    )
    p.add_argument("--count", type=positive_int, metavar="N", help="exit after N connections")
    p.add_argument(
        "--connect-timeout", type=positive_float, default=5.0, metavar="S", help="default 5"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-connection log on stderr")
    p.set_defaults(func=run)
