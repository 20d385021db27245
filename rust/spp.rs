//! Cloudflare Spectrum's Simple Proxy Protocol (SPP): the fixed header Spectrum puts before
//! every UDP datagram it relays.
//!
//! Source: Cloudflare's "Simple Proxy Protocol Header" reference,
//! <https://developers.cloudflare.com/spectrum/reference/simple-proxy-protocol-header/>.
//! 38 bytes, every field in network byte order:
//!
//! | offset | size | field                                                    |
//! |--------|------|----------------------------------------------------------|
//! | 0      | 2    | magic `0x56EC`                                           |
//! | 2      | 16   | client address (IPv6, or IPv4-mapped IPv6 for IPv4)      |
//! | 18     | 16   | proxy address: where the client sent the datagram         |
//! | 34     | 2    | client port                                              |
//! | 36     | 2    | proxy port                                               |
//!
//! Only the magic can be wrong: any 36 bytes after it are some pair of addresses and ports,
//! so the parser decides at byte 0 or 1 and otherwise only needs 38 bytes. IPv4-mapped
//! addresses are reported as IPv4 (as a dual-stack socket's peer would be written by hand)
//! and written back mapped, so building what was parsed gives the same 38 bytes.

use core::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::{ErrorKind, ParseError, Status};

/// The two magic bytes that open every SPP header.
pub const MAGIC: [u8; 2] = [0x56, 0xEC];
/// Length of an SPP header; the payload starts at this offset.
pub const LEN: usize = 38;

/// A parsed SPP header: who sent the datagram, and where they sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SppHeader {
    /// The client: the datagram's original source address and port.
    pub client: SocketAddr,
    /// The proxy: the Spectrum address and port the client sent the datagram to.
    pub proxy: SocketAddr,
}

impl SppHeader {
    /// The 38 bytes of this header on the wire.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; LEN] {
        write(self.client, self.proxy)
    }
}

/// Whether `buf` starts with the SPP magic: `Some(true)`, `Some(false)`, or `None` when it is
/// a one-byte prefix of it (an empty buffer too).
#[must_use]
pub fn detect(buf: &[u8]) -> Option<bool> {
    match buf {
        [] | [0x56] => None,
        [a, b, ..] => Some([*a, *b] == MAGIC),
        [_] => Some(false),
    }
}

/// Parses the SPP header at the start of `buf`; `consumed` is always [`LEN`].
///
/// # Errors
/// [`ErrorKind::SppMagic`] at the first byte that differs from the magic.
pub fn parse(buf: &[u8]) -> Result<Status<SppHeader>, ParseError> {
    for (i, (&got, &want)) in buf.iter().zip(MAGIC.iter()).enumerate() {
        if got != want {
            return Err(ParseError::new(ErrorKind::SppMagic, i));
        }
    }
    let Some(bytes) = buf.first_chunk::<LEN>() else {
        return Ok(Status::Partial { needed: LEN - buf.len() });
    };
    let port = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
    Ok(Status::Complete {
        header: SppHeader {
            client: SocketAddr::new(ip(bytes, 2), port(34)),
            proxy: SocketAddr::new(ip(bytes, 18), port(36)),
        },
        consumed: LEN,
    })
}

/// The 38-byte header for a datagram from `client` received by the proxy at `proxy`.
/// IPv4 addresses are written IPv4-mapped; any pair of addresses can be written.
#[must_use]
pub fn write(client: SocketAddr, proxy: SocketAddr) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..2].copy_from_slice(&MAGIC);
    out[2..18].copy_from_slice(&mapped(client.ip()).octets());
    out[18..34].copy_from_slice(&mapped(proxy.ip()).octets());
    out[34..36].copy_from_slice(&client.port().to_be_bytes());
    out[36..38].copy_from_slice(&proxy.port().to_be_bytes());
    out
}

/// The address whose 16 bytes start at `at` (2 or 18: always inside the header).
fn ip(bytes: &[u8; LEN], at: usize) -> IpAddr {
    let v6 = Ipv6Addr::from(core::array::from_fn::<u8, 16, _>(|i| bytes[at + i]));
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn mapped(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV6};

    /// Written field by field from Cloudflare's table: magic, client `::ffff:203.0.113.7`,
    /// proxy `::ffff:198.51.100.1`, client port 40001 (0x9C41), proxy port 53 (0x0035).
    const V4: [u8; LEN] = [
        0x56, 0xEC, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 203, 0, 113, 7, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 198, 51, 100, 1, //
        0x9C, 0x41, 0x00, 0x35,
    ];
    /// Client `2001:db8::7` port 443, proxy `2001:db8::1` port 65535.
    const V6: [u8; LEN] = [
        0x56, 0xEC, //
        0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, //
        0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        0x01, 0xBB, 0xFF, 0xFF,
    ];

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port)
    }

    fn complete(buf: &[u8]) -> SppHeader {
        match parse(buf) {
            Ok(Status::Complete { header, consumed }) => {
                assert_eq!(consumed, LEN);
                header
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ipv4_vector() {
        let h = complete(&V4);
        assert_eq!(h.client, v4([203, 0, 113, 7], 40001));
        assert_eq!(h.proxy, v4([198, 51, 100, 1], 53));
        assert_eq!(h.to_bytes(), V4);
        assert_eq!(write(h.client, h.proxy), V4);
    }

    #[test]
    fn ipv6_vector() {
        let h = complete(&V6);
        assert_eq!(h.client, "[2001:db8::7]:443".parse::<SocketAddr>().unwrap());
        assert_eq!(h.proxy, "[2001:db8::1]:65535".parse::<SocketAddr>().unwrap());
        assert_eq!(h.to_bytes(), V6);
    }

    #[test]
    fn payload_is_left_alone() {
        let mut buf = V4.to_vec();
        buf.extend_from_slice(b"\x56\xEC payload");
        assert_eq!(complete(&buf), complete(&V4));
    }

    #[test]
    fn every_truncation_is_partial() {
        for n in 0..LEN {
            assert_eq!(parse(&V6[..n]), Ok(Status::Partial { needed: LEN - n }), "{n}");
        }
    }

    #[test]
    fn bad_magic_at_the_first_differing_byte() {
        for (buf, offset) in [
            (&b"\x57\xEC"[..], 0),
            (b"\x56\xED", 1),
            (b"\x00", 0),
            (b"\xEC\x56", 0),
            (b"PROXY TCP4", 0),
        ] {
            assert_eq!(parse(buf), Err(ParseError::new(ErrorKind::SppMagic, offset)));
        }
        let mut wrong = V4;
        wrong[1] = 0xEE;
        assert_eq!(parse(&wrong), Err(ParseError::new(ErrorKind::SppMagic, 1)));
    }

    #[test]
    fn unmapped_ipv6_kept_and_mapped_read_as_ipv4() {
        // `::203.0.113.7` (IPv4-compatible, not mapped) stays IPv6.
        let compat = SocketAddr::V6(SocketAddrV6::new(
            Ipv4Addr::new(203, 0, 113, 7).to_ipv6_compatible(),
            1,
            0,
            0,
        ));
        let bytes = write(compat, compat);
        assert_eq!(complete(&bytes).client, compat);
        // A mapped IPv6 written explicitly reads back as IPv4, same bytes.
        let as_v6 = SocketAddr::new(IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped()), 9);
        let h = complete(&write(as_v6, as_v6));
        assert_eq!(h.client, v4([10, 1, 2, 3], 9));
        assert_eq!(h.to_bytes(), write(as_v6, as_v6));
    }

    #[test]
    fn detect_magic() {
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"\x56"), None);
        assert_eq!(detect(b"\x57"), Some(false));
        assert_eq!(detect(b"\x56\xEC"), Some(true));
        assert_eq!(detect(b"\x56\xED"), Some(false));
        assert_eq!(detect(&V6), Some(true));
    }
}
