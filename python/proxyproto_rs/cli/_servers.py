"""Listener plumbing shared by the two serving subcommands, ``inspect`` and ``relay``:
start a TCP or UNIX listener (an I/O failure if the address cannot be used) and serve until
``--count`` connections are finished."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from proxyproto_rs.cli._common import IOFailure
from proxyproto_rs.cli._render import format_endpoint


async def start_listener(
    listen: tuple[str, int] | str,
    callback: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
) -> asyncio.Server:
    try:
        if isinstance(listen, str):
            return await asyncio.start_unix_server(callback, listen)
        return await asyncio.start_server(callback, listen[0], listen[1], reuse_address=True)
    except OSError as exc:
        raise IOFailure(
            f"cannot listen on {format_endpoint(listen)}: {exc.strerror or exc}"
        ) from None


def bound(server: asyncio.Server) -> str:
    names = [format_endpoint(s.getsockname()) for s in server.sockets]
    return ", ".join(names)


class Counter:
    """Stops the command after ``limit`` connections are finished (``--count``)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.done = 0
        self.event = asyncio.Event()

    def tick(self) -> None:
        self.done += 1
        if self.limit is not None and self.done >= self.limit:
            self.event.set()


async def serve_until(server: asyncio.Server, counter: Counter) -> None:
    async with server:
        await counter.event.wait()
    # Let the handlers of the last connections finish their writes.
    await asyncio.sleep(0)
