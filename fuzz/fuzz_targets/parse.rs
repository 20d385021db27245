//! Target `parse`: `proxyproto_rs::parse` on arbitrary bytes, under several option sets.
//!
//! Invariant: it never panics and returns Complete, Partial or one of our errors; when
//! Complete, `consumed <= len`, `header.as_bytes() == input[..consumed]`, the header's bytes
//! alone re-parse to the same layout, its addresses decode exactly when the layout says it has
//! some, its accessors (addresses, TLVs, SSL) stay inside those bytes and the TLVs tile the
//! region after the address block exactly; when Partial, `needed >= 1`. Growing the input byte by byte never changes a decision once made (every
//! prefix of a complete header is Partial, an error stays the same error), `needed` never
//! points past the end of the header (exact for v2 once the 16-byte prefix is in), and a v1
//! or v2-prefix error is decided at the byte it names (D1). Looser options never reject what
//! stricter ones accept. `parse_fold` decides the same and folds exactly the TLVs `Header::tlvs`
//! yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyproto_rs::{
    parse, parse_fold, tlv, v2, Addresses, ErrorKind, Options, ParseError, Status,
};

/// Errors decided by the byte they name (v1 and the v2 prefix, D1).
fn decided_at_its_byte(kind: ErrorKind) -> bool {
    !matches!(
        kind,
        ErrorKind::HeaderTooLarge
            | ErrorKind::V2AddressTruncated
            | ErrorKind::TlvTruncated
            | ErrorKind::TlvLength
            | ErrorKind::ChecksumMismatch
    )
}

/// Outcome without the borrow, comparable across calls.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    Complete(proxyproto_rs::Layout, usize),
    Partial(usize),
    Err(ParseError),
}

fn check(data: &[u8], opts: &Options) -> Outcome {
    // `parse_fold` decides as `parse` does and folds exactly the TLVs `Header::tlvs` walks.
    let folded = parse_fold(data, opts, Vec::new(), |all, t| all.push(t));
    match (&folded, parse(data, opts)) {
        (
            Ok(Status::Complete { header: (h, all), consumed: n }),
            Ok(Status::Complete { header, consumed }),
        ) => {
            assert_eq!((h.layout(), *n), (header.layout(), consumed));
            assert!(all.iter().copied().eq(header.tlvs()), "fold differs from the walk");
        }
        (Ok(Status::Partial { needed: a }), Ok(Status::Partial { needed: b })) => assert_eq!(*a, b),
        (Err(a), Err(b)) => assert_eq!(*a, b),
        (a, b) => panic!("parse_fold {a:?} but parse {b:?}"),
    }
    match parse(data, opts) {
        Ok(Status::Complete { header, consumed }) => {
            assert!(consumed <= data.len() && consumed >= 15);
            assert_eq!(header.as_bytes(), &data[..consumed]);
            assert_eq!(header.len(), consumed);
            let bytes = header.as_bytes();
            // The header alone re-parses identically.
            match parse(bytes, opts) {
                Ok(Status::Complete { header: again, consumed: n }) => {
                    assert_eq!(n, consumed);
                    assert_eq!(again.layout(), header.layout());
                }
                other => panic!("header bytes do not re-parse: {other:?}"),
            }
            // Addresses are read from the wire bytes on demand: they always decode when the
            // header has them (v1 re-reads its text at the places parsing recorded).
            let has = header.layout().has_addresses();
            assert_eq!(header.addresses() != Addresses::None, has);
            assert_eq!((header.source().is_some(), header.destination().is_some()), (has, has));
            // TLVs were validated: they tile [tlv_start, len) exactly.
            let mut end = header.layout().tlv_start as usize;
            for t in header.tlvs() {
                assert_eq!(t.offset, end);
                assert_eq!(&bytes[t.offset + 3..t.offset + 3 + t.value.len()], t.value);
                end += 3 + t.value.len();
                if t.kind == tlv::CRC32C {
                    assert_eq!(t.value.len(), 4);
                }
            }
            assert_eq!(end, consumed, "TLVs do not reach the end of the header");
            if let Some(ssl) = header.ssl() {
                let mut sub = 0;
                for s in ssl.tlvs() {
                    sub += 3 + s.value.len();
                }
                assert_eq!(sub, ssl.sub.len());
            }
            if header.version() == 1 {
                assert_eq!(header.tlvs().count(), 0);
                assert!(consumed <= proxyproto_rs::v1::MAX_LEN);
            } else {
                assert!(consumed <= opts.max_size.min(v2::MAX_LEN));
            }
            Outcome::Complete(*header.layout(), consumed)
        }
        Ok(Status::Partial { needed }) => {
            assert!(needed >= 1);
            Outcome::Partial(needed)
        }
        Err(e) => {
            assert!(e.offset < data.len(), "{e:?} names a byte past the input");
            Outcome::Err(e)
        }
    }
}

fn grow(data: &[u8], opts: &Options) -> Outcome {
    let last = check(data, opts);
    // Every prefix before the decision is Partial; the decision then never changes.
    let mut decided_at = None;
    for n in 0..=data.len() {
        let o = check(&data[..n], opts);
        match o {
            Outcome::Partial(needed) => {
                if let Outcome::Complete(_, consumed) = last {
                    assert!(n + needed <= consumed, "needed {needed} at {n} overshoots {consumed}");
                    if data[0] == b'\r' && n >= v2::PREFIX_LEN {
                        assert_eq!(n + needed, consumed, "v2 needed not exact");
                    }
                }
            }
            _ => {
                assert_eq!(o, last, "decision at {n} differs from the whole input");
                decided_at = Some(n);
                break;
            }
        }
    }
    match (last, decided_at) {
        (Outcome::Partial(_), None) => {}
        (Outcome::Complete(_, consumed), Some(n)) => assert_eq!(n, consumed),
        (Outcome::Err(e), Some(n)) => {
            if decided_at_its_byte(e.kind) {
                assert_eq!(n, e.offset + 1, "{e:?} decided at {n}");
            }
        }
        other => panic!("inconsistent growth: {other:?}"),
    }
    last
}

fuzz_target!(|data: &[u8]| {
    let strict = Options::default();
    let base = grow(data, &strict);
    let no_crc = Options {
        verify_checksum: false,
        ..strict
    };
    let haproxy = Options {
        haproxy_limits: true,
        ..strict
    };
    let big = Options {
        max_size: v2::MAX_LEN,
        ..strict
    };
    let v1_only = Options {
        allow_v2: false,
        ..strict
    };
    let v2_only = Options {
        allow_v1: false,
        max_size: v2::PREFIX_LEN + data.last().map_or(0, |&b| usize::from(b) * 4),
        ..strict
    };
    let looser = [check(data, &no_crc), check(data, &big)];
    let _ = grow(data, &haproxy);
    let only = [grow(data, &v1_only), grow(data, &v2_only)];
    if let Outcome::Complete(layout, consumed) = base {
        for o in looser {
            assert_eq!(o, Outcome::Complete(layout, consumed));
        }
        if layout.version == 1 {
            assert_eq!(only[0], base);
        } else if let Outcome::Complete(l, c) = only[1] {
            assert_eq!((l, c), (layout, consumed));
        }
    }
    if let Outcome::Complete(layout, consumed) = check(data, &haproxy) {
        assert_eq!(base, Outcome::Complete(layout, consumed), "haproxy_limits looser");
    }
});
