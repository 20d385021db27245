//! IP address text: the strict readers of v1's address fields and the canonical writer v1
//! lines, `.source`/`.destination` and the builders share (rules 10, 11, D8).
//!
//! Strategy: straight-line readers that accept only whole, valid text (anything else is left
//! to v1's byte-by-byte reader, which knows the error offsets), and writers that fill a stack
//! buffer without going through `fmt`. Each fast form is tested against a slow twin: the
//! readers against v1's byte-by-byte reader, the writers against `std`'s `Display`.
//! Measure them with `python benchmarks/bench.py --only "parse v"` (every parse case reads
//! `.source`: the v1 cases the readers, the v2 cases the writer) and `--only "build v1"`.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Reads IPv4 dotted-quad text with the v1 rules (rule 10: no leading zeros), e.g. for the
/// builders. `None` if `text` is anything else.
#[must_use]
pub fn ipv4_text(text: &[u8]) -> Option<Ipv4Addr> {
    // The fast reader accepts every valid address (tested), so it alone decides here.
    read_ipv4(text, None).map(|(addr, _)| addr)
}

/// A whole, valid dotted quad at the start of `s` followed by `end` (`None`: the end of `s`),
/// and its length, read in one straight pass over a 16-byte window (an address and its
/// terminator fit in 16 bytes), field by field with no bounds check per byte (a whole
/// `PROXY TCP4` line: 482 instructions, 533 with a loop over the slice's bytes), and a third
/// of v1's byte-by-byte reader, which is kept for everything else (an unfinished or invalid
/// address, and the error offsets). Speed trick `v1-tcp4-fast` in benchmarks/README.md:
/// `ir_rs "v1 TCP4"`. Accepts exactly what the byte-by-byte reader accepts, with the same
/// value (tested here and in v1).
pub(crate) fn read_ipv4(s: &[u8], end: Option<u8>) -> Option<(Ipv4Addr, usize)> {
    if let Some(window) = s.first_chunk::<16>() {
        return read_ipv4_window(window, s.len(), end);
    }
    // Short text: padded with NULs, which are neither digits nor separators.
    let mut window = [0; 16];
    window.get_mut(..s.len())?.copy_from_slice(s);
    read_ipv4_window(&window, s.len(), end)
}

/// [`read_ipv4`] on the first 16 bytes of text `len` bytes long (NUL-padded when shorter).
#[inline]
fn read_ipv4_window(w: &[u8; 16], len: usize, end: Option<u8>) -> Option<(Ipv4Addr, usize)> {
    // Each field starts at most at byte 12 and its third digit is at most byte 14, so the
    // masks never change an index; they only spare the bounds checks.
    let digit = |i: usize| w[i & 15].wrapping_sub(b'0');
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        let d0 = digit(i);
        if d0 > 9 {
            return None;
        }
        let d1 = digit(i + 1);
        *octet = if d1 > 9 {
            i += 1;
            d0
        } else if d0 == 0 {
            return None; // leading zero
        } else {
            let d2 = digit(i + 2);
            if d2 > 9 {
                i += 2;
                d0 * 10 + d1
            } else {
                i += 3;
                u8::try_from(u32::from(d0) * 100 + u32::from(d1 * 10 + d2)).ok()?
            }
        };
        let next = w[i & 15];
        let terminated = match (k, end) {
            (0..=2, _) => next == b'.',
            (_, Some(end)) => next == end && i < len,
            (_, None) => i == len,
        };
        if !terminated {
            return None;
        }
        i += 1;
    }
    Some((Ipv4Addr::from(octets), i - 1))
}

/// A whole, valid IPv6 address of hex groups (at most one `::`, no dotted quad) at the start
/// of `s` followed by `end`, and its length, read in one straight pass: a third of the time of
/// v1's byte-by-byte reader, which is kept for everything else (dotted quads, unfinished or
/// invalid text, and the error offsets). Accepts only what the byte-by-byte reader accepts,
/// with the same value (tested in v1). Speed trick `v1-ipv6-fast` in benchmarks/README.md:
/// `ir_rs "v1 TCP6"`.
pub(crate) fn read_ipv6(s: &[u8], end: u8) -> Option<(Ipv6Addr, usize)> {
    let mut groups = [0u16; 8];
    let mut n = 0; // groups read
    let mut gap = None; // groups before the `::`
    let mut i = 0;
    if s.starts_with(b"::") {
        gap = Some(0);
        i = 2;
    }
    // Unless the text is `::` alone: groups, each followed by the terminator, `:` or `::`.
    if s.get(i) != Some(&end) || gap.is_none() {
        loop {
            let mut value = 0u16;
            let mut digits = 0;
            while let Some(d) = s.get(i).and_then(|&b| char::from(b).to_digit(16)) {
                if digits == 4 {
                    return None;
                }
                value = value << 4 | d as u16;
                digits += 1;
                i += 1;
            }
            *groups.get_mut(n).filter(|_| digits > 0)? = value;
            n += 1;
            match *s.get(i)? {
                b if b == end => break,
                b':' if s.get(i + 1) == Some(&b':') => {
                    if gap.replace(n).is_some() {
                        return None;
                    }
                    i += 2;
                    if s.get(i) == Some(&end) {
                        break;
                    }
                }
                b':' => i += 1,
                _ => return None,
            }
        }
    }
    let before = match gap {
        Some(before) if n <= 7 => before,
        None if n == 8 => 8,
        _ => return None,
    };
    let mut out = [0u16; 8];
    out[..before].copy_from_slice(&groups[..before]);
    out[8 - (n - before)..].copy_from_slice(&groups[before..n]);
    Some((Ipv6Addr::from(out), i))
}

/// Hands `f` an address's text as v1 lines and `.source` show it (rules 10, 11, D8), written
/// on the stack in a buffer of the family's size. (A returned buffer cost a `memset` and a
/// copy per `.source`: speed trick `ip-text` in benchmarks/README.md.)
#[inline]
pub fn with_ip_text<R>(ip: IpAddr, f: impl FnOnce(&[u8]) -> R) -> R {
    match ip {
        IpAddr::V4(ip) => {
            let mut buf = [0; 19];
            let len = write_ipv4(ip, &mut buf);
            f(buf.get(..len).unwrap_or_default())
        }
        IpAddr::V6(ip) => {
            let mut buf = [0; MAX_V6_CANONICAL];
            let len = write_ipv6(ip, &mut buf);
            f(buf.get(..len).unwrap_or_default())
        }
    }
}

/// Each octet's decimal text: its length, then up to three digits.
const OCTET_TEXT: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let v = i as u8;
        table[i] = if v >= 100 {
            [3, b'0' + v / 100, b'0' + v / 10 % 10, b'0' + v % 10]
        } else if v >= 10 {
            [2, b'0' + v / 10, b'0' + v % 10, 0]
        } else {
            [1, b'0' + v, 0, 0]
        };
        i += 1;
    }
    table
};

/// Dotted-quad text without going through `fmt`: four table lookups, each written as a
/// whole 4-byte word: a third of the instructions of digit-by-digit division (speed trick
/// `ip-text`: `ir_py "$V2" 'h.source'`).
/// Returns the length written at the start of `out`.
fn write_ipv4(ip: Ipv4Addr, out: &mut [u8; 19]) -> usize {
    let mut n = 0;
    for octet in ip.octets() {
        let [len, digits @ ..] = OCTET_TEXT[usize::from(octet)];
        // `n` is at most 12 before the last octet, so `n..n + 4` stays inside the 19 bytes.
        if let Some(slot) = out.get_mut(n..n + 4) {
            slot.copy_from_slice(&[digits[0], digits[1], digits[2], b'.']);
        }
        n += usize::from(len);
        if let Some(dot) = out.get_mut(n) {
            *dot = b'.';
        }
        n += 1;
    }
    n - 1
}

/// Longest canonical IPv6 text: 8 groups of 4 hex digits and 7 colons.
pub(crate) const MAX_V6_CANONICAL: usize = 39;

/// IPv6 text in the canonical form of D8 (RFC 5952: lowercase, no leading zeros, the longest
/// run of two or more zero groups as `::`, the leftmost of equal runs; IPv4-mapped addresses
/// dotted), byte for byte what `Ipv6Addr`'s `Display` writes, without going through `fmt`.
/// Returns the length written at the start of `out`.
pub(crate) fn write_ipv6(ip: Ipv6Addr, out: &mut [u8; MAX_V6_CANONICAL]) -> usize {
    let mut n = 0;
    let mut push = |text: &[u8]| {
        if let Some(slot) = out.get_mut(n..n + text.len()) {
            slot.copy_from_slice(text);
            n += text.len();
        }
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        let mut dotted = [0; 19];
        let len = write_ipv4(v4, &mut dotted);
        push(b"::ffff:");
        push(dotted.get(..len).unwrap_or_default());
        return n;
    }
    let groups = ip.segments();
    // The longest run of zero groups: (start, length).
    let (mut zeros, mut run) = ((0, 0), (0, 0));
    for (i, &g) in groups.iter().enumerate() {
        run = if g == 0 { (run.0, run.1 + 1) } else { (i + 1, 0) };
        if run.1 > zeros.1 {
            zeros = run;
        }
    }
    let skipped = if zeros.1 >= 2 { zeros.0..zeros.0 + zeros.1 } else { 8..8 };
    for (i, &g) in groups.iter().enumerate() {
        if skipped.contains(&i) {
            if i == skipped.start {
                push(b"::");
            }
            continue;
        }
        if i > 0 && i != skipped.end {
            push(b":");
        }
        let digits = (16 - g.leading_zeros() as usize).div_ceil(4).max(1);
        let hex = [12, 8, 4, 0].map(|shift| b"0123456789abcdef"[usize::from(g >> shift & 0xF)]);
        push(hex.get(4 - digits..).unwrap_or_default());
    }
    n
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic random source (xorshift64) for the randomized tests (v1's too).
    pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// The fast IPv4 reader accepts every valid address, whole or followed by a terminator.
    #[test]
    fn rule10_fast_ipv4_takes_every_valid_address() {
        for a in 0..=255u8 {
            for (b, c, d) in [(0, 0, 0), (a, 255, 9), (10, a, 100), (99, 1, a)] {
                let addr = Ipv4Addr::new(a, b, c, d);
                let text = addr.to_string();
                assert_eq!(read_ipv4(text.as_bytes(), None), Some((addr, text.len())));
                assert_eq!(ipv4_text(text.as_bytes()), Some(addr));
                let line = format!("{text} ");
                assert_eq!(read_ipv4(line.as_bytes(), Some(b' ')), Some((addr, text.len())));
            }
        }
        for bad in ["1.2.3", "1.2.3.4.", "01.2.3.4", "1.2.3.256", "1.2.3.4 ", "", "1..2.3"] {
            assert_eq!(ipv4_text(bad.as_bytes()), None, "{bad}");
        }
    }

    /// D8: the IPv6 writer (no `fmt`) writes what `std`'s `Display` writes, on random
    /// addresses whose groups are zero half the time (so every shape of zero run, ties
    /// included), on IPv4-mapped and -compatible ones and on the edges.
    #[test]
    fn d8_write_ipv6_matches_display() {
        let mut next = xorshift(0x5DEE_CE66_D1CE_5EEDu64);
        let mut ips: Vec<Ipv6Addr> =
            ["::", "::1", "1::", "::ffff:0.0.0.0", "::ffff:1.2.3.4", "::1.2.3.4"]
                .iter()
                .map(|t| t.parse().unwrap())
                .collect();
        ips.push(Ipv6Addr::from(u128::MAX));
        for _ in 0..20_000 {
            let r = u128::from(next()) << 64 | u128::from(next());
            let zeros = next();
            let mut groups = [0u16; 8];
            for (i, g) in groups.iter_mut().enumerate() {
                // Each group: zero, or a random value of 1 to 4 hex digits.
                if zeros >> i & 1 == 1 {
                    *g = (r >> (16 * i)) as u16 >> (4 * (zeros >> (8 + 2 * i) & 3));
                }
            }
            ips.push(Ipv6Addr::from(groups));
        }
        for ip in ips {
            let mut text = [0; MAX_V6_CANONICAL];
            let n = write_ipv6(ip, &mut text);
            assert_eq!(&text[..n], ip.to_string().as_bytes(), "{ip:?}");
        }
    }
}
