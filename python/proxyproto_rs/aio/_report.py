"""Logging refused connections without letting a flood write the log: first occurrences,
then one periodic summary.

Strategy: in each window of ``log_interval`` seconds, the first ``log_first`` refusals of
each error kind are logged one by one (with the peer and the kind as record attributes);
the rest are only counted, by kind and by peer network (/24 for IPv4, /64 for IPv6), and
one summary line reports them when the window ends. A garbage flood thus costs at most
(kinds x ``log_first`` + 1) lines per window, whatever its rate; the exact totals are
always in the server's ``stats``. ``log_interval=None`` logs every refusal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import Any, Final

from proxyproto_rs.aio._types import logger

_QUIET_KINDS: Final = frozenset({"eof", "timeout", "too_many_pending"})
"""Refusals that health checks and idle clients cause: logged at INFO, the others WARNING."""
_TOP_NETWORKS: Final = 3
"""Networks named per kind in a summary line; the rest are counted together."""


def peer_network(peer: object) -> str:
    """The network a socket peer is summarised under: ``a.b.c.0/24``, ``x:x:x:x::/64``,
    or ``"unix"`` for a peer without an IP address."""
    if not (isinstance(peer, tuple) and peer and isinstance(peer[0], str)):
        return "unix"
    try:
        ip = ipaddress.ip_address(peer[0].partition("%")[0])
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if isinstance(ip, ipaddress.IPv4Address) else 64
    return str(ipaddress.ip_network((ip, prefix), strict=False))


class RefusalLog:
    """The log of one server's refused connections (see the module's strategy)."""

    __slots__ = (
        "_first",
        "_interval",
        "_logged",
        "_logger",
        "_suppressed",
        "_timer",
        "_window_end",
    )

    def __init__(self, first: int, interval: float | None, log: logging.Logger = logger) -> None:
        self._logger = log
        self._first = first
        self._interval = interval
        self._logged: dict[str, int] = {}
        self._suppressed: dict[str, dict[str, int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._window_end = 0.0

    def refused(self, kind: str, peer: Any, message: str) -> None:
        """Log (or count for the next summary) one refused connection."""
        interval = self._interval
        if interval is None:
            _log_one(self._logger, kind, peer, message)
            return
        now = time.monotonic()
        if now >= self._window_end:
            if self._suppressed:  # the timer has not run yet (busy loop, or no loop)
                self._summarise()
            self._window_end = now + interval
            self._logged.clear()
        logged = self._logged.get(kind, 0)
        if logged < self._first:
            self._logged[kind] = logged + 1
            _log_one(self._logger, kind, peer, message)
            return
        by_network = self._suppressed.setdefault(kind, {})
        network = peer_network(peer)
        by_network[network] = by_network.get(network, 0) + 1
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # driven by hand (harnesses): summarised by the next call
                return
            self._timer = loop.call_later(self._window_end - now, self._summarise)

    def _summarise(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        suppressed, self._suppressed = self._suppressed, {}
        self._logged.clear()
        if not suppressed:
            return
        total = sum(sum(nets.values()) for nets in suppressed.values())
        parts = [f"{kind} {sum(nets.values())} ({_top(nets)})" for kind, nets in suppressed.items()]
        quiet = all(kind in _QUIET_KINDS for kind in suppressed)
        self._logger.log(
            logging.INFO if quiet else logging.WARNING,
            "%d more connections refused in the last %g s, not logged one by one: %s",
            total,
            self._interval,
            "; ".join(parts),
            extra={"proxy_summary": suppressed},
        )


def _top(networks: dict[str, int]) -> str:
    ranked = sorted(networks.items(), key=lambda item: -item[1])
    text = ", ".join(f"{net} {count}" for net, count in ranked[:_TOP_NETWORKS])
    rest = len(ranked) - _TOP_NETWORKS
    return text if rest <= 0 else f"{text}, {rest} more networks"


def _log_one(log: logging.Logger, kind: str, peer: Any, message: str) -> None:
    log.log(
        logging.INFO if kind in _QUIET_KINDS else logging.WARNING,
        "connection from %r refused: %s [%s]",
        peer,
        message,
        kind,
        extra={"proxy_kind": kind, "proxy_peer": peer},
    )
