"""asyncio integration: serve behind HAProxy, nginx or an AWS NLB and see the real client.

Server side, change one line::

    server = await loop.create_server(aio.wrap(MyProtocol, trusted=["10.0.0.0/8"]), host, port)
    server = await aio.start_server(handle, host, port, trusted=["10.0.0.0/8"])

The wrapped protocol's transport reports the header's addresses as ``peername`` and
``sockname`` and the :class:`~proxyproto_rs.Header` as ``proxy_header``; everything after the
header reaches the protocol untouched. Client side, :func:`open_connection` and
:func:`send_header` write a header as the first bytes of a connection. :func:`wrap_datagram`
does the same for UDP, one header per datagram (SPEC rule 5).

Safe by default (SPEC rules 4 and 6): a header is required, it must arrive within
``timeout`` seconds (5), it may not exceed ``max_size`` bytes (4096), and peers outside
``trusted`` are rejected unless ``untrusted="direct"`` says to serve them without a header.
A connection that is refused never reaches the wrapped protocol; it is closed at once and
logged on the ``"proxyproto_rs.aio"`` logger with the error kind (boundedly: first
occurrences, then periodic summaries). Options: :class:`ServerOptions`.

Layout (each module opens with its strategy):

- ``_server``: :func:`wrap` and the factory (options, counters, pending set, log);
- ``_protocol``: the header-reading protocol, a state table from accept to hand-over,
  with the chained-header check;
- ``_pending``: the waiting connections' deadlines and the fair ``max_pending`` cap;
- ``_report``: the bounded refusal log;
- ``_transport``: :class:`ProxiedTransport` and :class:`ProxiedSocket`, the header's view;
- ``_stream``: :func:`start_server`, :func:`start_unix_server`, :func:`read_header`;
- ``_datagram``: :func:`wrap_datagram` (UDP);
- ``_client``: :func:`open_connection`, :func:`send_header`, :func:`send_datagram`.

TLS after the header (``ssl=``): the header is read in clear; then an
:class:`asyncio.sslproto.SSLProtocol` (what ``loop.start_tls()`` uses internally) is given
:class:`ProxiedTransport` as its transport, the bytes already read after the header (the
start of the ClientHello) are fed to it synchronously, and only then is the socket switched
over to it. ``loop.start_tls()`` itself cannot be used because it resumes reading from the
socket before the caller can push back the bytes it already holds.
"""

from __future__ import annotations

from proxyproto_rs.aio._client import (
    open_connection,
    open_unix_connection,
    send_datagram,
    send_header,
)
from proxyproto_rs.aio._datagram import (
    DatagramStats,
    ProxiedDatagramTransport,
    ProxyDatagramFactory,
    wrap_datagram,
)
from proxyproto_rs.aio._server import ProxyServerFactory, ServerStats, wrap
from proxyproto_rs.aio._stream import read_header, start_server, start_unix_server
from proxyproto_rs.aio._transport import ProxiedSocket, ProxiedTransport
from proxyproto_rs.aio._types import PolicyHook
from proxyproto_rs.aio._types import logger as logger
from proxyproto_rs.options import ServerOptions, TrustedSpec, Untrusted

__all__ = [
    "PolicyHook",
    "ServerOptions",
    "TrustedSpec",
    "Untrusted",
    "DatagramStats",
    "ProxiedDatagramTransport",
    "ProxiedSocket",
    "ProxiedTransport",
    "ProxyDatagramFactory",
    "ProxyServerFactory",
    "ServerStats",
    "open_connection",
    "open_unix_connection",
    "read_header",
    "send_datagram",
    "send_header",
    "start_server",
    "start_unix_server",
    "wrap",
    "wrap_datagram",
]
