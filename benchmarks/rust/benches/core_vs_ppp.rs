//! proxyproto_rs core vs the `ppp` crate, on the inputs of benchmarks/bench.py.
//!
//! Each parse case parses header + 100 B payload and reads the source address (and, for the
//! TLV case, walks every TLV and sums the value lengths), so both crates do the same work:
//! ppp's `Header::try_from` decodes the addresses eagerly, ours on `source()`. ppp does not
//! verify CRC32C, so the TLV case runs ours with `verify_checksum` off, and once more with it
//! on for information. ppp checks no TLV rule at parse time either (D4: ours refuses a header
//! whose TLVs do not frame or break a type's length rule), so `ppp+check` is the equal-work
//! row: ppp plus the loop a caller writes to get the same guarantee, run before the header is
//! used. Builders start from `SocketAddr`s and return the wire bytes.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use proxyproto_rs::{header::Address, v1, v2, Command, Endpoints, Options, Protocol, Status};

const PAYLOAD: &[u8; 100] = &[0xAA; 100];
const V1_TCP4: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";

fn src() -> SocketAddr {
    "192.0.2.1:56324".parse().unwrap()
}

fn dst() -> SocketAddr {
    "198.51.100.2:443".parse().unwrap()
}

fn v2_ipv4() -> Vec<u8> {
    let ends = Endpoints::Inet(src(), dst());
    v2::Builder::new(Command::Proxy, Protocol::Stream, &ends, false).unwrap().finish().unwrap()
}

/// v2 IPv4 with ALPN, AUTHORITY, CRC32C, UNIQUE_ID, SSL (VERSION, CN) and AWS: 137 B.
fn v2_tlvs() -> Vec<u8> {
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

fn with_payload(h: &[u8]) -> Vec<u8> {
    [h, PAYLOAD].concat()
}

fn ours_source(buf: &[u8], opts: &Options) -> Option<(IpAddr, u16)> {
    match proxyproto_rs::parse(buf, opts) {
        Ok(Status::Complete { header, .. }) => match header.source() {
            Some(Address::Inet(sa)) => Some((sa.ip(), sa.port())),
            _ => None,
        },
        _ => None,
    }
}

fn ppp_v1_source(buf: &[u8]) -> Option<(IpAddr, u16)> {
    match ppp::v1::Header::try_from(buf).ok()?.addresses {
        ppp::v1::Addresses::Tcp4(a) => Some((a.source_address.into(), a.source_port)),
        _ => None,
    }
}

fn ppp_v2_source(buf: &[u8]) -> Option<(IpAddr, u16)> {
    match ppp::v2::Header::try_from(buf).ok()?.addresses {
        ppp::v2::Addresses::IPv4(a) => Some((a.source_address.into(), a.source_port)),
        _ => None,
    }
}

fn ours_tlv_sum(buf: &[u8], opts: &Options) -> usize {
    match proxyproto_rs::parse(buf, opts) {
        Ok(Status::Complete { header, .. }) => header.tlvs().map(|t| t.value.len()).sum(),
        _ => 0,
    }
}

fn ppp_tlv_sum(buf: &[u8]) -> usize {
    ppp::v2::Header::try_from(buf)
        .map(|h| h.tlvs().map(|t| t.map_or(0, |t| t.value.len())).sum())
        .unwrap_or(0)
}

/// Whether `rest` is a run of whole TLVs (SSL sub-TLVs).
fn frames(mut rest: &[u8]) -> bool {
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
fn ppp_checked_tlv_sum(buf: &[u8]) -> usize {
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

fn parse(c: &mut Criterion) {
    let opts = Options::default();
    let no_crc = Options { verify_checksum: false, ..Options::default() };
    let v1 = with_payload(V1_TCP4);
    let v2 = with_payload(&v2_ipv4());
    let tlvs = with_payload(&v2_tlvs());
    // Both crates must agree before they are timed.
    let expect = Some((src().ip(), src().port()));
    assert_eq!(ours_source(&v1, &opts), expect);
    assert_eq!(ppp_v1_source(&v1), expect);
    assert_eq!(ours_source(&v2, &opts), expect);
    assert_eq!(ppp_v2_source(&v2), expect);
    assert_eq!(ours_tlv_sum(&tlvs, &opts), ppp_tlv_sum(&tlvs));
    assert_eq!(ours_tlv_sum(&tlvs, &opts), ppp_checked_tlv_sum(&tlvs));
    // The check refuses what ours refuses: an SSL value whose sub-TLVs do not frame.
    let mut bad = tlvs.clone();
    let ssl_len = 75; // the SSL TLV's low length byte: 5 + 10 + 20 bytes
    assert_eq!(bad[ssl_len], 35);
    bad[ssl_len + 1 + 5 + 2] += 1; // VERSION sub-TLV one byte longer than it is
    assert_eq!(ours_tlv_sum(&bad, &no_crc), 0);
    assert_eq!(ppp_checked_tlv_sum(&bad), 0);
    assert!(ppp_tlv_sum(&bad) > 0);
    assert!(ours_tlv_sum(&tlvs, &opts) > 0);

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("v1_tcp4", "ours"), |b| {
        b.iter(|| ours_source(black_box(&v1), &opts));
    });
    g.bench_function(BenchmarkId::new("v1_tcp4", "ppp"), |b| {
        b.iter(|| ppp_v1_source(black_box(&v1)));
    });
    g.bench_function(BenchmarkId::new("v2_ipv4", "ours"), |b| {
        b.iter(|| ours_source(black_box(&v2), &opts));
    });
    g.bench_function(BenchmarkId::new("v2_ipv4", "ppp"), |b| {
        b.iter(|| ppp_v2_source(black_box(&v2)));
    });
    g.bench_function(BenchmarkId::new("v2_tlvs", "ours"), |b| {
        b.iter(|| ours_tlv_sum(black_box(&tlvs), &no_crc));
    });
    g.bench_function(BenchmarkId::new("v2_tlvs", "ppp"), |b| {
        b.iter(|| ppp_tlv_sum(black_box(&tlvs)));
    });
    g.bench_function(BenchmarkId::new("v2_tlvs", "ppp+check"), |b| {
        b.iter(|| ppp_checked_tlv_sum(black_box(&tlvs)));
    });
    g.bench_function(BenchmarkId::new("v2_tlvs", "ours+crc"), |b| {
        b.iter(|| ours_tlv_sum(black_box(&tlvs), &opts));
    });
    g.finish();
}

fn build(c: &mut Criterion) {
    let (s, d) = (src(), dst());
    let ends = Endpoints::Inet(s, d);
    let mut out = Vec::with_capacity(v1::MAX_LEN);
    v1::write(&mut out, &ends).unwrap();
    assert_eq!(out, V1_TCP4);
    let ppp_v1 = ppp::v1::Addresses::new_tcp4(
        match s.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => unreachable!(),
        },
        match d.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => unreachable!(),
        },
        s.port(),
        d.port(),
    );
    assert_eq!(ppp_v1.to_string().as_bytes(), V1_TCP4);
    let ppp_v2 = || {
        ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (s, d),
        )
        .build()
        .unwrap()
    };
    assert_eq!(ppp_v2(), v2_ipv4());

    let mut g = c.benchmark_group("build");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("v1_tcp4", "ours"), |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(v1::MAX_LEN);
            v1::write(&mut out, black_box(&ends)).unwrap();
            out
        });
    });
    g.bench_function(BenchmarkId::new("v1_tcp4", "ppp"), |b| {
        b.iter(|| black_box(&ppp_v1).to_string());
    });
    g.bench_function(BenchmarkId::new("v2_ipv4", "ours"), |b| {
        b.iter(|| {
            v2::Builder::new(Command::Proxy, Protocol::Stream, black_box(&ends), false)
                .unwrap()
                .finish()
                .unwrap()
        });
    });
    g.bench_function(BenchmarkId::new("v2_ipv4", "ppp"), |b| {
        b.iter(ppp_v2);
    });
    g.finish();
}

criterion_group!(benches, parse, build);
criterion_main!(benches);
