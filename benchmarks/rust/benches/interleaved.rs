//! The parse cases of `core_vs_ppp` timed the way the shared 2-core machine allows: every
//! implementation of a case in one process, short runs interleaved round-robin, best of N, so a
//! burst of load from other processes hits them alike (criterion runs them one after the
//! other, and its medians moved 2-5x with the load here). With `--loop N` it runs each named
//! row N times and nothing else, for `valgrind --tool=callgrind` (instructions, whatever the
//! load):
//!
//! ```text
//! cargo bench --bench interleaved                       # best of 21
//! cargo bench --bench interleaved -- 51                 # best of 51
//! valgrind --tool=callgrind target/release/deps/interleaved-* --loop 100000 v2_tlvs/ours
//! ```
#![allow(clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use proxyproto_rs::Options;

mod cases;
use cases::*;

type Row<'a> = (&'a str, Box<dyn Fn() -> usize + 'a>);

fn calibrate(f: &dyn Fn() -> usize) -> u32 {
    let mut iters = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        if start.elapsed() >= Duration::from_millis(2) {
            return iters;
        }
        iters *= 2;
    }
}

fn main() {
    let opts = Options::default();
    let no_crc = Options { verify_checksum: false, ..Options::default() };
    let v1 = with_payload(V1_TCP4);
    let v2 = with_payload(&v2_ipv4());
    let tlvs = with_payload(&v2_tlvs());
    assert_cases_agree(&v1, &v2, &tlvs);
    let some = |r: Option<(std::net::IpAddr, u16)>| usize::from(r.is_some());
    let groups: Vec<(&str, Vec<Row<'_>>)> = vec![
        (
            "v1_tcp4",
            vec![
                ("ours", Box::new(|| some(ours_source(black_box(&v1), &opts)))),
                ("ppp", Box::new(|| some(ppp_v1_source(black_box(&v1))))),
            ],
        ),
        (
            "v2_ipv4",
            vec![
                ("ours", Box::new(|| some(ours_source(black_box(&v2), &opts)))),
                ("ppp", Box::new(|| some(ppp_v2_source(black_box(&v2))))),
            ],
        ),
        (
            "v2_tlvs",
            vec![
                ("ours", Box::new(|| ours_tlv_sum(black_box(&tlvs), &no_crc))),
                ("ppp", Box::new(|| ppp_tlv_sum(black_box(&tlvs)))),
                ("ppp+check", Box::new(|| ppp_checked_tlv_sum(black_box(&tlvs)))),
                ("ours+crc", Box::new(|| ours_tlv_sum(black_box(&tlvs), &opts))),
                ("ours.tlvs()", Box::new(|| ours_lazy_tlv_sum(black_box(&tlvs), &no_crc))),
            ],
        ),
    ];
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let [flag, n, name] = &args[..] {
        if flag == "--loop" {
            let n: u32 = n.parse().unwrap_or(100_000);
            for (group, rows) in &groups {
                for (row, f) in rows {
                    if format!("{group}/{row}") == *name {
                        for _ in 0..n {
                            black_box(f());
                        }
                    }
                }
            }
            return;
        }
    }
    let runs: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(21);
    println!("best of {runs} interleaved runs of ~2 ms each, ns per operation");
    for (group, rows) in &groups {
        let iters: Vec<u32> = rows.iter().map(|(_, f)| calibrate(f.as_ref())).collect();
        let mut best = vec![f64::MAX; rows.len()];
        for _ in 0..runs {
            for (((_, f), &n), b) in rows.iter().zip(&iters).zip(&mut best) {
                let start = Instant::now();
                for _ in 0..n {
                    black_box(f());
                }
                *b = b.min(start.elapsed().as_secs_f64() / f64::from(n) * 1e9);
            }
        }
        let ppp = best[1];
        let cells: Vec<String> = rows
            .iter()
            .zip(&best)
            .map(|((name, _), t)| format!("{name} {t:.1} ({:.2}x ppp)", t / ppp))
            .collect();
        println!("{group:<8} {}", cells.join("  "));
    }
}
