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

/// The common case of [`parse`]: a whole, valid `PROXY TCP4` line, read in one straight pass
/// (half the time of the general pass, which is kept for everything else: other protocols,
/// unfinished or invalid lines, and the error offsets; speed trick `v1-tcp4-fast` in
/// benchmarks/README.md: `ir_rs "v1 TCP4"`). Accepts only what the general pass
/// accepts, with the same layout (tested).
fn tcp4_fast(buf: &[u8]) -> Option<Layout> {
    let rest = buf.strip_prefix(b"PROXY TCP4 ")?;
    let (_, len) = read_ipv4(rest, Some(b' '))?;
    let dst = SRC_START + len + 1;
    let (_, len) = read_ipv4(buf.get(dst..)?, Some(b' '))?;
    let sport = dst + len + 1;
    let (_, len) = port_fast(buf.get(sport..)?, b' ')?;
    let dport = sport + len + 1;
    let (_, len) = port_fast(buf.get(dport..)?, b'\r')?;
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
mod tests {
    use super::*;
    use crate::ip_text::tests::xorshift;
    use crate::ip_text::{write_ipv6, MAX_V6_CANONICAL};
    use crate::Addresses;

    /// Up to two random bytes of `text` replaced by bytes of `alphabet`.
    fn mutate(next: &mut impl FnMut() -> u64, text: &mut [u8], alphabet: &[u8]) {
        for _ in 0..(next() % 3) {
            let i = (next() as usize) % text.len();
            text[i] = alphabet[(next() as usize) % alphabet.len()];
        }
    }

    /// `text`, or one time in four a random prefix of it (input still arriving).
    fn maybe_cut<'t>(next: &mut impl FnMut() -> u64, text: &'t [u8]) -> &'t [u8] {
        let cut = (next() as usize) % (text.len() + 1);
        &text[..if next().is_multiple_of(4) { cut } else { text.len() }]
    }

    /// Eight IPv6 groups, a quarter of them zero and a quarter below 16, so that zero runs of
    /// every length and place occur.
    fn random_groups(next: &mut impl FnMut() -> u64) -> [u16; 8] {
        let mut g = [0u16; 8];
        for x in &mut g {
            *x = match next() % 4 {
                0 => 0,
                1 => (next() % 16) as u16,
                _ => next() as u16,
            };
        }
        g
    }

    fn ok(line: &[u8]) -> Layout {
        match parse(line, false) {
            Ok(Status::Complete { header, consumed }) => {
                assert_eq!(consumed, line.len());
                *header.layout()
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(line)),
        }
    }

    /// The addresses of the whole line, through the public accessor.
    fn addresses_of(line: &[u8]) -> Addresses {
        crate::Header::from_parts(line, ok(line)).unwrap().addresses()
    }

    fn err(line: &[u8]) -> (ErrorKind, usize) {
        match parse(line, false) {
            Err(e) => (e.kind, e.offset),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(line)),
        }
    }

    /// Every proper prefix of a valid line is Partial with a needed that never overshoots.
    fn prefixes_partial(line: &[u8]) {
        for n in 0..line.len() {
            match parse(&line[..n], false) {
                Ok(Status::Partial { needed }) => assert!(needed >= 1 && n + needed <= line.len()),
                other => panic!("prefix {n} of {:?}: {other:?}", String::from_utf8_lossy(line)),
            }
        }
    }

    #[test]
    fn rule8_tcp4_tcp6_unknown() {
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
        assert_eq!(ok(line).family, Family::Inet);
        assert_eq!(
            addresses_of(line),
            Addresses::V4 {
                src: "192.168.0.1:56324".parse().unwrap(),
                dst: "192.168.0.11:443".parse().unwrap()
            }
        );
        let line = b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n";
        assert_eq!(ok(line).family, Family::Inet6);
        assert_eq!(
            addresses_of(line),
            Addresses::V6 {
                src: "2001:db8::1".parse().unwrap(),
                dst: "::ffff:10.0.0.1".parse().unwrap(),
                src_port: 0,
                dst_port: 65535
            }
        );
        let l = ok(b"PROXY UNKNOWN\r\n");
        assert_eq!(
            (l.family, l.protocol, addresses_of(b"PROXY UNKNOWN\r\n")),
            (Family::Unspec, Protocol::Unspec, Addresses::None)
        );
        for line in [
            &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"[..],
            b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n",
            b"PROXY UNKNOWN\r\n",
            b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
        ] {
            prefixes_partial(line);
        }
    }

    #[test]
    fn rule14_longest_lines() {
        let v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let tcp6 = format!("PROXY TCP6 {v6} {v6} 65535 65535\r\n");
        assert_eq!(tcp6.len(), 104);
        ok(tcp6.as_bytes());
        let unknown = format!("PROXY UNKNOWN {v6} {v6} 65535 65535\r\n");
        assert_eq!(unknown.len(), 107);
        ok(unknown.as_bytes());
        // One byte more: the LF would be at index 107.
        let over = format!("PROXY UNKNOWN {v6} {v6} 65535 655350\r\n");
        assert_eq!(err(over.as_bytes()), (ErrorKind::V1TooLong, 105));
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(200, b'x');
        assert_eq!(err(&long), (ErrorKind::V1TooLong, 105));
    }

    #[test]
    fn d1_rejects_at_the_first_impossible_byte() {
        assert_eq!(err(b"GET / HTTP/1.1"), (ErrorKind::NotProxyProtocol, 0));
        assert_eq!(err(b"PRX"), (ErrorKind::NotProxyProtocol, 2));
        assert_eq!(err(b"PROXY."), (ErrorKind::V1Syntax, 5));
        assert_eq!(err(b"PROXY ."), (ErrorKind::V1Protocol, 6));
        assert_eq!(err(b"PROXY TCP5"), (ErrorKind::V1Protocol, 9));
        assert_eq!(err(b"PROXY TCP4  "), (ErrorKind::V1Address, 11));
        assert_eq!(err(b"PROXY UNKNOWNX"), (ErrorKind::V1Syntax, 13));
        assert_eq!(err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), (ErrorKind::V1Syntax, 30));
        assert_eq!(err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r"), (ErrorKind::V1Syntax, 31));
    }

    #[test]
    fn rule10_ipv4_strict() {
        for (line, at) in [
            (&b"PROXY TCP4 01.2.3.4 "[..], 12),
            (b"PROXY TCP4 256.", 13),
            (b"PROXY TCP4 1.2.3 ", 16),
            (b"PROXY TCP4 1.2.3.4.", 18),
            (b"PROXY TCP4 1..", 13),
            (b"PROXY TCP4 ::1 ", 11),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8x", 26),
        ] {
            assert_eq!(
                err(line),
                (ErrorKind::V1Address, at),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        ok(b"PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n");
    }

    #[test]
    fn rule11_d6_ipv6_strict() {
        for line in [
            &b"PROXY TCP6 fe80::1%eth0 "[..],
            b"PROXY TCP6 1.2.3.4 ",
            b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ",
            b"PROXY TCP6 1::2::3 ",
            b"PROXY TCP6 ::: ",
            b"PROXY TCP6 12345:: ",
            b"PROXY TCP6 :1 ",
            b"PROXY TCP6 ::ffff:01.2.3.4 ",
            b"PROXY TCP6 ::ffff:1.2.3.4.5 ",
            b"PROXY TCP6 ::ffff:1.2.3 ",
            b"PROXY TCP6 1:2:3:4:5:6:7 ",
            b"PROXY TCP6 g:: ",
        ] {
            assert_eq!(err(line).0, ErrorKind::V1Address, "{:?}", String::from_utf8_lossy(line));
        }
        assert_eq!(err(b"PROXY TCP6 fe80::1%"), (ErrorKind::V1Address, 18));
        assert_eq!(err(b"PROXY TCP6 1.2"), (ErrorKind::V1Address, 12));
        assert_eq!(err(b"PROXY TCP6 1::2::"), (ErrorKind::V1Address, 16));
        for addr in [
            "::",
            "::1",
            "1::",
            "FE80::A",
            "1:2:3:4:5:6:7:8",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
            "0001:db8::",
        ] {
            ok(format!("PROXY TCP6 {addr} ::1 1 2\r\n").as_bytes());
        }
    }

    /// Our IPv6 reader agrees with the standard library's on valid forms and on random
    /// mutations of them (the standard one also rejects zone ids and leading-zero quads).
    #[test]
    fn rule11_ipv6_agrees_with_std() {
        use core::str::FromStr;
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        let alphabet = b"0123456789abcdefABCDEF:.x%";
        for _ in 0..20_000 {
            let g = random_groups(&mut next);
            let addr = Ipv6Addr::from(g);
            let mut text = match next() % 4 {
                0 => addr.to_string(),
                1 => g.iter().map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(":"),
                2 => Ipv6Addr::from(g)
                    .to_ipv4_mapped()
                    .map_or(addr.to_string(), |v4| format!("::ffff:{v4}")),
                _ => format!(
                    "{}:{}.{}.{}.{}",
                    g[..6].iter().map(|x| format!("{x:x}")).collect::<Vec<_>>().join(":"),
                    next() % 256,
                    next() % 256,
                    next() % 256,
                    next() % 256
                ),
            }
            .into_bytes();
            mutate(&mut next, &mut text, alphabet);
            let std = core::str::from_utf8(&text).ok().and_then(|t| Ipv6Addr::from_str(t).ok());
            let mut line = b"PROXY TCP6 ".to_vec();
            line.extend_from_slice(&text);
            line.extend_from_slice(b" ::1 1 2\r\n");
            let ours = match parse(&line, false) {
                Ok(Status::Complete { .. }) => match addresses_of(&line) {
                    Addresses::V6 { src, .. } => Some(src),
                    _ => None,
                },
                _ => None,
            };
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(&text));
        }
    }

    /// The fast IPv4 reader accepts exactly what the byte-by-byte one accepts, with the same
    /// value and length, on random and mutated dotted quads, alone (its 16-byte window
    /// padded) and followed by more bytes.
    #[test]
    fn rule10_fast_ipv4_agrees_with_the_cursor() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
        let alphabet = b"0123456789. x";
        let mut taken = 0;
        for round in 0..100_000 {
            let mut text =
                format!("{}.{}.{}.{} ", next() % 300, next() % 256, next() % 256, next() % 1000)
                    .into_bytes();
            mutate(&mut next, &mut text, alphabet);
            if round % 2 == 1 {
                text.extend_from_slice(b"0.0.0.0 1 2\r\n");
            }
            let text = maybe_cut(&mut next, &text);
            let mut c = Cursor { buf: text, pos: 0, min_total: 0 };
            let slow = c.ipv4_by_byte(b' ').ok().map(|addr| (addr, c.pos));
            let fast = read_ipv4(text, Some(b' '));
            assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(text));
            taken += usize::from(fast.is_some());
        }
        assert!(taken > 5_000, "only {taken} valid texts");
    }

    /// The fast IPv6 reader accepts only what the byte-by-byte one accepts, with the same
    /// value and length (rule 11), on random forms of random addresses, mutated and cut; and
    /// it takes every form without a dotted quad (so `.source` and TCP6 lines use it).
    #[test]
    fn rule11_fast_ipv6_agrees_with_the_cursor() {
        let mut next = xorshift(0xD1B5_4A32_D192_ED03u64);
        let alphabet = b"0123456789abcdefABCDEF:. x";
        let mut taken = 0;
        for _ in 0..50_000 {
            let g = random_groups(&mut next);
            let addr = Ipv6Addr::from(g);
            let hex: Vec<String> = g.iter().map(|x| format!("{x:X}")).collect();
            let form = next() % 4;
            let mut text = match form {
                0 => {
                    let mut t = [0; MAX_V6_CANONICAL];
                    let n = write_ipv6(addr, &mut t);
                    t[..n].to_vec()
                }
                1 => g.iter().map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(":").into(),
                2 => hex.join(":").into(),
                _ => {
                    // `::` in place of a random run of groups, zero or not.
                    let (a, b) = ((next() % 8) as usize, (next() % 9) as usize);
                    let (a, b) = (a.min(b), a.max(b));
                    format!("{}::{}", hex[..a].join(":"), hex[b..].join(":")).into()
                }
            };
            text.push(b' ');
            let valid = form != 0 || addr.to_ipv4_mapped().is_none();
            if form < 3 && valid {
                assert_eq!(read_ipv6(&text, b' '), Some((addr, text.len() - 1)), "{text:?}");
            }
            mutate(&mut next, &mut text, alphabet);
            let text = maybe_cut(&mut next, &text);
            if let Some((fast, len)) = read_ipv6(text, b' ') {
                taken += 1;
                let mut c = Cursor { buf: text, pos: 0, min_total: 0 };
                let slow = c.ipv6_by_byte(b' ').ok();
                assert_eq!((slow, c.pos), (Some(fast), len), "{:?}", String::from_utf8_lossy(text));
            }
        }
        assert!(taken > 10_000, "the fast path took only {taken} texts");
    }

    /// The `PROXY TCP4` fast path accepts only lines the general pass accepts, with the same
    /// layout, on random and mutated lines (rules 8, 10, 12, 13).
    #[test]
    fn rule8_fast_tcp4_agrees_with_the_general_pass() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        let alphabet = b"0123456789. \r\nxPT4";
        let mut taken = 0;
        for _ in 0..100_000 {
            let mut line = format!(
                "PROXY TCP4 {}.{}.{}.{} {}.0.{}.1 {} {}\r\nrest",
                next() % 300,
                next() % 256,
                next() % 256,
                next() % 1000,
                next() % 256,
                next() % 256,
                next() % 70_000,
                [0, 7, 65535, 65536, 99_999, 123_456][(next() % 6) as usize]
            )
            .into_bytes();
            mutate(&mut next, &mut line, alphabet);
            let line = maybe_cut(&mut next, &line);
            if let Some(fast) = tcp4_fast(line) {
                taken += 1;
                let mut c = Cursor { buf: line, pos: 0, min_total: MIN_LEN };
                let general = parse_line(&mut c, false).ok();
                assert_eq!(general, Some(fast), "{:?}", String::from_utf8_lossy(line));
            }
        }
        assert!(taken > 2_000, "the fast path took only {taken} lines");
    }

    #[test]
    fn rule12_ports_strict() {
        for (line, at) in [
            (&b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 "[..], 27),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 ", 28),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 ", 31),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 5_6 ", 28),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1  ", 29),
        ] {
            assert_eq!(err(line), (ErrorKind::V1Port, at), "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn d5_unknown_trailing_and_haproxy_short_form() {
        ok(b"PROXY UNKNOWN whatever \x00 bytes\r\n");
        assert_eq!(err(b"PROXY UNKNOWN a\nb\r\n"), (ErrorKind::V1Syntax, 15));
        assert_eq!(err(b"PROXY UNKNOWN a\rb"), (ErrorKind::V1Syntax, 16));
        assert!(matches!(parse(b"PROXY UNKNOWN\r\n", true), Ok(Status::Complete { .. })));
        assert_eq!(parse(b"PROXY UNKNOWN x\r\n", true).unwrap_err().offset, 13);
    }

    #[test]
    fn payload_after_the_line_is_left_alone() {
        let s = parse(b"PROXY UNKNOWN\r\nGET / HTTP/1.1\r\n", false).unwrap();
        assert!(matches!(s, Status::Complete { consumed: 15, .. }));
    }

    #[test]
    fn write_roundtrip() {
        let mut out = Vec::new();
        let ends = Endpoints::Inet(
            "[2001:db8:0::1]:80".parse().unwrap(),
            "[::ffff:1.2.3.4]:443".parse().unwrap(),
        );
        write(&mut out, &ends).unwrap();
        assert_eq!(out, b"PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 80 443\r\n");
        ok(&out);
        out.clear();
        write(&mut out, &Endpoints::None).unwrap();
        assert_eq!(out, b"PROXY UNKNOWN\r\n");
        let mixed = Endpoints::Inet("1.2.3.4:1".parse().unwrap(), "[::1]:2".parse().unwrap());
        assert_eq!(write(&mut out, &mixed), Err(BuildError::MixedFamilies));
    }

    /// The TCP4 writer (table lookups, no `fmt`) writes what `std`'s `Display` writes, which
    /// is the canonical text rules 10 and 12 ask for, on the edges of every field and on
    /// random addresses; and the line parses back to the same addresses.
    #[test]
    fn write_tcp4_matches_display() {
        let mut next = xorshift(0x0123_4567_89AB_CDEFu64);
        let edges = [0u32, 1, 9, 10, 99, 100, 255, 0x0A00_0001, 0xFFFF_FFFF];
        let ports = [0u16, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535];
        let mut cases: Vec<(u32, u16)> = edges.iter().zip(ports).map(|(&a, p)| (a, p)).collect();
        cases.extend((0..2000).map(|_| {
            let r = next();
            ((r >> 16) as u32, r as u16)
        }));
        for pair in cases.windows(2) {
            let s = SocketAddrV4::new(Ipv4Addr::from(pair[0].0), pair[0].1);
            let d = SocketAddrV4::new(Ipv4Addr::from(pair[1].0), pair[1].1);
            let mut out = Vec::new();
            write(&mut out, &Endpoints::Inet(s.into(), d.into())).unwrap();
            let want = format!("PROXY TCP4 {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port());
            assert_eq!(out, want.as_bytes());
            assert_eq!(addresses_of(&out), Addresses::V4 { src: s, dst: d });
        }
    }

    /// D8: a TCP6 line carries the canonical text of its addresses.
    #[test]
    fn d8_write_tcp6_is_canonical() {
        let ends = Endpoints::Inet("[2001:db8::1]:80".parse().unwrap(), "[::2]:0".parse().unwrap());
        let mut out = Vec::new();
        write(&mut out, &ends).unwrap();
        assert_eq!(out, b"PROXY TCP6 2001:db8::1 ::2 80 0\r\n");
    }
}
