//! The parsed header: field enums, the address block, and [`Header`], a zero-copy view over
//! the wire bytes plus a small [`Layout`] of what parsing learned.

use core::net::{Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::tlv::{self, Ssl, Tlv, Tlvs};

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
        match self {
            Self::Unspec => 0,
            Self::Inet => 12,
            Self::Inet6 => 36,
            Self::Unix => 2 * UNIX_ADDR_LEN,
        }
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
    /// The decoded addresses.
    pub addresses: Addresses,
    /// Offset of the first TLV in the header bytes (equal to the length when there is none).
    pub tlv_start: u32,
    /// Bytes the header takes on the wire.
    pub len: u32,
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
        let fits = bytes.len() == layout.len as usize
            && layout.tlv_start <= layout.len
            && (layout.addresses != Addresses::Unix || bytes.len() >= 16 + 2 * UNIX_ADDR_LEN);
        fits.then_some(Self { bytes, layout })
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

    /// The client's address, or `None` when the real connection's must be used.
    #[must_use]
    pub fn source(&self) -> Option<Address<'a>> {
        match self.layout.addresses {
            Addresses::None => None,
            Addresses::V4 { src, .. } => Some(Address::Inet(SocketAddr::V4(src))),
            Addresses::V6 { src, src_port, .. } => {
                Some(Address::Inet(SocketAddr::V6(SocketAddrV6::new(src, src_port, 0, 0))))
            }
            Addresses::Unix => self.bytes.get(16..16 + UNIX_ADDR_LEN).map(Address::Unix),
        }
    }

    /// The address the client connected to, or `None`.
    #[must_use]
    pub fn destination(&self) -> Option<Address<'a>> {
        match self.layout.addresses {
            Addresses::None => None,
            Addresses::V4 { dst, .. } => Some(Address::Inet(SocketAddr::V4(dst))),
            Addresses::V6 { dst, dst_port, .. } => {
                Some(Address::Inet(SocketAddr::V6(SocketAddrV6::new(dst, dst_port, 0, 0))))
            }
            Addresses::Unix => {
                self.bytes.get(16 + UNIX_ADDR_LEN..16 + 2 * UNIX_ADDR_LEN).map(Address::Unix)
            }
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

    /// The SSL TLV (0x20), decoded.
    #[must_use]
    pub fn ssl(&self) -> Option<Ssl<'a>> {
        self.tlv(tlv::SSL).and_then(|t| Ssl::new(t.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_stays_small() {
        // The Python Header holds a Layout: keep it compact (memory target of issue 5).
        assert!(core::mem::size_of::<Layout>() <= 56, "{}", core::mem::size_of::<Layout>());
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
}
