"""Wiring: the top-level parser (each subcommand module adds its own parser and flags) and
``main``, which turns every way a command can end into its exit status and one line on
stderr, never a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from proxyproto_rs.cli import check, decode, encode, inspect, relay, scan
from proxyproto_rs.cli._args import CommandParser, Formatter
from proxyproto_rs.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    IOFailure,
    UsageError,
)
from proxyproto_rs.cli._render import err, error_text, make_output_safe

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

SUBCOMMANDS = (decode, encode, scan, inspect, relay, check)
"""In the order ``--help`` lists them."""


def build_parser() -> CommandParser:
    from proxyproto_rs import __version__

    parser = CommandParser(
        prog=PROG,
        description="Decode, encode, find, observe, relay and conformance-check PROXY protocol"
        " (v1 text, v2 binary) headers.",
        epilog=MAIN_EPILOG,
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for module in SUBCOMMANDS:
        module.add_parser(subs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``proxyproto`` console script and ``python -m proxyproto_rs``."""
    make_output_safe()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    sub = f"{PROG} {args.command}"
    try:
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except UsageError as exc:
        err(f"{sub}: error: {error_text(exc)} (see '{sub} --help')")
        return EXIT_USAGE
    except IOFailure as exc:
        err(f"{sub}: {error_text(exc)}")
        return EXIT_IO
    except KeyboardInterrupt:
        err(f"{sub}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time
        # flush from raising again on the dead pipe.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
