"""Find and parse every PROXY header in a large buffer (captures, logs, fuzz corpora).

The search, and the refusal of every candidate that does not start a valid header, run in
the core (``_core._Scanner``): Python does one step per header found, never one per
candidate, so a hostile buffer with a signature every few bytes is scanned at the core's
speed (``benchmarks/scan_speed.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from proxyproto_rs._core import Header, _Scanner

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["scan"]


def scan(
    data: Buffer, *, verify_checksum: bool = True, max_size: int = 4096
) -> Iterator[tuple[int, Header]]:
    """Yield ``(offset, header)`` for every valid header found in *data*, in order.

    Signatures that do not start a valid, complete header are skipped; a valid header's
    bytes are not searched again. *data* is any contiguous buffer (read as bytes); it is
    read as it stands at each step. ``ValueError`` for a *max_size* outside 16..65551.
    """
    # bytes are read in place; anything else through a byte view of it (any format).
    view = data if type(data) is bytes else memoryview(data).cast("B")
    return _Scanner(view, verify_checksum=verify_checksum, max_size=max_size)
