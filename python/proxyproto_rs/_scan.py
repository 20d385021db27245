"""Find and parse every PROXY header in a large buffer (captures, logs, fuzz corpora).

The search, and the refusal of every candidate that does not start a valid header, run in
the core (``_core._Scanner``): Python does one step per header found, never one per
candidate, so a hostile buffer with a signature every few bytes is scanned at the core's
speed (``benchmarks/scan_speed.py``). Cloudflare's Simple Proxy Protocol (``spp=True``) is
opt-in and found by a Python loop over the core's two searches: its two-byte magic is only
worth looking for in buffers of datagrams.
"""

from __future__ import annotations

from proxyproto_rs._core import (
    SPP_MAGIC,
    Header,
    SppHeader,
    _Scanner,
    find_signature,
    parse,
    parse_spp,
)
from proxyproto_rs._errors import ProxyProtocolError

# Not typing.TYPE_CHECKING: `import proxyproto_rs` imports this module, and importing typing
# would double the package's import time. Type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Literal, overload

    from typing_extensions import Buffer
else:

    def overload(fn: object) -> object:
        """typing.overload's runtime effect (none), without importing typing."""
        return fn


__all__ = ["scan"]


@overload
def scan(
    data: Buffer,
    *,
    verify_checksum: bool = True,
    max_size: int = 4096,
    spp: Literal[False] = False,
) -> Iterator[tuple[int, Header]]: ...
@overload
def scan(  # noqa: F811 (ruff does not know the runtime overload above)
    data: Buffer, *, verify_checksum: bool = True, max_size: int = 4096, spp: bool
) -> Iterator[tuple[int, Header | SppHeader]]: ...
def scan(  # noqa: F811
    data: Buffer, *, verify_checksum: bool = True, max_size: int = 4096, spp: bool = False
) -> Iterator[tuple[int, Header | SppHeader]]:
    """Yield ``(offset, header)`` for every valid header found in *data*, in order.

    Signatures that do not start a valid, complete header are skipped; a valid header's
    bytes are not searched again. *data* is any contiguous buffer (read as bytes); it is
    read as it stands at each step. ``ValueError`` for a *max_size* outside 16..65551.
    With ``spp=True``, Cloudflare's Simple Proxy Protocol headers (magic ``0x56EC``) are
    yielded too, as :class:`~proxyproto_rs.SppHeader`: any 38 bytes after the magic form
    one, so use it on buffers of datagrams, not on arbitrary data (and *data* is copied
    once to search it).
    """
    # bytes are read in place; anything else through a byte view of it (any format).
    view = data if type(data) is bytes else memoryview(data).cast("B")
    if not spp:
        return _Scanner(view, verify_checksum=verify_checksum, max_size=max_size)
    return _scan_with_spp(view, verify_checksum, max_size)


def _scan_with_spp(
    view: bytes | memoryview, verify_checksum: bool, max_size: int
) -> Iterator[tuple[int, Header | SppHeader]]:
    raw = bytes(view)
    pos = 0
    while True:
        proxy_at = find_signature(view, pos)
        spp_at = raw.find(SPP_MAGIC, pos)
        if spp_at >= 0 and (proxy_at < 0 or spp_at < proxy_at):
            try:
                found: Header | SppHeader = parse_spp(view[spp_at:])
            except ProxyProtocolError:  # fewer than 38 bytes left
                pos = spp_at + 1
                continue
            at = spp_at
        elif proxy_at >= 0:
            try:
                found = parse(view[proxy_at:], verify_checksum=verify_checksum, max_size=max_size)
            except ProxyProtocolError:
                pos = proxy_at + 1
                continue
            at = proxy_at
        else:
            return
        yield at, found
        pos = at + found.length
