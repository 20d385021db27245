//! Target `crc32c`: the fast CRC32C against the bit-at-a-time reference.
//!
//! Input: a 4-byte seed, a 2-byte split point, then the data. Invariant:
//! `crc32c::append(seed, data) == crc32c::reference(seed, data)` for any seed; appending
//! chains (`append(append(s, a), b) == append(s, a ++ b)`) at any split; and
//! `with_field_zeroed`/`verify` equal a CRC over a copy with the 4 bytes zeroed, returning
//! `None`/`false` (never panicking) when the field is not inside the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyproto_rs::crc32c::{append, reference, verify, with_field_zeroed};

fuzz_target!(|input: &[u8]| {
    let Some((head, data)) = input.split_first_chunk::<6>() else {
        return;
    };
    let seed = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let split = usize::from(u16::from_le_bytes([head[4], head[5]]));

    let fast = append(seed, data);
    assert_eq!(fast, reference(seed, data), "seed {seed:#x}, {} bytes", data.len());
    assert_eq!(append(0, data), reference(0, data));
    let at = split.min(data.len());
    let (a, b) = data.split_at(at);
    assert_eq!(append(append(seed, a), b), fast, "chain split at {at}");

    // The field may lie anywhere, including past the end.
    let field = split % (data.len() + 8);
    match with_field_zeroed(data, field) {
        Some(crc) => {
            assert!(field + 4 <= data.len());
            let mut copy = data.to_vec();
            copy[field..field + 4].fill(0);
            assert_eq!(crc, reference(0, &copy));
            let stored = u32::from_be_bytes([data[field], data[field + 1], data[field + 2], data[field + 3]]);
            assert_eq!(verify(data, field), stored == crc);
        }
        None => {
            assert!(field + 4 > data.len());
            assert!(!verify(data, field));
        }
    }
});
