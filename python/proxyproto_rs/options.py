"""How a server accepts PROXY headers: one immutable, validated options object.

Strategy: every server entry point (``aio``, the blocking API, each integration) takes a
:class:`ServerOptions` and nothing else describes policy, so an option is defined, validated
and documented once, here. Keyword arguments stay a shorthand: entry points pass them to
:func:`resolve`, which builds (or overrides) the object. Validation happens when the object is
made, never per connection, and the two per-connection questions (is this peer trusted? does
the policy accept this header?) are answered by methods of the object, so the answer is the
same in every integration.

The trust test runs once per connection, so it is cheap: the networks are compiled once into
the core's integer prefix tests, which read the peer's host text without making a Python
object (:meth:`ServerOptions.trust_function` hands servers that test itself). IPv4 peers and
IPv4-mapped IPv6 peers (``::ffff:a.b.c.d``, what a dual-stack listener reports) are matched against
networks however they are written: ``127.0.0.0/8`` and ``::ffff:127.0.0.0/104`` trust the same
clients.
"""

from __future__ import annotations

import inspect
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypedDict

from proxyproto_rs._core import (
    MAX_V2_SIZE,
    V2_SIGNATURE,
    Header,
    Parser,
    SppHeader,
    _TrustedNetworks,
    parse,
)

if TYPE_CHECKING:
    import ssl as _ssl
    import sys

    if sys.version_info >= (3, 12):
        from collections.abc import Buffer
    else:
        from typing_extensions import Buffer

__all__ = [
    "DEFAULT_LOG_FIRST",
    "DEFAULT_LOG_INTERVAL",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_TIMEOUT",
    "MIN_MAX_SIZE",
    "Network",
    "Policy",
    "ServerOptions",
    "ServerOptionsKwargs",
    "TrustedSpec",
    "Untrusted",
    "resolve",
    "split_options",
]

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
TrustedSpec: TypeAlias = Iterable[str | Network] | str
"""CIDR strings (``"10.0.0.0/8"``, ``"::1"``), ``ipaddress`` networks, and the special
string ``"unix"``, which trusts UNIX-socket peers (they have no IP address)."""
Untrusted: TypeAlias = Literal["reject", "direct"]
Policy: TypeAlias = Callable[..., bool]
"""``policy(peername, header, sockname) -> bool``.

``peername`` is the real socket peer (the proxy), ``header`` the parsed
:class:`~proxyproto_rs.Header` (``None`` for an untrusted peer served with
``untrusted="direct"``), ``sockname`` the local address the connection arrived on, so one
process can apply different rules per listener. Return ``False`` (or raise) to refuse the
connection. A two-argument ``policy(peername, header)`` is accepted too."""

MIN_MAX_SIZE: Final = len(V2_SIGNATURE) + 4
"""16: the smallest ``max_size``, a v2 header's fixed part."""
DEFAULT_MAX_SIZE: Final = 4096
"""Largest v2 header accepted by default (SPEC D7)."""
DEFAULT_TIMEOUT: Final = 5.0
"""Seconds allowed for the whole header by default (SPEC rule 4 asks for at least 3)."""

DEFAULT_LOG_FIRST: Final = 5
"""Refusals logged one by one per error kind and ``log_interval`` by default."""
DEFAULT_LOG_INTERVAL: Final = 60.0
"""Seconds between summaries of the refusals not logged one by one, by default."""


class ServerOptionsKwargs(TypedDict, total=False):
    """The keyword-argument form of :class:`ServerOptions` (for ``**kwargs`` typing)."""

    trusted: TrustedSpec | None
    untrusted: Untrusted
    timeout: float | None
    max_size: int
    max_pending: int | None
    policy: Policy | None
    allow_v1: bool
    allow_v2: bool
    verify_checksum: bool
    haproxy_limits: bool
    ssl: _ssl.SSLContext | None
    ssl_handshake_timeout: float | None
    spp: bool
    allow_chained: bool
    log_first: int
    log_interval: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """How a server accepts PROXY headers; immutable, validated when made.

    Make a variant with :meth:`replace`. Every server entry point of the package takes one
    (``options=``) and also accepts the same names as keyword arguments.

    Attributes:
        trusted: peers allowed to send a header. ``None`` (the default) trusts every peer,
            UNIX-socket ones included; a header is still required from all. Otherwise CIDR
            strings or ``ipaddress`` networks, plus ``"unix"`` for UNIX-socket peers; stored
            normalised as a tuple of networks and ``"unix"``.
        untrusted: for a peer outside ``trusted``: ``"reject"`` closes the connection at once;
            ``"direct"`` serves it with its socket addresses and reads no header. Never both on
            one port for the same peers: SPEC rule 6 forbids guessing whether a header is
            present.
        timeout: seconds allowed for the whole header (SPEC rule 4 asks for at least 3);
            ``None`` disables it, which lets idle clients hold connections forever.
        max_size: largest v2 header accepted, ``MIN_MAX_SIZE``..``MAX_V2_SIZE`` (16..65551);
            v1 is capped at 107 bytes regardless (SPEC rule 14, D7).
        max_pending: most connections waiting for their header at once; ``None``: no cap.
            In ``aio``, a newcomer beyond it evicts the oldest waiting connection that has
            started its header without finishing it (else the oldest), so tricklers cannot
            keep legitimate clients out; keep it above the listen backlog.
        policy: ``policy(peername, header, sockname) -> bool``, called once the header is
            parsed (``header=None`` for ``"direct"`` peers); ``False`` or an exception refuses
            the connection (error kind ``"policy"``). Two-argument callables are accepted.
        allow_v1, allow_v2, verify_checksum, haproxy_limits: the
            :class:`~proxyproto_rs.Parser` options.
        ssl: server ``SSLContext``; TLS starts on the bytes after the header (stream servers
            only).
        ssl_handshake_timeout: as in ``loop.create_server`` (``None``: asyncio's default).
        spp: datagram servers only: every datagram from a trusted sender starts with
            Cloudflare Spectrum's Simple Proxy Protocol header instead of a PROXY header
            (the handler then sees an :class:`~proxyproto_rs.SppHeader`).
        allow_chained: accept connections whose application bytes start with a second PROXY
            header (two proxies in a row both adding one). ``False`` (the default) refuses
            them (error kind ``"chained_header"``): the application would otherwise read a
            header as its payload. The check never delays the hand-over: it runs on the
            first application bytes before the application sees them.
        log_first: refused connections logged one by one per error kind in each
            ``log_interval``; the others are counted and summarised.
        log_interval: seconds between summaries of the refusals not logged one by one
            (counts by kind and peer network); ``None`` logs every refusal. Totals are
            always in the server's ``stats``.
    """

    trusted: TrustedSpec | None = None
    untrusted: Untrusted = "reject"
    timeout: float | None = DEFAULT_TIMEOUT
    max_size: int = DEFAULT_MAX_SIZE
    max_pending: int | None = None
    policy: Policy | None = None
    allow_v1: bool = True
    allow_v2: bool = True
    verify_checksum: bool = True
    haproxy_limits: bool = False
    ssl: _ssl.SSLContext | None = None
    ssl_handshake_timeout: float | None = None
    spp: bool = False
    allow_chained: bool = False
    log_first: int = DEFAULT_LOG_FIRST
    log_interval: float | None = DEFAULT_LOG_INTERVAL
    _trust: _Trust = field(init=False, repr=False, compare=False, hash=False)
    _policy3: Callable[[Any, Any, Any], bool] | None = field(
        init=False, repr=False, compare=False, hash=False
    )
    _default_codec: bool = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        trust = _Trust(self.trusted)
        object.__setattr__(self, "trusted", trust.spec)
        object.__setattr__(self, "_trust", trust)
        object.__setattr__(self, "_policy3", _three_argument_policy(self.policy))
        object.__setattr__(
            self,
            "_default_codec",
            self.allow_v1
            and self.allow_v2
            and self.verify_checksum
            and not self.haproxy_limits
            and self.max_size == DEFAULT_MAX_SIZE,
        )
        if self.untrusted not in ("reject", "direct"):
            raise ValueError(f'untrusted must be "reject" or "direct", got {self.untrusted!r}')
        _check_seconds("timeout", self.timeout)
        _check_seconds("ssl_handshake_timeout", self.ssl_handshake_timeout)
        _check_int("max_size", self.max_size, MIN_MAX_SIZE, MAX_V2_SIZE)
        if self.max_pending is not None:
            _check_int("max_pending", self.max_pending, 1, None)
        _check_int("log_first", self.log_first, 0, None)
        _check_seconds("log_interval", self.log_interval)
        for name in (
            "allow_v1",
            "allow_v2",
            "verify_checksum",
            "haproxy_limits",
            "allow_chained",
            "spp",
        ):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not (self.allow_v1 or self.allow_v2):
            raise ValueError("allow_v1 and allow_v2 cannot both be False")
        if self.ssl is not None:
            import ssl as _ssl_module  # only servers that use TLS pay for importing ssl

            if not isinstance(self.ssl, _ssl_module.SSLContext):
                raise TypeError(f"ssl must be an ssl.SSLContext, got {type(self.ssl).__name__}")

    def replace(self, **changes: Any) -> ServerOptions:
        """A copy with *changes* applied (validated like a new object)."""
        return replace(self, **changes)

    def new_parser(self) -> Parser:
        """A fresh :class:`~proxyproto_rs.Parser` with these options (one per connection)."""
        if self._default_codec:
            return Parser()  # keyword parsing costs more than the rest of the constructor
        return Parser(
            allow_v1=self.allow_v1,
            allow_v2=self.allow_v2,
            verify_checksum=self.verify_checksum,
            max_size=self.max_size,
            haproxy_limits=self.haproxy_limits,
        )

    def parse_function(self) -> Callable[[Buffer], Header]:
        """:meth:`parse` as a one-argument function, without a frame of ours when the
        settings are the defaults (then it is :func:`~proxyproto_rs.parse` itself).

        For a server's first read, which usually holds the whole header. It raises
        :class:`~proxyproto_rs.IncompleteHeaderError` when the bytes are only a prefix
        (then feed them to :meth:`new_parser`'s parser, which reaches the same verdict).
        """
        return parse if self._default_codec else self.parse

    def parse(self, data: Buffer) -> Header:
        """:func:`~proxyproto_rs.parse` with these options: the header at the start of *data*
        (a datagram, or bytes peeked from a connection). Raises what ``parse`` raises."""
        if self._default_codec:
            return parse(data)  # without keywords the core takes its fast path
        return parse(
            data,
            allow_v1=self.allow_v1,
            allow_v2=self.allow_v2,
            verify_checksum=self.verify_checksum,
            max_size=self.max_size,
            haproxy_limits=self.haproxy_limits,
        )

    @property
    def trusts_everyone(self) -> bool:
        """True when ``trusted`` is ``None``: every peer may (and must) send a header."""
        return self._trust.any

    def trusts(self, peername: object) -> bool:
        """Whether *peername* (a socket's ``getpeername()``) may send a header (SPEC rule 6).

        An IP peer is matched against the trusted networks (IPv4 and IPv4-mapped IPv6 peers
        against networks of either spelling; a zone id is ignored); any other peer (a
        UNIX-socket peer, ``""`` or a path) is trusted when ``"unix"`` is.
        """
        return self._trust.allows(peername)

    def trust_function(self) -> Callable[[object], bool]:
        """:meth:`trusts` as a one-argument function without a frame of ours: the core's
        compiled test of the trusted networks (for a server's per-connection check)."""
        return self._trust.allows

    def accepts(
        self, peername: object, header: Header | SppHeader | None, sockname: object
    ) -> bool:
        """Run the ``policy`` hook; ``True`` when there is none. Exceptions propagate."""
        policy = self._policy3
        return True if policy is None else bool(policy(peername, header, sockname))


def resolve(options: ServerOptions | None, kwargs: Mapping[str, Any]) -> ServerOptions:
    """The options an entry point runs with: *options* with *kwargs* applied over it.

    ``options=None`` and no keyword arguments give the defaults. Unknown names raise
    ``TypeError`` naming them.
    """
    if not kwargs:
        return options if options is not None else _DEFAULTS
    unknown = sorted(set(kwargs) - _FIELDS)
    if unknown:
        raise TypeError(f"unexpected server option(s): {', '.join(unknown)}")
    if options is None:
        return ServerOptions(**kwargs)
    return replace(options, **kwargs)


def split_options(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """*kwargs* split into (server options, everything else).

    For entry points that also forward keyword arguments elsewhere (``start_server`` passes
    the rest to ``loop.create_server``).
    """
    ours = {k: v for k, v in kwargs.items() if k in _FIELDS}
    rest = {k: v for k, v in kwargs.items() if k not in _FIELDS}
    return ours, rest


class _Trust:
    """The normalised ``trusted`` list and its compiled per-connection test, ``allows``."""

    __slots__ = ("allows", "any", "spec")

    def __init__(self, trusted: TrustedSpec | None) -> None:
        self.any = trusted is None
        self.spec: tuple[Network | Literal["unix"], ...] | None = None
        self.allows: Callable[[object], bool] = _trust_all
        if trusted is None:
            return
        unix = False
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        items: list[Network | Literal["unix"]] = []
        for item in [trusted] if isinstance(trusted, str) else trusted:
            if isinstance(item, str) and item.strip().lower() == "unix":
                unix = True
                items.append("unix")
                continue
            if isinstance(item, str):
                try:
                    net = ipaddress.ip_network(item.strip())
                except ValueError as exc:
                    raise ValueError(f"trusted: {exc}") from None
            elif isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
                net = item
            else:
                raise TypeError(f"trusted: expected a CIDR string or network, got {item!r}")
            (v4 if net.version == 4 else v6).append((int(net.network_address), net.prefixlen))
            items.append(net)
        self.spec = tuple(items)
        self.allows = _TrustedNetworks(v4, v6, unix).allows


def _trust_all(peer: object) -> bool:
    """The trust test of ``trusted=None``: every peer."""
    return True


def _three_argument_policy(
    policy: Policy | None,
) -> Callable[[Any, Any, Any], bool] | None:
    """*policy* as a three-argument callable; a two-argument one is adapted."""
    if policy is None:
        return None
    if not callable(policy):
        raise TypeError(f"policy must be callable, got {type(policy).__name__}")
    try:
        params = inspect.signature(policy).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): assume three
        return policy
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if any(p.kind is p.VAR_POSITIONAL for p in params) or len(positional) == 3:
        return policy
    optional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) <= 3 <= len(optional):
        return policy
    if len(positional) == 2:
        two: Callable[[Any, Any], bool] = policy
        return lambda peer, header, _local: two(peer, header)
    raise TypeError(
        "policy must accept (peername, header, sockname) or (peername, header); "
        f"{getattr(policy, '__name__', policy)!r} takes {len(positional)} positional arguments"
    )


def _check_seconds(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    if not value > 0:  # also refuses NaN
        raise ValueError(f"{name} must be positive or None, got {value}")


def _check_int(name: str, value: int, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}")


_FIELDS: Final = frozenset(ServerOptionsKwargs.__annotations__)
_DEFAULTS: Final = ServerOptions()
