//! v2 TLVs (SPEC rules 30-40, D4): type constants, the strict walk done at parse time (which
//! can hand each TLV it passes to `parse_fold`), a lazy iterator over validated TLVs, and typed
//! views of SSL and the cloud vendors' values.

use crate::error::{ErrorKind, ParseError};

/// 0x01: application protocol (ALPN).
pub const ALPN: u8 = 0x01;
/// 0x02: host name the client asked for (SNI).
pub const AUTHORITY: u8 = 0x02;
/// 0x03: CRC32C of the whole header.
pub const CRC32C: u8 = 0x03;
/// 0x04: padding, ignored.
pub const NOOP: u8 = 0x04;
/// 0x05: opaque connection id, at most 128 bytes.
pub const UNIQUE_ID: u8 = 0x05;
/// 0x20: TLS details: `client` (1 B), `verify` (4 B), then sub-TLVs.
pub const SSL: u8 = 0x20;
/// 0x21: SSL sub-TLV, TLS version.
pub const SSL_VERSION: u8 = 0x21;
/// 0x22: SSL sub-TLV, client certificate Common Name.
pub const SSL_CN: u8 = 0x22;
/// 0x23: SSL sub-TLV, cipher.
pub const SSL_CIPHER: u8 = 0x23;
/// 0x24: SSL sub-TLV, frontend certificate signature algorithm.
pub const SSL_SIG_ALG: u8 = 0x24;
/// 0x25: SSL sub-TLV, frontend certificate key algorithm.
pub const SSL_KEY_ALG: u8 = 0x25;
/// 0x26: SSL sub-TLV, key-exchange group.
pub const SSL_GROUP: u8 = 0x26;
/// 0x27: SSL sub-TLV, signature scheme.
pub const SSL_SIG_SCHEME: u8 = 0x27;
/// 0x28: SSL sub-TLV, DER client certificate.
pub const SSL_CLIENT_CERT: u8 = 0x28;
/// 0x30: network namespace.
pub const NETNS: u8 = 0x30;
/// 0xE0: first custom type; GCP Private Service Connect uses it for pscConnectionId.
pub const GCP: u8 = 0xE0;
/// 0xEA: AWS; subtype 0x01 carries the VPC endpoint id.
pub const AWS: u8 = 0xEA;
/// 0xEE: Azure; subtype 0x01 carries the Private Link LINKID.
pub const AZURE: u8 = 0xEE;

/// `client` bit: the client connected over TLS.
pub const CLIENT_SSL: u8 = 0x01;
/// `client` bit: a client certificate was presented on this connection.
pub const CLIENT_CERT_CONN: u8 = 0x02;
/// `client` bit: a client certificate was presented in this TLS session.
pub const CLIENT_CERT_SESS: u8 = 0x04;

/// Most bytes the spec allows in `UNIQUE_ID` (rule 36).
pub const MAX_UNIQUE_ID: usize = 128;

/// One TLV as it stands in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tlv<'a> {
    /// The type byte.
    pub kind: u8,
    /// The value.
    pub value: &'a [u8],
    /// Offset of the TLV's type byte in the header.
    pub offset: usize,
}

/// Iterator over TLVs in wire order. Over a region that [`validate`] accepted it yields every
/// TLV; over anything else it stops at the first one that does not fit.
#[derive(Debug, Clone)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Tlvs<'a> {
    /// TLVs in `region`, which starts at `offset` in the header (offsets are reported from it).
    #[must_use]
    pub const fn new(region: &'a [u8], offset: usize) -> Self {
        Self { rest: region, offset }
    }
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        let (&[kind, hi, lo], after) = self.rest.split_first_chunk::<3>()?;
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let value = after.get(..len)?;
        let tlv = Tlv { kind, value, offset: self.offset };
        self.rest = &after[len..];
        self.offset += 3 + len;
        Some(tlv)
    }
}

/// Walks the TLVs of `region` (at `offset` in the header) strictly (D4): each must fit, the
/// last must end exactly at the end, and known types must have a valid length (with
/// `haproxy_limits`, also `HAProxy`'s caps: AUTHORITY <= 255, any value <= 1024).
///
/// # Errors
/// `TlvTruncated` or `TlvLength` at the offending TLV.
pub fn validate(region: &[u8], offset: usize, haproxy_limits: bool) -> Result<(), ParseError> {
    validate_recording(region, offset, haproxy_limits, &mut ())
}

/// [`validate`], telling `record` where each TLV lies as the walk passes it (TLVs before a
/// failing one are told too: the caller forgets them on an error).
pub(crate) fn validate_recording<'a>(
    region: &'a [u8],
    offset: usize,
    haproxy_limits: bool,
    record: &mut impl Record<'a>,
) -> Result<(), ParseError> {
    if all_valid(region, offset, haproxy_limits, record) {
        return Ok(());
    }
    first_error(region, offset, haproxy_limits)
}

/// Where the parse-time check tells the TLVs it walks: a [`Fold`], or `()` for nothing (the
/// plain parse, compiled without a trace of it).
pub(crate) trait Record<'a> {
    /// A TLV of type `kind` with a `len`-byte value starts at `pos` in `region`, which starts
    /// at `offset` in the header. TLVs after it may still fail the check, and so may its value.
    fn tlv(&mut self, region: &'a [u8], offset: usize, pos: usize, kind: u8, len: u16);
}

impl Record<'_> for () {
    #[inline]
    fn tlv(&mut self, _: &[u8], _: usize, _: usize, _: u8, _: u16) {}
}

/// Hands each TLV the check passes to `f` with the accumulator (see [`crate::parse_fold`]).
pub(crate) struct Fold<T, F> {
    pub(crate) acc: T,
    pub(crate) f: F,
}

impl<'a, T, F: FnMut(&mut T, Tlv<'a>)> Record<'a> for Fold<T, F> {
    #[inline]
    fn tlv(&mut self, region: &'a [u8], offset: usize, pos: usize, kind: u8, len: u16) {
        // A value that does not fit is skipped: the check refuses the header at that TLV,
        // and the accumulator of a refused header is dropped.
        if let Some(value) = region.get(pos + 3..pos + 3 + usize::from(len)) {
            (self.f)(&mut self.acc, Tlv { kind, value, offset: offset + pos });
        }
    }
}

/// The precise walk: the first TLV that is wrong, and how.
#[cold]
fn first_error(region: &[u8], offset: usize, haproxy_limits: bool) -> Result<(), ParseError> {
    let mut pos = 0;
    while pos < region.len() {
        let at = offset + pos;
        let Some(&[kind, hi, lo]) = region.get(pos..).and_then(<[u8]>::first_chunk::<3>) else {
            return Err(ParseError::new(ErrorKind::TlvTruncated, at));
        };
        let end = pos + 3 + usize::from(u16::from_be_bytes([hi, lo]));
        let Some(value) = region.get(pos + 3..end) else {
            return Err(ParseError::new(ErrorKind::TlvTruncated, at + 1));
        };
        if !length_ok(kind, value, haproxy_limits) {
            return Err(ParseError::new(ErrorKind::TlvLength, at + 1));
        }
        pos = end;
    }
    Ok(())
}

/// [`validate`]'s answer for valid TLVs, in a lean loop: one bounds check per TLV and one bit
/// test for types without a length rule (callgrind: about half the instructions of the
/// precise walk, which runs only when this says no, to name the error and its offset).
fn all_valid<'a>(
    region: &'a [u8],
    offset: usize,
    haproxy_limits: bool,
    record: &mut impl Record<'a>,
) -> bool {
    // The types whose length `length_ok` checks without `haproxy_limits`, as bits. A type is
    // tested modulo 64 (the shift's own masking, one instruction): the few other types that
    // alias onto these bits go through `length_ok` too, which accepts them.
    const RULED: u64 = 1 << CRC32C | 1 << UNIQUE_ID | 1 << SSL;
    // One bounds check per TLV, whether its three header bytes are there: a value that runs
    // past the end leaves `pos` beyond it, which ends the loop and fails the final test.
    let last_header = region.len().saturating_sub(2);
    let mut pos = 0;
    while pos < last_header {
        let Some(&[kind, hi, lo]) = region.get(pos..pos + 3) else {
            return false;
        };
        let len = u16::from_be_bytes([hi, lo]);
        record.tlv(region, offset, pos, kind, len);
        let start = pos + 3;
        pos = start + usize::from(len);
        if haproxy_limits || RULED.wrapping_shr(u32::from(kind)) & 1 == 1 {
            match region.get(start..pos) {
                Some(value) if length_ok(kind, value, haproxy_limits) => {}
                _ => return false,
            }
        }
    }
    pos == region.len()
}

fn length_ok(kind: u8, value: &[u8], haproxy_limits: bool) -> bool {
    let ok = match kind {
        CRC32C => value.len() == 4,
        UNIQUE_ID => value.len() <= MAX_UNIQUE_ID,
        SSL => value.len() >= 5 && frames_exactly(&value[5..]),
        AUTHORITY if haproxy_limits => value.len() <= 255,
        _ => true,
    };
    ok && !(haproxy_limits && value.len() > 1024)
}

/// Whether the TLVs of `region` frame exactly: each header and value fits and the last ends at
/// the end. Structure only, no type rules and no recursion: it decides where a LOCAL header's
/// TLVs start (D3) and checks SSL sub-TLVs (D4), whose type space (0x21-0x28) is their own.
/// (Checking sub-TLVs through [`validate`] recursed once per nested 0x20, deep enough at 65551
/// bytes to overflow a small thread stack.)
#[must_use]
pub fn frames_exactly(region: &[u8]) -> bool {
    // One bounds check per TLV, as in `all_valid`.
    let mut pos = 0;
    while let Some(&[_, hi, lo]) = region.get(pos..).and_then(<[u8]>::first_chunk::<3>) {
        pos += 3 + usize::from(u16::from_be_bytes([hi, lo]));
    }
    pos == region.len()
}

/// The SSL TLV's value (rule 37): packed `client` (u8), `verify` (u32 BE), then sub-TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ssl<'a> {
    /// The `PP2_CLIENT`_* bits.
    pub client: u8,
    /// 0 when a client certificate was presented and verified.
    pub verify: u32,
    /// The sub-TLV bytes.
    pub sub: &'a [u8],
    /// Offset of `sub` in the SSL value (5), so sub-TLV offsets are relative to the value.
    pub sub_offset: usize,
}

impl<'a> Ssl<'a> {
    /// Decodes an SSL TLV value; `None` if it is shorter than 5 bytes.
    #[must_use]
    pub fn new(value: &'a [u8]) -> Option<Self> {
        let (&[client, a, b, c, d], sub) = value.split_first_chunk::<5>()?;
        Some(Self { client, verify: u32::from_be_bytes([a, b, c, d]), sub, sub_offset: 5 })
    }

    /// The sub-TLVs (offsets relative to the SSL value).
    #[must_use]
    pub fn tlvs(&self) -> Tlvs<'a> {
        Tlvs::new(self.sub, self.sub_offset)
    }

    /// The first sub-TLV of type `kind`.
    #[must_use]
    pub fn get(&self, kind: u8) -> Option<&'a [u8]> {
        self.tlvs().find(|t| t.kind == kind).map(|t| t.value)
    }

    /// A CERT bit is set and `verify` is 0. `HAProxy` zero-fills `verify` when no certificate
    /// was used, so `verify == 0` alone does not mean verified (rule 37).
    #[must_use]
    pub const fn client_cert_verified(&self) -> bool {
        self.client & (CLIENT_CERT_CONN | CLIENT_CERT_SESS) != 0 && self.verify == 0
    }
}

/// AWS VPC endpoint id: TLV 0xEA whose value starts with subtype 0x01.
#[must_use]
pub fn aws_vpce_id(value: &[u8]) -> Option<&[u8]> {
    match value.split_first() {
        Some((0x01, id)) => Some(id),
        _ => None,
    }
}

/// Azure Private Link LINKID: TLV 0xEE of exactly 5 bytes, subtype 0x01, u32 little-endian.
#[must_use]
pub fn azure_link_id(value: &[u8]) -> Option<u32> {
    match value {
        &[0x01, a, b, c, d] => Some(u32::from_le_bytes([a, b, c, d])),
        _ => None,
    }
}

/// GCP pscConnectionId: TLV 0xE0 of exactly 8 bytes, u64 big-endian (no subtype).
#[must_use]
pub fn gcp_psc_connection_id(value: &[u8]) -> Option<u64> {
    value.try_into().ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_in_wire_order_with_duplicates() {
        let region = [1, 0, 2, b'h', b'2', 0xE1, 0, 0, 1, 0, 1, b'x'];
        assert!(validate(&region, 40, false).is_ok());
        let all: Vec<_> = Tlvs::new(&region, 40).collect();
        assert_eq!(all.len(), 3);
        assert_eq!((all[0].kind, all[0].value, all[0].offset), (1, &b"h2"[..], 40));
        assert_eq!((all[1].kind, all[1].value, all[1].offset), (0xE1, &b""[..], 45));
        assert_eq!((all[2].kind, all[2].value), (1, &b"x"[..]));
    }

    #[test]
    fn d4_tlv_crossing_the_end_is_an_error() {
        // Declared 200 bytes, 3 present: a peer bug (PEERS.md, proxy-protocol).
        let region = [0xE1, 0, 200, 1, 2, 3];
        let e = validate(&region, 28, false).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::TlvTruncated, 29));
        // A lone type byte or two bytes of a TLV header.
        assert_eq!(validate(&[1], 28, false).unwrap_err().offset, 28);
        assert_eq!(validate(&[1, 0], 28, false).unwrap_err().offset, 28);
    }

    #[test]
    fn d4_zero_length_final_tlv_is_kept() {
        let region = [NOOP, 0, 0];
        assert!(validate(&region, 0, false).is_ok());
        assert_eq!(Tlvs::new(&region, 0).count(), 1);
    }

    #[test]
    fn d4_typed_lengths() {
        let lim = false;
        assert!(validate(&[CRC32C, 0, 3, 0, 0, 0], 0, lim).is_err());
        assert!(validate(&[CRC32C, 0, 4, 0, 0, 0, 0], 0, lim).is_ok());
        assert!(validate(&[SSL, 0, 4, 0, 0, 0, 0], 0, lim).is_err());
        assert!(validate(&[SSL, 0, 5, 1, 0, 0, 0, 0], 0, lim).is_ok());
        // SSL sub-TLVs must frame exactly.
        assert!(validate(&[SSL, 0, 7, 1, 0, 0, 0, 0, 0x21, 0], 0, lim).is_err());
        let mut uid = vec![UNIQUE_ID, 0, 129];
        uid.extend([7; 129]);
        assert!(validate(&uid, 0, lim).is_err());
        uid[2] = 128;
        uid.pop();
        assert!(validate(&uid, 0, lim).is_ok());
    }

    /// Found by the `roundtrip` fuzz target (fuzz/corpus/parse/
    /// fuzz-nested-ssl-tlv-recursion-stack-overflow): SSL sub-TLVs were checked with the
    /// top-level rules by recursing into `validate`, so an SSL value nesting 0x20 TLVs 8180
    /// deep (a 65468-byte header, accepted with `max_size=65551`) overflowed a 256 KiB thread
    /// stack (SIGSEGV), and a sub-TLV of type 0x03 not 4 bytes long was wrongly refused.
    #[test]
    fn fuzz_nested_ssl_tlv_recursion_stack_overflow() {
        let mut inner = Vec::new();
        for _ in 0..8180 {
            let mut outer = vec![SSL];
            outer.extend_from_slice(&(inner.len() as u16 + 5).to_be_bytes());
            outer.extend_from_slice(&[CLIENT_SSL, 0, 0, 0, 0]);
            outer.extend_from_slice(&inner);
            inner = outer;
        }
        let ok = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || validate(&inner, 28, false).is_ok())
            .unwrap()
            .join()
            .unwrap();
        assert!(ok);
        // Sub-TLV types are not top-level types: 0x03 of 1 byte inside SSL is kept.
        assert!(validate(&[SSL, 0, 9, 1, 0, 0, 0, 0, CRC32C, 0, 1, 7], 0, false).is_ok());
        assert!(validate(&[SSL, 0, 9, 1, 0, 0, 0, 0, CRC32C, 0, 2, 7], 0, false).is_err());
    }

    /// The lean pass and the precise walk agree: every type and length the lean pass does not
    /// look at is one `length_ok` accepts, and both give the same answer on every one-TLV
    /// region (D4, rules 34-37).
    #[test]
    fn d4_lean_pass_agrees_with_the_precise_walk() {
        let ssl_ok = [0x01, 0, 0, 0, 0, 0x21, 0, 1, b'x'];
        for kind in 0..=255u8 {
            for len in [0usize, 1, 4, 5, 9, 128, 129, 255, 256, 1024, 1025] {
                let mut value = vec![0u8; len];
                if len == ssl_ok.len() {
                    value.copy_from_slice(&ssl_ok);
                }
                let mut region = vec![kind];
                region.extend_from_slice(&(len as u16).to_be_bytes());
                region.extend_from_slice(&value);
                for limits in [false, true] {
                    let precise = first_error(&region, 0, limits).is_ok();
                    assert_eq!(
                        all_valid(&region, 0, limits, &mut ()),
                        precise,
                        "{kind:#x} {len} {limits}"
                    );
                }
            }
        }
    }

    /// The same on random regions of several TLVs: lengths that fall short, run past the end
    /// or land one or two bytes before it, SSL values with good and broken sub-TLVs, and the
    /// types that alias onto the ruled bits modulo 64 (0x43, 0x45, 0x60, 0xE0).
    #[test]
    fn d4_lean_pass_agrees_with_the_precise_walk_on_random_regions() {
        let mut next = crate::ip_text::tests::xorshift(0xBB67_AE85_84CA_A73Bu64);
        let kinds = [ALPN, CRC32C, UNIQUE_ID, SSL, NOOP, 0x43, 0x45, 0x60, GCP, AWS, 0xFF];
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..50_000 {
            let mut region = Vec::new();
            for _ in 0..next() % 5 {
                let kind = kinds[(next() as usize) % kinds.len()];
                let len = match next() % 4 {
                    0 => 4,
                    1 => (next() % 12) as usize,
                    2 => 128 + (next() % 3) as usize,
                    _ => 5 + 3 * (next() % 3) as usize,
                };
                region.push(kind);
                region.extend_from_slice(&(len as u16).to_be_bytes());
                if kind == SSL && len >= 5 {
                    region.extend_from_slice(&[1, 0, 0, 0, 0]);
                    // Sub-TLVs of 0 bytes each, or a declared length that does not fit.
                    for _ in 0..(len - 5) / 3 {
                        region.extend_from_slice(&[0x21, 0, (next() % 2) as u8]);
                    }
                    region.resize(region.len() + (len - 5) % 3, 0);
                } else {
                    region.extend((0..len).map(|_| next() as u8));
                }
            }
            match next() % 4 {
                0 => region.truncate(region.len().saturating_sub((next() % 3) as usize)),
                1 => region.push(next() as u8),
                _ => {}
            }
            for limits in [false, true] {
                let precise = first_error(&region, 0, limits).is_ok();
                assert_eq!(all_valid(&region, 0, limits, &mut ()), precise, "{region:02x?}");
                if precise {
                    ok += 1;
                } else {
                    refused += 1;
                }
            }
        }
        assert!(ok > 10_000 && refused > 10_000, "{ok} {refused}");
    }

    #[test]
    fn haproxy_limits_are_opt_in() {
        let mut auth = vec![AUTHORITY, 1, 0];
        auth.extend([b'a'; 256]);
        assert!(validate(&auth, 0, false).is_ok());
        assert!(validate(&auth, 0, true).is_err());
    }

    #[test]
    fn ssl_verified_needs_a_cert_bit() {
        let s = Ssl::new(&[CLIENT_SSL, 0, 0, 0, 0]).unwrap();
        assert!(!s.client_cert_verified());
        let s = Ssl::new(&[CLIENT_SSL | CLIENT_CERT_CONN, 0, 0, 0, 0]).unwrap();
        assert!(s.client_cert_verified());
        let s = Ssl::new(&[CLIENT_SSL | CLIENT_CERT_CONN, 0, 0, 0, 1]).unwrap();
        assert!(!s.client_cert_verified());
        assert!(Ssl::new(&[1, 0, 0, 0]).is_none());
    }

    #[test]
    fn vendor_values() {
        assert_eq!(
            aws_vpce_id(b"\x01vpce-08d2bf15fac5001c9"),
            Some(&b"vpce-08d2bf15fac5001c9"[..])
        );
        assert_eq!(aws_vpce_id(b"\x02x"), None);
        assert_eq!(azure_link_id(&[1, 0x78, 0x56, 0x34, 0x12]), Some(0x1234_5678));
        assert_eq!(azure_link_id(&[1, 0, 0, 0]), None);
        assert_eq!(gcp_psc_connection_id(&[0, 0, 0, 0, 0, 0, 1, 2]), Some(0x102));
        assert_eq!(gcp_psc_connection_id(&[0; 7]), None);
    }
}
