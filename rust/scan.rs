//! Detecting the version from the first bytes (SPEC rule 29), finding signatures in large
//! buffers (captures, logs) with memchr's SIMD substring search, and [`Headers`]: every valid
//! header of such a buffer.
//!
//! [`Headers`] is built for hostile buffers: a candidate (a v1 marker or a v2 signature) is
//! refused or accepted by the parser without leaving the core, and each pattern's next match
//! is remembered, so the search for one pattern never re-reads the bytes before the other's
//! next match. Its cost is one pass of each search over the buffer plus one parse per
//! candidate, and a parse is bounded by the header cap (107 bytes for v1, `max_size` for v2).

use std::sync::OnceLock;

use memchr::memmem::Finder;

use crate::header::Header;
use crate::v2::SIGNATURE;
use crate::{parse, Options, Status};

/// What the first bytes of a stream are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detected {
    /// Starts with `PROXY`: a v1 line.
    V1,
    /// Starts with the 12-byte signature and (if present) version 2.
    V2,
    /// Cannot start a PROXY header.
    NotProxy,
    /// A prefix of a signature: more bytes are needed to tell.
    NeedMore,
}

/// The v1 marker searched for by [`find_signature`].
pub const V1_MARKER: &[u8] = b"PROXY ";

/// Tells v1, v2 or neither from the first bytes, deciding at the first byte that differs.
#[must_use]
pub fn detect(buf: &[u8]) -> Detected {
    let is_prefix = |sig: &[u8]| {
        let n = buf.len().min(sig.len());
        buf[..n] == sig[..n]
    };
    if buf.is_empty() {
        Detected::NeedMore
    } else if is_prefix(b"PROXY") {
        if buf.len() >= 5 {
            Detected::V1
        } else {
            Detected::NeedMore
        }
    } else if is_prefix(&SIGNATURE) {
        match buf.get(12) {
            None if buf.len() < SIGNATURE.len() => Detected::NeedMore,
            Some(b) if b >> 4 != 2 => Detected::NotProxy,
            _ => Detected::V2,
        }
    } else {
        Detected::NotProxy
    }
}

fn finders() -> &'static (Finder<'static>, Finder<'static>) {
    static FINDERS: OnceLock<(Finder<'static>, Finder<'static>)> = OnceLock::new();
    FINDERS.get_or_init(|| (Finder::new(&SIGNATURE), Finder::new(V1_MARKER)))
}

/// Offset of the first v2 signature or v1 marker (`PROXY `) at or after `start`.
///
/// The buffer is searched in cache-sized chunks, both patterns per chunk, so a large buffer
/// is read from memory once rather than once per pattern.
#[must_use]
pub fn find_signature(buf: &[u8], start: usize) -> Option<usize> {
    const CHUNK: usize = 32 * 1024;
    let hay = buf.get(start..)?;
    let (v2, v1) = finders();
    let mut pos = 0;
    while pos < hay.len() {
        // The overlap lets a match that starts in this chunk end in the next one.
        let window = &hay[pos..(pos + CHUNK + SIGNATURE.len() - 1).min(hay.len())];
        let found = match (v2.find(window), v1.find(window)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // A match starting in the overlap is the next chunk's to report, after any earlier
        // match that did not fit in this window.
        if let Some(p) = found.filter(|&p| p < CHUNK) {
            return Some(start + pos + p);
        }
        pos += CHUNK;
    }
    None
}

/// The next match of one pattern at or after the scan's cursor, found lazily.
#[derive(Debug, Clone, Copy)]
enum Next {
    /// Not searched since the cursor passed the last match.
    Unknown,
    /// The first match at or after the cursor starts here.
    At(usize),
    /// No match from the cursor to the end (or the pattern is not looked for).
    Never,
}

/// Where a scan for headers stands: the cursor and each pattern's next match. Kept apart
/// from the buffer so that a caller who must borrow the buffer anew for each header (the
/// Python binding) can resume; [`Headers`] is the iterator over one borrowed buffer.
///
/// Given another buffer than before (a `bytearray` changed between calls), it stays memory
/// safe and finds valid headers only, but may miss some.
#[derive(Debug, Clone, Copy)]
pub struct ScanState {
    opts: Options,
    cursor: usize,
    v1: Next,
    v2: Next,
}

impl ScanState {
    /// A scan from `start`, parsing with `opts`.
    #[must_use]
    pub fn new(start: usize, opts: Options) -> Self {
        let off = |allowed: bool| if allowed { Next::Unknown } else { Next::Never };
        Self { cursor: start, v1: off(opts.allow_v1), v2: off(opts.allow_v2), opts }
    }

    /// Where the search resumes: past the last header returned, or one byte past the last
    /// candidate refused.
    #[must_use]
    pub const fn position(&self) -> usize {
        self.cursor
    }

    /// The next valid, complete header of `buf`: `(offset, header, length)`. Candidates that
    /// do not start one under the options are skipped; a valid header's bytes are not
    /// searched again.
    pub fn next_header<'a>(&mut self, buf: &'a [u8]) -> Option<(usize, Header<'a>, usize)> {
        let (v2_finder, v1_finder) = finders();
        loop {
            let v1 = resolve(&mut self.v1, buf, self.cursor, v1_finder);
            let v2 = resolve(&mut self.v2, buf, self.cursor, v2_finder);
            let at = match (v1, v2) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b)?,
            };
            // `at` is a match found inside `buf`, so the slice is never empty.
            let candidate = buf.get(at..).unwrap_or_default();
            if let Ok(Status::Complete { header, consumed }) = parse(candidate, &self.opts) {
                self.cursor = at + consumed;
                return Some((at, header, consumed));
            }
            self.cursor = at + 1;
        }
    }
}

/// The first match of `finder` at or after `cursor`, searched only when not known.
fn resolve(next: &mut Next, buf: &[u8], cursor: usize, finder: &Finder<'_>) -> Option<usize> {
    if let Next::At(p) = *next {
        if p >= cursor {
            return Some(p);
        }
        *next = Next::Unknown;
    }
    if let Next::Unknown = *next {
        *next = match buf.get(cursor..).and_then(|hay| finder.find(hay)) {
            Some(p) => Next::At(cursor + p),
            None => Next::Never,
        };
    }
    match *next {
        Next::At(p) => Some(p),
        _ => None,
    }
}

/// Every valid, complete header in a buffer, in order: `(offset, header, length)`; see
/// [`ScanState::next_header`].
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    buf: &'a [u8],
    state: ScanState,
}

impl<'a> Headers<'a> {
    /// The headers of `buf` at or after `start`, parsed with `opts`.
    #[must_use]
    pub fn new(buf: &'a [u8], start: usize, opts: Options) -> Self {
        Self { buf, state: ScanState::new(start, opts) }
    }

    /// Where the search resumes (see [`ScanState::position`]).
    #[must_use]
    pub const fn position(&self) -> usize {
        self.state.position()
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = (usize, Header<'a>, usize);

    fn next(&mut self) -> Option<Self::Item> {
        self.state.next_header(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule29_detect() {
        assert_eq!(detect(b""), Detected::NeedMore);
        assert_eq!(detect(b"PRO"), Detected::NeedMore);
        assert_eq!(detect(b"PROXY"), Detected::V1);
        assert_eq!(detect(b"PRX"), Detected::NotProxy);
        assert_eq!(detect(b"GET /"), Detected::NotProxy);
        assert_eq!(detect(b"\r\n\r\n"), Detected::NeedMore);
        assert_eq!(detect(&SIGNATURE), Detected::V2);
        let mut v = SIGNATURE.to_vec();
        v.push(0x21);
        assert_eq!(detect(&v), Detected::V2);
        v[12] = 0x11;
        assert_eq!(detect(&v), Detected::NotProxy);
        assert_eq!(detect(b"\r\n\r\nX"), Detected::NotProxy);
    }

    #[test]
    fn finds_the_first_of_either() {
        let mut buf = vec![0u8; 1000];
        assert_eq!(find_signature(&buf, 0), None);
        buf[700..712].copy_from_slice(&SIGNATURE);
        assert_eq!(find_signature(&buf, 0), Some(700));
        assert_eq!(find_signature(&buf, 701), None);
        buf[695..701].copy_from_slice(b"PROXY ");
        assert_eq!(find_signature(&buf, 0), Some(695));
        assert_eq!(find_signature(&buf, 696), None); // signature now overwritten at 700
        assert_eq!(find_signature(&buf, 5000), None);
        buf[10..16].copy_from_slice(b"PROXY ");
        assert_eq!(find_signature(&buf, 0), Some(10));
        assert_eq!(find_signature(&buf, 11), Some(695));
    }

    /// Chunked search agrees with a naive scan, matches straddling chunk edges included.
    #[test]
    fn agrees_with_naive_across_chunk_edges() {
        let naive = |buf: &[u8], start: usize| {
            (start..buf.len())
                .find(|&i| buf[i..].starts_with(&SIGNATURE) || buf[i..].starts_with(V1_MARKER))
        };
        let edge = 32 * 1024;
        for at in [0, 1, edge - 12, edge - 11, edge - 6, edge - 5, edge - 1, edge, 3 * edge - 3] {
            for (first, second) in [(&SIGNATURE[..], V1_MARKER), (V1_MARKER, &SIGNATURE[..])] {
                let mut buf = vec![b'x'; 4 * edge];
                buf[at..at + first.len()].copy_from_slice(first);
                let later = at + 9;
                buf[later..later + second.len()].copy_from_slice(second);
                for start in [0, at, at + 1, later, later + 1] {
                    assert_eq!(find_signature(&buf, start), naive(&buf, start), "{at} {start}");
                }
            }
        }
    }

    /// Every header of `buf` by the obvious loop: each candidate parsed, the next searched
    /// from one byte on if it fails and from its end if it is valid.
    fn naive(buf: &[u8], opts: &Options) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut pos = find_signature(buf, 0);
        while let Some(at) = pos {
            pos = match parse(&buf[at..], opts) {
                Ok(Status::Complete { consumed, .. }) => {
                    out.push((at, consumed));
                    find_signature(buf, at + consumed)
                }
                _ => find_signature(buf, at + 1),
            };
        }
        out
    }

    fn found(buf: &[u8], start: usize, opts: Options) -> Vec<(usize, usize)> {
        Headers::new(buf, start, opts).map(|(at, _, len)| (at, len)).collect()
    }

    fn v2_header(tlvs: &[(u8, &[u8])], crc: bool) -> Vec<u8> {
        let ends = crate::Endpoints::Inet(
            "192.0.2.1:56324".parse().unwrap(),
            "198.51.100.7:443".parse().unwrap(),
        );
        let mut b =
            crate::v2::Builder::new(crate::Command::Proxy, crate::Protocol::Stream, &ends, crc)
                .unwrap();
        for &(kind, value) in tlvs {
            b.tlv(kind, value).unwrap();
        }
        b.finish().unwrap()
    }

    #[test]
    fn headers_skips_refused_candidates_and_never_looks_inside_a_header() {
        let v1 = b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
        // A v2 header carrying a whole v1 line and a signature in a TLV: one header.
        let mut inner = v1.to_vec();
        inner.extend_from_slice(&SIGNATURE);
        let v2 = v2_header(&[(0xE1, &inner)], true);
        let mut buf = b"junk PROXY PROXY \r\n\r\n\0\r\nQUIT\n\x11".to_vec();
        let v2_at = buf.len();
        buf.extend_from_slice(&v2);
        buf.extend_from_slice(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"); // no CR: refused
        let v1_at = buf.len();
        buf.extend_from_slice(v1);
        buf.extend_from_slice(&v2[..40]); // cut: incomplete, skipped
        let opts = Options::default();
        assert_eq!(found(&buf, 0, opts), [(v2_at, v2.len()), (v1_at, v1.len())]);
        assert_eq!(found(&buf, 0, opts), naive(&buf, &opts));
        // Starting inside the v2 header, the line in its TLV is a header of its own.
        let inner_at = v2_at + 16 + 12 + 7 + 3;
        assert_eq!(&buf[inner_at..inner_at + 6], b"PROXY ");
        assert_eq!(found(&buf, v2_at + 1, opts), [(inner_at, v1.len()), (v1_at, v1.len())]);
        assert_eq!(found(&buf, buf.len() + 5, opts), []);
        // Versions turned off are not candidates.
        let v1_only = Options { allow_v2: false, ..opts };
        assert_eq!(found(&buf, 0, v1_only), [(inner_at, v1.len()), (v1_at, v1.len())]);
        let v2_only = Options { allow_v1: false, ..opts };
        assert_eq!(found(&buf, 0, v2_only), [(v2_at, v2.len())]);
        // A corrupted checksum refuses the v2 header; its inner v1 line is then found.
        let mut bad = buf.clone();
        bad[v2_at + v2.len() - 1] ^= 1;
        assert_eq!(found(&bad, 0, opts)[0], (inner_at, v1.len()));
        assert_eq!(found(&bad, 0, opts), naive(&bad, &opts));
        let lax = Options { verify_checksum: false, ..opts };
        assert_eq!(found(&bad, 0, lax), [(v2_at, v2.len()), (v1_at, v1.len())]);
    }

    /// The remembered matches give the obvious loop's answer on random mixtures of headers,
    /// near-misses, cut headers and noise (deterministic, so a failure reproduces).
    #[test]
    fn headers_agree_with_the_obvious_loop() {
        let v1: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
        let v2 = v2_header(&[(1, b"h2"), (2, b"example.com")], true);
        let pieces: [&[u8]; 8] = [
            v1,
            &v2,
            b"PROXY ",
            &SIGNATURE,
            b"PROXY UNKNOWN\r\n",
            &v2[..v2.len() - 1],
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff",
            b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..300 {
            let mut buf = Vec::new();
            for _ in 0..(round % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let piece = pieces[(x % 8) as usize];
                // Sometimes only a part of it, so candidates overlap and get cut.
                let cut =
                    if x & 0x100 == 0 { piece.len() } else { (x >> 16) as usize % piece.len() };
                buf.extend_from_slice(&piece[..cut]);
            }
            for opts in [
                Options::default(),
                Options { verify_checksum: false, max_size: 16, ..Options::default() },
            ] {
                assert_eq!(found(&buf, 0, opts), naive(&buf, &opts), "round {round}");
            }
        }
    }
}
