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
    "SPP_MAGIC",
    "SPP_SIZE",
    "V2_SIGNATURE",
    "Header",
    "Parser",
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
    "_header_from_bytes",
    "_Scanner",
    "_SocketReader",
    "_TrustedNetworks",
]

__version__: Final[str]

MAX_V1_SIZE: Final[int]
"""107: the longest v1 line, CRLF included (SPEC rule 14)."""
MAX_V2_SIZE: Final[int]
"""65551: the longest v2 header, 16 + 65535."""
V2_SIGNATURE: Final[bytes]
"""The 12-byte v2 signature ``b"\\r\\n\\r\\n\\x00\\r\\nQUIT\\n"``."""
SPP_MAGIC: Final[bytes]
"""``b"\\x56\\xec"``: the two bytes that open a Simple Proxy Protocol header."""
SPP_SIZE: Final[int]
"""38: the length of a Simple Proxy Protocol header."""

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
    def source_inet(self) -> tuple[str, int] | None:
        """``source`` when it is an INET or INET6 ``(host, port)``, else ``None``.

        The typed way to unpack an IP endpoint: ``host, port = h.source_inet`` after a
        ``None`` check, where ``h.source`` may also be a UNIX path.
        """
    @property
    def destination_inet(self) -> tuple[str, int] | None:
        """``destination`` when it is an INET or INET6 ``(host, port)``, else ``None``."""
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
        """TLV 0xEA subtype 0x01: the AWS PrivateLink VPC endpoint id.

        The first such TLV whose id is plausible (letters, digits and ``-``, at least one
        character); ``None`` if there is none, so the text is always safe to print.
        """
    @property
    def azure_link_id(self) -> int | None:
        """TLV 0xEE subtype 0x01: the Azure Private Link LINKID (u32, little-endian).

        The first 0xEE TLV of that subtype and 5 bytes; other 0xEE TLVs are skipped.
        """
    @property
    def gcp_psc_connection_id(self) -> int | None:
        """TLV 0xE0 of exactly 8 bytes read as GCP's pscConnectionId (u64, big-endian).

        The first 0xE0 TLV of 8 bytes. 0xE0 is also generic custom space: this only
        interprets, it never rejects.
        """
    def to_bytes(self) -> bytes:
        """The header exactly as it stood on the wire."""
    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    @staticmethod
    def v1(source: _AddressInput | None = None, destination: _AddressInput | None = None) -> Header:
        """``parse(build_v1(source, destination))``: see :func:`build_v1`.

        Raises:
            BuildError: as :func:`build_v1` raises it.
        """
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
        """``parse(build_v2(...))`` with the same arguments: see :func:`build_v2` for source,
        destination, command, protocol, tlvs, crc32c, alpn, authority, unique_id, netns and
        aws_vpce_id.

        Raises:
            BuildError: as :func:`build_v2` raises it.
        """
    @staticmethod
    def local(
        *,
        tlvs: Iterable[Tlv | tuple[int, Buffer]] | None = None,
        crc32c: bool = False,
    ) -> Header:
        """A v2 LOCAL header (health check) with no addresses.

        Args:
            tlvs: TLVs to carry, as for :func:`build_v2`.
            crc32c: add a CRC32C TLV first and fill it in.

        Raises:
            BuildError: as :func:`build_v2` raises it.
        """

@final
class Parser:
    """Streaming, sans-IO parser for one connection: feed it bytes as they arrive.

    Any split of the same bytes gives the same outcome. It never buffers more than
    ``max_size`` bytes of header (v1: 107), nor more than ``max_size`` bytes of trailing
    data after it, and once it raised it stays failed. Use one Parser per connection from
    one thread at a time: a call made while another runs raises ``ValueError``.
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

        Args:
            data: any C-contiguous buffer, read as raw bytes.

        Returns:
            The header once complete (again on every later call), else ``None``.

        Bytes beyond the header go to ``trailing_data``: all of those that came with the
        header, then later ones while ``trailing_data`` stays within ``max_size`` bytes.
        Read ``trailing_data`` and hand the rest of the stream to the application.

        Raises:
            InvalidHeaderError: the bytes fed can never form a valid header (or a subclass:
                HeaderTooLargeError, ChecksumError). Raised again by every later call.
            ValueError: after completion, *data* would take ``trailing_data`` past
                ``max_size`` (nothing of it is kept); another call on this Parser is
                running; or *data* is not C-contiguous.
            TypeError: *data* is not a buffer.
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
        data: any C-contiguous buffer (bytes, bytearray, memoryview, array ...), read as
            raw bytes without copying.
        allow_v1: accept the text format.
        allow_v2: accept the binary format.
        verify_checksum: check a CRC32C TLV if present (SPEC rule 34).
        max_size: largest v2 header accepted, 16-65551 (v1 is always capped at 107).
        haproxy_limits: HAProxy's receiver profile: only the short ``PROXY UNKNOWN``,
            AUTHORITY at most 255 bytes, any TLV value at most 1024 bytes.

    Returns:
        The header; ``header.length`` bytes of *data* belong to it, the rest is payload.

    Raises:
        IncompleteHeaderError: *data* is a valid but unfinished prefix.
        InvalidHeaderError: *data* can never start a valid header (HeaderTooLargeError,
            ChecksumError are subclasses).
        ValueError: ``max_size`` outside 16-65551 (however large), both versions
            disallowed, or *data* not C-contiguous.
        TypeError: *data* is not a buffer, or an option has the wrong type.
    """

def build_v1(
    source: _AddressInput | None = None, destination: _AddressInput | None = None
) -> bytes:
    """A v1 line: ``TCP4``/``TCP6`` from ``(host, port)``; ``None, None`` gives
    ``b"PROXY UNKNOWN\\r\\n"``.

    Args:
        source: the client's address, like ``socket.getpeername()`` (an IPv6 zone such as
            ``%eth0`` is dropped: the line has no room for it).
        destination: the address the client connected to.

    Returns:
        The line, CRLF included.

    Raises:
        BuildError: a bad address (an IPv4 host with a zone included) or port, mixed
            families, a UNIX address, or only one address.
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

    Args:
        source: the client's address: ``(host, port)``, or a ``str``/``bytes`` UNIX path.
        destination: the address the client connected to, of the same family.
        command: PROXY (the default with addresses) or LOCAL (the default without).
        protocol: STREAM (the default with addresses), DGRAM or UNSPEC.
        tlvs: more TLVs, as ``Tlv`` objects or ``(type, value)`` pairs, in wire order.
        crc32c: add a CRC32C TLV first and fill it in.
        alpn: TLV 0x01.
        authority: TLV 0x02 (UTF-8).
        unique_id: TLV 0x05, at most 128 bytes.
        netns: TLV 0x30 (UTF-8).
        aws_vpce_id: TLV 0xEA with subtype 0x01.

    Returns:
        The header's bytes. TLVs are written in this order: CRC32C (when ``crc32c=True``),
        ALPN, AUTHORITY, UNIQUE_ID, NETNS, AWS, then ``tlvs`` as given. A CRC32C TLV in
        ``tlvs`` (a header rebuilt with ``tlvs=h.tlvs``) keeps its place and is recomputed;
        it is then the only one, whatever ``crc32c`` says.

    Raises:
        BuildError: port out of range, bad address, mixed families, UNIX path over 108
            bytes, a TLV value over 65535 bytes or a header over 65551 bytes, a TLV type,
            command or protocol out of range (however large), a CRC32C TLV in ``tlvs``
            that is not 4 bytes or comes twice.
        TypeError: an argument of the wrong type.
    """

def _header_from_bytes(data: Buffer, verify_checksum: bool = True, /) -> Header:
    """Unpickling helper: ``parse(data)`` with every check ``parse()`` makes (the CRC32C
    included unless *verify_checksum* is false) at any header size; *data* must be the header
    and nothing more.

    Args:
        data: the header's bytes, as ``bytes(header)`` gives them.
        verify_checksum: False only in the pickle of a header that was parsed with
            ``verify_checksum=False`` and whose CRC32C does not verify.

    Raises:
        InvalidHeaderError: *data* is not exactly one valid header (kind ``trailing_data``
            when bytes follow it).
        IncompleteHeaderError: *data* is an unfinished header.
    """

def crc32c(data: Buffer, value: int = 0, /) -> int:
    """CRC32C (Castagnoli) of *data*, chainable like ``zlib.crc32``:
    ``crc32c(b, crc32c(a)) == crc32c(a + b)``.

    Args:
        data: any C-contiguous buffer, read as raw bytes whatever its item format (as
            ``zlib.crc32`` reads it).
        value: the CRC to continue from, taken modulo 2**32 however large or negative.

    Returns:
        The CRC32C, 0 to 2**32 - 1.

    Raises:
        ValueError: *data* is not C-contiguous.
        TypeError: *data* is not a buffer, or *value* not an integer.
    """

@overload
def detect(data: Buffer, /, *, spp: Literal[False] = False) -> Literal[0, 1, 2] | None:
    """Which PROXY protocol version *data* starts with, from its first bytes only.

    Args:
        data: any C-contiguous buffer, read as raw bytes.
        spp: also recognise Cloudflare Spectrum's Simple Proxy Protocol.

    Returns:
        1 for v1, 2 for v2, 0 if *data* cannot start a PROXY header, None if more bytes
        are needed to tell. With ``spp=True``, ``"spp"`` when *data* starts with the Simple
        Proxy Protocol magic ``0x56EC`` (and None for its first byte alone); off by default:
        two bytes are a weak signature, so only ask where Cloudflare Spectrum's UDP traffic
        is expected.

    Raises:
        ValueError: *data* is not C-contiguous.
        TypeError: *data* is not a buffer.
    """

@overload
def detect(data: Buffer, /, *, spp: bool) -> Literal[0, 1, 2, "spp"] | None: ...

@final
class SppHeader:
    """Cloudflare Spectrum's Simple Proxy Protocol header (38 bytes before a UDP payload).

    Immutable, hashable, ``==`` by value, picklable. IPv4 addresses, sent IPv4-mapped on
    the wire, read back as plain IPv4 text. ``SppHeader(client, proxy)`` makes one from two
    ``(host, port)`` pairs, as :func:`build_spp` takes them.
    """

    def __new__(cls, client: _AddressInput, proxy: _AddressInput) -> SppHeader: ...
    @property
    def client(self) -> tuple[str, int]:
        """The client: the datagram's original ``(host, port)``."""
    @property
    def proxy(self) -> tuple[str, int]:
        """The proxy: the Spectrum ``(host, port)`` the client sent the datagram to."""
    @property
    def length(self) -> Literal[38]:
        """Bytes of the header on the wire; the payload starts there."""
    def to_bytes(self) -> bytes:
        """The 38 wire bytes."""
    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

def parse_spp(data: Buffer, /) -> SppHeader:
    """Parse the Simple Proxy Protocol header at the start of *data* (a UDP datagram).

    Args:
        data: any C-contiguous buffer; the payload is ``data[38:]``.

    Returns:
        The :class:`SppHeader`.

    Raises:
        InvalidHeaderError: *data* does not start with the magic ``0x56EC`` (kind
            ``"spp_magic"``, offset 0 or 1).
        IncompleteHeaderError: fewer than 38 bytes (kind ``"incomplete"``).
    """

def build_spp(client: _AddressInput, proxy: _AddressInput) -> bytes:
    """The 38-byte Simple Proxy Protocol header for a datagram from *client* to *proxy*.

    Args:
        client: the client's ``(host, port)``, an IPv4 or IPv6 host (IPv4 is written
            IPv4-mapped).
        proxy: the proxy's ``(host, port)``, the same way.

    Raises:
        BuildError: not an IP ``(host, port)`` (kind ``"address"`` or ``"port"``).
    """

def find_signature(data: Buffer, start: int = 0, /) -> int:
    """Offset of the first v1 (``b"PROXY "``) or v2 signature at or after *start*, or -1.

    Args:
        data: any C-contiguous buffer, read as raw bytes.
        start: where to start looking; negative counts from the end, and any size is
            clamped to the buffer, as ``bytes.find`` does.

    Returns:
        The offset of the signature, or -1.

    Raises:
        ValueError: *data* is not C-contiguous.
        TypeError: *data* is not a buffer, or *start* not an integer.
    """

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

@final
class _SocketReader:
    """Reads a header already waiting on a socket in one call (``sync.read_header``'s fast path).

    Args:
        allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits: the parser options.
        allow_chained: accept a second header right after the first.
    """

    def __new__(
        cls,
        *,
        allow_v1: bool,
        allow_v2: bool,
        verify_checksum: bool,
        max_size: int,
        haproxy_limits: bool,
        allow_chained: bool,
    ) -> _SocketReader: ...
    def read(self, fd: int, /) -> Header | None:
        """The header waiting at the start of connected socket *fd*, its bytes consumed, or None.

        None when the whole header is not there yet or anything about it needs a decision
        (invalid, end of stream, a second header after it): nothing is consumed then.

        Raises:
            OSError: the socket failed, as ``socket.recv`` raises it.
        """

@final
class _TrustedNetworks:
    """The trusted networks of a ``ServerOptions``, compiled for the per-connection test.

    *v4* and *v6* are lists of ``(network address as int, prefix length)``; *unix*: whether
    peers without an IP address (UNIX sockets) are trusted."""

    def __new__(
        cls, v4: list[tuple[int, int]], v6: list[tuple[int, int]], unix: bool, /
    ) -> _TrustedNetworks: ...
    def allows(self, peer: object, /) -> bool:
        """Whether *peer* (a socket's ``getpeername()``) is in the trusted networks; a peer that
        is not an ``(host, port, ...)`` tuple (a UNIX socket's path) is when *unix* was set."""
