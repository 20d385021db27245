//! Rough per-call timings of the core parsers, for quick comparisons while optimising.
//! `cargo run --release --example parse_speed`. Criterion benches live in benches/.
use std::hint::black_box;
use std::time::Instant;

use proxyproto_rs::{parse_layout, Options};

fn time(name: &str, input: &[u8]) {
    if std::env::args().nth(1).is_some_and(|f| !name.contains(&f)) {
        return;
    }
    let opts = Options::default();
    let iters: u32 = std::env::var("ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000_000);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters {
            let _ = black_box(parse_layout(black_box(input), &opts));
        }
        best = best.min(t.elapsed().as_secs_f64() / f64::from(iters));
    }
    #[allow(clippy::print_stdout)]
    {
        println!("{name:<24} {:7.1} ns", best * 1e9);
    }
}

fn main() {
    time("v1 TCP4", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    time("v1 TCP6", b"PROXY TCP6 2001:db8::1 2001:db8::11 56324 443\r\n");
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c".to_vec();
    v2.extend_from_slice(&[192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb]);
    time("v2 IPv4", &v2);
    if std::env::args().nth(1).is_some_and(|f| f == "ipv4") {
        let t = Instant::now();
        for _ in 0..10_000_000 {
            black_box(proxyproto_rs::v1::ipv4_text(black_box(b"192.168.0.11")));
        }
        #[allow(clippy::print_stdout)]
        {
            println!("ipv4_text {:.1} ns", t.elapsed().as_secs_f64() / 1e7 * 1e9);
        }
    }
}
