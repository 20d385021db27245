"""The exception hierarchy of proxyproto_rs (pure Python; the Rust core raises these).

Every exception carries ``kind``, a stable snake_case slug naming what was wrong, and
``offset``, the index of the byte where it was detected (``-1`` when no byte is to blame).
``ProxyProtocolError`` derives from ``ValueError`` so ``except ValueError`` keeps working.
"""

__all__ = [
    "BuildError",
    "ChecksumError",
    "HeaderTooLargeError",
    "IncompleteHeaderError",
    "InvalidHeaderError",
    "PeerRefusedError",
    "ProxyProtocolError",
]


class ProxyProtocolError(ValueError):
    """Base class of every error the codec raises.

    Attributes:
        kind: stable snake_case slug, e.g. ``"v1_address"`` or ``"checksum_mismatch"``.
        offset: index of the offending byte in the input, or ``-1``.
    """

    kind: str
    offset: int

    def __init__(self, message: str, *, kind: str = "error", offset: int = -1) -> None:
        super().__init__(message)
        self.kind = kind
        self.offset = offset

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), self.kind, self.offset))


def _rebuild(
    cls: type[ProxyProtocolError], message: str, kind: str, offset: int
) -> ProxyProtocolError:
    return cls(message, kind=kind, offset=offset)


class InvalidHeaderError(ProxyProtocolError):
    """The bytes can never form a valid header (abort the connection)."""


class HeaderTooLargeError(InvalidHeaderError):
    """Over 107 bytes (v1) or over ``max_size`` (v2)."""


class ChecksumError(InvalidHeaderError):
    """A CRC32C TLV is present and does not match the header."""


class IncompleteHeaderError(ProxyProtocolError):
    """``parse()`` was given a valid but unfinished prefix of a header."""


class PeerRefusedError(ProxyProtocolError):
    """A server's options refuse the peer or its header, whatever its bytes.

    ``kind`` says which rule: ``"untrusted_peer"`` (outside ``trusted`` with
    ``untrusted="reject"``), ``"policy"`` (the policy hook), ``"stream_header_in_datagram"``.
    """


class BuildError(ProxyProtocolError):
    """Asked to serialise a header that cannot exist on the wire."""
