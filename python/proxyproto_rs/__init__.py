"""proxyproto_rs: a strict, fast PROXY protocol (v1 text, v2 binary) codec with a Rust core.

Parse with :func:`parse` or a streaming :class:`Parser`; build with :func:`build_v1` and
:func:`build_v2`; serve behind HAProxy, nginx or an AWS NLB with :mod:`proxyproto_rs.aio`.

Import strategy: ``import proxyproto_rs`` loads the native module and four small pure-Python
modules, none of which imports :mod:`typing` (``python -X importtime -c "import
proxyproto_rs"``). Everything is imported eagerly: a module ``__getattr__`` (PEP 562) would
keep CPython from specialising every ``proxyproto_rs.parse`` lookup, about 280 instructions
per call (speed trick ``module-attr``, benchmarks/README.md).
"""

from proxyproto_rs._core import (
    MAX_V1_SIZE,
    MAX_V2_SIZE,
    SPP_MAGIC,
    SPP_SIZE,
    V2_SIGNATURE,
    Header,
    Parser,
    SppHeader,
    SslInfo,
    Tlv,
    __version__,
    build_spp,
    build_v1,
    build_v2,
    crc32c,
    detect,
    find_signature,
    parse,
    parse_spp,
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
    "SPP_MAGIC",
    "SPP_SIZE",
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
    "SppHeader",
    "SslInfo",
    "Tlv",
    "__version__",
    "build_spp",
    "build_v1",
    "build_v2",
    "crc32c",
    "detect",
    "find_signature",
    "parse",
    "parse_spp",
    "scan",
]
