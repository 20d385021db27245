//! The inputs and the timed operations shared by `core_vs_ppp` (criterion) and `interleaved`
//! (best of interleaved runs, and a fixed loop for callgrind): each parse case parses header +
//! 100 B payload and reads the source address or walks every TLV, the same work in each crate.
#![allow(dead_code, missing_docs)]

use std::net::{IpAddr, SocketAddr};

use proxyproto_rs::{header::Address, v2, Command, Endpoints, Options, Protocol, Status};

pub const PAYLOAD: &[u8; 100] = &[0xAA; 100];
pub const V1_TCP4: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";

pub fn src() -> SocketAddr {
    "192.0.2.1:56324".parse().unwrap()
}

pub fn dst() -> SocketAddr {
    "198.51.100.2:443".parse().unwrap()
}

pub fn v2_ipv4() -> Vec<u8> {
    let ends = Endpoints::Inet(src(), dst());
    v2::Builder::new(Command::Proxy, Protocol::Stream, &ends, false).unwrap().finish().unwrap()
}

/// v2 IPv4 with ALPN, AUTHORITY, CRC32C, UNIQUE_ID, SSL (VERSION, CN) and AWS: 137 B.
pub fn v2_tlvs() -> Vec<u8> {
    let ends = Endpoints::Inet(src(), dst());
    let ssl =
        [&[0x07, 0, 0, 0, 0][..], &[0x21, 0, 7], b"TLSv1.3", &[0x22, 0, 17], b"client.example.io"]
            .concat();
    let mut b = v2::Builder::new(Command::Proxy, Protocol::Stream, &ends, true).unwrap();
    b.tlv(0x01, b"h2").unwrap();
    b.tlv(0x02, b"example.com").unwrap();
    b.tlv(0x05, &(0x40..0x50).collect::<Vec<u8>>()).unwrap();
    b.tlv(0x20, &ssl).unwrap();
    b.tlv(0xEA, b"\x01vpce-0123456789abcdef0").unwrap();
    let h = b.finish().unwrap();
    assert_eq!(h.len(), 137);
    h
}

pub fn with_payload(h: &[u8]) -> Vec<u8> {
    [h, PAYLOAD].concat()
}

pub fn ours_source(buf: &[u8], opts: &Options) -> Option<(IpAddr, u16)> {
    match proxyproto_rs::parse(buf, opts) {
        Ok(Status::Complete { header, .. }) => match header.source() {
            Some(Address::Inet(sa)) => Some((sa.ip(), sa.port())),
            _ => None,
        },
        _ => None,
    }
}

pub fn ppp_v1_source(buf: &[u8]) -> Option<(IpAddr, u16)> {
    match ppp::v1::Header::try_from(buf).ok()?.addresses {
        ppp::v1::Addresses::Tcp4(a) => Some((a.source_address.into(), a.source_port)),
        _ => None,
    }
}

pub fn ppp_v2_source(buf: &[u8]) -> Option<(IpAddr, u16)> {
    match ppp::v2::Header::try_from(buf).ok()?.addresses {
        ppp::v2::Addresses::IPv4(a) => Some((a.source_address.into(), a.source_port)),
        _ => None,
    }
}

/// Every TLV folded in the pass of the parse-time check (`parse_fold`), what a caller
/// reading every TLV uses.
pub fn ours_tlv_sum(buf: &[u8], opts: &Options) -> usize {
    match proxyproto_rs::parse_fold(buf, opts, 0, |sum, t| *sum += t.value.len()) {
        Ok(Status::Complete { header: (_, sum), .. }) => sum,
        _ => 0,
    }
}

/// Every TLV through `Header::tlvs`, which walks them again after the check.
pub fn ours_lazy_tlv_sum(buf: &[u8], opts: &Options) -> usize {
    match proxyproto_rs::parse(buf, opts) {
        Ok(Status::Complete { header, .. }) => header.tlvs().map(|t| t.value.len()).sum(),
        _ => 0,
    }
}

pub fn ppp_tlv_sum(buf: &[u8]) -> usize {
    ppp::v2::Header::try_from(buf)
        .map(|h| h.tlvs().map(|t| t.map_or(0, |t| t.value.len())).sum())
        .unwrap_or(0)
}

/// Whether `rest` is a run of whole TLVs (SSL sub-TLVs).
pub fn frames(mut rest: &[u8]) -> bool {
    while let [_, hi, lo, after @ ..] = rest {
        let Some(next) = after.get(usize::from(u16::from_be_bytes([*hi, *lo]))..) else {
            return false;
        };
        rest = next;
    }
    rest.is_empty()
}

/// ppp, then the caller's check of what D4 guarantees (every TLV frames and the last ends at
/// the end: ppp's iterator reports those as errors; CRC32C is 4 bytes, UNIQUE_ID at most 128,
/// SSL at least 5 with whole sub-TLVs), then the same walk as the other rows. 0 if refused.
pub fn ppp_checked_tlv_sum(buf: &[u8]) -> usize {
    let Ok(h) = ppp::v2::Header::try_from(buf) else {
        return 0;
    };
    for t in h.tlvs() {
        let Ok(t) = t else {
            return 0;
        };
        let v = &t.value[..];
        let ok = match t.kind {
            0x03 => v.len() == 4,
            0x05 => v.len() <= 128,
            0x20 => v.len() >= 5 && frames(&v[5..]),
            _ => true,
        };
        if !ok {
            return 0;
        }
    }
    h.tlvs().map(|t| t.map_or(0, |t| t.value.len())).sum()
}

/// Both crates agree on every case before either is timed, and the caller's check refuses
/// what ours refuses (an SSL value whose sub-TLVs do not frame) while bare ppp reads it.
pub fn assert_cases_agree(v1: &[u8], v2: &[u8], tlvs: &[u8]) {
    let opts = Options::default();
    let no_crc = Options { verify_checksum: false, ..Options::default() };
    let expect = Some((src().ip(), src().port()));
    assert_eq!(ours_source(v1, &opts), expect);
    assert_eq!(ppp_v1_source(v1), expect);
    assert_eq!(ours_source(v2, &opts), expect);
    assert_eq!(ppp_v2_source(v2), expect);
    assert!(ours_tlv_sum(tlvs, &opts) > 0);
    assert_eq!(ours_tlv_sum(tlvs, &opts), ppp_tlv_sum(tlvs));
    assert_eq!(ours_tlv_sum(tlvs, &opts), ppp_checked_tlv_sum(tlvs));
    assert_eq!(ours_lazy_tlv_sum(tlvs, &opts), ppp_tlv_sum(tlvs));
    let mut bad = tlvs.to_vec();
    let ssl_len = 75; // the SSL TLV's low length byte: 5 + 10 + 20 bytes
    assert_eq!(bad[ssl_len], 35);
    bad[ssl_len + 1 + 5 + 2] += 1; // VERSION sub-TLV one byte longer than it is
    assert_eq!(ours_tlv_sum(&bad, &no_crc), 0);
    assert_eq!(ours_lazy_tlv_sum(&bad, &no_crc), 0);
    assert_eq!(ppp_checked_tlv_sum(&bad), 0);
    assert!(ppp_tlv_sum(&bad) > 0);
}
