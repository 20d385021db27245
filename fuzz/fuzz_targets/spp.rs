//! Target `spp`: Cloudflare's Simple Proxy Protocol header, parsed from arbitrary bytes.
//!
//! Invariants: `spp::parse` never panics; it fails only with `SppMagic` at byte 0 or 1,
//! exactly when the bytes diverge from the magic; it is partial exactly for a magic prefix
//! shorter than 38 bytes, needing the rest; a complete header took 38 bytes and writing it
//! back gives those 38 bytes (IPv4-mapped addresses read as IPv4 and are written mapped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyproto_rs::{spp, ErrorKind, Status};

fuzz_target!(|data: &[u8]| {
    let diverges = data.iter().zip(spp::MAGIC).position(|(a, b)| *a != b);
    match spp::parse(data) {
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::SppMagic);
            assert_eq!(Some(e.offset), diverges);
        }
        Ok(Status::Partial { needed }) => {
            assert_eq!(diverges, None);
            assert!(data.len() < spp::LEN);
            assert_eq!(needed, spp::LEN - data.len());
        }
        Ok(Status::Complete { header, consumed }) => {
            assert_eq!(diverges, None);
            assert_eq!(consumed, spp::LEN);
            assert_eq!(&header.to_bytes()[..], &data[..spp::LEN]);
            assert_eq!(spp::write(header.client, header.proxy), header.to_bytes());
        }
    }
    assert_eq!(
        spp::detect(data),
        if data.len() < 2 && diverges.is_none() { None } else { Some(diverges.is_none()) }
    );
});
