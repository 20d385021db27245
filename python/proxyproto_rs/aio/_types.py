"""Names shared by the modules of :mod:`proxyproto_rs.aio`: the logger and the type aliases.

Strategy: the one logger every refusal goes to (``"proxyproto_rs.aio"``, whatever module
logs), and the callable shapes the public functions take, defined once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeAlias

from proxyproto_rs.options import Policy

logger: Final = logging.getLogger("proxyproto_rs.aio")

PolicyHook: TypeAlias = Policy
"""``policy(peername, header, sockname) -> bool``; see :data:`proxyproto_rs.options.Policy`."""
ProtocolFactory: TypeAlias = Callable[[], asyncio.BaseProtocol]
DatagramProtocolFactory: TypeAlias = Callable[[], asyncio.DatagramProtocol]
ClientConnectedCallback: TypeAlias = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None
]
