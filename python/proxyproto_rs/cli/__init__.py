"""The ``proxyproto`` command line: decode, encode, scan, inspect, relay and check PROXY headers.

A package of one module per subcommand (``decode``, ``encode``, ``scan``, ``inspect``,
``relay``, ``check``), each declaring its own flags next to its code, plus private helpers:
``_render`` (text and JSON output, the one place text is escaped for a terminal), ``_args``
(argument types), ``_pcap`` (a streaming capture reader and TCP reassembly that know
nothing of PROXY), ``_progress`` (scan's progress line), ``_cases`` (the ``check`` battery as
data), ``_servers`` (listener plumbing) and ``_main`` (wiring and exit codes). Only the
standard library and the public codec (plus :mod:`proxyproto_rs._wire` for the deliberately
broken headers of ``check``) are used at run time.

Exit status, for every subcommand: 0 success, 1 "the answer is no" (a bad header, nothing
found, findings), 2 bad usage (one line on stderr, never a traceback), 3 an I/O failure
(file missing, address in use, target unreachable), 130 interrupted.
"""

from __future__ import annotations

from proxyproto_rs.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
