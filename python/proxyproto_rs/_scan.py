"""Find and parse every PROXY header in a large buffer (captures, logs, fuzz corpora)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, overload

from proxyproto_rs._core import SPP_MAGIC, Header, SppHeader, find_signature, parse, parse_spp
from proxyproto_rs._errors import ProxyProtocolError

if TYPE_CHECKING:
    from typing_extensions import Buffer

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
def scan(
    data: Buffer, *, verify_checksum: bool = True, max_size: int = 4096, spp: bool
) -> Iterator[tuple[int, Header | SppHeader]]: ...
def scan(
    data: Buffer, *, verify_checksum: bool = True, max_size: int = 4096, spp: bool = False
) -> Iterator[tuple[int, Header | SppHeader]]:
    """Yield ``(offset, header)`` for every valid header found in *data*, in order.

    Signatures that do not start a valid, complete header are skipped; a valid header's
    bytes are not searched again. With ``spp=True``, Cloudflare's Simple Proxy Protocol
    headers (magic ``0x56EC``) are yielded too, as :class:`~proxyproto_rs.SppHeader`: any
    38 bytes after the magic form one, so use it on buffers of datagrams, not on arbitrary
    data (and *data* is copied once to search it).
    """
    view = memoryview(data).cast("B")
    if not spp:
        yield from _scan_proxy(view, verify_checksum, max_size)
        return
    raw = view.tobytes()
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


def _scan_proxy(
    view: memoryview, verify_checksum: bool, max_size: int
) -> Iterator[tuple[int, Header]]:
    pos = find_signature(view, 0)
    while pos >= 0:
        try:
            header = parse(view[pos:], verify_checksum=verify_checksum, max_size=max_size)
        except ProxyProtocolError:
            pos = find_signature(view, pos + 1)
            continue
        yield pos, header
        pos = find_signature(view, pos + header.length)
