//! Timing of `proxyproto_rs::crc32c` (the `crc-fast` crate's kernels) against the `crc32c`
//! crate (its SSE4.2 path), at the sizes the package uses (64 B: a header), from a zero start
//! and chained from a previous CRC, plus the rule-34 check of a 137-byte header. Best of
//! several interleaved runs in one process, since the machine is shared:
//!
//! ```text
//! cargo run --release --example crc32c_bench [RUNS]
//! ```
#![allow(clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Iterations of `f` that take about `target`.
fn calibrate(target: Duration, f: &mut dyn FnMut() -> u32) -> u32 {
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
fn once(iters: u32, f: &mut dyn FnMut() -> u32) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed().as_secs_f64() / f64::from(iters)
}

/// Best seconds per call of each function over `runs` short loops of each, alternated so that
/// all see the same load on a shared machine.
fn best_of(runs: u32, fs: &mut [&mut dyn FnMut() -> u32]) -> Vec<f64> {
    let target = Duration::from_millis(2);
    let iters: Vec<u32> = fs.iter_mut().map(|f| calibrate(target, f)).collect();
    let mut best = vec![f64::MAX; fs.len()];
    for _ in 0..runs {
        for ((f, &n), t) in fs.iter_mut().zip(&iters).zip(&mut best) {
            *t = t.min(once(n, f));
        }
    }
    best
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
    let runs = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(15);
    println!("best of {runs} interleaved runs; ns per call and GB/s");
    println!("{:>8} {:>21} {:>21} {:>21}", "size", "ours", "ours, chained", "crc32c crate");
    let cell = |bytes: usize, t: f64| {
        let bytes = f64::from(u32::try_from(bytes).unwrap_or(u32::MAX));
        format!("{:>9.1} ns {:>5.1} GB/s", t * 1e9, bytes / t / 1e9)
    };
    // A 137-byte header whose CRC32C TLV value sits at 52..56, as parse(verify_checksum) sees
    // it: the checksum over three pieces (before, 4 zero bytes, after).
    let mut header = data[..137].to_vec();
    header[52..56].fill(0);
    let crc = proxyproto_rs::crc32c::append(0, &header);
    header[52..56].copy_from_slice(&crc.to_be_bytes());
    assert!(proxyproto_rs::crc32c::verify(&header, 52));
    let times = best_of(
        runs,
        &mut [&mut || u32::from(proxyproto_rs::crc32c::verify(black_box(&header), 52))],
    );
    println!("{:>8} {}", "verify", cell(137, times[0]));
    for (size, label) in [(64, "64 B"), (1024, "1 KiB"), (64 << 10, "64 KiB"), (16 << 20, "16 MiB")]
    {
        let buf = &data[..size];
        let want = proxyproto_rs::crc32c::append(0, buf);
        assert_eq!(want, crc32c::crc32c(buf));
        let times = best_of(
            runs,
            &mut [
                &mut || proxyproto_rs::crc32c::append(0, black_box(buf)),
                &mut || proxyproto_rs::crc32c::append(1, black_box(buf)),
                &mut || crc32c::crc32c(black_box(buf)),
            ],
        );
        let cell = |t: f64| cell(size, t);
        println!("{label:>8} {} {} {}", cell(times[0]), cell(times[1]), cell(times[2]));
    }
}
