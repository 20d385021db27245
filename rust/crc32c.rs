//! CRC32C (Castagnoli, RFC 4960 appendix B) and the v2 checksum rule (SPEC rule 34): the CRC
//! of the whole header computed with only the 4 value bytes of the CRC32C TLV zeroed.
//!
//! # Design
//!
//! All kernels work on the raw CRC register `s` (the public value is `!s`), so they chain.
//!
//! * x86-64, picked once at run time (the detected level is cached in an atomic):
//!   - below `x86::FOLD_MIN` bytes, or with SSE4.2 alone: a plain `crc32q` loop (the
//!     folding's set-up and reduction cost more than they save on short inputs);
//!   - up to `x86::HYBRID_MIN` bytes with AVX2 and VPCLMULQDQ: carry-less multiply folding,
//!     four 256-bit accumulators (128 bytes a round), merged and brought down to one 128-bit
//!     lane. That lane `L` is congruent (mod P) to everything before it, so the CRC register
//!     is `L * x^32 mod P`: two `crc32q` steps, since the instruction computes
//!     `(c * x^64 + d * x^32) mod P`. The tail (< 16 bytes) is `crc32q`/`crc32b`. Without
//!     VPCLMULQDQ, the same with four 128-bit PCLMULQDQ accumulators;
//!   - longer inputs: the folding on the front of the message and three `crc32q` streams on
//!     three equal pieces at its end, in one loop, since they use different execution units
//!     (on the Zen 3 this was tuned on, each alone gives about 8 bytes a cycle). The pieces are
//!     chained on afterwards by multiplying by `x^(8 * len)` (see `SHIFT_KEYS`).
//! * aarch64 with the CRC extension: a `crc32cx` loop.
//! * anywhere else: slice-by-8 tables built at compile time.
//!
//! The folding multipliers are `x^n mod P` for the fold distance, computed by `xpow` at
//! compile time from the polynomial (see `fold_keys` for the exponents).
//!
//! What the SIMD (and its `unsafe` loads and calls) buys, `cargo run --release --example
//! crc32c_bench` on the 2-core AMD EPYC (Zen 3) development machine, best of several runs,
//! against the `crc32c` crate (SSE4.2 `crc32q`, three streams, as this module used before):
//! 1 KiB 44 ns against 61; 64 KiB 1.7 us (38 GB/s) against 2.8 us (23 GB/s); 16 MiB
//! 0.46 ms against 0.82 ms.
//!
//! Why these kernels and not the `crc-fast` crate's (measured on the AVX-512 machine, best of
//! 15 or 21 interleaved runs in one process): alone, `crc-fast` is ahead at every size (64 B
//! 5.0 against 7.6 ns, the 137-byte rule-34 check chained through its `Digest` 19.9 against
//! 23.8 ns, 64 KiB 58 against 44 GB/s; `examples/crc32c_bench.rs`), but inside `parse`, where
//! every header with a CRC32C TLV is checked, it was 4-7 ns slower on that 137-byte header
//! (`ours+crc`: 48 against 52-56 ns in four A/B pairs of `cargo bench --bench interleaved` in
//! benchmarks/rust, with the digest or with one call over a stack copy; callgrind +30
//! instructions per parse). Its gain from 64 KiB up is on sizes no header reaches.

/// The reflected CRC32C polynomial (x^32 implied).
const POLY: u32 = 0x82F6_3B78;

/// CRC32C of `data`, continuing from `crc` (0 to start): chainable like `zlib.crc32`, so
/// `append(append(0, a), b) == append(0, a ++ b)`. Uses VPCLMULQDQ/PCLMULQDQ folding and
/// SSE4.2, or the Arm CRC extension, when the CPU has them.
#[must_use]
pub fn append(crc: u32, data: &[u8]) -> u32 {
    !update(!crc, data)
}

/// Advance the raw CRC register `s` over `data` with the best kernel for this CPU.
#[inline]
fn update(s: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        x86::update(s, data)
    }
    #[cfg(target_arch = "aarch64")]
    {
        arm::update(s, data)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        portable(s, data)
    }
}

/// CRC32C of `header` as if the 4 bytes at `field` were zero, without copying it.
/// `None` if `field..field + 4` is not inside `header`.
#[must_use]
pub fn with_field_zeroed(header: &[u8], field: usize) -> Option<u32> {
    let before = header.get(..field)?;
    let after = header.get(field.checked_add(4)?..)?;
    #[cfg(target_arch = "x86_64")]
    if let Some(s) = x86::zeroed_short(!0, before, after) {
        return Some(!s);
    }
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
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
        }
    }
    !crc
}

/// `v * x mod P` in the reflected form: x^31 (bit 0) times x is x^32, which is POLY mod P.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn times_x(v: u32) -> u32 {
    if v & 1 == 1 {
        (v >> 1) ^ POLY
    } else {
        v >> 1
    }
}

/// `x^n mod P`, bit-reflected like the CRC register (bit 31 is `x^0`, bit 0 is `x^31`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn xpow(n: u32) -> u32 {
    let mut v = 1 << 31;
    let mut i = 0;
    while i < n {
        v = times_x(v);
        i += 1;
    }
    v
}

/// `a * b * x^33 mod P`, a bit at a time. The extra `x^33` is what a carry-less multiply of
/// the two (as reflected quadwords) followed by a `crc32q` of the low quadword gives, which is
/// how the x86 kernel multiplies at run time; the tests check that the two agree.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn mul_x33(a: u32, b: u32) -> u32 {
    let mut r = 0;
    let mut a = a;
    let mut i = 0;
    while i < 32 {
        if b & (1 << (31 - i)) != 0 {
            r ^= a;
        }
        a = times_x(a);
        i += 1;
    }
    let mut i = 0;
    while i < 33 {
        r = times_x(r);
        i += 1;
    }
    r
}

/// `SHIFT_KEYS[i] = x^(8 * 2^i - 33) mod P` for `3 <= i < 64` (unused below 3). `mul_x33` of
/// a CRC register and `SHIFT_KEYS[i]` appends `2^i` zero bytes to the message, and `mul_x33`
/// of two such keys is again one (the exponents add up, less the 33), so any multiple of 8
/// bytes has a key made of the keys of its bits.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const SHIFT_KEYS: [u32; 64] = {
    let mut t = [0; 64];
    t[3] = xpow(8 * 8 - 33);
    let mut i = 4;
    while i < 64 {
        t[i] = mul_x33(t[i - 1], t[i - 1]);
        i += 1;
    }
    t
};

/// The two carry-less multipliers that move a 128-bit lane `bits` further along the message.
///
/// A lane loaded little-endian is `A * x^64 + B` with `A` its low quadword (the earlier
/// bytes). A 32-bit reflected constant `k` in a quadword stands for `k * x^32`, and the
/// carry-less product of two reflected quadwords reads, as a reflected 128-bit lane, as the
/// product times x. So `A * x^(64 + bits)` needs `k = x^(bits + 31)` and `B * x^bits` needs
/// `k = x^(bits - 33)`; both products fit in 128 bits and are congruent to the moved lane.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn fold_keys(bits: u32) -> [i64; 2] {
    [xpow(bits + 31) as i64, xpow(bits - 33) as i64]
}

/// Slice-by-8 tables: `TABLES[0]` is the byte-at-a-time table, `TABLES[k][b]` is the register
/// contribution of byte `b` followed by `k` zero bytes.
static TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// Portable kernel: slice-by-8, then a byte at a time.
fn portable(mut s: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word) ^ u64::from(s);
        let b = v.to_le_bytes();
        s = TABLES[7][usize::from(b[0])]
            ^ TABLES[6][usize::from(b[1])]
            ^ TABLES[5][usize::from(b[2])]
            ^ TABLES[4][usize::from(b[3])]
            ^ TABLES[3][usize::from(b[4])]
            ^ TABLES[2][usize::from(b[5])]
            ^ TABLES[1][usize::from(b[6])]
            ^ TABLES[0][usize::from(b[7])];
    }
    for &byte in chunks.remainder() {
        s = (s >> 8) ^ TABLES[0][usize::from((s as u8) ^ byte)];
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, __m256i, _mm256_castsi256_si128, _mm256_clmulepi64_epi128,
        _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_set_epi64x, _mm256_xor_si256,
        _mm256_zextsi128_si256, _mm_clmulepi64_si128, _mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64,
        _mm_crc32_u8, _mm_cvtsi128_si64, _mm_cvtsi32_si128, _mm_extract_epi64, _mm_loadu_si128,
        _mm_set_epi64x, _mm_xor_si128,
    };
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::{fold_keys, portable, SHIFT_KEYS};

    /// Inputs shorter than this use the `crc32q` loop even when folding is available. Timed
    /// as a chain (each call's result the next one's seed, like separate calls from Python),
    /// the folding wins from about 96 bytes on: 12 against 15 ns at 128 bytes here; from
    /// Python, 61 against 65 ns a call at 96 bytes, and a tie at 64.
    pub(super) const FOLD_MIN: usize = 96;

    /// Inputs at least this long run the folding and three `crc32q` streams side by side.
    pub(super) const HYBRID_MIN: usize = 2048;

    /// What this CPU can run, best last.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    #[repr(u8)]
    pub(super) enum Level {
        Portable = 1,
        Sse42 = 2,
        Pclmul = 3,
        Vpclmul = 4,
    }

    /// One kernel, whatever the input length (tests force each with [`run`]).
    #[cfg(test)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Path {
        Portable,
        Sse42,
        Pclmul,
        Vpclmul,
        Hybrid,
    }

    #[cfg(test)]
    impl Path {
        pub(super) const ALL: [Path; 5] =
            [Path::Portable, Path::Sse42, Path::Pclmul, Path::Vpclmul, Path::Hybrid];

        /// The level the kernel needs.
        pub(super) fn needs(self) -> Level {
            match self {
                Path::Portable => Level::Portable,
                Path::Sse42 => Level::Sse42,
                Path::Pclmul => Level::Pclmul,
                Path::Vpclmul | Path::Hybrid => Level::Vpclmul,
            }
        }
    }

    /// 0 until the first call has detected the level.
    static LEVEL: AtomicU8 = AtomicU8::new(0);

    /// The detected level, cached.
    #[inline]
    pub(super) fn level() -> Level {
        match LEVEL.load(Ordering::Relaxed) {
            1 => Level::Portable,
            2 => Level::Sse42,
            3 => Level::Pclmul,
            4 => Level::Vpclmul,
            _ => {
                let level = detect();
                LEVEL.store(level as u8, Ordering::Relaxed);
                level
            }
        }
    }

    fn detect() -> Level {
        if !is_x86_feature_detected!("sse4.2") {
            return Level::Portable;
        }
        if !is_x86_feature_detected!("pclmulqdq") || !is_x86_feature_detected!("sse4.1") {
            return Level::Sse42;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("vpclmulqdq") {
            return Level::Vpclmul;
        }
        Level::Pclmul
    }

    #[inline]
    pub(super) fn update(s: u32, data: &[u8]) -> u32 {
        let level = level();
        // Each kernel is called directly (not through `run`, which checks the level again:
        // ~10 instructions a call, measured with `ir_py "$CRC" 'c(b64)'`).
        match level {
            Level::Portable => portable(s, data),
            // SAFETY: `level()` detected SSE4.2.
            Level::Sse42 => unsafe { crc_sse42(s, data) },
            // SAFETY: `level()` detected SSE4.2 and more (the arm above took SSE4.2 alone).
            _ if data.len() < FOLD_MIN => unsafe { crc_sse42(s, data) },
            // SAFETY: `level()` detected SSE4.2, SSE4.1 and PCLMULQDQ.
            Level::Pclmul => unsafe { fold_pclmul(s, data) },
            // SAFETY: `level()` detected SSE4.2, SSE4.1, PCLMULQDQ, AVX2 and VPCLMULQDQ.
            Level::Vpclmul if data.len() < HYBRID_MIN => unsafe { fold_vpclmul(s, data) },
            // SAFETY: as for the arm above.
            Level::Vpclmul => unsafe { hybrid(s, data) },
        }
    }

    /// The raw register over `before`, four zero bytes and `after` in one call, when each
    /// piece is short enough for the `crc32q` loop (so the result is the three `update`s'
    /// exactly); `None` otherwise, or without SSE4.2. The rule-34 check of a usual header
    /// (under 2 x `FOLD_MIN` bytes) made three dispatches, three calls and three tails
    /// (speed trick `crc-zeroed-one-call` in benchmarks/README.md: `ir_py "$TLV6" 'f(d)'`).
    #[inline]
    pub(super) fn zeroed_short(s: u32, before: &[u8], after: &[u8]) -> Option<u32> {
        if level() < Level::Sse42 || before.len() >= FOLD_MIN || after.len() >= FOLD_MIN {
            return None;
        }
        // SAFETY: `level()` detected SSE4.2.
        Some(unsafe { crc_sse42_zeroed(s, before, after) })
    }

    #[target_feature(enable = "sse4.2")]
    fn crc_sse42_zeroed(s: u32, before: &[u8], after: &[u8]) -> u32 {
        let s = crc_sse42(s, before);
        crc_sse42(_mm_crc32_u32(s, 0), after)
    }

    /// Run the kernel `path` whatever the length.
    ///
    /// # Panics
    /// If this CPU lacks what `path` needs.
    #[cfg(test)]
    pub(super) fn run(path: Path, s: u32, data: &[u8]) -> u32 {
        assert!(path.needs() <= level(), "{path:?} is not available on this CPU");
        match path {
            Path::Portable => portable(s, data),
            // SAFETY: `level()` detected SSE4.2 (asserted just above).
            Path::Sse42 => unsafe { crc_sse42(s, data) },
            // SAFETY: `level()` detected SSE4.2, SSE4.1 and PCLMULQDQ.
            Path::Pclmul => unsafe { fold_pclmul(s, data) },
            // SAFETY: `level()` detected SSE4.2, SSE4.1, PCLMULQDQ, AVX2 and VPCLMULQDQ.
            Path::Vpclmul => unsafe { fold_vpclmul(s, data) },
            // SAFETY: as for `Path::Vpclmul`.
            Path::Hybrid => unsafe { hybrid(s, data) },
        }
    }

    /// `crc32q` over 8-byte words, then at most one each of `crc32l`, `crc32w`, `crc32b` (a
    /// 7-byte tail a byte at a time is a 7-step dependency chain: 70 against 58 ns a call from
    /// Python at 63 and 64 bytes).
    #[target_feature(enable = "sse4.2")]
    fn crc_sse42(s: u32, data: &[u8]) -> u32 {
        let mut s = u64::from(s);
        let mut chunks = data.chunks_exact(8);
        for chunk in &mut chunks {
            s = _mm_crc32_u64(s, word(chunk));
        }
        let mut s = s as u32;
        let mut rest = chunks.remainder();
        if let Some((w, tail)) = rest.split_first_chunk::<4>() {
            s = _mm_crc32_u32(s, u32::from_le_bytes(*w));
            rest = tail;
        }
        if let Some((w, tail)) = rest.split_first_chunk::<2>() {
            s = _mm_crc32_u16(s, u16::from_le_bytes(*w));
            rest = tail;
        }
        if let Some(&byte) = rest.first() {
            s = _mm_crc32_u8(s, byte);
        }
        s
    }

    /// The first 8 bytes of `bytes`, little-endian (panics if shorter).
    #[inline]
    fn word(bytes: &[u8]) -> u64 {
        let mut w = [0; 8];
        w.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(w)
    }

    /// The first 16 bytes of `bytes` (panics if shorter).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load128(bytes: &[u8]) -> __m128i {
        let bytes = &bytes[..16];
        // SAFETY: `bytes` is 16 readable bytes (the slice above checked it); the unaligned
        // load has no alignment requirement.
        unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
    }

    /// The first 32 bytes of `bytes` (panics if shorter).
    #[inline]
    #[target_feature(enable = "avx")]
    fn load256(bytes: &[u8]) -> __m256i {
        let bytes = &bytes[..32];
        // SAFETY: `bytes` is 32 readable bytes (the slice above checked it); the unaligned
        // load has no alignment requirement.
        unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
    }

    // Fold distances in bits, evaluated at compile time (a `const fn` called at run time
    // would run its loop on every call).
    const K128: [i64; 2] = fold_keys(128);
    const K256: [i64; 2] = fold_keys(256);
    const K512: [i64; 2] = fold_keys(512);
    const K1024: [i64; 2] = fold_keys(1024);

    /// Multipliers for one 128-bit lane, from one of the `K*` pairs.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn keys128([lo, hi]: [i64; 2]) -> __m128i {
        _mm_set_epi64x(hi, lo)
    }

    /// Multipliers for both 128-bit lanes of a 256-bit register.
    #[inline]
    #[target_feature(enable = "avx")]
    fn keys256([lo, hi]: [i64; 2]) -> __m256i {
        _mm256_set_epi64x(hi, lo, hi, lo)
    }

    /// The lane moved forward by the distance `k` was made for (not yet reduced).
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    fn fold128(x: __m128i, k: __m128i) -> __m128i {
        _mm_xor_si128(_mm_clmulepi64_si128::<0x00>(x, k), _mm_clmulepi64_si128::<0x11>(x, k))
    }

    /// Both 128-bit lanes of `x` moved forward by the distance `k` was made for.
    #[inline]
    #[target_feature(enable = "avx2,vpclmulqdq")]
    fn fold256(x: __m256i, k: __m256i) -> __m256i {
        _mm256_xor_si256(
            _mm256_clmulepi64_epi128::<0x00>(x, k),
            _mm256_clmulepi64_epi128::<0x11>(x, k),
        )
    }

    /// The CRC register for a message that `x` (its last 16 bytes, everything before folded
    /// in) is congruent to: `x * x^32 mod P`.
    #[inline]
    #[target_feature(enable = "sse4.2,sse4.1")]
    fn reduce(x: __m128i) -> u32 {
        let lo = _mm_cvtsi128_si64(x).cast_unsigned();
        let hi = _mm_extract_epi64::<1>(x).cast_unsigned();
        _mm_crc32_u64(_mm_crc32_u64(0, lo), hi) as u32
    }

    /// `a * b * x^33 mod P` (see [`super::mul_x33`]): one carry-less multiply, one `crc32q`.
    #[inline]
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    fn mul_x33(a: u32, b: u32) -> u32 {
        let a = _mm_cvtsi32_si128(a.cast_signed());
        let b = _mm_cvtsi32_si128(b.cast_signed());
        let product = _mm_cvtsi128_si64(_mm_clmulepi64_si128::<0x00>(a, b)).cast_unsigned();
        _mm_crc32_u64(0, product) as u32
    }

    /// The key with which `mul_x33` appends `len` zero bytes: `x^(8 * len - 33) mod P`.
    /// `len` must be a nonzero multiple of 8 (panics otherwise).
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    fn shift_key(len: usize) -> u32 {
        assert!(len != 0 && len.is_multiple_of(8), "no shift key for {len}");
        let mut bits = len;
        let mut key = SHIFT_KEYS[bits.trailing_zeros() as usize];
        bits &= bits - 1;
        while bits != 0 {
            key = mul_x33(key, SHIFT_KEYS[bits.trailing_zeros() as usize]);
            bits &= bits - 1;
        }
        key
    }

    /// Fold 128-bit lanes with PCLMULQDQ: four accumulators (64 bytes a round), then 16 bytes
    /// at a time, then the `crc32` tail.
    #[target_feature(enable = "sse4.2,sse4.1,pclmulqdq")]
    fn fold_pclmul(s: u32, data: &[u8]) -> u32 {
        if data.len() < 16 {
            return crc_sse42(s, data);
        }
        let k128 = keys128(K128);
        // The register enters the message by xoring it into the first 4 bytes.
        let mut x = _mm_xor_si128(load128(data), _mm_cvtsi32_si128(s.cast_signed()));
        let mut rest = &data[16..];
        if rest.len() >= 48 {
            let k512 = keys128(K512);
            let (mut a0, mut a1, mut a2, mut a3) =
                (x, load128(rest), load128(&rest[16..]), load128(&rest[32..]));
            rest = &rest[48..];
            while let Some((block, tail)) = rest.split_first_chunk::<64>() {
                a0 = _mm_xor_si128(fold128(a0, k512), load128(block));
                a1 = _mm_xor_si128(fold128(a1, k512), load128(&block[16..]));
                a2 = _mm_xor_si128(fold128(a2, k512), load128(&block[32..]));
                a3 = _mm_xor_si128(fold128(a3, k512), load128(&block[48..]));
                rest = tail;
            }
            a1 = _mm_xor_si128(a1, fold128(a0, k128));
            a2 = _mm_xor_si128(a2, fold128(a1, k128));
            x = _mm_xor_si128(a3, fold128(a2, k128));
        }
        while let Some((block, tail)) = rest.split_first_chunk::<16>() {
            x = _mm_xor_si128(fold128(x, k128), load128(block));
            rest = tail;
        }
        crc_sse42(reduce(x), rest)
    }

    /// `N` 256-bit accumulators over the `32 * N` bytes at the start of `data`, the register
    /// `s` xored into the first 4 bytes (that is how it enters the message).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn start<const N: usize>(s: u32, data: &[u8]) -> [__m256i; N] {
        let mut acc: [__m256i; N] = std::array::from_fn(|i| load256(&data[32 * i..]));
        let first = _mm256_zextsi128_si256(_mm_cvtsi32_si128(s.cast_signed()));
        acc[0] = _mm256_xor_si256(acc[0], first);
        acc
    }

    /// Move `N` accumulators `32 * N` bytes on, over `block` (that long), with the key for
    /// that distance.
    #[inline]
    #[target_feature(enable = "avx2,vpclmulqdq")]
    fn round<const N: usize>(acc: &mut [__m256i; N], block: &[u8], k: __m256i) {
        let block = &block[..32 * N];
        for (i, a) in acc.iter_mut().enumerate() {
            *a = _mm256_xor_si256(fold256(*a, k), load256(&block[32 * i..]));
        }
    }

    /// The CRC register after one 256-bit accumulator `x` and then `rest`: 32 bytes at a
    /// time, one 128-bit lane, 16 bytes, then `crc32`.
    #[inline]
    #[target_feature(enable = "sse4.2,sse4.1,pclmulqdq,avx2,vpclmulqdq")]
    fn finish(mut x: __m256i, mut rest: &[u8]) -> u32 {
        let k256 = keys256(K256);
        while let Some((block, tail)) = rest.split_first_chunk::<32>() {
            x = _mm256_xor_si256(fold256(x, k256), load256(block));
            rest = tail;
        }
        let k128 = keys128(K128);
        let mut x = _mm_xor_si128(
            fold128(_mm256_castsi256_si128(x), k128),
            _mm256_extracti128_si256::<1>(x),
        );
        if let Some((block, tail)) = rest.split_first_chunk::<16>() {
            x = _mm_xor_si128(fold128(x, k128), load128(block));
            rest = tail;
        }
        crc_sse42(reduce(x), rest)
    }

    /// Merge `N` accumulators into the last one (each moved 32 bytes on into the next).
    #[inline]
    #[target_feature(enable = "avx2,vpclmulqdq")]
    fn merge<const N: usize>(acc: [__m256i; N]) -> __m256i {
        let k256 = keys256(K256);
        let mut x = acc[0];
        for &a in &acc[1..] {
            x = _mm256_xor_si256(a, fold256(x, k256));
        }
        x
    }

    /// Fold 256-bit registers (two 128-bit lanes each) with VPCLMULQDQ: four accumulators
    /// (128 bytes a round), then [`finish`].
    #[target_feature(enable = "sse4.2,sse4.1,pclmulqdq,avx2,vpclmulqdq")]
    fn fold_vpclmul(s: u32, data: &[u8]) -> u32 {
        if data.len() < 128 {
            if data.len() < 32 {
                return fold_pclmul(s, data);
            }
            let first = _mm256_zextsi128_si256(_mm_cvtsi32_si128(s.cast_signed()));
            return finish(_mm256_xor_si256(load256(data), first), &data[32..]);
        }
        let mut acc = start::<4>(s, data);
        let k1024 = keys256(K1024);
        let mut rest = &data[128..];
        while let Some((block, tail)) = rest.split_first_chunk::<128>() {
            round(&mut acc, block, k1024);
            rest = tail;
        }
        finish(merge(acc), rest)
    }

    /// Bytes each `crc32q` stream of [`hybrid`] takes a round.
    const STREAM_ROUND: usize = 8 * 8;
    /// 256-bit accumulators of the folded front in [`hybrid`], and the bytes they take a round.
    const FRONT_ACCS: usize = 4;
    const FRONT_ROUND: usize = 32 * FRONT_ACCS;
    const K_FRONT_ROUND: [i64; 2] = fold_keys(8 * FRONT_ROUND as u32);

    /// VPCLMULQDQ folding and `crc32q` run on different execution units, so run both: the
    /// folding takes the front of the message (128 bytes a round, as in [`fold_vpclmul`]),
    /// three independent `crc32q` streams (hiding its 3-cycle latency) take three equal
    /// pieces at the end, in the same loop. The pieces are then chained on the folded front:
    /// appending a piece is multiplying the register by `x^(8 * len)` (one carry-less multiply
    /// with a key made once) and xoring the piece's own register.
    #[target_feature(enable = "sse4.2,sse4.1,pclmulqdq,avx2,vpclmulqdq")]
    fn hybrid(s: u32, data: &[u8]) -> u32 {
        // The front needs FRONT_ROUND bytes to start the accumulators, then as many a round.
        let rounds = data.len().saturating_sub(FRONT_ROUND) / (FRONT_ROUND + 3 * STREAM_ROUND);
        if rounds == 0 {
            return fold_vpclmul(s, data);
        }
        let piece = rounds * STREAM_ROUND;
        let (front, back) = data.split_at(data.len() - 3 * piece);
        let (b1, back) = back.split_at(piece);
        let (b2, b3) = back.split_at(piece);
        // Independent of the loop, so the CPU works it out alongside.
        let key = shift_key(piece);

        let mut acc = start::<FRONT_ACCS>(s, front);
        let k_round = keys256(K_FRONT_ROUND);
        let mut rest = &front[FRONT_ROUND..];
        let (mut c1, mut c2, mut c3) = (0u64, 0u64, 0u64);
        for r in 0..rounds {
            let Some((block, tail)) = rest.split_first_chunk::<FRONT_ROUND>() else { break };
            round(&mut acc, block, k_round);
            rest = tail;
            let at = r * STREAM_ROUND;
            let (w1, w2, w3) = (&b1[at..at + STREAM_ROUND], &b2[at..], &b3[at..]);
            for i in (0..STREAM_ROUND).step_by(8) {
                c1 = _mm_crc32_u64(c1, word(&w1[i..]));
                c2 = _mm_crc32_u64(c2, word(&w2[i..]));
                c3 = _mm_crc32_u64(c3, word(&w3[i..]));
            }
        }
        let s = finish(merge(acc), rest);
        let s = mul_x33(s, key) ^ c1 as u32;
        let s = mul_x33(s, key) ^ c2 as u32;
        mul_x33(s, key) ^ c3 as u32
    }

    #[cfg(test)]
    pub(super) fn test_mul_x33(a: u32, b: u32) -> u32 {
        assert!(level() >= Level::Pclmul);
        // SAFETY: PCLMULQDQ and SSE4.2 were detected (asserted just above).
        unsafe { mul_x33(a, b) }
    }

    #[cfg(test)]
    pub(super) fn test_shift_key(len: usize) -> u32 {
        assert!(level() >= Level::Pclmul);
        // SAFETY: PCLMULQDQ and SSE4.2 were detected (asserted just above).
        unsafe { shift_key(len) }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::{__crc32cb, __crc32cd};
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::portable;

    /// 0 unknown, 1 no CRC extension, 2 CRC extension.
    static LEVEL: AtomicU8 = AtomicU8::new(0);

    pub(super) fn has_crc() -> bool {
        match LEVEL.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let has = std::arch::is_aarch64_feature_detected!("crc");
                LEVEL.store(if has { 2 } else { 1 }, Ordering::Relaxed);
                has
            }
        }
    }

    #[inline]
    pub(super) fn update(s: u32, data: &[u8]) -> u32 {
        if has_crc() {
            // SAFETY: the CRC extension was detected at run time.
            unsafe { crc_arm(s, data) }
        } else {
            portable(s, data)
        }
    }

    /// `crc32cx` over 8-byte words, then `crc32cb`.
    #[target_feature(enable = "crc")]
    fn crc_arm(mut s: u32, data: &[u8]) -> u32 {
        let mut chunks = data.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            s = __crc32cd(s, u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            s = __crc32cb(s, byte);
        }
        s
    }
}

#[cfg(test)]
mod tests;
