//! A strict, fast, zero-copy PROXY protocol codec: v1 (text) and v2 (binary) headers, the
//! way `doc/proxy-protocol.txt` in the `HAProxy` repository specifies them.
//!
//! ```
//! use proxyproto_rs::{parse, Options, Status};
//!
//! let input = b"PROXY TCP4 203.0.113.7 10.0.0.5 51234 443\r\nGET / HTTP/1.1\r\n";
//! let Ok(Status::Complete { header, consumed }) = parse(input, &Options::default()) else {
//!     panic!("not a header");
//! };
//! assert_eq!(consumed, 43);
//! assert_eq!(header.version(), 1);
//! assert_eq!(&input[consumed..], b"GET / HTTP/1.1\r\n");
//! ```
//!
//! Running out of input is [`Status::Partial`], never an error; an error names the first byte
//! that no valid header could have ([`ParseError`]). The core never panics and never
//! allocates while parsing; it does not depend on Python (the `python` feature adds the
//! bindings).

pub mod crc32c;
pub mod error;
pub mod header;
pub mod ip_text;
pub mod scan;
pub mod spp;
pub mod stream;
pub mod tlv;
pub mod v1;
pub mod v2;

#[cfg(feature = "python")]
mod python;

use core::net::SocketAddr;

pub use error::{BuildError, ErrorKind, ParseError};
pub use header::{Address, Addresses, Command, Family, Header, Layout, Protocol};
pub use scan::{detect, find_signature, Detected};
pub use spp::SppHeader;
pub use stream::{Fed, Parser};
pub use tlv::{Ssl, Tlv, Tlvs};

/// Result of offering a buffer to a parser.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole header; `consumed` bytes belong to it, the rest of the buffer is payload.
    Complete {
        /// The header.
        header: T,
        /// Bytes it took.
        consumed: usize,
    },
    /// Valid so far. `needed` is a lower bound (>= 1) on how many more bytes to read; exact
    /// for v2 once the 16-byte prefix is in.
    Partial {
        /// More bytes needed, at least.
        needed: usize,
    },
}

/// What a parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Accept v1 text lines.
    pub allow_v1: bool,
    /// Accept v2 binary headers.
    pub allow_v2: bool,
    /// Check CRC32C TLVs (rule 34).
    pub verify_checksum: bool,
    /// Largest v2 header accepted, 16 to 65551 (D7). v1 is always capped at 107.
    pub max_size: usize,
    /// `HAProxy`'s receiver profile (rules 43, 45): only the short `PROXY UNKNOWN\r\n`,
    /// AUTHORITY at most 255 bytes, any TLV value at most 1024 bytes.
    pub haproxy_limits: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_v1: true,
            allow_v2: true,
            verify_checksum: true,
            max_size: 4096,
            haproxy_limits: false,
        }
    }
}

impl Options {
    /// The shortest header these options accept.
    #[must_use]
    pub const fn min_header_len(&self) -> usize {
        if self.allow_v1 {
            v1::MIN_LEN
        } else {
            v2::PREFIX_LEN
        }
    }

    /// The longest header these options accept.
    #[must_use]
    pub fn max_header_len(&self) -> usize {
        let v1 = if self.allow_v1 { v1::MAX_LEN } else { 0 };
        let v2 = if self.allow_v2 { self.max_size.clamp(v2::PREFIX_LEN, v2::MAX_LEN) } else { 0 };
        v1.max(v2).max(1)
    }
}

/// The two ends of a connection, for building a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoints<'a> {
    /// Unknown: v1 `UNKNOWN`, v2 family UNSPEC.
    None,
    /// Source and destination IP addresses (both of one family).
    Inet(SocketAddr, SocketAddr),
    /// Source and destination UNIX addresses (at most 108 bytes; a leading NUL marks an
    /// abstract address).
    Unix(&'a [u8], &'a [u8]),
}

/// Parses one header at the start of `buf`.
///
/// # Errors
/// `buf` can never start a valid header: what was wrong and at which byte.
pub fn parse<'a>(buf: &'a [u8], opts: &Options) -> Result<Status<Header<'a>>, ParseError> {
    // A turned-off version is refused at byte 0 (D1), so its kind may depend on byte 0 only:
    // the same bytes must fail the same way however many of them have arrived.
    let refuse = || Err(ParseError::new(ErrorKind::VersionNotAllowed, 0));
    // Each version's parser returns the whole result, passed on as is: no copy of the layout
    // between them (see Layout).
    match buf.first() {
        None => Ok(Status::Partial { needed: opts.min_header_len() }),
        Some(b'P') if opts.allow_v1 => v1::parse(buf, opts.haproxy_limits),
        Some(b'\r') if opts.allow_v2 => v2::parse(buf, opts),
        Some(b'P' | b'\r') => refuse(),
        Some(_) => Err(ParseError::new(ErrorKind::NotProxyProtocol, 0)),
    }
}

/// [`parse`] without the borrow: the layout and the bytes it took.
///
/// # Errors
/// As [`parse`].
pub fn parse_layout(buf: &[u8], opts: &Options) -> Result<Status<Layout>, ParseError> {
    Ok(match parse(buf, opts)? {
        Status::Complete { header, consumed } => {
            Status::Complete { header: *header.layout(), consumed }
        }
        Status::Partial { needed } => Status::Partial { needed },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `parse` and `split_feed` fuzz targets (fuzz/corpus/parse/
    /// fuzz-refused-version-kind-depends-on-length): with v2 off, `\r` alone was
    /// `VersionNotAllowed` but `\r\r` was `NotProxyProtocol`, both at byte 0, so a streaming
    /// parser fed one byte at a time failed with another kind than one fed the whole buffer.
    #[test]
    fn fuzz_refused_version_kind_depends_on_length() {
        let v1_only = Options { allow_v2: false, ..Options::default() };
        let v2_only = Options { allow_v1: false, ..Options::default() };
        for (opts, inputs) in [
            (v1_only, [&b"\r"[..], b"\r\r", b"\r\n\r\n\0\r\nQUIT\n\x21"]),
            (v2_only, [&b"P"[..], b"PP", b"PROXY UNKNOWN\r\n"]),
        ] {
            for input in inputs {
                let e = parse_layout(input, &opts).unwrap_err();
                assert_eq!((e.kind, e.offset), (ErrorKind::VersionNotAllowed, 0), "{input:?}");
            }
        }
    }
}
