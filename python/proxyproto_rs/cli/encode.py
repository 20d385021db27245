"""``proxyproto encode``: build a v1 or v2 header from addresses and TLV flags.

``build_header`` is the one place the flags become bytes (``relay`` sends the same per
connection); what v1 cannot say is refused here with a usage error, the rest is the
codec's ``build_v1`` / ``build_v2``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from proxyproto_rs._core import build_v1, build_v2
from proxyproto_rs._enums import Command, Protocol
from proxyproto_rs._errors import BuildError
from proxyproto_rs.cli._args import Subcommands, add_command, endpoint_arg, tlv_arg
from proxyproto_rs.cli._common import EXIT_OK, Endpoint, UsageError
from proxyproto_rs.cli._render import out

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


def add_tlv_options(p: argparse.ArgumentParser) -> None:
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
        type=tlv_arg,
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


def run(args: argparse.Namespace) -> int:
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
        out(data.hex())
    return EXIT_OK


def add_parser(subs: Subcommands) -> None:
    p = add_command(
        subs,
        "encode",
        help="build a v1 or v2 header",
        description="Build a PROXY header: v2 by default (--v1 for the text form).",
        epilog=ENCODE_EPILOG,
    )
    ver = p.add_mutually_exclusive_group()
    ver.add_argument("--v1", action="store_true", help="the text format")
    ver.add_argument("--v2", action="store_true", help="the binary format (default)")
    p.add_argument("--source", type=endpoint_arg, metavar="ADDR", help="the client's address")
    p.add_argument(
        "--destination", type=endpoint_arg, metavar="ADDR", help="the address it connected to"
    )
    p.add_argument("--local", action="store_true", help="v2 LOCAL command (health check)")
    p.add_argument("--dgram", action="store_true", help="v2 DGRAM transport (UDP)")
    add_tlv_options(p)
    raw_or_hex = p.add_mutually_exclusive_group()
    raw_or_hex.add_argument("--raw", action="store_true", help="write raw bytes even on a terminal")
    raw_or_hex.add_argument("--hex", action="store_true", help="write hex even into a pipe")
    p.set_defaults(func=run)
