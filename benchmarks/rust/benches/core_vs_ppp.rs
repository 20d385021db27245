//! proxyproto_rs core vs the `ppp` crate, on the inputs of benchmarks/bench.py.
//!
//! Each parse case parses header + 100 B payload and reads the source address (and, for the
//! TLV case, reads every TLV and sums the value lengths), so both crates do the same work:
//! ppp's `Header::try_from` decodes the addresses eagerly, ours on `source()`. Ours reads the
//! TLVs through `parse_fold`, which hands them over in the pass of the parse-time check;
//! `ours.tlvs()` walks them again after it through `Header::tlvs`. ppp does not
//! verify CRC32C, so the TLV case runs ours with `verify_checksum` off, and once more with it
//! on for information. ppp checks no TLV rule at parse time either (D4: ours refuses a header
//! whose TLVs do not frame or break a type's length rule), so `ppp+check` is the equal-work
//! row: ppp plus the loop a caller writes to get the same guarantee, run before the header is
//! used. Builders start from `SocketAddr`s and return the wire bytes.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use proxyproto_rs::{v1, v2, Command, Endpoints, Options, Protocol};

mod cases;
use cases::*;

fn parse(c: &mut Criterion) {
    let opts = Options::default();
    let no_crc = Options { verify_checksum: false, ..Options::default() };
    let v1 = with_payload(V1_TCP4);
    let v2 = with_payload(&v2_ipv4());
    let tlvs = with_payload(&v2_tlvs());
    assert_cases_agree(&v1, &v2, &tlvs);

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
    g.bench_function(BenchmarkId::new("v2_tlvs", "ours.tlvs()"), |b| {
        b.iter(|| ours_lazy_tlv_sum(black_box(&tlvs), &no_crc));
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
