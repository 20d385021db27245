"""What the wrapped protocol sees: a transport (and socket) reporting the header's view.

Strategy: :class:`ProxiedTransport` answers ``get_extra_info()`` from the header and passes
every other call to the real transport; reading control and protocol switches go to the
header-reading protocol that owns the connection, through its public methods, because until
the hand-over that protocol, not the real transport, decides what the application receives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from proxyproto_rs._core import Header
    from proxyproto_rs.aio._protocol import HeaderProtocol


LAZY_SOCKET: Final = object()
"""Placeholder for a ProxiedSocket made on first request (most protocols never ask)."""


class ProxiedSocket:
    """What ``get_extra_info("socket")`` returns on a proxied connection.

    It forwards everything (``fileno()``, ``setsockopt()``, ``family``...) to the real socket
    except ``getpeername()`` and ``getsockname()``, which return the header's addresses, so
    code that asks the socket for the client (uvicorn does) never sees the proxy's address.
    ``family`` stays the real socket's, which may differ from the header's.
    """

    __slots__ = ("_peername", "_sock", "_sockname")

    def __init__(self, sock: Any, peername: object, sockname: object) -> None:
        self._sock = sock
        self._peername = peername
        self._sockname = sockname

    def getpeername(self) -> object:
        """The client's address from the header."""
        return self._peername

    def getsockname(self) -> object:
        """The address the client connected to, from the header."""
        return self._sockname

    @property
    def real_socket(self) -> Any:
        """The socket object the transport gave (its peer is the proxy)."""
        return self._sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return f"<ProxiedSocket peer={self._peername!r} sock={self._sockname!r} of {self._sock!r}>"


class _TransportView(asyncio.Transport):
    """The methods of :class:`ProxiedTransport` (its state lives in the subclass's slots).

    A separate class because ``write``, ``writelines`` and ``is_closing`` are also slots of
    :class:`ProxiedTransport`, which a class cannot declare beside methods of the same name.
    """

    __slots__ = ()
    _start_tls_compatible = True
    transport: asyncio.Transport
    _extra: dict[str, Any] | None
    _header: Header | None
    _owner: HeaderProtocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        extra = self._extra
        if extra is None:
            extra = self._extra = _extra(self._header)
        if name in extra:
            value = extra[name]
            if value is LAZY_SOCKET:
                sock = self.transport.get_extra_info("socket")
                if sock is not None:
                    sock = ProxiedSocket(sock, extra["peername"], extra["sockname"])
                value = extra[name] = sock
            return value
        return self.transport.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.transport.write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self.transport.write_eof()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._owner.pause_app_reading()

    def resume_reading(self) -> None:
        self._owner.resume_app_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._owner.set_app_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        app = self._owner.app_protocol()
        return app if app is not None else self.transport.get_protocol()

    def _force_close(self, exc: BaseException | None) -> None:
        # asyncio's SSLProtocol calls this private method on fatal errors.
        force = getattr(self.transport, "_force_close", None)
        if force is not None:
            force(exc)
        else:
            self.transport.abort()

    def __repr__(self) -> str:
        peer = self.get_extra_info("peername") if self._header is not None else None
        return f"<ProxiedTransport peer={peer!r} of {self.transport!r}>"


class ProxiedTransport(_TransportView):
    """The transport the wrapped protocol sees: the real one with the header's view.

    ``get_extra_info()`` answers ``peername``, ``sockname``, ``proxy_header`` and ``socket``
    from the header (see :class:`ProxiedSocket`) and everything else from the real
    transport; all other methods act on the real transport. The real transport, whose peer is
    the proxy, is the ``transport`` attribute.
    """

    # Slots, not an instance dict, for the state made per connection; "__dict__" keeps
    # arbitrary attributes settable (that dict is made only if one is set).
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_header",
        "_owner",
        "is_closing",
        "transport",
        "write",
        "writelines",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        owner: HeaderProtocol,
        header: Header | None,
    ) -> None:
        # BaseTransport.__init__ only sets _extra, made here on the first get_extra_info:
        # a protocol that never asks costs nothing.
        self._extra = None
        self._header = header
        self.transport = transport
        self._owner = owner
        # What applications call per request (uvicorn: write and is_closing; streams: write,
        # is_closing in drain) is the real transport's own bound method: no Python frame of
        # ours on the write path. _TransportView's methods of those names stay for
        # subclasses and documentation.
        self.write = transport.write  # type: ignore[method-assign]
        self.writelines = transport.writelines  # type: ignore[method-assign]
        self.is_closing = transport.is_closing  # type: ignore[method-assign]


def _extra(header: Header | None) -> dict[str, Any]:
    """What the application's ``get_extra_info`` answers from the header."""
    source = None if header is None else header.source
    if source is None:
        return {"proxy_header": header}
    assert header is not None
    return {
        "proxy_header": header,
        "peername": source,
        "sockname": header.destination,
        "socket": LAZY_SOCKET,
    }
