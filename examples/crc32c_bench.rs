//! Timing of `proxyproto_rs::crc32c` against the `crc32c` crate (its SSE4.2 path) and the
//! `crc-fast` crate (CRC-32/ISCSI), at the sizes the package uses (64 B: a header), plus the
//! rule-34 check of a 137-byte header (the CRC with the field zeroed, what every parse of a
//! header with a CRC32C TLV does). Best of several interleaved runs in one process, since the
//! machine is shared:
//!
//! ```text
//! cargo run --release --example crc32c_bench [RUNS]
//! ```
//!
//! `crc-fast` for the check: chained through its `Digest` (three pieces, as ours), and as one
//! call over a stack copy with the field zeroed, its fastest form for a short header.
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

/// The rule-34 check with `crc-fast`, chaining three pieces through its `Digest`.
fn crc_fast_verify_chained(header: &[u8], field: usize) -> bool {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    d.update(&header[..field]);
    d.update(&[0; 4]);
    d.update(&header[field + 4..]);
    let stored = header[field..field + 4].try_into().map(u32::from_be_bytes).ok();
    Some(d.finalize() as u32) == stored
}

/// The rule-34 check with `crc-fast`, one call over a stack copy with the field zeroed.
fn crc_fast_verify_copy(header: &[u8], field: usize) -> bool {
    let mut copy = [0u8; 512];
    let whole = &mut copy[..header.len()];
    whole.copy_from_slice(header);
    let stored = whole[field..field + 4].try_into().map(u32::from_be_bytes).ok();
    whole[field..field + 4].fill(0);
    Some(crc_fast::crc32_iscsi(whole)) == stored
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
    println!("{:>8} {:>21} {:>21} {:>21}", "size", "ours", "crc32c crate", "crc-fast");
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
    assert!(crc_fast_verify_chained(&header, 52) && crc_fast_verify_copy(&header, 52));
    let times = best_of(
        runs,
        &mut [
            &mut || u32::from(proxyproto_rs::crc32c::verify(black_box(&header), 52)),
            &mut || u32::from(crc_fast_verify_chained(black_box(&header), 52)),
            &mut || u32::from(crc_fast_verify_copy(black_box(&header), 52)),
        ],
    );
    println!(
        "{:>8} {} {:>21} {} (crc-fast: chained, then one call over a copy)",
        "verify",
        cell(137, times[0]),
        "",
        cell(137, times[1])
    );
    println!("{:>8} {:>21} {:>21} {}", "", "", "", cell(137, times[2]));
    for (size, label) in [(64, "64 B"), (1024, "1 KiB"), (64 << 10, "64 KiB"), (16 << 20, "16 MiB")]
    {
        let buf = &data[..size];
        let want = proxyproto_rs::crc32c::append(0, buf);
        assert_eq!(want, crc32c::crc32c(buf));
        assert_eq!(want, crc_fast::crc32_iscsi(buf));
        let times = best_of(
            runs,
            &mut [
                &mut || proxyproto_rs::crc32c::append(0, black_box(buf)),
                &mut || crc32c::crc32c(black_box(buf)),
                &mut || crc_fast::crc32_iscsi(black_box(buf)),
            ],
        );
        let cell = |t: f64| cell(size, t);
        println!("{label:>8} {} {} {}", cell(times[0]), cell(times[1]), cell(times[2]));
    }
}
