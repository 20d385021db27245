"""gunicorn behind HAProxy, nginx or an AWS NLB: worker classes that read the PROXY header.

Strategy: gunicorn's extension point is the worker class (``--worker-class`` /
``worker_class`` in the config file), so each worker here is gunicorn's own (or uvicorn's)
with one step added where a connection starts; gunicorn's ``--proxy-protocol`` stays off.

- :class:`SyncProxyWorker` (``sync``) and :class:`ThreadProxyWorker` (``gthread``): the
  accepted socket goes through :func:`proxyproto_rs.sync.read_header` (blocking, with the
  header deadline, never a byte past the header) before gunicorn wraps it in TLS or parses
  HTTP; gunicorn then carries on with the header's source as the client address, so the WSGI
  ``REMOTE_ADDR`` and ``REMOTE_PORT`` are the real client's for every request of the
  connection. The :class:`~proxyproto_rs.Header` is ``environ["proxyproto_rs.header"]`` and
  the balancer's address ``environ["proxyproto_rs.proxy_peer"]`` (:data:`ENVIRON_HEADER`,
  :data:`ENVIRON_PROXY_PEER`).
- :class:`UvicornProxyWorker` (the ``uvicorn-worker`` package's worker, else
  ``uvicorn.workers``'): uvicorn runs with
  :func:`proxyproto_rs.integrations.uvicorn.http_protocol` as its HTTP protocol, so
  ``scope["client"]`` is the real client and the header is
  ``scope["extensions"]["proxy_protocol"]["header"]``.

Options, the gunicorn way::

    gunicorn app:app --worker-class proxyproto_rs.integrations.gunicorn.SyncProxyWorker \\
        --proxy-allow-from 10.0.0.0/8 --env PROXYPROTO_TIMEOUT=3

``--proxy-allow-from`` (gunicorn's ``proxy_allow_ips``, default ``127.0.0.1,::1``; ``*`` for
any peer) names the peers allowed to send a header; UNIX-socket peers are allowed too, as
gunicorn does. ``PROXYPROTO_TIMEOUT`` (seconds, default 5) and ``PROXYPROTO_UNTRUSTED``
(``reject``, the default, or ``direct``) come from the environment. Or, in the config file,
a worker class with a :class:`~proxyproto_rs.options.ServerOptions` of its own::

    # gunicorn.conf.py
    from proxyproto_rs.integrations.gunicorn import proxy_worker
    worker_class = proxy_worker("gthread", trusted=["10.0.0.0/8"], timeout=3)

Every worker refuses to start when gunicorn's own ``--proxy-protocol`` is on as well: the
header would be read twice (see docs/servers/gunicorn.md). No class name here ends in
``SyncWorker``: gunicorn replaces any worker class named so by its plain ``gthread`` worker
when ``--threads`` is over 1, which would silently drop the header reading.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Literal, Unpack, cast

from gunicorn.workers.gthread import (  # type: ignore[import-untyped]
    ThreadWorker as _GunicornThreadWorker,
)
from gunicorn.workers.sync import SyncWorker as _GunicornSyncWorker  # type: ignore[import-untyped]

from proxyproto_rs import sync
from proxyproto_rs._core import Header
from proxyproto_rs._errors import ProxyProtocolError
from proxyproto_rs.options import ServerOptions, ServerOptionsKwargs, Untrusted, resolve

__all__ = [
    "ENVIRON_HEADER",
    "ENVIRON_PROXY_PEER",
    "SyncProxyWorker",
    "ThreadProxyWorker",
    "UvicornProxyWorker",
    "proxy_worker",
    "worker_options",
]

ENVIRON_HEADER: Final = sync.WSGI_HEADER_KEY
"""WSGI environ key of the connection's :class:`~proxyproto_rs.Header` (``None`` for an
untrusted peer served with ``untrusted="direct"``), the same as :mod:`proxyproto_rs.sync`'s."""
ENVIRON_PROXY_PEER: Final = sync.WSGI_PEER_KEY
"""WSGI environ key of the socket peer that sent the header (the balancer)."""


def worker_options(cfg: Any) -> ServerOptions:
    """The options a worker without its own ``proxy_options`` runs with, from gunicorn's
    configuration *cfg* (``proxy_allow_ips``) and the environment (``PROXYPROTO_TIMEOUT``,
    ``PROXYPROTO_UNTRUSTED``)."""
    allowed = [str(ip).strip() for ip in cfg.proxy_allow_ips]
    trusted: list[str] | None = None if "*" in allowed else [*allowed, "unix"]
    timeout = float(os.environ.get("PROXYPROTO_TIMEOUT", "5"))
    untrusted = os.environ.get("PROXYPROTO_UNTRUSTED", "reject")
    if untrusted not in ("reject", "direct"):
        raise ValueError(f"PROXYPROTO_UNTRUSTED must be reject or direct, got {untrusted!r}")
    return ServerOptions(trusted=trusted, timeout=timeout, untrusted=cast(Untrusted, untrusted))


class _ProxyWorker:
    """What every worker here shares: where its options come from, the startup check."""

    proxy_options: ServerOptions | None = None
    """Set on a subclass (:func:`proxy_worker` does) to ignore gunicorn's settings."""

    cfg: Any
    log: Any

    def _proxy_resolve(self) -> ServerOptions:
        if self.cfg.proxy_protocol != "off":
            raise RuntimeError(
                f"{type(self).__name__} reads the PROXY header itself: turn gunicorn's "
                "--proxy-protocol off (it would read a second header)"
            )
        options = type(self).proxy_options
        return options if options is not None else worker_options(self.cfg)


class _WSGIProxyWorker(_ProxyWorker):
    """Header reading for the WSGI workers, whose connections each run on one thread."""

    wsgi: Any
    _proxy: ServerOptions
    _proxy_local: threading.local

    def load_wsgi(self) -> None:
        self._proxy = self._proxy_resolve()
        self._proxy_local = threading.local()
        super().load_wsgi()  # type: ignore[misc]
        self.wsgi = _EnvironMiddleware(self.wsgi, self._proxy_local)

    def _proxy_accept(self, sock: Any, peer: Any) -> tuple[Any, Header | None] | None:
        """Read the header from *sock*: (the client address, the header), or ``None``
        when the connection is refused (it is then closed).

        *peer* is what ``accept()`` returned, so the trust check needs no ``getpeername()``.
        """
        try:
            header = sync._read_checked(sock, self._proxy, peer)
        except ProxyProtocolError as exc:
            self._proxy_refuse(sock, peer, exc.kind, str(exc))
            return None
        except OSError as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else "eof"
            self._proxy_refuse(sock, peer, kind, f"connection failed: {exc}")
            return None
        source = None if header is None else header.source
        return (peer if source is None else source), header

    def _proxy_refuse(self, sock: Any, peer: Any, kind: str, message: str) -> None:
        log = self.log.info if kind in ("eof", "timeout") else self.log.warning
        log("connection from %r refused: %s [%s]", peer, message, kind)
        sock.close()


class SyncProxyWorker(_WSGIProxyWorker, _GunicornSyncWorker):  # type: ignore[misc]
    """gunicorn's ``sync`` worker behind a PROXY protocol sender.

    One connection at a time, one request per connection, as gunicorn's ``sync``: a client
    slow to send its header holds the worker for up to ``timeout`` seconds. With
    ``--threads`` over 1, use :class:`ThreadProxyWorker`.
    """

    def init_process(self) -> None:
        if self.cfg.threads > 1:
            self.log.warning(
                "%s serves one connection at a time and ignores --threads %d; "
                "use ThreadProxyWorker for a thread pool",
                type(self).__name__,
                self.cfg.threads,
            )
        super().init_process()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        accepted = self._proxy_accept(client, addr)
        if accepted is None:
            return
        address, header = accepted
        self._proxy_local.info = (header, addr)
        try:
            super().handle(listener, client, address)
        finally:
            self._proxy_local.info = None


_STATE: Final = "_proxyproto_rs"
"""Where a gthread connection (gunicorn's ``TConn``) keeps (header, proxy peer)."""


class ThreadProxyWorker(_WSGIProxyWorker, _GunicornThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker behind a PROXY protocol sender.

    The header is read on the pool thread that takes the new connection, before gunicorn
    initialises it; kept-alive requests reuse what was read.
    """

    def handle(self, conn: Any) -> Any:
        state = conn.__dict__.get(_STATE)
        if state is None:
            accepted = self._proxy_accept(conn.sock, conn.client)
            if accepted is None:
                return False
            address, header = accepted
            state = conn.__dict__[_STATE] = (header, conn.client)
            conn.client = address
        self._proxy_local.info = state
        try:
            return super().handle(conn)
        finally:
            self._proxy_local.info = None


class _EnvironMiddleware:
    """Adds the connection's header and proxy peer to every WSGI environ."""

    __slots__ = ("app", "local")

    def __init__(self, app: Callable[..., Any], local: threading.local) -> None:
        self.app = app
        self.local = local

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        info = getattr(self.local, "info", None)
        if info is not None:
            environ[ENVIRON_HEADER], environ[ENVIRON_PROXY_PEER] = info
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def _uvicorn_worker() -> type[Any]:
    """:class:`UvicornProxyWorker`, made on first use: uvicorn is needed only by those using it."""
    global _uvicorn_worker_class
    if _uvicorn_worker_class is not None:
        return _uvicorn_worker_class
    try:
        from uvicorn_worker import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
            UvicornWorker as base,
        )
    except ImportError:
        with warnings.catch_warnings():  # uvicorn.workers warns that it moved to that package
            warnings.simplefilter("ignore", DeprecationWarning)
            from uvicorn.workers import UvicornWorker as base

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        from gunicorn.sock import ssl_context  # type: ignore[import-untyped]

        from proxyproto_rs.integrations.uvicorn import http_protocol

        options = self._proxy_resolve()
        # Refusals are logged by proxyproto_rs.aio: send them where gunicorn logs errors, as
        # uvicorn's worker does for uvicorn's own loggers.
        refusals = logging.getLogger("proxyproto_rs.aio")
        refusals.handlers = self.log.error_log.handlers
        refusals.setLevel(self.log.error_log.level)
        refusals.propagate = False
        config = self.config
        if self.cfg.is_ssl and options.ssl is None:
            options = options.replace(ssl=ssl_context(self.cfg))
        config.ssl_keyfile = config.ssl_certfile = None
        protocol = config.http if isinstance(config.http, str) else "auto"
        config.http = http_protocol(protocol, options=options)

    _uvicorn_worker_class = type(
        "UvicornProxyWorker",
        (_ProxyWorker, base),
        {
            "__init__": __init__,
            "__module__": __name__,
            "__doc__": _UVICORN_DOC,
        },
    )
    return _uvicorn_worker_class


_uvicorn_worker_class: type[Any] | None = None
_UVICORN_DOC: Final = """uvicorn's gunicorn worker behind a PROXY protocol sender.

gunicorn's TLS settings (``--certfile``...) apply after the header (TLS passthrough at the
balancer); uvicorn's own TLS is turned off so it does not start before it.
"""


if TYPE_CHECKING:
    UvicornProxyWorker: type[Any]
    """uvicorn's gunicorn worker behind a PROXY protocol sender (made on first use)."""


def __getattr__(name: str) -> Any:
    if name == "UvicornProxyWorker":
        return _uvicorn_worker()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


WorkerBase = Literal["sync", "gthread", "uvicorn"]
_BASES: Final[dict[str, Callable[[], type[Any]]]] = {
    "sync": lambda: SyncProxyWorker,
    "gthread": lambda: ThreadProxyWorker,
    "uvicorn": _uvicorn_worker,
}


def proxy_worker(
    base: WorkerBase = "sync",
    *,
    options: ServerOptions | None = None,
    **kwargs: Unpack[ServerOptionsKwargs],
) -> type[Any]:
    """A worker class with its own options, for ``worker_class =`` in a config file.

    Args:
        base: ``"sync"``, ``"gthread"`` or ``"uvicorn"``.
        options, kwargs: the :class:`~proxyproto_rs.options.ServerOptions` (validated here,
            so a mistake stops gunicorn before it forks).
    """
    if base not in _BASES:
        raise ValueError(f"base must be 'sync', 'gthread' or 'uvicorn', got {base!r}")
    parent = _BASES[base]()
    return type(
        parent.__name__,
        (parent,),
        {"proxy_options": resolve(options, kwargs), "__module__": __name__},
    )
