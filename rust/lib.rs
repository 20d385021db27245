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

/// [`parse`], folding every TLV into `init` with `f` (wire order, as [`Header::tlvs`] yields
/// them) in the same pass as the parse-time check (D4), instead of walking the TLVs again
/// after it. The accumulator is handed over only with a `Complete` header: when a later TLV
/// fails the check, what `f` saw is dropped with it, so `f` should do nothing but fold.
///
/// ```
/// use proxyproto_rs::{parse_fold, v2, Command, Endpoints, Options, Protocol, Status};
///
/// let ends = Endpoints::Inet("192.0.2.1:56324".parse()?, "198.51.100.2:443".parse()?);
/// let mut b = v2::Builder::new(Command::Proxy, Protocol::Stream, &ends, false)?;
/// b.tlv(0x01, b"h2")?.tlv(0x02, b"example.com")?;
/// let wire = b.finish()?;
///
/// let parsed = parse_fold(&wire, &Options::default(), Vec::new(), |kinds, tlv| kinds.push(tlv.kind));
/// let Ok(Status::Complete { header: (header, kinds), .. }) = parsed else {
///     panic!("not a header");
/// };
/// assert_eq!(kinds, [0x01, 0x02]);
/// assert_eq!(header.tlvs().count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`parse`].
pub fn parse_fold<'a, T>(
    buf: &'a [u8],
    opts: &Options,
    init: T,
    f: impl FnMut(&mut T, Tlv<'a>),
) -> Result<Status<(Header<'a>, T)>, ParseError> {
    let mut fold = tlv::Fold { acc: init, f };
    let parsed = match buf.first() {
        Some(b'\r') if opts.allow_v2 => v2::parse_recording(buf, opts, &mut fold),
        _ => parse(buf, opts),
    };
    Ok(match parsed? {
        Status::Complete { header, consumed } => {
            Status::Complete { header: (header, fold.acc), consumed }
        }
        Status::Partial { needed } => Status::Partial { needed },
    })
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
    use crate::ip_text::tests::xorshift;

    /// A parse outcome with every TLV as owned `(type, value, offset)`, comparable.
    type Owned = Result<Status<(Layout, Vec<(u8, Vec<u8>, usize)>)>, ParseError>;

    /// Every TLV `parse_fold` folds, as owned values, next to `parse`'s outcome.
    fn fold_all(buf: &[u8], opts: &Options) -> Owned {
        let folded = parse_fold(buf, opts, Vec::new(), |all, t| {
            all.push((t.kind, t.value.to_vec(), t.offset));
        })?;
        Ok(match folded {
            Status::Complete { header: (header, all), consumed } => {
                Status::Complete { header: (*header.layout(), all), consumed }
            }
            Status::Partial { needed } => Status::Partial { needed },
        })
    }

    /// What `parse` and the bounds-checked `Header::tlvs` walk give, in `fold_all`'s shape.
    fn walk_all(buf: &[u8], opts: &Options) -> Owned {
        Ok(match parse(buf, opts)? {
            Status::Complete { header, consumed } => {
                let all = header.tlvs().map(|t| (t.kind, t.value.to_vec(), t.offset)).collect();
                Status::Complete { header: (*header.layout(), all), consumed }
            }
            Status::Partial { needed } => Status::Partial { needed },
        })
    }

    /// `parse_fold` folds exactly the TLVs a bounds-checked walk of the parsed header yields,
    /// and decides exactly as `parse` does, on hostile input: valid TLV headers (IPv4, IPv6,
    /// LOCAL) with random bytes overwritten, lengths changed, bytes cut or appended, under
    /// every option set that changes the TLV check.
    #[test]
    fn fold_matches_the_bounds_checked_walk_on_hostile_input() {
        let ssl = [&[0x07, 0, 0, 0, 0][..], &[0x21, 0, 3], b"1.3", &[0x22, 0, 1], b"x"].concat();
        let tlvs: [(u8, &[u8]); 6] = [
            (tlv::ALPN, b"h2"),
            (tlv::AUTHORITY, b"example.com"),
            (tlv::UNIQUE_ID, &[7; 16]),
            (tlv::SSL, &ssl),
            (tlv::NOOP, b""),
            (tlv::AWS, b"\x01vpce-1"),
        ];
        let v4 = Endpoints::Inet("192.0.2.1:1".parse().unwrap(), "192.0.2.2:2".parse().unwrap());
        let v6 = Endpoints::Inet("[2001:db8::1]:1".parse().unwrap(), "[::1]:2".parse().unwrap());
        let mut seeds = Vec::new();
        for (command, protocol, ends) in [
            (Command::Proxy, Protocol::Stream, v4),
            (Command::Proxy, Protocol::Dgram, v6),
            (Command::Local, Protocol::Unspec, Endpoints::None),
        ] {
            for crc in [false, true] {
                let mut b = v2::Builder::new(command, protocol, &ends, crc).unwrap();
                for (kind, value) in tlvs {
                    b.tlv(kind, value).unwrap();
                }
                seeds.push(b.finish().unwrap());
            }
        }
        let option_sets = [
            Options::default(),
            Options { verify_checksum: false, ..Options::default() },
            Options { haproxy_limits: true, ..Options::default() },
        ];
        let mut next = xorshift(0x6A09_E667_F3BC_C908u64);
        let mut complete = 0;
        for round in 0..20_000 {
            let seed = &seeds[round % seeds.len()];
            let mut buf = seed.clone();
            for _ in 0..=next() % 3 {
                let at = 16 + (next() as usize) % (buf.len() - 16);
                match next() % 4 {
                    0 => buf[at] = next() as u8,
                    1 => buf[at] = buf[at].wrapping_add(1),
                    2 => buf.truncate(at),
                    _ => buf.extend((0..next() % 8).map(|_| next() as u8)),
                }
                if buf.len() <= 16 {
                    break;
                }
            }
            if next().is_multiple_of(2) && buf.len() >= 16 {
                // Keep the length field honest half the time, so the TLVs themselves are hit.
                let body = (buf.len() - 16) as u16;
                buf[14..16].copy_from_slice(&body.to_be_bytes());
            }
            for opts in &option_sets {
                let (folded, walked) = (fold_all(&buf, opts), walk_all(&buf, opts));
                assert_eq!(folded, walked, "{buf:02x?} {opts:?}");
                complete += usize::from(matches!(folded, Ok(Status::Complete { .. })));
            }
        }
        // The mutations leave enough headers whole for the walk comparison to mean something.
        assert!(complete > 5_000, "{complete}");
    }

    /// A TLV that fails the check after others passed it: the fold's accumulator is dropped
    /// with the header, whatever the closure saw.
    #[test]
    fn fold_of_a_refused_header_is_dropped() {
        let ends = Endpoints::Inet("192.0.2.1:1".parse().unwrap(), "192.0.2.2:2".parse().unwrap());
        let mut b = v2::Builder::new(Command::Proxy, Protocol::Stream, &ends, false).unwrap();
        b.tlv(tlv::ALPN, b"h2").unwrap().tlv(tlv::UNIQUE_ID, &[1; 8]).unwrap();
        let mut wire = b.finish().unwrap();
        let uid_len = wire.len() - 8 - 2;
        wire[uid_len..uid_len + 2].copy_from_slice(&200u16.to_be_bytes()); // past the end
        let mut seen = 0;
        let got = parse_fold(&wire, &Options::default(), (), |(), _| seen += 1);
        assert_eq!(got.unwrap_err().kind, ErrorKind::TlvTruncated);
        assert_eq!(seen, 1, "ALPN was passed before UNIQUE_ID failed");
        // v1 and headers without TLVs fold nothing and hand `init` back.
        let line = b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n";
        let Ok(Status::Complete { header: (_, n), .. }) =
            parse_fold(line, &Options::default(), 7, |n, _| *n += 1)
        else {
            panic!()
        };
        assert_eq!(n, 7);
    }

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
