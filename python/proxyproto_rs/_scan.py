"""Find and parse every PROXY header in a large buffer (captures, logs, fuzz corpora)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from proxyproto_rs._core import Header, find_signature, parse
from proxyproto_rs._errors import ProxyProtocolError

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["scan"]


def scan(
    data: Buffer, *, verify_checksum: bool = True, max_size: int = 4096
) -> Iterator[tuple[int, Header]]:
    """Yield ``(offset, header)`` for every valid header found in *data*, in order.

    Signatures that do not start a valid, complete header are skipped; a valid header's
    bytes are not searched again.
    """
    view = memoryview(data).cast("B")
    pos = find_signature(view, 0)
    while pos >= 0:
        try:
            header = parse(view[pos:], verify_checksum=verify_checksum, max_size=max_size)
        except ProxyProtocolError:
            pos = find_signature(view, pos + 1)
            continue
        yield pos, header
        pos = find_signature(view, pos + header.length)
