//! The streaming parser: bytes in as they arrive, a header out once complete (sans-IO).
//!
//! Strategy: keep the bytes of the unfinished header in a buffer that never grows past the
//! largest header allowed (107 bytes for v1, `max_size` for v2). Every feed re-checks the
//! buffer while the version or the v2 prefix is undecided (at most 107 bytes, so cheap) and
//! so fails at the first impossible byte; once the v2 length is known the exact total is
//! awaited without re-parsing. Bytes past the header are handed back untouched.

use crate::error::ParseError;
use crate::header::{Header, Layout};
use crate::{parse, parse_layout, Options, Status};

/// Where the parser is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading; the header is at least `min_total` bytes long (exact once v2's prefix is in).
    Reading { min_total: usize, exact: bool },
    /// Complete: the buffer holds exactly the header.
    Done(Layout),
    /// Failed for good.
    Failed(ParseError),
}

/// What one [`Parser::feed`] call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed<'a> {
    /// More bytes are needed: at least this many.
    NeedMore(usize),
    /// The header is complete. It borrows the input when it arrived in one piece, the
    /// parser's buffer otherwise. The first `used` bytes of this call's input belonged to it;
    /// the rest is payload.
    Complete {
        /// The header.
        header: Header<'a>,
        /// Bytes of this call's input that belonged to the header.
        used: usize,
    },
    /// The header was completed by an earlier call: all of this input is payload.
    AlreadyComplete,
}

/// A streaming parser for one connection.
#[derive(Debug, Clone)]
pub struct Parser {
    opts: Options,
    buf: Vec<u8>,
    state: State,
}

impl Parser {
    /// A parser with `opts`.
    #[must_use]
    pub fn new(opts: Options) -> Self {
        let min_total = opts.min_header_len();
        Self { opts, buf: Vec::new(), state: State::Reading { min_total, exact: false } }
    }

    /// The largest header this parser may have to hold.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.opts.max_header_len()
    }

    /// Offers `data`. Bytes that belong to the header are kept; the rest is left to the caller
    /// (`Fed::Complete { used, .. }` says where it starts).
    ///
    /// # Errors
    /// The header can never be valid; every later call returns the same error.
    pub fn feed<'a>(&'a mut self, data: &'a [u8]) -> Result<Fed<'a>, ParseError> {
        let (min_total, exact) = match self.state {
            State::Failed(e) => return Err(e),
            State::Done(_) => return Ok(Fed::AlreadyComplete),
            State::Reading { min_total, exact } => (min_total, exact),
        };
        if self.buf.is_empty() {
            // Fast path: the header may be all in this input; parse it where it lies.
            return match parse(data, &self.opts) {
                Ok(Status::Complete { header, consumed }) => {
                    self.state = State::Done(*header.layout());
                    Ok(Fed::Complete { header, used: consumed })
                }
                Ok(Status::Partial { needed }) => {
                    self.buf.extend_from_slice(data);
                    Ok(self.reading(needed))
                }
                Err(e) => Err(self.fail(e)),
            };
        }
        let before = self.buf.len();
        let limit = if exact { min_total } else { self.capacity() };
        let take = limit.saturating_sub(before).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        if exact && self.buf.len() < min_total {
            // v2 with a known length: parse once it is all there.
            return Ok(Fed::NeedMore(min_total - self.buf.len()));
        }
        match parse_layout(&self.buf, &self.opts) {
            Ok(Status::Complete { header, consumed }) => {
                self.buf.truncate(consumed);
                self.state = State::Done(header);
                let header = Header::from_parsed(&self.buf, header);
                Ok(Fed::Complete { header, used: consumed - before })
            }
            Ok(Status::Partial { needed }) => Ok(self.reading(needed)),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn reading(&mut self, needed: usize) -> Fed<'static> {
        let exact = self.buf.len() >= crate::v2::PREFIX_LEN && self.buf[0] == b'\r';
        if exact {
            // The total is known: one allocation of exactly that size, not growth by doubling
            // (up to twice `max_size` held per stalled connection otherwise).
            // Measured by tests/load/stalled_memory.py.
            self.buf.reserve_exact(needed);
        }
        self.state = State::Reading { min_total: self.buf.len() + needed, exact };
        Fed::NeedMore(needed)
    }

    fn fail(&mut self, e: ParseError) -> ParseError {
        self.buf = Vec::new();
        self.state = State::Failed(e);
        e
    }

    /// Lower bound on the bytes still needed; 0 once complete (or failed).
    #[must_use]
    pub fn needed(&self) -> usize {
        match self.state {
            State::Reading { min_total, .. } => min_total - self.buf.len(),
            _ => 0,
        }
    }

    /// True once a header is complete.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// The error that failed this parser.
    #[must_use]
    pub fn error(&self) -> Option<ParseError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Bytes held while the header is incomplete.
    #[must_use]
    pub fn buffered(&self) -> usize {
        if self.is_done() {
            0
        } else {
            self.buf.len()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const V1: &[u8] = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n";

    fn whole(input: &[u8]) -> Result<usize, ParseError> {
        let mut p = Parser::new(Options::default());
        match p.feed(input)? {
            Fed::Complete { used, .. } => Ok(used),
            _ => Ok(usize::MAX),
        }
    }

    /// Same outcome for every split point pair, and for one byte at a time.
    fn same_for_every_split(input: &[u8]) {
        let expected = whole(input);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut p = Parser::new(Options::default());
                let mut got = Ok(usize::MAX);
                let mut fed = 0;
                for part in [&input[..i], &input[i..j], &input[j..]] {
                    match p.feed(part) {
                        Err(e) => {
                            got = Err(e);
                            break;
                        }
                        Ok(Fed::Complete { used, .. }) if got == Ok(usize::MAX) => {
                            got = Ok(fed + used);
                        }
                        Ok(_) => {}
                    }
                    fed += part.len();
                    assert!(p.buffered() <= p.capacity());
                }
                assert_eq!(got, expected, "split {i}/{j}");
            }
        }
        let mut p = Parser::new(Options::default());
        let mut got = Ok(usize::MAX);
        for (k, b) in input.iter().enumerate() {
            match p.feed(core::slice::from_ref(b)) {
                Err(e) => {
                    got = Err(e);
                    break;
                }
                Ok(Fed::Complete { used: 1, .. }) => got = Ok(k + 1),
                Ok(Fed::NeedMore(n)) => assert!(n >= 1),
                Ok(_) => {}
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn splits_agree() {
        let mut v1 = V1.to_vec();
        v1.extend_from_slice(b"GET / HTTP/1.0\r\n");
        same_for_every_split(&v1);
        same_for_every_split(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 22x2\r\n");
        same_for_every_split(b"PROXY UNKNOWN\r\n");
        let mut v2 = crate::v2::SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0, 15, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 4, 0, 0]);
        v2.extend_from_slice(b"payload");
        same_for_every_split(&v2);
        v2[13] = 0x19;
        same_for_every_split(&v2);
    }

    #[test]
    fn stays_failed_and_buffers_nothing_more() {
        let mut p = Parser::new(Options::default());
        let e = p.feed(b"PROXY TCP4 1.2.3.4x").unwrap_err();
        assert_eq!(e.kind, ErrorKind::V1Address);
        assert_eq!(p.feed(b"anything"), Err(e));
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn never_buffers_beyond_the_cap() {
        let mut p = Parser::new(Options::default());
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(100, b'a');
        assert!(matches!(p.feed(&line), Ok(Fed::NeedMore(_))));
        let e = p.feed(&[b'a'; 10_000]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::V1TooLong);
    }

    #[test]
    fn needed_is_exact_for_v2_after_the_prefix() {
        let mut p = Parser::new(Options::default());
        let mut v2 = crate::v2::SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x20, 0x00, 0, 100]);
        assert_eq!(p.feed(&v2), Ok(Fed::NeedMore(100)));
        assert_eq!(p.needed(), 100);
        assert_eq!(p.feed(&[0; 99]), Ok(Fed::NeedMore(1)));
        let Ok(Fed::Complete { header, used: 1 }) = p.feed(&[0; 5]) else { panic!() };
        assert_eq!(header.len(), 116);
        assert_eq!(p.needed(), 0);
        assert_eq!(p.feed(b"more"), Ok(Fed::AlreadyComplete));
    }

    #[test]
    fn holds_a_large_v2_header_in_one_exact_allocation() {
        let opts = Options { max_size: 65551, ..Options::default() };
        let mut p = Parser::new(opts);
        let mut v2 = crate::v2::SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(p.feed(&v2), Ok(Fed::NeedMore(65535)));
        for _ in 0..65 {
            assert!(matches!(p.feed(&[0; 1000]), Ok(Fed::NeedMore(_))));
        }
        assert_eq!(p.feed(&[0; 525]), Ok(Fed::NeedMore(10)));
        // Growth by doubling would hold about twice the header here.
        assert_eq!(p.buf.capacity(), 65551);
    }
}
