"""Progress of a long ``scan`` on stderr: ``\\r``-updated on a terminal, a line per tenth
otherwise.

On a terminal the progress line shares the screen with the results on stdout, so
``clear`` erases it before a result is printed; the next update draws it again.
"""

from __future__ import annotations

import sys
import time
from typing import Final

from proxyproto_rs.cli._render import err

_MIB: Final = 1024 * 1024
_CLEAR_LINE: Final = "\r\x1b[K"
"""Carriage return, then erase to the end of the line (ECMA-48 EL)."""


class Progress:
    """Throttled progress over *total* bytes (0: unknown, as for stdin)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.last_decile = -1
        self.found = 0
        self.drawn = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self.tty:
            now = time.monotonic()
            if now - self.last >= 0.2:
                self.last = now
                self._draw(done)
            return
        decile = done * 10 // self.total if self.total else -1
        if decile > self.last_decile:
            self.last_decile = decile
            err(self._text(done))

    def clear(self) -> None:
        """Erase the progress line, if one is on the terminal, before other output."""
        if self.drawn:
            sys.stderr.write(_CLEAR_LINE)
            sys.stderr.flush()
            self.drawn = False

    def finish(self, done: int) -> None:
        if not self.enabled:
            return
        if self.tty:
            self._draw(done)
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False
        elif self.last_decile < 10:
            err(self._text(done))

    def _draw(self, done: int) -> None:
        sys.stderr.write(f"\r{self._text(done)}\x1b[K")
        sys.stderr.flush()
        self.drawn = True

    def _text(self, done: int) -> str:
        if not self.total:
            return f"scan: {done / _MIB:.1f} MiB, {self.found} header(s)"
        pct = 100.0 * done / self.total
        return (
            f"scan: {pct:5.1f}% ({done / _MIB:.1f}/{self.total / _MIB:.1f} MiB),"
            f" {self.found} header(s)"
        )
