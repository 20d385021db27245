//! Tests of the CRC32C kernels: each kernel this machine can run against a bitwise
//! reference (known check values, the fold constants recomputed, every length and alignment
//! around the block sizes, chained updates split anywhere), and the zeroed-checksum-field form
//! that PROXY v2 verification uses.

use super::*;

/// Deterministic bytes (xorshift64*), so failures reproduce.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Every kernel this machine can run, as a chainable `append`, named for failures.
/// A named way to compute `append`.
type Kernel = (String, Box<dyn Fn(u32, &[u8]) -> u32>);

fn paths() -> Vec<Kernel> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut v: Vec<Kernel> = vec![
        ("dispatch".into(), Box::new(append)),
        ("portable".into(), Box::new(|crc, d| !portable(!crc, d))),
    ];
    #[cfg(target_arch = "x86_64")]
    for path in x86::Path::ALL {
        if path.needs() <= x86::level() {
            v.push((format!("{path:?}"), Box::new(move |crc, d| !x86::run(path, !crc, d))));
        }
    }
    v
}

#[test]
fn this_machine_tests_its_fast_paths() {
    // On the development and CI machines (x86-64 with VPCLMULQDQ) every path must run;
    // elsewhere, whichever the CPU has.
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("vpclmulqdq") && is_x86_feature_detected!("avx2") {
        assert_eq!(paths().len(), 2 + x86::Path::ALL.len());
    }
}

#[test]
fn known_values() {
    // RFC 3720 B.4, plus the empty input and the common check value.
    let incrementing: Vec<u8> = (0..32).collect();
    let decrementing: Vec<u8> = (0..32).rev().collect();
    let iscsi_read: [u8; 48] = [
        0x01, 0xC0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x04, 0, 0, 0,
        0, 0x14, 0, 0, 0, 0x18, 0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0,
    ];
    for (name, f) in paths() {
        assert_eq!(f(0, b"123456789"), 0xE306_9283, "{name}");
        assert_eq!(f(0, b""), 0, "{name}");
        assert_eq!(f(0, &[0; 32]), 0x8A91_36AA, "{name}");
        assert_eq!(f(0, &[0xFF; 32]), 0x62A8_AB43, "{name}");
        assert_eq!(f(0, &incrementing), 0x46DD_794E, "{name}");
        assert_eq!(f(0, &decrementing), 0x113F_DB5C, "{name}");
        assert_eq!(f(0, &iscsi_read), 0xD996_3A56, "{name}");
    }
}

#[test]
fn fold_constants() {
    // x^0, x^31 and x^32 = P - x^32 in the reflected form.
    assert_eq!(xpow(0), 1 << 31);
    assert_eq!(xpow(31), 1);
    assert_eq!(xpow(32), POLY);
    // x^n from the definition: the CRC register of a 1 bit followed by zeros is
    // x^(bits after it + 32) mod P, so check xpow against the reference bit loop.
    for n in [0u32, 1, 7, 8, 33, 95, 159, 479, 543, 991, 1055] {
        let zeros = (n / 8) as usize;
        let shift = n % 8;
        // A message of one byte whose only set bit is `shift` bits before its end
        // (reflected: bit 7 - shift), then `zeros` zero bytes: the register is
        // x^(shift + 8 * zeros + 32) mod P.
        let mut msg = vec![0u8; zeros + 1];
        msg[0] = 1 << (7 - shift);
        let register = !reference(!0, &msg);
        assert_eq!(register, xpow(n + 32), "x^{n}");
    }
    // Multiplying powers adds exponents: check through a bitwise carry-less mulmod.
    let mulmod = |a: u32, b: u32| {
        let mut r = 0;
        let mut a = a;
        for i in 0..32 {
            if b & (1 << (31 - i)) != 0 {
                r ^= a;
            }
            a = if a & 1 == 1 { (a >> 1) ^ POLY } else { a >> 1 };
        }
        r
    };
    for (a, b) in [(3, 5), (100, 991), (1055, 1), (543, 479)] {
        assert_eq!(mulmod(xpow(a), xpow(b)), xpow(a + b), "x^{a} * x^{b}");
    }
    assert_eq!(fold_keys(128), [i64::from(xpow(159)), i64::from(xpow(95))]);
    assert_eq!(fold_keys(1024), [i64::from(xpow(1055)), i64::from(xpow(991))]);
    // The keys that append 2^i zero bytes, against the definition while it is cheap.
    for (i, &key) in SHIFT_KEYS.iter().enumerate().take(12).skip(3) {
        assert_eq!(key, xpow((8 << i) - 33), "2^{i}");
    }
    // Appending zero bytes to a register through a key is the CRC of those zeros.
    let register = !reference(!0, b"some message");
    for len in [8usize, 64, 1024] {
        let zeros = vec![0; len];
        let want = !reference(!register, &zeros);
        let mut key = xpow(0);
        let mut first = true;
        for (i, &bit_key) in SHIFT_KEYS.iter().enumerate().skip(3) {
            if len & (1 << i) != 0 {
                key = if first { bit_key } else { mul_x33(key, bit_key) };
                first = false;
            }
        }
        assert_eq!(mul_x33(register, key), want, "{len} zero bytes");
    }
}

/// The x86 run-time multiply and shift keys agree with the bitwise ones.
#[cfg(target_arch = "x86_64")]
#[test]
fn x86_multiply_agrees() {
    if x86::level() < x86::Level::Pclmul {
        return;
    }
    let data = bytes(64, 5);
    for pair in data.chunks_exact(8) {
        let a = u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]);
        let b = u32::from_le_bytes([pair[4], pair[5], pair[6], pair[7]]);
        assert_eq!(x86::test_mul_x33(a, b), mul_x33(a, b), "{a:#x} * {b:#x}");
    }
    for len in (8..=4096).step_by(8) {
        assert_eq!(x86::test_shift_key(len), xpow(8 * len as u32 - 33), "shift key {len}");
    }
    // Longer ones: one 8-byte key more is one multiply more.
    for len in [64 * 204, (1 << 20) + 8, (1 << 47) + 64, usize::MAX - 7] {
        let shorter = x86::test_shift_key(len - 8);
        assert_eq!(x86::test_shift_key(len), mul_x33(shorter, SHIFT_KEYS[3]), "{len}");
    }
}

#[test]
fn every_length_matches_reference() {
    let data = bytes(1024, 1);
    for (name, f) in paths() {
        for len in 0..=1024 {
            let init = (len as u32).wrapping_mul(0x9E37_79B9);
            let want = reference(init, &data[..len]);
            assert_eq!(f(init, &data[..len]), want, "{name} len {len}");
        }
    }
}

#[test]
fn large_lengths_match_reference() {
    for (i, len) in [4096, 65_535, 65_536, 65_537, 100_003, 1 << 20].into_iter().enumerate() {
        let data = bytes(len, 7 + i as u64);
        let init = 0xDEAD_BEEF ^ len as u32;
        let want = reference(init, &data);
        for (name, f) in paths() {
            assert_eq!(f(init, &data), want, "{name} len {len}");
        }
    }
}

#[test]
fn every_alignment() {
    let data = bytes(64 + 700, 3);
    for (name, f) in paths() {
        for offset in 0..64 {
            for len in [0, 5, 16, 31, 64, 127, 128, 129, 300, 700] {
                let slice = &data[offset..offset + len];
                assert_eq!(f(0, slice), reference(0, slice), "{name} at {offset} len {len}");
            }
        }
    }
}

#[test]
fn chains_at_every_split() {
    for (size, seed) in [(40, 11), (200, 12), (700, 13)] {
        let data = bytes(size, seed);
        let whole = reference(0x0BAD_F00D, &data);
        for (name, f) in paths() {
            for split in 0..=size {
                let (a, b) = data.split_at(split);
                assert_eq!(f(f(0x0BAD_F00D, a), b), whole, "{name} {size} at {split}");
            }
        }
    }
}

#[test]
fn field_zeroing_is_out_of_bounds_safe() {
    assert_eq!(with_field_zeroed(b"abc", 0), None);
    assert_eq!(with_field_zeroed(b"abcd", usize::MAX), None);
    assert!(!verify(b"abc", 1));
    assert_eq!(with_field_zeroed(b"abcd", 0), Some(append(0, &[0; 4])));
}

/// Every field position in inputs on both sides of the one-call path's bound (each piece
/// under `FOLD_MIN`), against the reference over a zeroed copy.
#[test]
fn field_zeroing_equals_a_zeroed_copy_at_every_position() {
    for len in [4, 5, 11, 12, 60, 137, 190, 191, 192, 193, 250] {
        let data = bytes(len, len as u64);
        for field in 0..=len - 4 {
            let mut copy = data.clone();
            copy[field..field + 4].fill(0);
            let want = reference(0, &copy);
            assert_eq!(with_field_zeroed(&data, field), Some(want), "{len} at {field}");
        }
    }
}
