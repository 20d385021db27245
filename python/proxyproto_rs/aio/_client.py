"""The client side: write a header as the first bytes of a connection or datagram.

Strategy: a header is bytes written once, before anything else, in one ``write()`` (one
segment when it fits); TLS, when asked for, starts after it on the same connection, as
HAProxy's ``send-proxy`` in front of a TLS server does.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from typing import Any, Final

from proxyproto_rs._core import Header

_STREAM_LIMIT: Final = 2**16
"""asyncio's default StreamReader limit."""


def _header_bytes(header: Header | bytes | bytearray | memoryview) -> bytes:
    return header.to_bytes() if isinstance(header, Header) else bytes(header)


def send_header(
    transport: asyncio.WriteTransport | asyncio.StreamWriter,
    header: Header | bytes | bytearray | memoryview,
) -> None:
    """Write *header* on *transport* (or a StreamWriter); call it before any other write.

    The header goes out in one ``write()`` call, so it leaves in one segment when it fits
    (SPEC rule 3).
    """
    transport.write(_header_bytes(header))


def send_datagram(
    transport: asyncio.DatagramTransport,
    header: Header | bytes | bytearray | memoryview,
    data: bytes | bytearray | memoryview,
    addr: Any = None,
) -> None:
    """Send *data* prefixed with *header* in one datagram (SPEC rule 5)."""
    transport.sendto(_header_bytes(header) + bytes(data), addr)


async def open_connection(
    host: str | None = None,
    port: int | None = None,
    *,
    header: Header | bytes | bytearray | memoryview,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    limit: int = _STREAM_LIMIT,
    **kwargs: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Like :func:`asyncio.open_connection`, sending *header* first.

    With ``ssl=``, the header goes in clear and the TLS handshake follows it on the same
    connection (what HAProxy's ``send-proxy`` in front of a TLS server does).
    """
    reader, writer = await asyncio.open_connection(host, port, limit=limit, **kwargs)
    return await _client_finish(
        reader, writer, header, ssl, server_hostname or host, ssl_handshake_timeout
    )


async def open_unix_connection(
    path: str | None = None,
    *,
    header: Header | bytes | bytearray | memoryview,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    limit: int = _STREAM_LIMIT,
    **kwargs: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """:func:`open_connection` on a UNIX socket."""
    reader, writer = await asyncio.open_unix_connection(path, limit=limit, **kwargs)
    return await _client_finish(reader, writer, header, ssl, server_hostname, ssl_handshake_timeout)


async def _client_finish(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    header: Header | bytes | bytearray | memoryview,
    ssl: _ssl.SSLContext | bool | None,
    server_hostname: str | None,
    ssl_handshake_timeout: float | None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        send_header(writer, header)
        if ssl:
            context = ssl if isinstance(ssl, _ssl.SSLContext) else _ssl.create_default_context()
            await writer.start_tls(
                context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
            )
    except BaseException:
        writer.close()
        raise
    return reader, writer
