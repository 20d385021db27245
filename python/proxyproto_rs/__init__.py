"""proxyproto_rs: a strict, fast PROXY protocol (v1 text, v2 binary) codec with a Rust core.

Parse with :func:`parse` or a streaming :class:`Parser`; build with :func:`build_v1` and
:func:`build_v2`; serve behind HAProxy, nginx or an AWS NLB with :mod:`proxyproto_rs.aio`.

Import strategy: ``import proxyproto_rs`` loads only the native module and the exception
classes. The enums (which need :mod:`enum`) and :func:`scan` (which needs :mod:`typing`) are
loaded on first use through the module ``__getattr__`` (PEP 562), so a server that only parses
does not pay for them at start-up. Type checkers see ordinary imports.
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
from proxyproto_rs._errors import (
    BuildError,
    ChecksumError,
    HeaderTooLargeError,
    IncompleteHeaderError,
    InvalidHeaderError,
    PeerRefusedError,
    ProxyProtocolError,
)

# Not typing.TYPE_CHECKING: importing typing is what this module avoids. Type checkers treat
# any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from proxyproto_rs._enums import Command, Family, Protocol
    from proxyproto_rs._scan import scan
else:
    # name -> module that defines it, imported on first access.
    _LAZY = {
        "Command": "proxyproto_rs._enums",
        "Family": "proxyproto_rs._enums",
        "Protocol": "proxyproto_rs._enums",
        "scan": "proxyproto_rs._scan",
    }

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(_LAZY))


del TYPE_CHECKING

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
