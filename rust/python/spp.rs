//! Cloudflare Spectrum's Simple Proxy Protocol: `parse_spp()`, `build_spp()` and the
//! `SppHeader` class (the core is `crate::spp`).

use core::hash::{Hash, Hasher};
use core::net::SocketAddr;
use std::collections::hash_map::DefaultHasher;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::convert::{
    address_in, build_error_with, incomplete_error, inet_pair, parse_error, with_bytes, AddrIn,
};
use crate::spp::{self, SppHeader};
use crate::Status;

/// Cloudflare Spectrum's Simple Proxy Protocol header (38 bytes before a UDP payload).
///
/// Immutable, hashable, ``==`` by value, picklable. IPv4 addresses, sent IPv4-mapped on
/// the wire, read back as plain IPv4 text. ``SppHeader(client, proxy)`` makes one from two
/// ``(host, port)`` pairs, as :func:`build_spp` takes them.
#[pyclass(module = "proxyproto_rs._core", name = "SppHeader", frozen)]
pub struct PySppHeader {
    header: SppHeader,
}

/// An IP `(host, port)` for `which`, or a `BuildError`: SPP carries no UNIX addresses.
fn inet_in(py: Python<'_>, obj: &Bound<'_, PyAny>, which: &str) -> PyResult<SocketAddr> {
    match address_in(py, obj, which)? {
        AddrIn::Ip(sa) => Ok(sa),
        AddrIn::Unix(_) => {
            let msg = format!("{which}: SPP carries only IPv4 or IPv6 (host, port) addresses");
            Err(build_error_with(py, "address", &msg))
        }
    }
}

#[pymethods]
impl PySppHeader {
    #[new]
    #[pyo3(signature = (client, proxy))]
    fn py_new(
        py: Python<'_>,
        client: &Bound<'_, PyAny>,
        proxy: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let client = inet_in(py, client, "client")?;
        let proxy = inet_in(py, proxy, "proxy")?;
        Ok(Self { header: SppHeader { client, proxy } })
    }

    /// The client: the datagram's original ``(host, port)``.
    #[getter]
    fn client<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        inet_pair(py, self.header.client.ip(), self.header.client.port())
    }

    /// The proxy: the Spectrum ``(host, port)`` the client sent the datagram to.
    #[getter]
    fn proxy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        inet_pair(py, self.header.proxy.ip(), self.header.proxy.port())
    }

    /// Bytes of the header on the wire; the payload starts there.
    #[getter]
    fn length(&self) -> usize {
        spp::LEN
    }

    /// The 38 wire bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.header.to_bytes())
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.to_bytes(py)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PySppHeader>().is_ok_and(|o| o.get().header == self.header)
    }

    fn __hash__(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.header.hash(&mut h);
        h.finish() >> 1
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "SppHeader(client={}, proxy={})",
            self.client(py)?.repr()?,
            self.proxy(py)?.repr()?
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.get();
        let args = (this.client(py)?, this.proxy(py)?);
        (slf.get_type(), args).into_pyobject(py)
    }
}

/// Parse the Simple Proxy Protocol header at the start of *data* (a UDP datagram).
///
/// Args:
///     data: any C-contiguous buffer; the payload is ``data[38:]``.
///
/// Returns:
///     The :class:`SppHeader`.
///
/// Raises:
///     InvalidHeaderError: *data* does not start with the magic ``0x56EC`` (kind
///         ``"spp_magic"``, offset 0 or 1).
///     IncompleteHeaderError: fewer than 38 bytes (kind ``"incomplete"``).
#[pyfunction]
#[pyo3(signature = (data, /))]
pub(super) fn parse_spp(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<PySppHeader> {
    let (parsed, len) = with_bytes(data, |bytes| (spp::parse(bytes), bytes.len()))?;
    match parsed {
        Ok(Status::Complete { header, .. }) => Ok(PySppHeader { header }),
        Ok(Status::Partial { needed }) => Err(incomplete_error(py, len, needed)),
        Err(e) => Err(parse_error(py, e)),
    }
}

/// The 38-byte Simple Proxy Protocol header for a datagram from *client* to *proxy*.
///
/// Args:
///     client: the client's ``(host, port)``, an IPv4 or IPv6 host (IPv4 is written
///         IPv4-mapped).
///     proxy: the proxy's ``(host, port)``, the same way.
///
/// Raises:
///     BuildError: not an IP ``(host, port)`` (kind ``"address"`` or ``"port"``).
#[pyfunction]
#[pyo3(signature = (client, proxy))]
pub(super) fn build_spp<'py>(
    py: Python<'py>,
    client: &Bound<'py, PyAny>,
    proxy: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let client = inet_in(py, client, "client")?;
    let proxy = inet_in(py, proxy, "proxy")?;
    Ok(PyBytes::new(py, &spp::write(client, proxy)))
}
