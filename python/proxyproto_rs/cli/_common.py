"""What every subcommand shares: the program name, exit codes, the two failures that end a
command early (bad usage, I/O) and the address type the header builders take."""

from __future__ import annotations

from typing import Any, Final, TypeAlias

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
