//! Target `roundtrip`: build a header from arbitrary structured input with `v1::write` or
//! `v2::Builder`, then parse it back.
//!
//! Invariant: the builders refuse exactly the impossible inputs (mixed families, UNIX in v1,
//! addresses for a LOCAL or UNSPEC-protocol header, a UNIX path over 108 bytes or a pathname
//! holding a NUL, a TLV value over 65535 bytes, a CRC32C TLV added by hand, SSL under 5 bytes
//! or with sub-TLVs that do not frame, UNIQUE_ID over 128 bytes, a header over 16 + 65535
//! bytes), a refused TLV leaves the builder unchanged, and whatever they emit parses (strict
//! options, checksum verified, max_size 65551) as one complete header of exactly the emitted
//! length whose fields equal what was built: version, command, family, protocol, addresses,
//! UNIX paths (an abstract name loses only its trailing NULs: the 108-byte field is NUL
//! padded; all NULs reads back as the empty, unnamed address), and the TLVs in order, CRC32C
//! first when asked for.
#![no_main]

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use proxyproto_rs::header::unix_path;
use proxyproto_rs::{
    parse, tlv, v1, v2, Address, Addresses, BuildError, Command, Endpoints, Family, Options,
    Protocol, Status,
};

#[derive(Arbitrary, Debug)]
enum Ends {
    None,
    V4([u8; 4], u16, [u8; 4], u16),
    V6([u8; 16], u16, [u8; 16], u16),
    Mixed([u8; 16], u16, [u8; 4], u16),
    Unix(Vec<u8>, Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    v1: bool,
    local: bool,
    protocol: u8,
    crc: bool,
    ends: Ends,
    tlvs: Vec<(u8, Vec<u8>)>,
    /// A zero-filled NOOP of this many bytes, to reach the size limits.
    pad: Option<u16>,
    pad_extra: u8,
}

/// Sub-TLVs frame exactly (an independent walk, not the crate's).
fn frames(mut rest: &[u8]) -> bool {
    while !rest.is_empty() {
        if rest.len() < 3 {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        if rest.len() < 3 + len {
            return false;
        }
        rest = &rest[3 + len..];
    }
    true
}

fn tlv_acceptable(kind: u8, value: &[u8]) -> bool {
    value.len() <= 0xFFFF
        && match kind {
            tlv::CRC32C => false,
            tlv::SSL => value.len() >= 5 && frames(&value[5..]),
            tlv::UNIQUE_ID => value.len() <= 128,
            _ => true,
        }
}

fn unix_ok(path: &[u8]) -> bool {
    path.len() <= 108 && (path.first() == Some(&0) || !path.contains(&0))
}

/// What a UNIX address reads back as: a pathname as given; an abstract name without its
/// trailing NULs; the empty (unnamed) address, or all NULs, as empty.
fn unix_expected(path: &[u8]) -> Vec<u8> {
    if path.first().is_some_and(|&b| b != 0) {
        return path.to_vec();
    }
    let end = path.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    path[..end].to_vec()
}

fn addr(a: Option<Address<'_>>) -> Option<SocketAddr> {
    match a {
        Some(Address::Inet(sa)) => Some(sa),
        _ => None,
    }
}

fuzz_target!(|input: Input| {
    let v4 = |ip: [u8; 4], port| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port));
    let v6 = |ip: [u8; 16], port| SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0));
    let ends = match &input.ends {
        Ends::None => Endpoints::None,
        Ends::V4(a, p, b, q) => Endpoints::Inet(v4(*a, *p), v4(*b, *q)),
        Ends::V6(a, p, b, q) => Endpoints::Inet(v6(*a, *p), v6(*b, *q)),
        Ends::Mixed(a, p, b, q) => Endpoints::Inet(v6(*a, *p), v4(*b, *q)),
        Ends::Unix(s, d) => Endpoints::Unix(s, d),
    };
    let strict = Options {
        max_size: v2::MAX_LEN,
        ..Options::default()
    };

    if input.v1 {
        let mut out = Vec::new();
        let built = v1::write(&mut out, &ends);
        match (&input.ends, built) {
            (Ends::Mixed(..), Err(BuildError::MixedFamilies))
            | (Ends::Unix(..), Err(BuildError::V1Family)) => return,
            (Ends::None | Ends::V4(..) | Ends::V6(..), Ok(())) => {}
            (e, r) => panic!("v1::write({e:?}) gave {r:?}"),
        }
        assert!(out.len() <= v1::MAX_LEN);
        let Ok(Status::Complete { header, consumed }) = parse(&out, &strict) else {
            panic!("v1 line {:?} does not parse", String::from_utf8_lossy(&out));
        };
        assert_eq!(consumed, out.len());
        assert_eq!(header.version(), 1);
        assert_eq!(header.command(), Command::Proxy);
        match ends {
            Endpoints::None => {
                assert_eq!(header.family(), Family::Unspec);
                assert_eq!(header.addresses(), Addresses::None);
            }
            Endpoints::Inet(s, d) => {
                assert_eq!(header.protocol(), Protocol::Stream);
                assert_eq!(addr(header.source()), Some(s));
                assert_eq!(addr(header.destination()), Some(d));
            }
            Endpoints::Unix(..) => unreachable!(),
        }
        return;
    }

    let command = if input.local { Command::Local } else { Command::Proxy };
    let protocol = match input.protocol % 3 {
        0 => Protocol::Unspec,
        1 => Protocol::Stream,
        _ => Protocol::Dgram,
    };
    // LOCAL and UNSPEC-protocol headers carry no addresses (rules 20, 24, 26).
    let no_addresses = command == Command::Local || protocol == Protocol::Unspec;
    let mut b = match (&input.ends, v2::Builder::new(command, protocol, &ends, input.crc)) {
        (Ends::None, Ok(b)) => b,
        (_, Err(BuildError::AddressesIgnored)) if no_addresses => return,
        (_, r) if no_addresses => panic!("addresses for a LOCAL/UNSPEC header gave {r:?}"),
        (Ends::Mixed(..), Err(BuildError::MixedFamilies)) => return,
        (Ends::Unix(s, d), Err(BuildError::UnixPath { .. })) => {
            assert!(!(unix_ok(s) && unix_ok(d)));
            return;
        }
        (Ends::Unix(s, d), Ok(b)) => {
            assert!(unix_ok(s) && unix_ok(d));
            b
        }
        (Ends::V4(..) | Ends::V6(..), Ok(b)) => b,
        (e, r) => panic!("Builder::new({e:?}) gave {r:?}"),
    };
    let mut tlvs: Vec<(u8, Vec<u8>)> = Vec::new();
    if input.crc {
        tlvs.push((tlv::CRC32C, vec![0; 4]));
    }
    let mut wanted = input.tlvs.clone();
    if let Some(pad) = input.pad {
        wanted.push((tlv::NOOP, vec![0; usize::from(pad) + usize::from(input.pad_extra) * 8]));
    }
    let mut body = 0usize;
    for (kind, value) in &wanted {
        let before = b.clone().finish().ok();
        match b.tlv(*kind, value) {
            Ok(_) => {
                assert!(tlv_acceptable(*kind, value), "accepted TLV {kind:#x} len {}", value.len());
                tlvs.push((*kind, value.clone()));
                body += 3 + value.len();
            }
            Err(e) => {
                assert!(!tlv_acceptable(*kind, value), "refused TLV {kind:#x}: {e:?}");
                assert_eq!(b.clone().finish().ok(), before, "a refused TLV changed the builder");
            }
        }
    }
    let family = match ends {
        Endpoints::None => Family::Unspec,
        Endpoints::Inet(SocketAddr::V4(_), _) => Family::Inet,
        Endpoints::Inet(..) => Family::Inet6,
        Endpoints::Unix(..) => Family::Unix,
    };
    let expected_len =
        v2::PREFIX_LEN + family.address_block_len() + if input.crc { 7 } else { 0 } + body;
    let out = match b.finish() {
        Ok(out) => out,
        Err(BuildError::HeaderTooLarge { len }) => {
            assert_eq!(len, expected_len);
            assert!(expected_len > v2::MAX_LEN);
            return;
        }
        Err(e) => panic!("finish: {e:?}"),
    };
    assert_eq!(out.len(), expected_len);
    let with_addresses =
        command == Command::Proxy && family != Family::Unspec && protocol != Protocol::Unspec;
    let header = match parse(&out, &strict) {
        Ok(Status::Complete { header, consumed }) => {
            assert_eq!(consumed, out.len());
            header
        }
        other => panic!("built v2 header does not parse: {other:?}"),
    };
    assert_eq!(header.version(), 2);
    assert_eq!(header.command(), command);
    assert_eq!(header.family(), family);
    assert_eq!(header.protocol(), protocol);
    if with_addresses {
        match ends {
            Endpoints::Inet(s, d) => {
                assert_eq!(addr(header.source()), Some(s));
                assert_eq!(addr(header.destination()), Some(d));
            }
            Endpoints::Unix(s, d) => {
                let raw = |a: Option<Address<'_>>| match a {
                    Some(Address::Unix(r)) => unix_path(r).to_vec(),
                    other => panic!("not a UNIX address: {other:?}"),
                };
                assert_eq!(raw(header.source()), unix_expected(s));
                assert_eq!(raw(header.destination()), unix_expected(d));
            }
            Endpoints::None => unreachable!(),
        }
    } else {
        assert_eq!(header.addresses(), Addresses::None);
    }
    let got: Vec<(u8, Vec<u8>)> = header.tlvs().map(|t| (t.kind, t.value.to_vec())).collect();
    let mut want = tlvs;
    if input.crc {
        // The CRC32C value is filled in by finish(); parse() verified it.
        want[0].1 = got.first().map(|t| t.1.clone()).unwrap_or_default();
    }
    assert_eq!(got, want, "TLVs differ from what was built");
});
