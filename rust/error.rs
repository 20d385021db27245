//! Errors: why bytes can never become a header ([`ParseError`]), and why a header cannot be
//! built ([`BuildError`]). Running out of input is not an error: see [`crate::Status`].

use core::fmt;

/// Why the input can never become a valid header. The `as_str()` slugs are stable: they are
/// the Python exceptions' `kind`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The first bytes are neither `PROXY` nor the v2 signature (SPEC rules 16, 29).
    NotProxyProtocol,
    /// A valid signature of a version the caller turned off (`allow_v1`/`allow_v2`).
    VersionNotAllowed,
    /// v1: a byte where the grammar allows none (spacing, CR/LF, stray characters).
    V1Syntax,
    /// v1: the protocol token is not `TCP4`, `TCP6` or `UNKNOWN` (rule 8).
    V1Protocol,
    /// v1: an address not in the form its family token dictates (rules 10, 11, D6).
    V1Address,
    /// v1: a port that is not decimal 0-65535 without leading zeros (rule 12).
    V1Port,
    /// v1: no CRLF within 107 bytes (rules 14, 15).
    V1TooLong,
    /// v2: version nibble other than 2 (rule 19).
    V2Version,
    /// v2: command nibble other than LOCAL or PROXY (rule 19).
    V2Command,
    /// v2: address family nibble above 3 (rule 22).
    V2Family,
    /// v2: transport nibble above 2 (rule 22).
    V2Protocol,
    /// v2: the length field is shorter than the family's address block (rules 27, 43).
    V2AddressTruncated,
    /// v2: the header is longer than the configured `max_size` (D7).
    HeaderTooLarge,
    /// A TLV header or value runs past the end of the header (rule 31, D4).
    TlvTruncated,
    /// A TLV whose value length is impossible for its type (CRC32C not 4 bytes, SSL under
    /// 5 bytes, `UNIQUE_ID` over 128 bytes; with `HAProxy` limits AUTHORITY over 255 or any value
    /// over 1024) (D4, rule 43).
    TlvLength,
    /// The CRC32C TLV does not match the header (rule 34).
    ChecksumMismatch,
    /// SPP: the datagram does not start with the magic `0x56EC` (Cloudflare Spectrum).
    SppMagic,
}

impl ErrorKind {
    /// The stable `snake_case` slug of this kind.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotProxyProtocol => "not_proxy_protocol",
            Self::VersionNotAllowed => "version_not_allowed",
            Self::V1Syntax => "v1_syntax",
            Self::V1Protocol => "v1_protocol",
            Self::V1Address => "v1_address",
            Self::V1Port => "v1_port",
            Self::V1TooLong => "v1_too_long",
            Self::V2Version => "v2_version",
            Self::V2Command => "v2_command",
            Self::V2Family => "v2_family",
            Self::V2Protocol => "v2_protocol",
            Self::V2AddressTruncated => "v2_address_truncated",
            Self::HeaderTooLarge => "header_too_large",
            Self::TlvTruncated => "tlv_truncated",
            Self::TlvLength => "tlv_length",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::SppMagic => "spp_magic",
        }
    }

    /// A one-line human description.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::NotProxyProtocol => "not a PROXY protocol header",
            Self::VersionNotAllowed => "PROXY protocol version not allowed here",
            Self::V1Syntax => "malformed v1 line",
            Self::V1Protocol => "v1 protocol must be TCP4, TCP6 or UNKNOWN",
            Self::V1Address => "invalid v1 address",
            Self::V1Port => "invalid v1 port",
            Self::V1TooLong => "v1 line without CRLF within 107 bytes",
            Self::V2Version => "v2 version must be 2",
            Self::V2Command => "v2 command must be LOCAL or PROXY",
            Self::V2Family => "unknown v2 address family",
            Self::V2Protocol => "unknown v2 transport protocol",
            Self::V2AddressTruncated => "v2 length too short for the address block",
            Self::HeaderTooLarge => "v2 header larger than max_size",
            Self::TlvTruncated => "TLV runs past the end of the header",
            Self::TlvLength => "TLV value length invalid for its type",
            Self::ChecksumMismatch => "CRC32C checksum mismatch",
            Self::SppMagic => "not a Simple Proxy Protocol header (magic 0x56EC)",
        }
    }

    /// True for the kinds that mean "too large" (`HeaderTooLargeError` in Python).
    #[must_use]
    pub const fn is_too_large(self) -> bool {
        matches!(self, Self::V1TooLong | Self::HeaderTooLarge)
    }
}

/// The input can never become a valid header: what was wrong, and at which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParseError {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Index of the byte where it was detected.
    pub offset: usize,
}

impl ParseError {
    /// An error of `kind` at byte `offset`.
    #[must_use]
    pub const fn new(kind: ErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind.description(), self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Why a header cannot be serialised. Nothing invalid is ever emitted.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// Source and destination are of different families.
    MixedFamilies,
    /// Only one of source and destination was given.
    MissingAddress,
    /// A UNIX path longer than 108 bytes, or holding a NUL where it would be cut.
    UnixPath {
        /// Its length in bytes.
        len: usize,
    },
    /// A TLV value over 65535 bytes.
    TlvTooLarge {
        /// The TLV type.
        kind: u8,
        /// The value's length.
        len: usize,
    },
    /// A TLV value that the receiver would reject (CRC32C not 4 bytes, SSL under 5,
    /// `UNIQUE_ID` over 128 bytes).
    TlvLength {
        /// The TLV type.
        kind: u8,
        /// The value's length.
        len: usize,
    },
    /// More than 65535 bytes after the 16-byte prefix.
    HeaderTooLarge {
        /// The total the header would have.
        len: usize,
    },
    /// A v1 line cannot carry this (UNIX or datagram addresses).
    V1Family,
    /// Addresses given for a LOCAL or UNSPEC-protocol header, which carries none: the
    /// receiver must ignore them (rules 20, 24, 26).
    AddressesIgnored,
}

impl BuildError {
    /// The stable `snake_case` slug (the Python `BuildError.kind`).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::MixedFamilies => "mixed_families",
            Self::MissingAddress => "missing_address",
            Self::UnixPath { .. } => "unix_path",
            Self::TlvTooLarge { .. } => "tlv_too_large",
            Self::TlvLength { .. } => "tlv_length",
            Self::HeaderTooLarge { .. } => "header_too_large",
            Self::V1Family => "v1_family",
            Self::AddressesIgnored => "addresses_ignored",
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MixedFamilies => f.write_str("source and destination are of different families"),
            Self::MissingAddress => {
                f.write_str("give both source and destination, or neither (LOCAL/UNKNOWN)")
            }
            Self::UnixPath { len } => write!(
                f,
                "UNIX address of {len} bytes: at most 108, with no NUL after the first byte"
            ),
            Self::TlvTooLarge { kind, len } => {
                write!(f, "TLV 0x{kind:02x} value of {len} bytes is over 65535")
            }
            Self::TlvLength { kind, len } => {
                write!(f, "TLV 0x{kind:02x} value of {len} bytes is invalid for its type")
            }
            Self::HeaderTooLarge { len } => {
                write!(f, "v2 header of {len} bytes is over the 65551-byte maximum")
            }
            Self::V1Family => f.write_str("v1 carries only TCP over IPv4 or IPv6"),
            Self::AddressesIgnored => f.write_str(
                "LOCAL and UNSPEC-protocol headers carry no addresses (the receiver ignores \
                 them): pass neither source nor destination",
            ),
        }
    }
}

impl std::error::Error for BuildError {}
