"""proxyproto_rs: a strict, fast PROXY protocol (v1 text, v2 binary) codec with a Rust core.

Parse with :func:`parse` or a streaming :class:`Parser`; build with :func:`build_v1` and
:func:`build_v2`; serve behind HAProxy, nginx or an AWS NLB with :mod:`proxyproto_rs.aio`.
"""

from proxyproto_rs._core import (
    MAX_V1_SIZE,
    MAX_V2_SIZE,
    V2_SIGNATURE,
    Header,
    Parser,
    SslInfo,
    Tlv,
    __version__,
    build_v1,
    build_v2,
    crc32c,
    detect,
    find_signature,
    parse,
)
from proxyproto_rs._enums import Command, Family, Protocol
from proxyproto_rs._errors import (
    BuildError,
    ChecksumError,
    HeaderTooLargeError,
    IncompleteHeaderError,
    InvalidHeaderError,
    PeerRefusedError,
    ProxyProtocolError,
)
from proxyproto_rs._scan import scan

__all__ = [
    "MAX_V1_SIZE",
    "MAX_V2_SIZE",
    "V2_SIGNATURE",
    "BuildError",
    "ChecksumError",
    "Command",
    "Family",
    "Header",
    "HeaderTooLargeError",
    "IncompleteHeaderError",
    "InvalidHeaderError",
    "Parser",
    "PeerRefusedError",
    "Protocol",
    "ProxyProtocolError",
    "SslInfo",
    "Tlv",
    "__version__",
    "build_v1",
    "build_v2",
    "crc32c",
    "detect",
    "find_signature",
    "parse",
    "scan",
]
