//! v1: the text line (SPEC §2.1, rules 8-17, D1, D5, D6).
//!
//! Strategy: one left-to-right pass that validates every byte as it arrives, so a prefix is
//! reported `Partial` only while some completion of it is a valid line, and an error names
//! the first byte that no valid line could have (D1). A line is at most 107 bytes, so the
//! streaming parser simply re-runs this pass over its buffer.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::error::{BuildError, ErrorKind, ParseError};
use crate::header::{Command, End, Family, Header, Layout, Protocol};
pub use crate::ip_text::ipv4_text;
use crate::ip_text::{read_ipv4, read_ipv6, with_ip_text};
use crate::{Endpoints, Status};

/// The longest v1 line, CRLF included (rule 14).
pub const MAX_LEN: usize = 107;
/// The shortest v1 line: `PROXY UNKNOWN\r\n`.
pub const MIN_LEN: usize = 15;
const MIN_TCP4: usize = "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n".len();
const MIN_TCP6: usize = "PROXY TCP6 :: :: 0 0\r\n".len();
/// Where the source address starts: after `PROXY TCP4 ` or `PROXY TCP6 `.
const SRC_START: usize = 11;
/// Longest IPv6 text: 6 groups of 4 hex digits and a dotted quad.
const MAX_V6_TEXT: usize = 45;

/// Why the pass stopped early.
enum Stop {
    /// Ran out of input; the line is at least this long.
    Partial(usize),
    Error(ParseError),
}

type Step<T> = Result<T, Stop>;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Lower bound on the whole line's length, from what is known so far.
    min_total: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Step<u8> {
        self.buf.get(self.pos).copied().ok_or(Stop::Partial(self.min_total))
    }

    fn fail<T>(&self, kind: ErrorKind) -> Step<T> {
        Err(Stop::Error(ParseError::new(kind, self.pos)))
    }

    /// Consumes `lit` byte by byte; a mismatch is `kind` at that byte.
    fn literal(&mut self, lit: &[u8], kind: ErrorKind) -> Step<()> {
        for &want in lit {
            if self.peek()? != want {
                return self.fail(kind);
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// Consumes `b"\r\n"`: a lone CR or LF is never an end of line (rule 13).
    fn crlf(&mut self) -> Step<()> {
        self.literal(b"\r\n", ErrorKind::V1Syntax)
    }

    /// A decimal number of at most `max`, without leading zeros (rules 10, 12), at the
    /// cursor. Leaves the cursor on the first byte after the digits (which must exist) and
    /// returns the value; a non-digit first byte, a leading zero or a value over `max` is
    /// `kind` at that byte.
    fn number(&mut self, max: u32, kind: ErrorKind) -> Step<u32> {
        // The position lives in a local (a register) and is written back on every exit.
        let (buf, mut pos) = (self.buf, self.pos);
        let mut value: u32 = 0;
        let result = loop {
            let Some(&b) = buf.get(pos) else { break Err(Stop::Partial(self.min_total)) };
            if !b.is_ascii_digit() {
                break if pos > self.pos {
                    Ok(value)
                } else {
                    Err(Stop::Error(ParseError::new(kind, pos)))
                };
            }
            value = value * 10 + u32::from(b - b'0');
            if (pos == self.pos + 1 && value < 10) || value > max {
                break Err(Stop::Error(ParseError::new(kind, pos))); // a leading zero, or too large
            }
            pos += 1;
        };
        self.pos = pos;
        result
    }

    /// Dotted-quad IPv4 without leading zeros (rule 10), ending at the byte `end`.
    fn ipv4(&mut self, end: u8) -> Step<Ipv4Addr> {
        if let Some((addr, len)) = self.buf.get(self.pos..).and_then(|s| read_ipv4(s, Some(end))) {
            self.pos += len;
            return Ok(addr);
        }
        self.ipv4_by_byte(end)
    }

    /// [`Cursor::ipv4`] one byte at a time: partial input, errors and their offsets.
    fn ipv4_by_byte(&mut self, end: u8) -> Step<Ipv4Addr> {
        let mut octets = [0u8; 4];
        for (i, octet) in octets.iter_mut().enumerate() {
            *octet = self.number(255, ErrorKind::V1Address)? as u8;
            let sep = if i < 3 { b'.' } else { end };
            if self.peek()? != sep {
                return self.fail(ErrorKind::V1Address);
            }
            if i < 3 {
                self.pos += 1;
            }
        }
        Ok(Ipv4Addr::from(octets))
    }

    /// IPv6 text (rule 11, D6), ending at the byte `end`.
    fn ipv6(&mut self, end: u8) -> Step<Ipv6Addr> {
        if let Some((addr, len)) = self.buf.get(self.pos..).and_then(|s| read_ipv6(s, end)) {
            self.pos += len;
            return Ok(addr);
        }
        self.ipv6_by_byte(end)
    }

    /// [`Cursor::ipv6`] one byte at a time: hex groups of at most 4 digits, at most one `::`,
    /// optionally a dotted quad for the last 32 bits, 128 bits in all. A prefix fails at the
    /// byte that makes it impossible; what only the whole text can show (too few groups, an
    /// unfinished quad) fails at the terminator.
    fn ipv6_by_byte(&mut self, end: u8) -> Step<Ipv6Addr> {
        let start = self.pos;
        let mut groups = [0u16; 8];
        let mut n = 0usize; // groups ended by ':'
        let mut gap: Option<usize> = None; // groups before the '::'
        let mut run = 0usize; // characters since the last ':' or '.'
        let mut hex: u32 = 0; // the run read as hex
        let mut dec: u32 = 0; // the run read as decimal (a dotted-quad octet)
        let mut run_decimal = true;
        let mut colons = 0usize; // consecutive ':' just read
        let mut octets = [0u8; 4];
        let mut dots = 0usize;
        loop {
            let b = self.peek()?;
            if self.pos - start >= MAX_V6_TEXT && b != end {
                return self.fail(ErrorKind::V1Address);
            }
            match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let digit = char::from(b).to_digit(16).unwrap_or(0);
                    let decimal = b.is_ascii_digit();
                    if colons == 1 && self.pos == start + 1 {
                        return self.fail(ErrorKind::V1Address); // ":x" at the start
                    }
                    if dots > 0 {
                        // Inside the dotted quad: decimal, no leading zero, at most 255.
                        if !decimal || (run == 1 && dec == 0) || dec * 10 + digit > 255 {
                            return self.fail(ErrorKind::V1Address);
                        }
                    } else if run == 4 {
                        return self.fail(ErrorKind::V1Address);
                    }
                    run_decimal &= decimal;
                    hex = hex * 16 + digit;
                    dec = dec.saturating_mul(10).saturating_add(digit);
                    run += 1;
                    colons = 0;
                }
                b':' => {
                    if dots > 0 || colons == 2 || (colons == 1 && gap.is_some()) {
                        return self.fail(ErrorKind::V1Address);
                    }
                    if colons == 1 {
                        gap = Some(n);
                    } else if run > 0 {
                        if n + 1 > if gap.is_some() { 6 } else { 7 } {
                            return self.fail(ErrorKind::V1Address);
                        }
                        groups[n] = hex as u16;
                        n += 1;
                    } else if self.pos != start {
                        return self.fail(ErrorKind::V1Address);
                    }
                    colons += 1;
                    run = 0;
                    hex = 0;
                    dec = 0;
                    run_decimal = true;
                }
                b'.' => {
                    // Only after a ':' (D6: plain IPv4 text is not IPv6), each octet decimal
                    // without a leading zero, and the quad must fit in the last 32 bits.
                    let leading_zero = run > 1 && self.buf.get(self.pos - run) == Some(&b'0');
                    let octet_ok = run > 0 && run_decimal && dec <= 255 && !leading_zero;
                    let room = dots > 0 || n + usize::from(gap.is_some()) <= 6;
                    let seen_colon = n > 0 || gap.is_some();
                    if !octet_ok || !room || !seen_colon || dots == 3 {
                        return self.fail(ErrorKind::V1Address);
                    }
                    octets[dots] = dec as u8;
                    dots += 1;
                    run = 0;
                    hex = 0;
                    dec = 0;
                    colons = 0;
                }
                _ if b == end && self.pos > start => break,
                _ => return self.fail(ErrorKind::V1Address),
            }
            self.pos += 1;
        }
        // The last group, or the last octet of the quad.
        if run > 0 && dots == 3 && n + 2 <= 8 {
            octets[3] = dec as u8;
            groups[n] = u16::from_be_bytes([octets[0], octets[1]]);
            groups[n + 1] = u16::from_be_bytes([octets[2], octets[3]]);
            n += 2;
        } else if run > 0 && dots == 0 && n < 8 {
            groups[n] = hex as u16;
            n += 1;
        } else if !(run == 0 && colons == 2) {
            return self.fail(ErrorKind::V1Address); // ends with ':', '.' or a short quad
        }
        let full = if gap.is_some() { n <= 7 } else { n == 8 };
        if !full {
            return self.fail(ErrorKind::V1Address);
        }
        let mut out = [0u16; 8];
        let before = gap.unwrap_or(n);
        out[..before].copy_from_slice(&groups[..before]);
        out[8 - (n - before)..].copy_from_slice(&groups[before..n]);
        Ok(Ipv6Addr::from(out))
    }

    /// Decimal port 0-65535 without leading zeros (rule 12), ending at the byte `end`.
    fn port(&mut self, end: u8) -> Step<u16> {
        let port = self.number(65535, ErrorKind::V1Port)? as u16;
        match self.peek()? {
            b if b == end => Ok(port),
            b' ' | b'\r' | b'\n' => self.fail(ErrorKind::V1Syntax), // a delimiter, not this one
            _ => self.fail(ErrorKind::V1Port),
        }
    }

    /// `SP src SP dst SP sport SP dport CRLF` after the protocol token: where dst, sport and
    /// dport start (the line is at most 107 bytes, so each fits a byte).
    fn tcp<A>(&mut self, addr: impl Fn(&mut Self, u8) -> Step<A>) -> Step<[u8; 3]> {
        addr(self, b' ')?;
        self.pos += 1;
        let dst = self.pos as u8;
        addr(self, b' ')?;
        self.pos += 1;
        let sport = self.pos as u8;
        self.port(b' ')?;
        self.pos += 1;
        let dport = self.pos as u8;
        self.port(b'\r')?;
        self.crlf()?;
        Ok([dst, sport, dport])
    }

    /// After `UNKNOWN`: CRLF, or a space and anything but a lone CR or LF up to CRLF, the LF
    /// at index 106 at the latest (rules 9, 14, D5). `short_only`: `HAProxy`'s form only.
    fn unknown_rest(&mut self, short_only: bool) -> Step<()> {
        match self.peek()? {
            b'\r' => return self.crlf(),
            b' ' if !short_only => self.pos += 1,
            _ => return self.fail(ErrorKind::V1Syntax),
        }
        loop {
            self.min_total = self.min_total.max(self.pos + 2);
            match self.peek()? {
                b'\r' if self.pos + 1 < MAX_LEN => return self.crlf(),
                b'\n' => return self.fail(ErrorKind::V1Syntax),
                _ if self.pos + 2 < MAX_LEN => self.pos += 1,
                _ => return self.fail(ErrorKind::V1TooLong),
            }
        }
    }
}

/// A port (rule 12) followed by `end`, in one straight pass like [`read_ipv4`]: `None` for
/// anything the byte-by-byte reader should look at.
fn port_fast(s: &[u8], end: u8) -> Option<(u16, usize)> {
    let mut value: u32 = 0;
    let mut i = 0;
    while let Some(d) = s.get(i).map(|b| b.wrapping_sub(b'0')).filter(|d| *d <= 9) {
        if i == 5 || (i == 1 && value == 0) {
            return None; // six digits, or a leading zero
        }
        value = value * 10 + u32::from(d);
        i += 1;
    }
    let port = u16::try_from(value).ok()?;
    (i > 0 && s.get(i) == Some(&end)).then_some((port, i))
}

/// The length of a whole, valid dotted quad (rule 10) at the start of `s` followed by a
/// space: what [`read_ipv4`] checks, without making the address, which [`tcp4_fast`] does not
/// keep, and inlined there (speed trick `v1-tcp4-fast`). Reads a 16-byte window (an address
/// and its space fit), NUL-padded when `s` is shorter; `None` for anything the byte-by-byte
/// reader should look at (tested against the general pass with the rest of [`tcp4_fast`]).
#[inline(always)]
#[allow(clippy::inline_always)] // `ir_rs "v1 TCP4"`: 402 inlined, 434 with `#[inline]`
fn quad_len(s: &[u8]) -> Option<usize> {
    let padded;
    let w = if let Some(w) = s.first_chunk::<16>() {
        w
    } else {
        let mut w = [0; 16];
        w.get_mut(..s.len())?.copy_from_slice(s);
        padded = w;
        &padded
    };
    // A field starts at most at byte 12 and its third digit is at most byte 14; the mask only
    // spares the bounds checks.
    let digit = |i: usize| w[i & 15].wrapping_sub(b'0');
    let mut i = 0;
    for sep in [b'.', b'.', b'.', b' '] {
        let d0 = digit(i);
        if d0 > 9 {
            return None;
        }
        let d1 = digit(i + 1);
        if d1 > 9 {
            i += 1;
        } else {
            let d2 = digit(i + 2);
            if d0 == 0 {
                return None; // leading zero
            } else if d2 > 9 {
                i += 2;
            } else if u32::from(d0) << 16 | u32::from(d1) << 8 | u32::from(d2) > 0x02_05_05 {
                return None; // over 255, compared digit by digit as text
            } else {
                i += 3;
            }
        }
        if w[i & 15] != sep {
            return None;
        }
        i += 1;
    }
    Some(i - 1)
}

/// The length of a port (rule 12) at the start of `s` followed by `end`: what [`port_fast`]
/// checks, over an 8-byte window without a bounds check per digit, and without the value
/// (which [`tcp4_fast`] does not keep): only five digits can exceed 65535, and five digits
/// compare as text. Shorter input goes to [`port_fast`].
#[inline(always)]
#[allow(clippy::inline_always)] // as `quad_len`
fn port_len(s: &[u8], end: u8) -> Option<usize> {
    let Some(w) = s.first_chunk::<8>() else {
        return port_fast(s, end).map(|(_, len)| len);
    };
    let mut i = 0;
    while i < 6 && w[i].is_ascii_digit() {
        i += 1;
    }
    // Five digits at most, the first not a leading zero; five of them at most "65535".
    let bad = i == 0
        || i == 6
        || (i > 1 && w[0] == b'0')
        || (i == 5 && u64::from_be_bytes(*w) >> 24 > u64::from_be_bytes(*b"65535   ") >> 24);
    (!bad && w[i & 7] == end).then_some(i)
}

/// The common case of [`parse`]: a whole, valid `PROXY TCP4` line, checked in one straight
/// pass that keeps only where the fields start (the addresses and ports are read again on
/// demand), without the general pass's per-byte bookkeeping; that pass is kept for
/// everything else: other protocols, unfinished or invalid lines, and the error offsets
/// (speed trick `v1-tcp4-fast` in benchmarks/README.md: `ir_rs "v1 TCP4"`). Accepts only
/// what the general pass accepts, with the same layout (tested).
fn tcp4_fast(buf: &[u8]) -> Option<Layout> {
    let rest = buf.strip_prefix(b"PROXY TCP4 ")?;
    let len = quad_len(rest)?;
    let dst = SRC_START + len + 1;
    let len = quad_len(buf.get(dst..)?)?;
    let sport = dst + len + 1;
    let len = port_len(buf.get(sport..)?, b' ')?;
    let dport = sport + len + 1;
    let len = port_len(buf.get(dport..)?, b'\r')?;
    let cr = dport + len;
    if buf.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    let len = (cr + 2) as u32;
    Some(Layout {
        version: 1,
        command: Command::Proxy,
        family: Family::Inet,
        protocol: Protocol::Stream,
        // All under MAX_LEN: at most 15 + 1 + 15 + 1 + 5 + 1 bytes after SRC_START.
        v1_fields: [dst as u8, sport as u8, dport as u8],
        tlv_start: len,
        len,
    })
}

/// Parses a v1 line at the start of `buf`. `short_unknown_only` rejects anything after
/// `UNKNOWN` but CRLF (`HAProxy`'s behaviour, rule 45).
///
/// # Errors
/// The first byte no valid line could have, with its kind.
pub fn parse(buf: &[u8], short_unknown_only: bool) -> Result<Status<Header<'_>>, ParseError> {
    // The header is made where the layout is (see Layout); `len` is where the pass stopped.
    let complete = |layout: Layout| {
        let consumed = layout.len as usize;
        Ok(Status::Complete { consumed, header: Header::from_parsed(&buf[..consumed], layout) })
    };
    if let Some(layout) = tcp4_fast(buf) {
        return complete(layout);
    }
    let mut c = Cursor { buf, pos: 0, min_total: MIN_LEN };
    match parse_line(&mut c, short_unknown_only) {
        Ok(layout) => complete(layout),
        Err(Stop::Partial(min_total)) => {
            Ok(Status::Partial { needed: min_total.saturating_sub(buf.len()).max(1) })
        }
        Err(Stop::Error(e)) => Err(e),
    }
}

fn parse_line(c: &mut Cursor<'_>, short_unknown_only: bool) -> Step<Layout> {
    c.literal(b"PROXY", ErrorKind::NotProxyProtocol)?;
    c.literal(b" ", ErrorKind::V1Syntax)?;
    let (family, v1_fields) = match c.peek()? {
        b'T' => {
            c.literal(b"TCP", ErrorKind::V1Protocol)?;
            match c.peek()? {
                b'4' => {
                    c.min_total = MIN_TCP4;
                    c.pos += 1;
                    c.literal(b" ", ErrorKind::V1Protocol)?;
                    (Family::Inet, c.tcp(Cursor::ipv4)?)
                }
                b'6' => {
                    c.min_total = MIN_TCP6;
                    c.pos += 1;
                    c.literal(b" ", ErrorKind::V1Protocol)?;
                    (Family::Inet6, c.tcp(Cursor::ipv6)?)
                }
                _ => return c.fail(ErrorKind::V1Protocol),
            }
        }
        b'U' => {
            c.literal(b"UNKNOWN", ErrorKind::V1Protocol)?;
            c.unknown_rest(short_unknown_only)?;
            (Family::Unspec, [0; 3])
        }
        _ => return c.fail(ErrorKind::V1Protocol),
    };
    let protocol = if family == Family::Unspec { Protocol::Unspec } else { Protocol::Stream };
    let len = c.pos as u32;
    Ok(Layout {
        version: 1,
        command: Command::Proxy,
        family,
        protocol,
        v1_fields,
        tlv_start: len,
        len,
    })
}

/// One end's address and port in `line`, a whole TCP4 or TCP6 line that [`parse`] gave
/// `layout` for, read again at the places parsing recorded (rules 10-12). `None` if they do
/// not fit.
pub(crate) fn endpoint(line: &[u8], layout: &Layout, end: End) -> Option<SocketAddr> {
    let (start, stop, port) = endpoint_at(line, layout, end)?;
    match layout.family {
        Family::Inet => {
            let (ip, _) = read_ipv4(line.get(start..stop)?, None)?;
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        Family::Inet6 => {
            let ip = Cursor { buf: line, pos: start, min_total: 0 }.ipv6(b' ').ok()?;
            Some(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
        }
        Family::Unspec | Family::Unix => None,
    }
}

/// Where one end's address starts and stops (at the space before the next field) in a line
/// `layout` came from, and its port. IPv4 text is canonical already (rule 10: no leading
/// zeros), so it can be used as is.
pub(crate) fn endpoint_at(line: &[u8], layout: &Layout, end: End) -> Option<(usize, usize, u16)> {
    let [dst, sport, dport] = layout.v1_fields.map(usize::from);
    let ((start, next), (port_start, port_end)) = match end {
        End::Source => ((SRC_START, dst), (sport, b' ')),
        End::Destination => ((dst, sport), (dport, b'\r')),
    };
    let (port, _) = port_fast(line.get(port_start..)?, port_end)?;
    // The address ends at the space before the next field.
    Some((start, next.checked_sub(1)?, port))
}

/// [`endpoint_at`] for a line and the layout a successful [`parse`] of it gave (as
/// [`Header::from_parsed`] joins them), without checking the port text again: parsing proved
/// it, and its length is known from where the fields start (the source port ends at the space
/// before the destination port, the destination port at the CR two bytes before the end).
/// Given a line and layout that do not fit, it never panics, it only gives a wrong answer.
/// (The check costs ~45 instructions of a v1 `.source` in Python, speed trick
/// `v1-parsed-port` in benchmarks/README.md.)
#[cfg(any(feature = "python", test))]
pub(crate) fn parsed_endpoint_at(line: &[u8], layout: &Layout, end: End) -> (usize, usize, u16) {
    let [dst, sport, dport] = layout.v1_fields.map(usize::from);
    let ((start, next), (port_start, port_stop)) = match end {
        End::Source => ((SRC_START, dst), (sport, dport.wrapping_sub(1))),
        End::Destination => ((dst, sport), (dport, (layout.len as usize).wrapping_sub(2))),
    };
    // At most five digits (rule 12): a short loop the compiler leaves plain.
    let digits = line.get(port_start..port_stop).unwrap_or_default();
    let port = digits
        .iter()
        .take(5)
        .fold(0u16, |v, &d| v.wrapping_mul(10).wrapping_add(u16::from(d & 15)));
    (start, next.wrapping_sub(1), port)
}

/// Appends the v1 line for `ends` to `out`: `TCP4`/`TCP6` for IP addresses, `UNKNOWN` for
/// none. IPv6 is written in canonical form (D8).
///
/// # Errors
/// Mixed families, or UNIX addresses (v1 carries only TCP over IP).
pub fn write(out: &mut Vec<u8>, ends: &Endpoints<'_>) -> Result<(), BuildError> {
    let (token, s, d) = match *ends {
        Endpoints::None => {
            out.extend_from_slice(b"PROXY UNKNOWN\r\n");
            return Ok(());
        }
        Endpoints::Inet(s @ SocketAddr::V4(_), d @ SocketAddr::V4(_)) => (b"PROXY TCP4 ", s, d),
        Endpoints::Inet(s @ SocketAddr::V6(_), d @ SocketAddr::V6(_)) => (b"PROXY TCP6 ", s, d),
        Endpoints::Inet(..) => return Err(BuildError::MixedFamilies),
        Endpoints::Unix(..) => return Err(BuildError::V1Family),
    };
    out.extend_from_slice(token);
    for ip in [s.ip(), d.ip()] {
        with_ip_text(ip, |text| out.extend_from_slice(text));
        out.push(b' ');
    }
    push_port(out, s.port());
    out.push(b' ');
    push_port(out, d.port());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// A port's decimal text (rule 12: no leading zero), without going through `fmt`.
fn push_port(out: &mut Vec<u8>, port: u16) {
    let digits = [10_000, 1_000, 100, 10, 1].map(|unit| b'0' + (port / unit % 10) as u8);
    let leading_zeros = digits[..4].iter().take_while(|&&c| c == b'0').count();
    out.extend_from_slice(&digits[leading_zeros..]);
}

#[cfg(test)]
mod tests;
