//! Target `split_feed`: the streaming `Parser` against one-shot `parse`.
//!
//! Input: `control`, then `k = control & 7` chunk lengths (one byte each), then the stream.
//! `control >> 3` picks the options (verify_checksum, haproxy_limits, allow_v1/allow_v2,
//! max_size). Invariant: feeding the stream in the chunks drawn from the input (the last
//! chunk takes the rest), one byte at a time, and `needed()` bytes at a time all give the
//! same outcome as `parse` on the whole stream: the same error, or Complete after the same
//! number of bytes (Partial <=> still waiting); `feed`'s NeedMore equals `needed()`; the
//! buffer never exceeds `capacity()`; reading exactly `needed()` bytes never reads past the
//! header; a failed parser keeps its error, a finished one takes nothing more, and the
//! header's bytes are the stream's first `consumed` bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyproto_rs::{parse, v2, Fed, Options, ParseError, Parser, Status};

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    Complete(usize),
    Waiting,
    Err(ParseError),
}

/// Feeds `stream` in the pieces `next` cuts (given the parser), checking the parser's own
/// invariants; stops at the first error.
fn run(
    stream: &[u8],
    opts: Options,
    mut next: impl FnMut(&Parser, usize) -> usize,
    exact_reads: bool,
) -> Outcome {
    let mut p = Parser::new(opts);
    let mut pos = 0;
    let mut outcome = Outcome::Waiting;
    while pos < stream.len() {
        let n = next(&p, stream.len() - pos).min(stream.len() - pos);
        let chunk = &stream[pos..pos + n];
        match p.feed(chunk) {
            Ok(Fed::NeedMore(k)) => {
                assert!(k >= 1);
                assert_eq!(outcome, Outcome::Waiting);
                assert_eq!(k, p.needed());
            }
            Ok(Fed::Complete { header, used }) => {
                assert_eq!(outcome, Outcome::Waiting, "completed twice");
                assert!(used <= n);
                if exact_reads {
                    assert_eq!(used, n, "reading needed() bytes read past the header");
                }
                let consumed = pos + used;
                assert_eq!(header.as_bytes(), &stream[..consumed]);
                assert_eq!(header.len(), consumed);
                outcome = Outcome::Complete(consumed);
                assert_eq!(p.needed(), 0);
                assert!(p.is_done());
            }
            Ok(Fed::AlreadyComplete) => assert!(matches!(outcome, Outcome::Complete(_))),
            Err(e) => {
                assert_eq!(outcome, Outcome::Waiting);
                assert_eq!(p.feed(b"more"), Err(e), "a failed parser must stay failed");
                assert_eq!(p.error(), Some(e));
                return Outcome::Err(e);
            }
        }
        assert!(p.buffered() <= p.capacity(), "buffer above capacity");
        pos += n;
        if outcome != Outcome::Waiting && exact_reads {
            break;
        }
    }
    if outcome != Outcome::Waiting {
        assert_eq!(p.feed(b"payload"), Ok(Fed::AlreadyComplete));
    }
    outcome
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(control & 7).min(rest.len());
    let (cuts, stream) = rest.split_at(k);
    let bits = control >> 3;
    let opts = Options {
        verify_checksum: bits & 1 == 0,
        haproxy_limits: bits & 2 != 0,
        allow_v1: bits & 0x0C != 0x08,
        allow_v2: bits & 0x0C != 0x04,
        max_size: if bits & 0x10 != 0 { v2::PREFIX_LEN + 200 } else { 4096 },
    };
    let expected = match parse(stream, &opts) {
        Ok(Status::Complete { consumed, .. }) => Outcome::Complete(consumed),
        Ok(Status::Partial { .. }) => Outcome::Waiting,
        Err(e) => Outcome::Err(e),
    };
    let mut i = 0;
    let chunked = run(
        stream,
        opts,
        |_, left| {
            let n = cuts.get(i).map_or(left, |&c| usize::from(c));
            i += 1;
            n
        },
        false,
    );
    assert_eq!(chunked, expected, "chunks {cuts:?}");
    assert_eq!(run(stream, opts, |_, _| 1, false), expected, "byte at a time");
    // needed() bytes at a time, as a reader that must not consume payload does.
    assert_eq!(
        run(stream, opts, |p, _| p.needed().max(1), true),
        expected,
        "needed() at a time"
    );
    // Whole.
    assert_eq!(run(stream, opts, |_, left| left, false), expected, "whole");
});
