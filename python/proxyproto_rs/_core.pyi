"""Typed stubs of the native module ``proxyproto_rs._core`` (the Rust core).

Import from ``proxyproto_rs``, never from ``_core`` directly.
"""

import sys
from collections.abc import Iterable, Iterator
from typing import Final, Literal, SupportsIndex, final, overload

from proxyproto_rs._enums import Command, Family, Protocol

if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:
    from typing_extensions import Buffer

_Address = tuple[str, int] | str | bytes
"""``(host, port)`` for INET/INET6, a ``str`` path or ``bytes`` abstract name for UNIX."""

_AddressInput = tuple[str, int] | tuple[str, int, int, int] | str | bytes
"""What the builders accept: a socket-style ``(host, port)`` (or the 4-tuple of an IPv6
socket), a ``str`` or ``bytes`` UNIX path (``bytes`` starting with NUL: abstract)."""

__all__ = [
    "MAX_V1_SIZE",
    "MAX_V2_SIZE",
    "V2_SIGNATURE",
    "Header",
    "Parser",
    "SslInfo",
    "Tlv",
    "__version__",
    "build_v1",
    "build_v2",
    "crc32c",
    "detect",
    "find_signature",
    "parse",
    "_header_from_bytes",
    "_Scanner",
]

__version__: Final[str]

MAX_V1_SIZE: Final[int]
"""107: the longest v1 line, CRLF included (SPEC rule 14)."""
MAX_V2_SIZE: Final[int]
"""65551: the longest v2 header, 16 + 65535."""
V2_SIGNATURE: Final[bytes]
"""The 12-byte v2 signature ``b"\\r\\n\\r\\n\\x00\\r\\nQUIT\\n"``."""

@final
class Tlv:
    """One TLV as it stood on the wire; unpacks as ``(type, value)``."""

    def __new__(cls, type: int, value: Buffer) -> Tlv: ...
    @property
    def type(self) -> int:
        """The type byte (0-255)."""
    @property
    def value(self) -> bytes:
        """The value bytes, exactly as received."""
    def __iter__(self) -> Iterator[int | bytes]: ...
    def __len__(self) -> Literal[2]: ...
    @overload
    def __getitem__(self, index: Literal[0], /) -> int: ...
    @overload
    def __getitem__(self, index: Literal[1], /) -> bytes: ...
    @overload
    def __getitem__(self, index: SupportsIndex, /) -> int | bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class SslInfo:
    """The PP2_TYPE_SSL TLV (0x20): client flags, verify result and sub-TLVs (SPEC 37-38)."""

    @property
    def client(self) -> int:
        """The ``client`` bit field (0x01 SSL, 0x02 CERT_CONN, 0x04 CERT_SESS)."""
    @property
    def verify(self) -> int:
        """0 when a client certificate was presented and verified, non-zero otherwise."""
    @property
    def client_ssl(self) -> bool:
        """PP2_CLIENT_SSL: the client connected over TLS."""
    @property
    def client_cert_conn(self) -> bool:
        """PP2_CLIENT_CERT_CONN: a client certificate was presented on this connection."""
    @property
    def client_cert_sess(self) -> bool:
        """PP2_CLIENT_CERT_SESS: a client certificate was presented in this TLS session."""
    @property
    def client_cert_verified(self) -> bool:
        """A CERT bit is set AND ``verify == 0`` (HAProxy sends 0 when no cert was given)."""
    @property
    def version(self) -> str | None:
        """Sub-TLV 0x21: TLS version, e.g. ``"TLSv1.3"``."""
    @property
    def cn(self) -> str | None:
        """Sub-TLV 0x22: Common Name of the client certificate."""
    @property
    def cipher(self) -> str | None:
        """Sub-TLV 0x23: cipher name, e.g. ``"ECDHE-RSA-AES128-GCM-SHA256"``."""
    @property
    def sig_alg(self) -> str | None:
        """Sub-TLV 0x24: signature algorithm of the frontend certificate."""
    @property
    def key_alg(self) -> str | None:
        """Sub-TLV 0x25: key algorithm of the frontend certificate."""
    @property
    def group(self) -> str | None:
        """Sub-TLV 0x26: key-exchange group, e.g. ``"secp256r1"``."""
    @property
    def sig_scheme(self) -> str | None:
        """Sub-TLV 0x27: signature scheme, e.g. ``"rsa_pss_rsae_sha256"``."""
    @property
    def client_cert(self) -> bytes | None:
        """Sub-TLV 0x28: the client certificate, DER."""
    @property
    def tlvs(self) -> tuple[Tlv, ...]:
        """Every sub-TLV in wire order."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Header:
    """A parsed PROXY protocol header: immutable, hashable, ``==`` by value, picklable.

    Fields are read lazily from the wire bytes; ``bytes(header)`` gives them back exactly.
    """

    @property
    def version(self) -> Literal[1, 2]:
        """1 for the text format, 2 for the binary one."""
    @property
    def command(self) -> Command:
        """PROXY for a relayed connection, LOCAL for the proxy's own (v1 is always PROXY)."""
    @property
    def family(self) -> Family:
        """Address family; UNSPEC for v1 UNKNOWN."""
    @property
    def protocol(self) -> Protocol:
        """Transport; STREAM for v1 TCP4/TCP6, UNSPEC for v1 UNKNOWN."""
    @property
    def source(self) -> _Address | None:
        """The client's address, like ``socket.getpeername()``.

        ``None`` for LOCAL, UNSPEC and v1 UNKNOWN: use the real connection's address then.
        """
    @property
    def destination(self) -> _Address | None:
        """The address the client connected to, like ``socket.getsockname()``; or ``None``."""
    @property
    def length(self) -> int:
        """Bytes the header took on the wire; the payload starts there."""
    @property
    def tlvs(self) -> tuple[Tlv, ...]:
        """Every TLV in wire order, duplicates and unknown types kept (v1: empty)."""
    @property
    def alpn(self) -> bytes | None:
        """TLV 0x01: the application protocol, e.g. ``b"h2"``."""
    @property
    def authority(self) -> str | None:
        """TLV 0x02: the host name the client asked for (TLS SNI)."""
    @property
    def crc32c(self) -> int | None:
        """TLV 0x03: the CRC32C value as sent (verified unless checking was turned off)."""
    @property
    def unique_id(self) -> bytes | None:
        """TLV 0x05: opaque connection id, at most 128 bytes."""
    @property
    def ssl(self) -> SslInfo | None:
        """TLV 0x20: TLS details of the client connection."""
    @property
    def netns(self) -> str | None:
        """TLV 0x30: network namespace name."""
    @property
    def aws_vpce_id(self) -> str | None:
        """TLV 0xEA subtype 0x01: the AWS PrivateLink VPC endpoint id."""
    @property
    def azure_link_id(self) -> int | None:
        """TLV 0xEE subtype 0x01: the Azure Private Link LINKID (u32, little-endian)."""
    @property
    def gcp_psc_connection_id(self) -> int | None:
        """TLV 0xE0 of exactly 8 bytes read as GCP's pscConnectionId (u64, big-endian).

        0xE0 is also generic custom space: this only interprets, it never rejects.
        """
    def to_bytes(self) -> bytes:
        """The header exactly as it stood on the wire."""
    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    @staticmethod
    def v1(source: _AddressInput | None = None, destination: _AddressInput | None = None) -> Header:
        """``parse(build_v1(source, destination))``."""
    @staticmethod
    def v2(
        source: _AddressInput | None = None,
        destination: _AddressInput | None = None,
        *,
        command: Command | None = None,
        protocol: Protocol | None = None,
        tlvs: Iterable[Tlv | tuple[int, Buffer]] | None = None,
        crc32c: bool = False,
        alpn: Buffer | None = None,
        authority: str | None = None,
        unique_id: Buffer | None = None,
        netns: str | None = None,
        aws_vpce_id: str | None = None,
    ) -> Header:
        """``parse(build_v2(...))`` with the same arguments."""
    @staticmethod
    def local(
        *,
        tlvs: Iterable[Tlv | tuple[int, Buffer]] | None = None,
        crc32c: bool = False,
    ) -> Header:
        """A v2 LOCAL header (health check) with no addresses."""

@final
class Parser:
    """Streaming, sans-IO parser for one connection: feed it bytes as they arrive.

    Any split of the same bytes gives the same outcome. It never buffers more than
    ``max_size`` bytes (v1: 107), and once it raised it stays failed.
    """

    def __new__(
        cls,
        *,
        allow_v1: bool = True,
        allow_v2: bool = True,
        verify_checksum: bool = True,
        max_size: int = 4096,
        haproxy_limits: bool = False,
    ) -> Parser:
        """See :func:`parse` for the options.

        Raises:
            ValueError: ``max_size`` outside 16-65551, or both versions disallowed.
        """
    def feed(self, data: Buffer, /) -> Header | None:
        """Buffer *data*; return the header once it is complete, else ``None``.

        Bytes beyond the header go to ``trailing_data``. After completion, further data is
        appended to ``trailing_data`` and the header is returned again.

        Raises:
            InvalidHeaderError: the bytes fed can never form a valid header (or a subclass:
                HeaderTooLargeError, ChecksumError). Raised again by every later call.
        """
    @property
    def needed(self) -> int:
        """Lower bound on the bytes still required (exact for v2 once 16 are in); 0 when done."""
    @property
    def header(self) -> Header | None:
        """The header once complete."""
    @property
    def trailing_data(self) -> bytes:
        """Bytes fed beyond the header: the start of the application stream."""
    @property
    def done(self) -> bool:
        """True once the header is complete."""
    @property
    def buffered(self) -> int:
        """Bytes held while the header is incomplete."""

def parse(
    data: Buffer,
    /,
    *,
    allow_v1: bool = True,
    allow_v2: bool = True,
    verify_checksum: bool = True,
    max_size: int = 4096,
    haproxy_limits: bool = False,
) -> Header:
    """Parse one header at the start of *data*; ``header.length`` bytes belong to it.

    Args:
        data: any buffer (bytes, bytearray, memoryview); read without copying.
        allow_v1: accept the text format.
        allow_v2: accept the binary format.
        verify_checksum: check a CRC32C TLV if present (SPEC rule 34).
        max_size: largest v2 header accepted, 16-65551 (v1 is always capped at 107).
        haproxy_limits: HAProxy's receiver profile: only the short ``PROXY UNKNOWN``,
            AUTHORITY at most 255 bytes, any TLV value at most 1024 bytes.

    Raises:
        IncompleteHeaderError: *data* is a valid but unfinished prefix.
        InvalidHeaderError: *data* can never start a valid header (HeaderTooLargeError,
            ChecksumError are subclasses).
    """

def build_v1(
    source: _AddressInput | None = None, destination: _AddressInput | None = None
) -> bytes:
    """A v1 line: ``TCP4``/``TCP6`` from ``(host, port)``; ``None, None`` gives
    ``b"PROXY UNKNOWN\\r\\n"``.

    Raises:
        BuildError: a bad address or port, mixed families, or only one address.
    """

def build_v2(
    source: _AddressInput | None = None,
    destination: _AddressInput | None = None,
    *,
    command: Command | None = None,
    protocol: Protocol | None = None,
    tlvs: Iterable[Tlv | tuple[int, Buffer]] | None = None,
    crc32c: bool = False,
    alpn: Buffer | None = None,
    authority: str | None = None,
    unique_id: Buffer | None = None,
    netns: str | None = None,
    aws_vpce_id: str | None = None,
) -> bytes:
    """A v2 header. No addresses gives the LOCAL/UNSPEC form (health check).

    TLVs are written in this order: CRC32C (filled in when ``crc32c=True``), ALPN,
    AUTHORITY, UNIQUE_ID, NETNS, AWS, then ``tlvs`` as given.

    Raises:
        BuildError: port out of range, bad address, mixed families, UNIX path over 108
            bytes, a TLV value over 65535 bytes or a header over 65551 bytes.
    """

def _header_from_bytes(data: Buffer, /) -> Header:
    """Unpickling helper: re-parse bytes a Header was made from."""

def crc32c(data: Buffer, value: int = 0, /) -> int:
    """CRC32C (Castagnoli) of *data*, chainable like ``zlib.crc32``:
    ``crc32c(b, crc32c(a)) == crc32c(a + b)``."""

def detect(data: Buffer, /) -> Literal[0, 1, 2] | None:
    """1 for v1, 2 for v2, 0 if *data* cannot start a PROXY header, None if more bytes
    are needed to tell."""

def find_signature(data: Buffer, start: int = 0, /) -> int:
    """Offset of the first v1 (``b"PROXY "``) or v2 signature at or after *start*, or -1."""

@final
class _Scanner:
    """Iterator of ``(offset, Header)`` for every valid header in a buffer (``scan()``)."""

    def __new__(
        cls, data: Buffer, /, *, verify_checksum: bool = True, max_size: int | None = None
    ) -> _Scanner: ...
    def __iter__(self) -> _Scanner: ...
    def __next__(self) -> tuple[int, Header]: ...
    @property
    def position(self) -> int:
        """Where the search resumes: past the last header returned."""
