"""The integer enumerations of the v2 header fields (SPEC rules 19 and 22)."""

from enum import IntEnum

__all__ = ["Command", "Family", "Protocol"]


class Command(IntEnum):
    """Low nibble of byte 13: what the proxy says about the connection."""

    LOCAL = 0
    """Made by the proxy itself (health check): use the socket's own addresses."""
    PROXY = 1
    """Relayed for a client: the header's addresses are the real ones."""


class Family(IntEnum):
    """Address family (high nibble of byte 14; v1 ``TCP4``/``TCP6``/``UNKNOWN``)."""

    UNSPEC = 0
    INET = 1
    INET6 = 2
    UNIX = 3


class Protocol(IntEnum):
    """Transport protocol (low nibble of byte 14)."""

    UNSPEC = 0
    STREAM = 1
    DGRAM = 2
