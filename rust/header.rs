//! The parsed header: field enums, the address block, and [`Header`], a zero-copy view over
//! the wire bytes plus a small [`Layout`] of what parsing learned.

use core::net::{Ipv6Addr, SocketAddr, SocketAddrV4};

use crate::tlv::{self, Ssl, Tlv, Tlvs};
use crate::{v1, v2};

/// Size of one UNIX address in a v2 address block (SPEC rule 27).
pub const UNIX_ADDR_LEN: usize = 108;

/// Low nibble of v2 byte 12 (SPEC rules 19-21). v1 headers are always `Proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    /// The proxy's own connection (health check): use the real endpoints.
    Local = 0,
    /// A relayed connection: the header's addresses are the client's.
    Proxy = 1,
}

/// Address family: high nibble of v2 byte 13, or the v1 protocol token (SPEC rule 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Family {
    /// Unknown or unsupported (v1 `UNKNOWN`).
    Unspec = 0,
    /// IPv4.
    Inet = 1,
    /// IPv6.
    Inet6 = 2,
    /// UNIX sockets.
    Unix = 3,
}

impl Family {
    /// The family for a nibble value, if it is one of the four defined.
    #[must_use]
    pub const fn from_nibble(n: u8) -> Option<Self> {
        match n {
            0 => Some(Self::Unspec),
            1 => Some(Self::Inet),
            2 => Some(Self::Inet6),
            3 => Some(Self::Unix),
            _ => None,
        }
    }

    /// Bytes this family's address block takes in v2 (0 for UNSPEC).
    #[must_use]
    pub const fn address_block_len(self) -> usize {
        // A table indexed by the discriminant, not a `match`: LLVM compiled the match to an
        // indirect jump through a jump table, the hottest spot of a v2 parse (perf annotate
        // of `proxyproto_rs::parse`, benchmarks/rust `interleaved`, row v2_ipv4/ours).
        const LEN: [usize; 4] = [0, 12, 36, 2 * UNIX_ADDR_LEN];
        LEN[self as usize]
    }
}

/// Transport protocol: low nibble of v2 byte 13 (SPEC rule 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Protocol {
    /// Unknown or unsupported.
    Unspec = 0,
    /// Stream (TCP, UNIX stream).
    Stream = 1,
    /// Datagram (UDP, UNIX dgram).
    Dgram = 2,
}

impl Protocol {
    /// The protocol for a nibble value, if it is one of the three defined.
    #[must_use]
    pub const fn from_nibble(n: u8) -> Option<Self> {
        match n {
            0 => Some(Self::Unspec),
            1 => Some(Self::Stream),
            2 => Some(Self::Dgram),
            _ => None,
        }
    }
}

/// The addresses a header carries, decoded. UNIX paths stay in the wire bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// No addresses: LOCAL, UNSPEC or v1 UNKNOWN. Use the real connection's endpoints.
    None,
    /// IPv4 source and destination.
    V4 {
        /// The client.
        src: SocketAddrV4,
        /// Where the client connected to.
        dst: SocketAddrV4,
    },
    /// IPv6 source and destination (kept compact: no flow info or scope on the wire).
    V6 {
        /// The client's address.
        src: Ipv6Addr,
        /// The address the client connected to.
        dst: Ipv6Addr,
        /// The client's port.
        src_port: u16,
        /// The port the client connected to.
        dst_port: u16,
    },
    /// UNIX addresses: 108 bytes each at offsets 16 and 124 of the header.
    Unix,
}

/// Which end of the connection: where each address and port sits in its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Source = 0,
    Destination = 1,
}

/// One end of a connection as the header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Address<'a> {
    /// An IP address and port.
    Inet(SocketAddr),
    /// The 108 raw bytes of a UNIX address (NUL padded; a leading NUL marks an abstract
    /// address). See [`unix_path`].
    Unix(&'a [u8]),
}

/// The meaningful bytes of a 108-byte UNIX address: a pathname ends at its first NUL; an
/// abstract address (first byte NUL) keeps its leading NUL and loses only trailing NULs; all
/// NULs is the empty (unnamed) address.
#[must_use]
pub fn unix_path(raw: &[u8]) -> &[u8] {
    if raw.first() == Some(&0) {
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        &raw[..end]
    } else {
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        &raw[..end]
    }
}

/// Everything parsing learned about a header, as plain `Copy` data that borrows nothing.
/// Together with the header's wire bytes it makes a [`Header`].
///
/// The addresses are not in it: [`Header::addresses`] reads them from the wire bytes, where
/// parsing checked them. That keeps a layout at 16 bytes, which the optimizer holds in
/// registers; with the decoded addresses in it (52 bytes, an enum with data) every parse
/// wrote it to the stack piecewise and read it back in wider loads, which stalled on store
/// forwarding and took twice the time of the parse itself (speed trick `layout-16` in
/// benchmarks/README.md: `ir_rs "v2 IPv4"`, `cd benchmarks/rust && cargo bench -- parse/v2_ipv4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// 1 or 2.
    pub version: u8,
    /// LOCAL or PROXY.
    pub command: Command,
    /// The address family.
    pub family: Family,
    /// The transport protocol.
    pub protocol: Protocol,
    /// v1 TCP4/TCP6: where the destination address, the source port and the destination port
    /// start in the line (the source address starts at byte 11). Zeros otherwise.
    pub(crate) v1_fields: [u8; 3],
    /// Offset of the first TLV in the header bytes (equal to the length when there is none).
    pub tlv_start: u32,
    /// Bytes the header takes on the wire.
    pub len: u32,
}

impl Layout {
    /// Whether the header carries addresses: a PROXY command with a known family and
    /// protocol (v1 `UNKNOWN`, v2 LOCAL and UNSPEC do not; rules 20, 24, 26).
    #[must_use]
    pub fn has_addresses(&self) -> bool {
        self.command == Command::Proxy
            && self.family != Family::Unspec
            && self.protocol != Protocol::Unspec
    }
}

/// A parsed header: the wire bytes and their [`Layout`]. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header<'a> {
    bytes: &'a [u8],
    layout: Layout,
}

impl<'a> Header<'a> {
    /// Joins `bytes` (exactly the header, `layout.len` long) with the layout parsing gave.
    /// Returns `None` if they do not fit each other.
    #[must_use]
    pub fn from_parts(bytes: &'a [u8], layout: Layout) -> Option<Self> {
        let header = Self { bytes, layout };
        let fits = bytes.len() == layout.len as usize
            && layout.tlv_start <= layout.len
            && (!layout.has_addresses() || header.addresses() != Addresses::None);
        fits.then_some(header)
    }

    /// Joins bytes and the layout a successful parse of exactly those bytes gave, without
    /// [`Header::from_parts`]'s check. Accessors never panic even if they do not fit (they
    /// read through bounds-checked `get`), they would only give wrong answers.
    #[must_use]
    pub const fn from_parsed(bytes: &'a [u8], layout: Layout) -> Self {
        Self { bytes, layout }
    }

    /// The header's bytes exactly as received.
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// What parsing learned.
    #[must_use]
    pub const fn layout(&self) -> &Layout {
        &self.layout
    }

    /// 1 (text) or 2 (binary).
    #[must_use]
    pub const fn version(&self) -> u8 {
        self.layout.version
    }

    /// LOCAL or PROXY.
    #[must_use]
    pub const fn command(&self) -> Command {
        self.layout.command
    }

    /// The address family.
    #[must_use]
    pub const fn family(&self) -> Family {
        self.layout.family
    }

    /// The transport protocol.
    #[must_use]
    pub const fn protocol(&self) -> Protocol {
        self.layout.protocol
    }

    /// Bytes the header took.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.layout.len as usize
    }

    /// Never true: a header has at least 15 bytes.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.layout.len == 0
    }

    /// The addresses, decoded from the wire bytes (`None` when the header has none, see
    /// [`Layout::has_addresses`]).
    #[must_use]
    pub fn addresses(&self) -> Addresses {
        match (self.end(End::Source), self.end(End::Destination)) {
            (
                Some(Address::Inet(SocketAddr::V4(src))),
                Some(Address::Inet(SocketAddr::V4(dst))),
            ) => Addresses::V4 { src, dst },
            (Some(Address::Inet(SocketAddr::V6(s))), Some(Address::Inet(SocketAddr::V6(d)))) => {
                let (src, dst, src_port, dst_port) = (*s.ip(), *d.ip(), s.port(), d.port());
                Addresses::V6 { src, dst, src_port, dst_port }
            }
            (Some(Address::Unix(_)), Some(Address::Unix(_))) => Addresses::Unix,
            _ => Addresses::None,
        }
    }

    /// The client's address, or `None` when the real connection's must be used.
    #[must_use]
    #[inline]
    pub fn source(&self) -> Option<Address<'a>> {
        self.end(End::Source)
    }

    /// The address the client connected to, or `None`.
    #[must_use]
    #[inline]
    pub fn destination(&self) -> Option<Address<'a>> {
        self.end(End::Destination)
    }

    /// One end, read from the wire bytes alone (a source read decodes no destination).
    #[inline]
    pub(crate) fn end(&self, end: End) -> Option<Address<'a>> {
        if !self.layout.has_addresses() {
            return None;
        }
        match (self.layout.version, self.layout.family) {
            (1, _) => v1::endpoint(self.bytes, &self.layout, end).map(Address::Inet),
            (_, Family::Unix) => {
                let start = v2::PREFIX_LEN + end as usize * UNIX_ADDR_LEN;
                self.bytes.get(start..start + UNIX_ADDR_LEN).map(Address::Unix)
            }
            _ => v2::endpoint(self.bytes, self.layout.family, end).map(Address::Inet),
        }
    }

    /// The TLVs in wire order (validated when the header was parsed).
    #[must_use]
    pub fn tlvs(&self) -> Tlvs<'a> {
        let start = self.layout.tlv_start as usize;
        Tlvs::new(self.bytes.get(start..).unwrap_or_default(), start)
    }

    /// The first TLV of type `kind`.
    #[must_use]
    pub fn tlv(&self, kind: u8) -> Option<Tlv<'a>> {
        self.tlvs().find(|t| t.kind == kind)
    }

    /// The AWS VPC endpoint id: the first TLV 0xEA of subtype 0x01 whose id is plausible
    /// (letters, digits and `-`, at least one), so that what is returned is safe to print
    /// and log. `None` when there is none.
    #[must_use]
    pub fn aws_vpce_id(&self) -> Option<&'a str> {
        self.cloud(tlv::AWS, |v| tlv::aws_vpce_id(v).and_then(vpce_id_text))
    }

    /// The Azure Private Link LINKID: the first TLV 0xEE of subtype 0x01 and 5 bytes (other
    /// 0xEE TLVs before it are skipped, as the Go library does).
    #[must_use]
    pub fn azure_link_id(&self) -> Option<u32> {
        self.cloud(tlv::AZURE, tlv::azure_link_id)
    }

    /// GCP's pscConnectionId: the first TLV 0xE0 of exactly 8 bytes. 0xE0 is also generic
    /// custom space, so other 0xE0 TLVs are skipped, never rejected.
    #[must_use]
    pub fn gcp_psc_connection_id(&self) -> Option<u64> {
        self.cloud(tlv::GCP, tlv::gcp_psc_connection_id)
    }

    /// The first TLV of type `kind` that `read` makes sense of.
    fn cloud<T>(&self, kind: u8, read: impl Fn(&'a [u8]) -> Option<T>) -> Option<T> {
        self.tlvs().filter(|t| t.kind == kind).find_map(|t| read(t.value))
    }

    /// The SSL TLV (0x20), decoded.
    #[must_use]
    pub fn ssl(&self) -> Option<Ssl<'a>> {
        self.tlv(tlv::SSL).and_then(|t| Ssl::new(t.value))
    }
}

/// `id` as text if it is plausible: letters, digits and `-`, at least one. One table load per
/// byte, and the text is ASCII once it passes, so no UTF-8 check follows: the two range tests
/// per byte and `str::from_utf8` cost ~215 and ~80 instructions for a 21-character id
/// (speed trick `vpce-table` in benchmarks/README.md: `ir_py "$TLV6" 'r = h.aws_vpce_id'`).
fn vpce_id_text(id: &[u8]) -> Option<&str> {
    static PLAUSIBLE: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = (b as u8).is_ascii_alphanumeric() || b == b'-' as usize;
            b += 1;
        }
        t
    };
    if id.is_empty() || !id.iter().all(|&b| PLAUSIBLE[usize::from(b)]) {
        return None;
    }
    // SAFETY: every byte is an ASCII letter, digit or `-` (checked just above), so `id` is
    // valid UTF-8.
    Some(unsafe { core::str::from_utf8_unchecked(id) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_stays_small() {
        // The Python Header holds a Layout: keep it compact (speed trick `layout-16`).
        // 16 bytes also keeps it in registers from the parser to its caller (see Layout).
        assert_eq!(core::mem::size_of::<Layout>(), 16);
    }

    /// Addresses are read from the wire bytes: both ends of every family, each on its own, and
    /// `from_parts` refuses bytes whose addresses do not decode where the layout says.
    #[test]
    fn addresses_from_the_wire_bytes() {
        let opts = crate::Options::default();
        let whole = |buf: &[u8]| match crate::parse_layout(buf, &opts) {
            Ok(crate::Status::Complete { header, .. }) => header,
            other => panic!("{other:?}"),
        };
        let v1 = b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 65535 0\r\n";
        let h = Header::from_parts(v1, whole(v1)).unwrap();
        let (src, dst) = ("[2001:db8::1]:65535", "[::ffff:10.0.0.1]:0");
        assert_eq!(h.source(), Some(Address::Inet(src.parse().unwrap())));
        assert_eq!(h.destination(), Some(Address::Inet(dst.parse().unwrap())));
        let v2 = crate::v2::Builder::new(
            Command::Proxy,
            Protocol::Dgram,
            &crate::Endpoints::Inet(src.parse().unwrap(), dst.parse().unwrap()),
            false,
        )
        .unwrap()
        .finish()
        .unwrap();
        let h2 = Header::from_parts(&v2, whole(&v2)).unwrap();
        assert_eq!((h2.source(), h2.destination()), (h.source(), h.destination()));
        assert_eq!(h2.addresses(), h.addresses());
        // Same length, another line: the recorded places no longer hold an address.
        let other = b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 x5535 0\r\n";
        assert_eq!(other.len(), v1.len());
        assert_eq!(Header::from_parts(other, whole(v1)), None);
        // A layout without addresses fits any bytes of its length.
        let unknown = b"PROXY UNKNOWN\r\n";
        let h = Header::from_parts(unknown, whole(unknown)).unwrap();
        assert_eq!((h.source(), h.addresses()), (None, Addresses::None));
    }

    #[test]
    fn unix_paths() {
        let mut raw = [0u8; UNIX_ADDR_LEN];
        raw[..4].copy_from_slice(b"/a/b");
        assert_eq!(unix_path(&raw), b"/a/b");
        raw[0] = 0;
        assert_eq!(unix_path(&raw), b"\0a/b");
        assert_eq!(unix_path(&[0; UNIX_ADDR_LEN]), b"");
        assert_eq!(unix_path(&[b'x'; UNIX_ADDR_LEN]).len(), UNIX_ADDR_LEN);
    }

    /// The table agrees with "ASCII letter, digit or `-`" for every byte, at every position.
    #[test]
    fn vpce_id_text_is_the_plausibility_rule() {
        assert_eq!(vpce_id_text(b""), None);
        assert_eq!(vpce_id_text(b"vpce-08d2bf15fac5001c9"), Some("vpce-08d2bf15fac5001c9"));
        for b in 0..=255u8 {
            let ok = b.is_ascii_alphanumeric() || b == b'-';
            for id in [vec![b], vec![b'a', b], vec![b, b'a', b'-']] {
                let want = ok.then(|| core::str::from_utf8(&id).unwrap());
                assert_eq!(vpce_id_text(&id), want, "byte {b:#04x} in {id:?}");
            }
        }
    }

    /// The cloud accessors take the first TLV of their type that is well-formed for the
    /// vendor, and an AWS id only when it is plausible.
    #[test]
    fn cloud_tlvs_first_well_formed() {
        let build = |tlvs: &[(u8, &[u8])]| {
            let mut b = crate::v2::Builder::new(
                Command::Local,
                Protocol::Unspec,
                &crate::Endpoints::None,
                false,
            )
            .unwrap();
            for (kind, value) in tlvs {
                b.tlv(*kind, value).unwrap();
            }
            b.finish().unwrap()
        };
        let opts = crate::Options::default();
        let check = |tlvs: &[(u8, &[u8])], want: (Option<&str>, Option<u32>, Option<u64>)| {
            let wire = build(tlvs);
            let Ok(crate::Status::Complete { header: h, .. }) = crate::parse(&wire, &opts) else {
                panic!("{tlvs:?}");
            };
            assert_eq!((h.aws_vpce_id(), h.azure_link_id(), h.gcp_psc_connection_id()), want);
        };
        check(
            &[(0xEA, b"\x02x"), (0xEA, b"\x01"), (0xEA, b"\x01vpce-1a")],
            (Some("vpce-1a"), None, None),
        );
        check(&[(0xEA, b"\x01vpce 1"), (0xEA, b"\x01\x1b[2J")], (None, None, None));
        check(
            &[(0xEE, b"\x02\x01\x02\x03\x04"), (0xEE, b"\x01\x04\x03\x02\x01")],
            (None, Some(0x0102_0304), None),
        );
        check(&[(0xE0, b"relay"), (0xE0, &[0, 0, 0, 0, 0, 0, 1, 2])], (None, None, Some(0x102)));
    }
}
