//! Timing of `proxyproto_rs::crc32c::append` against the `crc32c` crate (its SSE4.2 path), at
//! the sizes the Python benchmark uses. Best of several runs, since the machine is shared:
//!
//! ```text
//! cargo run --release --example crc32c_bench
//! ```
#![allow(clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Iterations of `f` that take about `target`.
fn calibrate(target: Duration, f: &mut impl FnMut() -> u32) -> u32 {
    let mut iters = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        if start.elapsed() >= target {
            return iters;
        }
        iters *= 2;
    }
}

/// Seconds per call of `f` over one loop of `iters` calls.
fn once(iters: u32, f: &mut impl FnMut() -> u32) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed().as_secs_f64() / f64::from(iters)
}

/// Best seconds per call of `a` and of `b` over `runs` short loops of each, alternated so
/// that both see the same load on a shared machine.
fn best_pair(runs: u32, mut a: impl FnMut() -> u32, mut b: impl FnMut() -> u32) -> (f64, f64) {
    let target = Duration::from_millis(2);
    let (ia, ib) = (calibrate(target, &mut a), calibrate(target, &mut b));
    let (mut ta, mut tb) = (f64::MAX, f64::MAX);
    for _ in 0..runs {
        ta = ta.min(once(ia, &mut a));
        tb = tb.min(once(ib, &mut b));
    }
    (ta, tb)
}

fn main() {
    let mut x = 0x1234_5678_9ABC_DEF1u64;
    let data: Vec<u8> = (0..16 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    println!("{:>8} {:>24} {:>24} {:>7}", "size", "ours", "crc32c crate", "speedup");
    for (size, label) in [(64, "64 B"), (1024, "1 KiB"), (64 << 10, "64 KiB"), (16 << 20, "16 MiB")]
    {
        let buf = &data[..size];
        assert_eq!(proxyproto_rs::crc32c::append(0, buf), crc32c::crc32c(buf));
        let (ours, theirs) = best_pair(
            100,
            || proxyproto_rs::crc32c::append(0, black_box(buf)),
            || crc32c::crc32c(black_box(buf)),
        );
        let bytes = f64::from(u32::try_from(size).unwrap_or(u32::MAX));
        let gbps = |t: f64| bytes / t / 1e9;
        println!(
            "{label:>8} {:>10.1} ns {:>5.1} GB/s {:>10.1} ns {:>5.1} GB/s {:>6.2}x",
            ours * 1e9,
            gbps(ours),
            theirs * 1e9,
            gbps(theirs),
            theirs / ours
        );
    }
}
