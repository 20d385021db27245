//! `_TrustedNetworks`: whether a connection's peer may send a PROXY header (SPEC rule 6).
//!
//! Strategy: the server options turn the `trusted` list into integer (network, mask) pairs
//! once; per connection, the peer's host text (what `getpeername()` returns) is parsed by
//! std's address parser and tested with one AND and compare per network. No Python object
//! is made and no verdict is cached, so the cost does not depend on how many distinct peers
//! a server sees. IPv4 peers and IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`, what a dual-stack
//! listener reports) are tested against networks of both spellings; a zone id
//! (`fe80::1%eth0`) is ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

/// The trusted networks of a ``ServerOptions``, compiled for the per-connection test.
///
/// *v4* and *v6* are lists of ``(network address as int, prefix length)``; *unix*: whether
/// peers without an IP address (UNIX sockets) are trusted.
#[pyclass(module = "proxyproto_rs._core", frozen, name = "_TrustedNetworks")]
pub struct PyTrustedNetworks {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    unix: bool,
}

/// `(network & mask, mask)` for a prefix of `len` bits out of `BITS`, or `None` when too long.
fn masked<const BITS: u32, T>(addr: T, len: u32) -> Option<(T, T)>
where
    T: Copy + core::ops::Not<Output = T> + core::ops::Shl<u32, Output = T>,
    T: core::ops::BitAnd<Output = T> + From<u8>,
{
    if len > BITS {
        return None;
    }
    let zero = T::from(0);
    let mask = if len == 0 { zero } else { !zero << (BITS - len) };
    Some((addr & mask, mask))
}

impl PyTrustedNetworks {
    fn v4_allows(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.v4.iter().any(|&(net, mask)| ip & mask == net)
    }

    fn v6_allows(&self, ip: Ipv6Addr) -> bool {
        let ip = u128::from(ip);
        self.v6.iter().any(|&(net, mask)| ip & mask == net)
    }

    /// The verdict for a host in text form; text that is no IP address is not trusted.
    fn host_allows(&self, host: &str) -> bool {
        let host = host.split_once('%').map_or(host, |(ip, _zone)| ip);
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => self.v4_allows(ip) || self.v6_allows(ip.to_ipv6_mapped()),
            Ok(IpAddr::V6(ip)) => {
                ip.to_ipv4_mapped().is_some_and(|v4| self.v4_allows(v4)) || self.v6_allows(ip)
            }
            Err(_) => false,
        }
    }
}

#[pymethods]
impl PyTrustedNetworks {
    #[new]
    #[pyo3(signature = (v4, v6, unix, /))]
    fn py_new(v4: Vec<(u32, u32)>, v6: Vec<(u128, u32)>, unix: bool) -> PyResult<Self> {
        let too_long = || PyValueError::new_err("prefix length out of range");
        Ok(Self {
            v4: v4
                .into_iter()
                .map(|(a, n)| masked::<32, u32>(a, n).ok_or_else(too_long))
                .collect::<PyResult<_>>()?,
            v6: v6
                .into_iter()
                .map(|(a, n)| masked::<128, u128>(a, n).ok_or_else(too_long))
                .collect::<PyResult<_>>()?,
            unix,
        })
    }

    /// Whether *peer* (a socket's ``getpeername()``) is in the trusted networks; a peer that
    /// is not an ``(host, port, ...)`` tuple (a UNIX socket's path) is when *unix* was set.
    #[pyo3(signature = (peer, /))]
    fn allows(&self, peer: &Bound<'_, PyAny>) -> bool {
        let Ok(tuple) = peer.cast::<PyTuple>() else {
            return self.unix;
        };
        let Ok(first) = tuple.get_item(0) else {
            return self.unix;
        };
        let Ok(host) = first.cast::<PyString>() else {
            return self.unix;
        };
        // Text with lone surrogates cannot be an IP address.
        host.to_str().is_ok_and(|text| self.host_allows(text))
    }
}
