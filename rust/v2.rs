//! v2: the binary header (SPEC §2.2, rules 18-31, D1-D4, D7).
//!
//! Layout: 12-byte signature, version|command, family|protocol, big-endian length of the
//! rest, then the address block and TLVs. The 16-byte prefix is checked byte by byte as it
//! arrives (D1); the rest only once it is all there (rule 28).

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::crc32c;
use crate::error::{BuildError, ErrorKind, ParseError};
use crate::header::{Command, End, Family, Header, Layout, Protocol, UNIX_ADDR_LEN};
use crate::tlv::{self, Tlvs};
use crate::{Endpoints, Options, Status};

/// The 12-byte v2 signature (rule 18).
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Size of the fixed prefix: signature, two bytes of fields, two of length.
pub const PREFIX_LEN: usize = 16;
/// The largest v2 header: 16 + 65535.
pub const MAX_LEN: usize = PREFIX_LEN + 0xFFFF;

/// Parses a v2 header at the start of `buf`.
///
/// # Errors
/// The first impossible byte of the prefix, or what is wrong with the rest.
pub fn parse<'a>(buf: &'a [u8], opts: &Options) -> Result<Status<Header<'a>>, ParseError> {
    parse_recording(buf, opts, &mut ())
}

/// [`parse`], telling `record` where each TLV lies as the check walks them.
pub(crate) fn parse_recording<'a>(
    buf: &'a [u8],
    opts: &Options,
    record: &mut impl tlv::Record<'a>,
) -> Result<Status<Header<'a>>, ParseError> {
    // The whole prefix as one fixed-size array and the signature compared as one 12-byte
    // array (a few word compares); the byte-by-byte walk that finds the first wrong byte runs
    // only when this fails. Measured: speed trick `v2-prefix` in benchmarks/README.md.
    let Some(prefix) = buf.first_chunk::<PREFIX_LEN>() else {
        return short_prefix(buf);
    };
    if prefix.first_chunk::<12>() != Some(&SIGNATURE) {
        return short_prefix(buf);
    }
    let [.., ver_cmd, fam_proto, hi, lo] = *prefix;
    let (command, family, protocol) = fields(ver_cmd, fam_proto)?;
    let body_len = usize::from(u16::from_be_bytes([hi, lo]));
    let total = PREFIX_LEN + body_len;
    if total > opts.max_size {
        return Err(ParseError::new(ErrorKind::HeaderTooLarge, 14));
    }
    let layout = Layout {
        version: 2,
        command,
        family,
        protocol,
        v1_fields: [0; 3],
        tlv_start: total as u32,
        len: total as u32,
    };
    // IPv4's address block length comes from a branch, not from the table: the TLV check
    // starts right after the block, and a length loaded from a table made every parse wait
    // for that load before it could read its first TLV, where a predicted branch lets it start
    // at once (speed trick `v2-addr-branch` in benchmarks/README.md). IPv4 gets its own copy
    // of the rest with the length a constant; a three-way `match` (IPv6 too) became a jump
    // table again and lost the gain on IPv4.
    if family == Family::Inet {
        after_prefix(buf, opts, record, layout, 12)
    } else {
        after_prefix(buf, opts, record, layout, family.address_block_len())
    }
}

/// The rest of [`parse_recording`] once the prefix is good: the address block (`addr_len`
/// bytes for the family), TLVs and CRC32C.
#[inline(always)]
#[allow(clippy::inline_always)] // one copy per constant `addr_len` is the point: see the caller
fn after_prefix<'a>(
    buf: &'a [u8],
    opts: &Options,
    record: &mut impl tlv::Record<'a>,
    mut layout: Layout,
    addr_len: usize,
) -> Result<Status<Header<'a>>, ParseError> {
    let total = layout.len as usize;
    let with_addresses = layout.has_addresses();
    if with_addresses && total < PREFIX_LEN + addr_len {
        // Known from the length field alone (D1; CVE-2019-14243's shape).
        return Err(ParseError::new(ErrorKind::V2AddressTruncated, 14));
    }
    let Some(hdr) = buf.get(..total) else {
        return Ok(Status::Partial { needed: total - buf.len() });
    };
    let tlv_start = if with_addresses {
        PREFIX_LEN + addr_len
    } else {
        // LOCAL, or PROXY with an UNSPEC nibble: no addresses; TLVs where they frame (D2, D3).
        local_tlv_start(hdr, addr_len).unwrap_or(total)
    };
    if tlv_start < total {
        check_tlvs(hdr, tlv_start, opts, record)?;
    }
    // The header is made here, where the layout's fields are in registers, and returned as is
    // by `crate::parse` (see Layout).
    layout.tlv_start = tlv_start as u32;
    Ok(Status::Complete { consumed: total, header: Header::from_parsed(hdr, layout) })
}

/// The TLVs of `hdr` from `tlv_start` on (D4) and their CRC32C (rule 34).
#[inline(never)]
fn check_tlvs<'a>(
    hdr: &'a [u8],
    tlv_start: usize,
    opts: &Options,
    record: &mut impl tlv::Record<'a>,
) -> Result<(), ParseError> {
    tlv::validate_recording(&hdr[tlv_start..], tlv_start, opts.haproxy_limits, record)?;
    if opts.verify_checksum {
        verify_crcs(hdr, tlv_start)?;
    }
    Ok(())
}

/// A prefix that is not all there or does not start with the signature: the first impossible
/// byte, byte by byte (D1), or how many more bytes the prefix needs.
#[cold]
fn short_prefix<'a>(buf: &[u8]) -> Result<Status<Header<'a>>, ParseError> {
    let partial = Ok(Status::Partial { needed: PREFIX_LEN - buf.len().min(PREFIX_LEN) });
    for (i, &want) in SIGNATURE.iter().enumerate() {
        match buf.get(i) {
            None => return partial,
            Some(&b) if b != want => return Err(ParseError::new(ErrorKind::NotProxyProtocol, i)),
            Some(_) => {}
        }
    }
    let Some(&ver_cmd) = buf.get(12) else {
        return partial;
    };
    // Byte 13 is only judged once it is there.
    let Some(&fam_proto) = buf.get(13) else {
        return fields(ver_cmd, 0x11).and(partial);
    };
    fields(ver_cmd, fam_proto).and(partial)
}

/// Version, command, family and protocol from bytes 12 and 13 (rules 19-22).
fn fields(ver_cmd: u8, fam_proto: u8) -> Result<(Command, Family, Protocol), ParseError> {
    if ver_cmd >> 4 != 2 {
        return Err(ParseError::new(ErrorKind::V2Version, 12));
    }
    let command = match ver_cmd & 0xF {
        0 => Command::Local,
        1 => Command::Proxy,
        _ => return Err(ParseError::new(ErrorKind::V2Command, 12)),
    };
    let family = Family::from_nibble(fam_proto >> 4);
    let protocol = Protocol::from_nibble(fam_proto & 0xF);
    if command == Command::Proxy {
        // Rule 22; LOCAL ignores the family byte (D3).
        if family.is_none() {
            return Err(ParseError::new(ErrorKind::V2Family, 13));
        }
        if protocol.is_none() {
            return Err(ParseError::new(ErrorKind::V2Protocol, 13));
        }
    }
    Ok((command, family.unwrap_or(Family::Unspec), protocol.unwrap_or(Protocol::Unspec)))
}

/// Where the TLVs of a header without usable addresses start (D3): after the family's address
/// block, or right after the 16-byte prefix, whichever the TLVs frame exactly from, in that
/// order; but a start whose CRC32C TLV verifies wins. That exception is the AWS NLB health
/// check (LOCAL, family 0x11, CRC32C + 74-byte zero NOOP, read from byte 16 as `HAProxy`
/// does): its NOOP also frames from byte 28, as 24 empty TLVs of type 0.
fn local_tlv_start(hdr: &[u8], addr_len: usize) -> Option<usize> {
    let crc_verifies = |start: usize| {
        Tlvs::new(&hdr[start..], start)
            .find(|t| t.kind == tlv::CRC32C && t.value.len() == 4)
            .is_some_and(|t| crc32c::verify(hdr, t.offset + 3))
    };
    let framing = [PREFIX_LEN + addr_len, PREFIX_LEN]
        .into_iter()
        .filter(|&start| hdr.get(start..).is_some_and(tlv::frames_exactly));
    framing.clone().find(|&s| crc_verifies(s)).or_else(|| framing.clone().next())
}

/// Checks every CRC32C TLV from `tlv_start` on against the header (rule 34).
fn verify_crcs(hdr: &[u8], tlv_start: usize) -> Result<(), ParseError> {
    let region = hdr.get(tlv_start..).unwrap_or_default();
    for t in Tlvs::new(region, tlv_start).filter(|t| t.kind == tlv::CRC32C) {
        if !crc32c::verify(hdr, t.offset + 3) {
            return Err(ParseError::new(ErrorKind::ChecksumMismatch, t.offset + 3));
        }
    }
    Ok(())
}

/// One end's IP address and port in the block after the prefix of `hdr`, a header of an
/// INET or INET6 `family` that has addresses (rules 23, 25); `None` if the block is not all
/// there.
#[inline]
pub(crate) fn endpoint(hdr: &[u8], family: Family, end: End) -> Option<SocketAddr> {
    let block = hdr.get(PREFIX_LEN..)?;
    let i = end as usize;
    match family {
        Family::Inet => {
            let block = block.first_chunk::<12>()?;
            let ip = block.get(4 * i..)?.first_chunk::<4>()?;
            let port = block.get(8 + 2 * i..)?.first_chunk::<2>()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(*ip), u16::from_be_bytes(*port))))
        }
        Family::Inet6 => {
            let block = block.first_chunk::<36>()?;
            let ip = block.get(16 * i..)?.first_chunk::<16>()?;
            let port = u16::from_be_bytes(*block.get(32 + 2 * i..)?.first_chunk::<2>()?);
            Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(*ip), port, 0, 0)))
        }
        Family::Unix | Family::Unspec => None,
    }
}

/// The 16-byte prefix: signature, version and command, family and protocol, and `body`, the
/// length of what follows.
fn prefix(command: Command, family: Family, protocol: Protocol, body: u16) -> [u8; 16] {
    let mut out = [0; PREFIX_LEN];
    out[..12].copy_from_slice(&SIGNATURE);
    out[12] = 0x20 | command as u8;
    out[13] = (family as u8) << 4 | protocol as u8;
    out[14..].copy_from_slice(&body.to_be_bytes());
    out
}

/// The prefix and address block of a header for two IP endpoints of one family, on the stack
/// (the `Builder` starts from it, and `build_v2(source, destination)` returns it as is), and
/// its length (28 or 52); `None` for mixed families.
#[inline]
#[must_use]
pub(crate) fn inet_header(
    command: Command,
    protocol: Protocol,
    s: SocketAddr,
    d: SocketAddr,
) -> Option<([u8; 52], usize)> {
    let mut out = [0u8; 52];
    let (family, len) = match (s, d) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out[16..20].copy_from_slice(&s.ip().octets());
            out[20..24].copy_from_slice(&d.ip().octets());
            out[24..26].copy_from_slice(&s.port().to_be_bytes());
            out[26..28].copy_from_slice(&d.port().to_be_bytes());
            (Family::Inet, 28)
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            out[16..32].copy_from_slice(&s.ip().octets());
            out[32..48].copy_from_slice(&d.ip().octets());
            out[48..50].copy_from_slice(&s.port().to_be_bytes());
            out[50..52].copy_from_slice(&d.port().to_be_bytes());
            (Family::Inet6, 52)
        }
        _ => return None,
    };
    out[..PREFIX_LEN].copy_from_slice(&prefix(command, family, protocol, len as u16 - 16));
    Some((out, len))
}

/// Writes a v2 header: the prefix and address block at creation, then TLVs in the order they
/// are added; `finish` fills in the length and, if asked for, the CRC32C (written as the first
/// TLV, as `HAProxy` does, rule 46). Nothing invalid is ever emitted.
#[derive(Debug, Clone)]
pub struct Builder {
    buf: Vec<u8>,
    crc_at: Option<usize>,
}

impl Builder {
    /// Starts a header for `ends`: `Endpoints::None` gives family UNSPEC (with LOCAL, the
    /// health-check form). `crc32c` reserves a CRC32C TLV, filled in by [`Builder::finish`].
    ///
    /// # Errors
    /// Mixed IP families, a UNIX address over 108 bytes, or addresses for a LOCAL or
    /// UNSPEC-protocol header (which carries none).
    pub fn new(
        command: Command,
        protocol: Protocol,
        ends: &Endpoints<'_>,
        crc32c: bool,
    ) -> Result<Self, BuildError> {
        if (command == Command::Local || protocol == Protocol::Unspec) && *ends != Endpoints::None {
            return Err(BuildError::AddressesIgnored);
        }
        let mut buf = Vec::with_capacity(64);
        match ends {
            Endpoints::None => buf.extend_from_slice(&prefix(command, Family::Unspec, protocol, 0)),
            Endpoints::Inet(s, d) => {
                let (head, len) =
                    inet_header(command, protocol, *s, *d).ok_or(BuildError::MixedFamilies)?;
                buf.extend_from_slice(head.get(..len).unwrap_or_default());
            }
            Endpoints::Unix(s, d) => {
                let body = 2 * UNIX_ADDR_LEN as u16;
                buf.extend_from_slice(&prefix(command, Family::Unix, protocol, body));
                for path in [s, d] {
                    // A pathname ends at its first NUL; only an abstract name may hold NULs.
                    let ok = path.len() <= UNIX_ADDR_LEN
                        && (path.first() == Some(&0) || !path.contains(&0));
                    if !ok {
                        return Err(BuildError::UnixPath { len: path.len() });
                    }
                    buf.extend_from_slice(path);
                    buf.resize(buf.len() + UNIX_ADDR_LEN - path.len(), 0);
                }
            }
        }
        let mut builder = Self { buf, crc_at: None };
        if crc32c {
            builder.buf.extend_from_slice(&[tlv::CRC32C, 0, 4]);
            builder.crc_at = Some(builder.buf.len());
            builder.buf.extend_from_slice(&[0; 4]);
        }
        Ok(builder)
    }

    /// Appends a TLV.
    ///
    /// # Errors
    /// A value over 65535 bytes, a CRC32C TLV (ask `new` for one instead), or a value the
    /// receiver would reject (SSL under 5 bytes or with sub-TLVs that do not frame, `UNIQUE_ID`
    /// over 128 bytes).
    pub fn tlv(&mut self, kind: u8, value: &[u8]) -> Result<&mut Self, BuildError> {
        let Ok(len) = u16::try_from(value.len()) else {
            return Err(BuildError::TlvTooLarge { kind, len: value.len() });
        };
        let mut one = Vec::with_capacity(3 + value.len());
        one.push(kind);
        one.extend_from_slice(&len.to_be_bytes());
        one.extend_from_slice(value);
        if kind == tlv::CRC32C || tlv::validate(&one, 0, false).is_err() {
            return Err(BuildError::TlvLength { kind, len: value.len() });
        }
        self.buf.extend_from_slice(&one);
        Ok(self)
    }

    /// Reserves a CRC32C TLV at this point, filled in by [`Builder::finish`]: a header rebuilt
    /// from the TLVs it was received with keeps its checksum where it was.
    ///
    /// # Errors
    /// A CRC32C TLV is reserved already (here or by `new`): a header carries one checksum.
    pub fn crc32c(&mut self) -> Result<&mut Self, BuildError> {
        if self.crc_at.is_some() {
            return Err(BuildError::TlvLength { kind: tlv::CRC32C, len: 4 });
        }
        self.buf.extend_from_slice(&[tlv::CRC32C, 0, 4]);
        self.crc_at = Some(self.buf.len());
        self.buf.extend_from_slice(&[0; 4]);
        Ok(self)
    }

    /// The finished header.
    ///
    /// # Errors
    /// More than 65535 bytes after the prefix.
    pub fn finish(mut self) -> Result<Vec<u8>, BuildError> {
        let Ok(body) = u16::try_from(self.buf.len() - PREFIX_LEN) else {
            return Err(BuildError::HeaderTooLarge { len: self.buf.len() });
        };
        self.buf[14..16].copy_from_slice(&body.to_be_bytes());
        if let Some(at) = self.crc_at {
            let crc = crc32c::append(0, &self.buf);
            self.buf[at..at + 4].copy_from_slice(&crc.to_be_bytes());
        }
        Ok(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Addresses;

    fn opts() -> Options {
        Options::default()
    }

    fn hdr(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.push(ver_cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn complete(buf: &[u8]) -> Layout {
        match parse(buf, &opts()) {
            Ok(Status::Complete { header, consumed }) => {
                assert_eq!(consumed, header.len());
                *header.layout()
            }
            other => panic!("{other:?}"),
        }
    }

    /// The addresses of the whole header `buf`, through the public accessor.
    fn addresses_of(buf: &[u8]) -> Addresses {
        crate::Header::from_parts(buf, complete(buf)).unwrap().addresses()
    }

    fn err(buf: &[u8]) -> (ErrorKind, usize) {
        let e = parse(buf, &opts()).unwrap_err();
        (e.kind, e.offset)
    }

    const V4_BLOCK: [u8; 12] = [127, 0, 0, 1, 10, 0, 0, 2, 0xDC, 0x04, 0x01, 0xBB];

    #[test]
    fn rule23_tcp4_and_every_prefix_partial_with_exact_needed() {
        let h = hdr(0x21, 0x11, &V4_BLOCK);
        assert_eq!(
            addresses_of(&h),
            Addresses::V4 {
                src: "127.0.0.1:56324".parse().unwrap(),
                dst: "10.0.0.2:443".parse().unwrap()
            }
        );
        for n in 0..h.len() {
            let Ok(Status::Partial { needed }) = parse(&h[..n], &opts()) else { panic!("{n}") };
            if n >= 16 {
                assert_eq!(needed, h.len() - n);
            } else {
                assert!(n + needed <= h.len());
            }
        }
    }

    #[test]
    fn d1_signature_mismatch_at_its_byte() {
        let mut h = hdr(0x21, 0x11, &V4_BLOCK);
        for k in 0..12 {
            let saved = h[k];
            h[k] ^= 0x40;
            assert_eq!(err(&h[..=k]), (ErrorKind::NotProxyProtocol, k));
            h[k] = saved;
        }
    }

    #[test]
    fn rule19_22_bad_version_command_family_protocol() {
        assert_eq!(err(&hdr(0x11, 0x11, &V4_BLOCK)), (ErrorKind::V2Version, 12));
        assert_eq!(err(&hdr(0x22, 0x11, &V4_BLOCK)), (ErrorKind::V2Command, 12));
        assert_eq!(err(&hdr(0x21, 0x41, &V4_BLOCK)), (ErrorKind::V2Family, 13));
        assert_eq!(err(&hdr(0x21, 0x13, &V4_BLOCK)), (ErrorKind::V2Protocol, 13));
        // Decided as soon as the byte is there.
        assert_eq!(err(&hdr(0x21, 0x13, &[])[..14]), (ErrorKind::V2Protocol, 13));
    }

    #[test]
    fn cve_2019_14243_truncated_address_block() {
        assert_eq!(err(&hdr(0x21, 0x11, &[])), (ErrorKind::V2AddressTruncated, 14));
        assert_eq!(err(&hdr(0x21, 0x21, &[0; 35])), (ErrorKind::V2AddressTruncated, 14));
        assert_eq!(err(&hdr(0x21, 0x31, &[0; 215])), (ErrorKind::V2AddressTruncated, 14));
    }

    #[test]
    fn d7_max_size() {
        let h = hdr(0x21, 0x11, &[0; 5000]);
        assert_eq!(err(&h[..16]), (ErrorKind::HeaderTooLarge, 14));
        let big = Options { max_size: MAX_LEN, ..opts() };
        assert!(parse(&h[..16], &big).is_ok());
    }

    #[test]
    fn d2_unspec_under_proxy_has_no_addresses_and_honours_length() {
        for fam in [0x00, 0x01, 0x02, 0x10, 0x20, 0x30] {
            let h = hdr(0x21, fam, &V4_BLOCK);
            assert_eq!(addresses_of(&h), Addresses::None);
            assert_eq!(complete(&h).len as usize, h.len());
        }
    }

    #[test]
    fn d3_local_any_family_and_aws_nlb_health_check() {
        // kubernetes#57250: LOCAL, family 0x11, len 84: CRC32C + 74-byte NOOP, no addresses.
        let mut body = vec![tlv::CRC32C, 0, 4, 0, 0, 0, 0, tlv::NOOP, 0, 74];
        body.resize(84, 0);
        let mut h = hdr(0x20, 0x11, &body);
        let crc = crc32c::append(0, &h);
        h[19..23].copy_from_slice(&crc.to_be_bytes());
        let l = complete(&h);
        assert_eq!(
            (l.command, addresses_of(&h), l.tlv_start),
            (Command::Local, Addresses::None, 16)
        );
        // Damaged in transit, its CRC32C does not verify from byte 16: D3's order then reads
        // the NOOP after the address block, where no CRC32C is (HAProxy 2.6 accepts it too).
        h[20] ^= 1;
        assert_eq!(complete(&h).tlv_start, 28);
        // With no address block to choose, the CRC32C is where it is, and checked.
        let mut h = hdr(0x20, 0x00, &body);
        let crc = crc32c::append(0, &h);
        h[19..23].copy_from_slice(&(crc ^ 1).to_be_bytes());
        assert_eq!(err(&h), (ErrorKind::ChecksumMismatch, 19));
        // Junk in a LOCAL body is not an error: no TLVs then.
        let l = complete(&hdr(0x20, 0xFF, &[1, 2, 3, 4, 5]));
        assert_eq!(l.tlv_start, 21);
        // TLVs after the address block when they frame from there.
        let mut body = V4_BLOCK.to_vec();
        body.extend_from_slice(&[tlv::ALPN, 0, 2, b'h', b'2']);
        assert_eq!(complete(&hdr(0x20, 0x11, &body)).tlv_start, 28);
    }

    #[test]
    fn d3_when_both_starts_frame_a_verifying_crc_decides() {
        // LOCAL with an all-zero address block (frames from 16 as four empty type-0 TLVs)
        // and TLVs after it: the block is the block, whether a CRC32C is there or not.
        for crc in [false, true] {
            let mut b =
                Builder::new(Command::Local, Protocol::Unspec, &Endpoints::None, crc).unwrap();
            b.tlv(tlv::ALPN, b"h2").unwrap();
            let mut bytes = b.finish().unwrap();
            bytes[13] = 0x11;
            bytes.splice(16..16, [0; 12]);
            bytes[15] += 12;
            if crc {
                bytes[31..35].fill(0);
                let c = crc32c::append(0, &bytes);
                bytes[31..35].copy_from_slice(&c.to_be_bytes());
            }
            assert_eq!(complete(&bytes).tlv_start, 28, "crc {crc}");
        }
        // An address block that happens to frame as a (wrong) CRC32C TLV from byte 16 is
        // still the address block (fuzz: fuzz-local-address-block-frames-as-bad-crc).
        let body = [3, 0, 4, 0xAA, 0xBB, 0xCC, 0xDD, 4, 0, 2, 0xEE, 0xFF];
        assert_eq!(complete(&hdr(0x20, 0x11, &body)).tlv_start, 28);
        // Structure decides the start; D4 then applies to it (a 1-byte SSL value is invalid).
        let h = hdr(0x20, 0x00, &[tlv::SSL, 0, 1, 1]);
        assert_eq!(err(&h), (ErrorKind::TlvLength, 17));
    }

    #[test]
    fn rule34_crc_over_received_bytes_whatever_the_order() {
        // CRC32C after another TLV (peers that re-sort TLVs get this wrong).
        let mut body = V4_BLOCK.to_vec();
        body.extend_from_slice(&[tlv::AUTHORITY, 0, 1, b'a', tlv::CRC32C, 0, 4, 0, 0, 0, 0]);
        let mut h = hdr(0x21, 0x11, &body);
        let crc = crc32c::append(0, &h);
        let at = h.len() - 4;
        h[at..].copy_from_slice(&crc.to_be_bytes());
        complete(&h);
        h[at] ^= 0x80;
        assert_eq!(err(&h), (ErrorKind::ChecksumMismatch, at));
        let no_check = Options { verify_checksum: false, ..opts() };
        assert!(parse(&h, &no_check).is_ok());
    }

    #[test]
    fn builder_roundtrips_every_family() {
        let cases: [(Endpoints<'_>, Protocol); 4] = [
            (
                Endpoints::Inet("1.2.3.4:5".parse().unwrap(), "6.7.8.9:10".parse().unwrap()),
                Protocol::Stream,
            ),
            (
                Endpoints::Inet("[::1]:5".parse().unwrap(), "[2001:db8::2]:10".parse().unwrap()),
                Protocol::Dgram,
            ),
            (Endpoints::Unix(b"/tmp/a", b"\0abstract"), Protocol::Stream),
            (Endpoints::None, Protocol::Unspec),
        ];
        for (ends, proto) in cases {
            let mut b = Builder::new(Command::Proxy, proto, &ends, true).unwrap();
            b.tlv(tlv::ALPN, b"h2").unwrap().tlv(0xE1, &[]).unwrap();
            let bytes = b.finish().unwrap();
            let l = complete(&bytes);
            assert_eq!(l.len as usize, bytes.len());
        }
    }

    #[test]
    fn builder_refuses_addresses_that_would_be_ignored() {
        let ends = Endpoints::Inet("1.2.3.4:5".parse().unwrap(), "6.7.8.9:5".parse().unwrap());
        for (cmd, proto) in [(Command::Local, Protocol::Stream), (Command::Proxy, Protocol::Unspec)]
        {
            let e = Builder::new(cmd, proto, &ends, false).unwrap_err();
            assert_eq!(e, BuildError::AddressesIgnored);
        }
    }

    #[test]
    fn builder_refuses_invalid() {
        let ends = Endpoints::Inet("1.2.3.4:5".parse().unwrap(), "[::1]:5".parse().unwrap());
        assert!(Builder::new(Command::Proxy, Protocol::Stream, &ends, false).is_err());
        let long = [b'a'; 109];
        assert!(Builder::new(
            Command::Proxy,
            Protocol::Stream,
            &Endpoints::Unix(&long, b"/"),
            false
        )
        .is_err());
        assert!(Builder::new(
            Command::Proxy,
            Protocol::Stream,
            &Endpoints::Unix(b"/a\0b", b"/"),
            false
        )
        .is_err());
        let mut b =
            Builder::new(Command::Local, Protocol::Unspec, &Endpoints::None, false).unwrap();
        assert!(b.tlv(tlv::CRC32C, &[0; 4]).is_err());
        assert!(b.tlv(tlv::SSL, &[0; 4]).is_err());
        assert!(b.tlv(0xE1, &vec![0; 65536]).is_err());
        b.tlv(0xE1, &vec![0; 65535 - 3]).unwrap();
        assert!(b.clone().finish().is_ok());
        b.tlv(0xE2, &[]).unwrap();
        assert!(matches!(b.finish(), Err(BuildError::HeaderTooLarge { .. })));
    }
}
