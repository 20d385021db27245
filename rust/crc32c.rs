//! CRC32C (Castagnoli, RFC 4960 appendix B) and the v2 checksum rule (SPEC rule 34): the CRC
//! of the whole header computed with only the 4 value bytes of the CRC32C TLV zeroed.

/// CRC32C of `data`, continuing from `crc` (0 to start): chainable like `zlib.crc32`, so
/// `append(append(0, a), b) == append(0, a ++ b)`. Uses SSE4.2 or the Arm CRC extension when
/// the CPU has them.
#[must_use]
pub fn append(crc: u32, data: &[u8]) -> u32 {
    ::crc32c::crc32c_append(crc, data)
}

/// CRC32C of `header` as if the 4 bytes at `field` were zero, without copying it.
/// `None` if `field..field + 4` is not inside `header`.
#[must_use]
pub fn with_field_zeroed(header: &[u8], field: usize) -> Option<u32> {
    let before = header.get(..field)?;
    let after = header.get(field.checked_add(4)?..)?;
    let crc = append(0, before);
    let crc = append(crc, &[0; 4]);
    Some(append(crc, after))
}

/// Whether the CRC32C value stored big-endian at `field` matches the header (rule 34).
#[must_use]
pub fn verify(header: &[u8], field: usize) -> bool {
    let Some(stored) = header.get(field..field + 4).and_then(|s| s.first_chunk::<4>()) else {
        return false;
    };
    with_field_zeroed(header, field) == Some(u32::from_be_bytes(*stored))
}

/// Bit-at-a-time reference implementation, for tests and the fuzz target that checks the
/// fast one against it.
#[must_use]
pub fn reference(crc: u32, data: &[u8]) -> u32 {
    let mut crc = !crc;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // RFC 3720 B.4 check value, and the empty input.
        assert_eq!(append(0, b"123456789"), 0xE306_9283);
        assert_eq!(append(0, b""), 0);
        assert_eq!(append(0, &[0; 32]), 0x8A91_36AA);
        assert_eq!(append(0, &[0xFF; 32]), 0x62A8_AB43);
    }

    #[test]
    fn chains_and_matches_reference() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        for split in [0, 1, 7, 64, 1000, 2999, 3000] {
            let (a, b) = data.split_at(split);
            assert_eq!(append(append(0, a), b), append(0, &data));
        }
        for len in [0, 1, 3, 8, 15, 16, 17, 255, 3000] {
            assert_eq!(append(0, &data[..len]), reference(0, &data[..len]));
            assert_eq!(append(0x1234_5678, &data[..len]), reference(0x1234_5678, &data[..len]));
        }
    }

    #[test]
    fn field_zeroing_is_out_of_bounds_safe() {
        assert_eq!(with_field_zeroed(b"abc", 0), None);
        assert_eq!(with_field_zeroed(b"abcd", usize::MAX), None);
        assert!(!verify(b"abc", 1));
        assert_eq!(with_field_zeroed(b"abcd", 0), Some(append(0, &[0; 4])));
    }
}
