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
#[must_use]
pub fn find_signature(buf: &[u8], start: usize) -> Option<usize> {
    let hay = buf.get(start..)?;
    let (v2, v1) = finders();
    let at_v2 = v2.find(hay);
    // A v1 marker only matters if it starts before the v2 signature.
    let v1_end = at_v2.map_or(hay.len(), |p| (p + V1_MARKER.len() - 1).min(hay.len()));
    let at_v1 = v1.find(&hay[..v1_end]);
    match (at_v1, at_v2) {
        (Some(a), Some(b)) => Some(start + a.min(b)),
        (a, b) => a.or(b).map(|p| start + p),
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
}
