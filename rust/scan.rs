//! Detecting the version from the first bytes (SPEC rule 29) and finding signatures in large
//! buffers (captures, logs) with memchr's SIMD substring search.

use std::sync::OnceLock;

use memchr::memmem::Finder;

use crate::v2::SIGNATURE;

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
}
