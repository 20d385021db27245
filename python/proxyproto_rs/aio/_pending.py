"""Connections still waiting for their header: one timer for all deadlines, a fair cap.

Strategy: every connection of a server gets the same timeout, so the order connections
start waiting is the order their deadlines fall: an insertion-ordered dict (connection ->
time it started waiting) is the queue, and one timer, armed for the oldest deadline, serves
them all. The start times are read from ``time.monotonic`` (one C call), not the loop's
``time()`` (a Python method on asyncio's loops), and the timer is set with a relative delay,
so the two clocks never need to agree.

``max_pending`` caps the dict, and the cap always holds. When it is full, a waiting
connection is evicted to make room for the newcomer rather than the newcomer being refused,
which would hand the server to whoever filled the cap first (slowloris). The victim is:

1. the oldest connection that has *started* its header without finishing it: a legitimate
   client's header arrives whole in its first read, so a connection still waiting after a
   read is trickling;
2. else the oldest connection (all are idle: CVE-2021-23409's shape, or just accepted).

A legitimate client is thus evicted only if, between its accept and its first read, more
connections are accepted than there are trickling ones to evict; asyncio accepts at most
``backlog`` connections per loop iteration, so keep ``max_pending`` above the listen
backlog (asyncio's default backlog is 100).
"""

from __future__ import annotations

import asyncio
from time import monotonic as _monotonic
from typing import Protocol


class Waiter(Protocol):
    """What the set needs from a waiting connection."""

    def expire(self) -> None:
        """The header timeout elapsed: refuse the connection."""

    def evict(self, pending: int) -> None:
        """Evicted to make room under ``max_pending`` (*pending* connections waited)."""


class PendingSet:
    """The waiting connections of one server, oldest first, with the time they started."""

    __slots__ = ("_max", "_since", "_started", "_timeout", "_timer", "evicted")

    def __init__(self, timeout: float | None, max_pending: int | None) -> None:
        self._since: dict[Waiter, float] = {}
        self._started: dict[Waiter, None] = {}  # an ordered set: read from, still waiting
        self._timeout = timeout
        self._max = max_pending
        self._timer: asyncio.TimerHandle | None = None
        self.evicted = 0
        """Connections evicted to make room for newer ones."""

    def __len__(self) -> int:
        return len(self._since)

    def add(self, waiter: Waiter) -> None:
        """Start *waiter*'s deadline, evicting another connection if the set is full."""
        since = self._since
        if self._max is not None and len(since) >= self._max:
            victim = next(iter(self._started or since))
            self.discard(victim)
            self.evicted += 1
            victim.evict(self._max)
        if self._timeout is None:  # no deadline, so no loop needed (harnesses drive it by hand)
            since[waiter] = 0.0
            return
        since[waiter] = _monotonic()
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._timeout, self._sweep, loop)

    def started(self, waiter: Waiter) -> None:
        """*waiter* was read from and its header is still incomplete."""
        if self._max is not None and waiter not in self._started:
            self._started[waiter] = None

    def discard(self, waiter: Waiter) -> None:
        """*waiter* stopped waiting (header complete, refused or closed)."""
        self._since.pop(waiter, None)
        self._started.pop(waiter, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        timeout = self._timeout
        assert timeout is not None
        since = self._since
        now = _monotonic()
        while since:
            waiter, start = next(iter(since.items()))
            if start + timeout > now:
                self._timer = loop.call_later(start + timeout - now, self._sweep, loop)
                return
            self.discard(waiter)
            waiter.expire()
