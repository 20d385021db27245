//! Timing of `proxyproto_rs::crc32c::append` against the `crc32c` crate (its SSE4.2 path), at
//! the sizes the Python benchmark uses. Best of several runs, since the machine is shared:
//!
//! ```text
//! cargo run --release --example crc32c_bench
//! ```
#![allow(clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Best time per call of `f` over `runs` runs of a loop that lasts about `target`.
fn best(runs: u32, target: Duration, mut f: impl FnMut() -> u32) -> Duration {
    let mut iters = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        if start.elapsed() >= target / 4 {
            break;
        }
        iters *= 2;
    }
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            start.elapsed() / iters
        })
        .min()
        .unwrap_or_default()
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
    println!("{:>8} {:>22} {:>22} {:>7}", "size", "ours", "crc32c crate", "speedup");
    for (size, label) in [(64, "64 B"), (1024, "1 KiB"), (64 << 10, "64 KiB"), (16 << 20, "16 MiB")]
    {
        let buf = &data[..size];
        assert_eq!(proxyproto_rs::crc32c::append(0, buf), crc32c::crc32c(buf));
        let runs = if size >= 1 << 20 { 5 } else { 15 };
        let target = Duration::from_millis(20);
        let ours = best(runs, target, || proxyproto_rs::crc32c::append(0, black_box(buf)));
        let theirs = best(runs, target, || crc32c::crc32c(black_box(buf)));
        let bytes = f64::from(u32::try_from(size).unwrap_or(u32::MAX));
        let gbps = |t: Duration| bytes / t.as_secs_f64() / 1e9;
        println!(
            "{label:>8} {:>10.1?} {:>6.1} GB/s {:>10.1?} {:>6.1} GB/s {:>6.2}x",
            ours,
            gbps(ours),
            theirs,
            gbps(theirs),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}
