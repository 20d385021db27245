"""asyncio streams behind a PROXY sender: :func:`start_server`, :func:`start_unix_server`
and :func:`read_header`.

Strategy: the servers are :func:`~proxyproto_rs.aio.wrap` around asyncio's own
``StreamReaderProtocol``, so the callback sees ordinary streams after the header; keyword
arguments named like a :class:`~proxyproto_rs.options.ServerOptions` field configure the
header, the rest go to ``loop.create_server``. :func:`read_header` is the other way round:
it reads one header from a stream the caller already has, never reading past it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

from proxyproto_rs._core import Header
from proxyproto_rs._errors import IncompleteHeaderError
from proxyproto_rs.aio._server import ProxyServerFactory
from proxyproto_rs.aio._types import ClientConnectedCallback
from proxyproto_rs.options import ServerOptions, ServerOptionsKwargs, resolve, split_options

if TYPE_CHECKING:
    from typing_extensions import Unpack

_STREAM_LIMIT: Final = 2**16
"""asyncio's default StreamReader limit."""


def _stream_factory(
    client_connected_cb: ClientConnectedCallback, limit: int
) -> Callable[[], asyncio.StreamReaderProtocol]:
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return factory


async def start_server(
    client_connected_cb: ClientConnectedCallback,
    host: str | Sequence[str] | None = None,
    port: int | None = None,
    *,
    options: ServerOptions | None = None,
    limit: int = _STREAM_LIMIT,
    **kwargs: Any,
) -> asyncio.Server:
    """Like :func:`asyncio.start_server`, behind a PROXY protocol sender.

    ``client_connected_cb(reader, writer)`` runs only for accepted connections, after the
    header (and the TLS handshake with ``ssl=``). ``writer.get_extra_info("peername")`` is
    the real client, ``("proxy_header")`` the :class:`~proxyproto_rs.Header`. *options* and
    the keyword arguments named like its fields are as in :func:`wrap`; other keyword
    arguments go to ``loop.create_server()``.
    """
    ours, rest = split_options(kwargs)
    factory = ProxyServerFactory(
        _stream_factory(client_connected_cb, limit), resolve(options, ours)
    )
    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host, cast(int, port), **rest)


async def start_unix_server(
    client_connected_cb: ClientConnectedCallback,
    path: str | None = None,
    *,
    options: ServerOptions | None = None,
    limit: int = _STREAM_LIMIT,
    **kwargs: Any,
) -> asyncio.Server:
    """:func:`start_server` on a UNIX socket (``trusted=None`` or containing ``"unix"``)."""
    ours, rest = split_options(kwargs)
    factory = ProxyServerFactory(
        _stream_factory(client_connected_cb, limit), resolve(options, ours)
    )
    loop = asyncio.get_running_loop()
    return await loop.create_unix_server(factory, path, **rest)


async def read_header(
    reader: asyncio.StreamReader,
    *,
    options: ServerOptions | None = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> Header:
    """Read one header from *reader*, consuming exactly its bytes and nothing more.

    Each read asks for at most ``Parser.needed`` bytes, a lower bound on what the header
    still lacks, so the payload stays in the reader for the application; nothing is ever
    pushed back into the reader's private buffer. Of *options* (and the keyword arguments
    named like its fields) only ``timeout`` and the parser options (``max_size``,
    ``allow_v1``, ``allow_v2``, ``verify_checksum``, ``haproxy_limits``) apply here.

    Raises:
        InvalidHeaderError: the bytes can never form a header (or a subclass).
        IncompleteHeaderError: EOF before the header was complete (kind ``"eof"``).
        TimeoutError: no complete header within *timeout* seconds.
    """
    resolved = resolve(options, kwargs)
    parser = resolved.new_parser()
    async with asyncio.timeout(resolved.timeout):
        while True:
            chunk = await reader.read(max(parser.needed, 1))
            if not chunk:
                raise IncompleteHeaderError(
                    "connection closed before a complete header", kind="eof", offset=-1
                )
            header = parser.feed(chunk)
            if header is not None:
                if parser.trailing_data:  # pragma: no cover - the core's needed is a bound
                    raise RuntimeError("Parser.needed overshot the header: payload consumed")
                return header
