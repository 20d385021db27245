//! Python bindings (`proxyproto_rs._core`): the only module that names pyo3.
//!
//! Every core error is converted once, in `parse_error`/`build_error`, into the pure-Python
//! hierarchy of `proxyproto_rs._errors`. Headers keep their wire bytes and a `Layout`; every
//! field is materialised only when read.

// The signatures mirror Python's keyword arguments and pymethods' receivers; offsets and
// lengths are at most 65551, so casts to i64 cannot wrap.
#![allow(
    clippy::fn_params_excessive_bools,
    clippy::too_many_arguments,
    clippy::unused_self,
    clippy::cast_possible_wrap,
    clippy::needless_pass_by_value
)]

use core::hash::{Hash, Hasher};
use core::net::{IpAddr, SocketAddr};
use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyString, PyTuple, PyType};
use thin_vec::ThinVec;

use crate::header::{unix_path, Address, End, Family, Header, Layout, Protocol};
use crate::stream::{self, Fed};
use crate::tlv::{self, Ssl};
use crate::{
    crc32c, scan, v1, v2, BuildError, Command, Endpoints, ErrorKind, Options, ParseError, Status,
};

// ---------------------------------------------------------------------------------------------
// Conversions at the boundary

/// Calls `f` with the bytes of any object that supports the buffer protocol, without copying.
fn with_bytes<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    let buf = PyBuffer::<u8>::get(obj)?;
    let Some(ptr) = buf.as_slice_ptr() else {
        return Err(PyValueError::new_err("the buffer must be C-contiguous"));
    };
    // SAFETY: `buf` keeps the exporter's memory alive and pinned until it is dropped at the
    // end of this function; the slice does not outlive it. We hold the GIL and run no Python
    // code while the slice is in use, so nothing can resize or write the buffer meanwhile.
    let slice: &[u8] = unsafe { ptr.as_ref() };
    Ok(f(slice))
}

static ERRORS_MODULE: &str = "proxyproto_rs._errors";

fn error_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, ERRORS_MODULE, name)
}

fn make_error(
    py: Python<'_>,
    class: &Bound<'_, PyType>,
    msg: &str,
    kind: &str,
    offset: i64,
) -> PyErr {
    let kwargs = PyDict::new(py);
    let made = kwargs
        .set_item("kind", kind)
        .and_then(|()| kwargs.set_item("offset", offset))
        .and_then(|()| class.call((msg,), Some(&kwargs)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

fn parse_error(py: Python<'_>, e: ParseError) -> PyErr {
    static INVALID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static TOO_LARGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static CHECKSUM: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let class = match e.kind {
        ErrorKind::ChecksumMismatch => error_class(py, &CHECKSUM, "ChecksumError"),
        k if k.is_too_large() => error_class(py, &TOO_LARGE, "HeaderTooLargeError"),
        _ => error_class(py, &INVALID, "InvalidHeaderError"),
    };
    match class {
        Ok(class) => make_error(py, class, &e.to_string(), e.kind.as_str(), e.offset as i64),
        Err(err) => err,
    }
}

fn incomplete_error(py: Python<'_>, len: usize, needed: usize) -> PyErr {
    static INCOMPLETE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    match error_class(py, &INCOMPLETE, "IncompleteHeaderError") {
        Ok(class) => {
            let msg = format!("incomplete header: {len} bytes, at least {needed} more needed");
            make_error(py, class, &msg, "incomplete", len as i64)
        }
        Err(err) => err,
    }
}

fn build_error_with(py: Python<'_>, kind: &str, msg: &str) -> PyErr {
    static BUILD: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    match error_class(py, &BUILD, "BuildError") {
        Ok(class) => make_error(py, class, msg, kind, -1),
        Err(err) => err,
    }
}

fn build_error(py: Python<'_>, e: &BuildError) -> PyErr {
    build_error_with(py, e.kind(), &e.to_string())
}

/// The members of one of the `IntEnum`s in `proxyproto_rs._enums`, by value, fetched once: calling
/// the enum class on every read cost about 1 us.
fn enum_member<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Vec<Py<PyAny>>>,
    name: &str,
    value: u8,
) -> PyResult<Bound<'py, PyAny>> {
    let members = cell.get_or_try_init(py, || -> PyResult<_> {
        let class = py.import("proxyproto_rs._enums")?.getattr(name)?;
        (0..4u8).map_while(|v| class.call1((v,)).ok()).map(|m| Ok(m.unbind())).collect()
    })?;
    match members.get(usize::from(value)) {
        Some(m) => Ok(m.bind(py).clone()),
        None => Err(PyValueError::new_err(format!("no {name} member for {value}"))),
    }
}

fn options(
    allow_v1: bool,
    allow_v2: bool,
    verify_checksum: bool,
    max_size: i128,
    haproxy_limits: bool,
) -> PyResult<Options> {
    // Any integer: out of range is a ValueError, never an OverflowError.
    let max_size = usize::try_from(max_size).unwrap_or(0);
    if !(v2::PREFIX_LEN..=v2::MAX_LEN).contains(&max_size) {
        return Err(PyValueError::new_err(format!(
            "max_size must be between {} and {}",
            v2::PREFIX_LEN,
            v2::MAX_LEN
        )));
    }
    if !allow_v1 && !allow_v2 {
        return Err(PyValueError::new_err("allow_v1 and allow_v2 cannot both be False"));
    }
    Ok(Options { allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits })
}

fn ip_string(py: Python<'_>, ip: IpAddr) -> Bound<'_, PyString> {
    v1::with_ip_text(ip, |text| {
        // SAFETY: the text is only ASCII digits, hex digits, colons and dots: valid UTF-8.
        // Checking it with `str::from_utf8` cost ~90 of the ~2700 instructions of
        // `parse(v2).source` (callgrind), hence the unchecked conversion.
        PyString::new(py, unsafe { core::str::from_utf8_unchecked(text) })
    })
}

/// Text as Python reads it from a UTF-8 field: lossless, undecodable bytes as surrogates.
/// One call into `CPython`'s decoder, which checks and copies in one pass (checking in Rust
/// first, with `str::from_utf8` or `is_ascii`, cost ~60-120 instructions more per short TLV:
/// callgrind of the TLV-heavy read).
fn utf8_text<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // TLV values are at most 65535 bytes, so the length fits.
    let len = ffi::Py_ssize_t::try_from(raw.len()).unwrap_or(ffi::Py_ssize_t::MAX);
    // SAFETY: `raw` is valid for `len` bytes during the call and `errors` is a NUL-terminated
    // string; the result is a new reference, or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeUTF8(raw.as_ptr().cast(), len, c"surrogateescape".as_ptr()),
        )
    }
}

/// `(host, port)`: the first two items of `socket.getpeername()`.
#[inline]
fn inet_pair(py: Python<'_>, ip: IpAddr, port: u16) -> PyResult<Bound<'_, PyAny>> {
    host_port(py, ip_string(py, ip).into_any(), port)
}

/// `(host, port)` from a host string already made.
#[inline]
fn host_port<'py>(
    py: Python<'py>,
    host: Bound<'py, PyAny>,
    port: u16,
) -> PyResult<Bound<'py, PyAny>> {
    let Ok(port) = port.into_pyobject(py);
    Ok((host, port).into_pyobject(py)?.into_any())
}

fn address<'py>(py: Python<'py>, addr: Option<Address<'_>>) -> PyResult<Bound<'py, PyAny>> {
    match addr {
        None => Ok(py.None().into_bound(py)),
        Some(Address::Inet(sa)) => inet_pair(py, sa.ip(), sa.port()),
        Some(Address::Unix(raw)) => {
            let path = unix_path(raw);
            if path.first() == Some(&0) {
                Ok(PyBytes::new(py, path).into_any())
            } else {
                static FSDECODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
                FSDECODE.import(py, "os", "fsdecode")?.call1((PyBytes::new(py, path),))
            }
        }
    }
}

/// Storage for a UNIX address taken from Python, so `Endpoints` can borrow it.
enum AddrIn {
    Ip(SocketAddr),
    Unix(Vec<u8>),
}

fn address_in(py: Python<'_>, obj: &Bound<'_, PyAny>, which: &str) -> PyResult<AddrIn> {
    if let Ok(t) = obj.cast::<PyTuple>() {
        if !(t.len() == 2 || t.len() == 4) {
            let msg = format!("{which}: expected (host, port), got a tuple of {}", t.len());
            return Err(build_error_with(py, "address", &msg));
        }
        let host_obj = t.get_borrowed_item(0)?;
        let host_str = match host_obj.cast::<PyString>() {
            Ok(s) => s.to_owned(),
            Err(_) => host_obj.str()?, // ipaddress.IPv4Address and friends
        };
        let bad_host = || {
            let msg = format!("{which}: {host_str} is not an IPv4 or IPv6 address");
            build_error_with(py, "address", &msg)
        };
        let host = host_str.to_str().map_err(|_| bad_host())?;
        // A socket's IPv6 name may carry a zone (`fe80::1%eth0`); the wire has no room for it.
        let bare = host.split_once('%').map_or(host, |(ip, _)| ip);
        let ip = match v1::ipv4_text(bare.as_bytes()) {
            Some(v4) => IpAddr::V4(v4),
            None => bare.parse::<core::net::Ipv6Addr>().map(IpAddr::V6).map_err(|_| bad_host())?,
        };
        let port_obj = t.get_borrowed_item(1)?;
        let port = port_obj.extract::<i64>().ok().and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else {
            let msg = format!("{which}: port {} is not an integer in 0-65535", port_obj.repr()?);
            return Err(build_error_with(py, "port", &msg));
        };
        return Ok(AddrIn::Ip(SocketAddr::new(ip, port)));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(AddrIn::Unix(b.as_bytes().to_vec()));
    }
    if obj.cast::<PyString>().is_ok() {
        static FSENCODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let raw = FSENCODE.import(py, "os", "fsencode")?.call1((obj,))?;
        return Ok(AddrIn::Unix(raw.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    let msg = format!(
        "{which}: expected (host, port), a str or bytes UNIX path, or None; got {}",
        obj.get_type().name()?
    );
    Err(build_error_with(py, "address", &msg))
}

fn addresses_in(
    py: Python<'_>,
    source: Option<&Bound<'_, PyAny>>,
    destination: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<(AddrIn, AddrIn)>> {
    let source = source.filter(|s| !s.is_none());
    let destination = destination.filter(|d| !d.is_none());
    match (source, destination) {
        (None, None) => Ok(None),
        (Some(s), Some(d)) => {
            Ok(Some((address_in(py, s, "source")?, address_in(py, d, "destination")?)))
        }
        _ => Err(build_error(py, &BuildError::MissingAddress)),
    }
}

fn endpoints<'a>(py: Python<'_>, pair: Option<&'a (AddrIn, AddrIn)>) -> PyResult<Endpoints<'a>> {
    Ok(match pair {
        None => Endpoints::None,
        Some((AddrIn::Ip(s), AddrIn::Ip(d))) => Endpoints::Inet(*s, *d),
        Some((AddrIn::Unix(s), AddrIn::Unix(d))) => Endpoints::Unix(s, d),
        Some(_) => return Err(build_error(py, &BuildError::MixedFamilies)),
    })
}

// ---------------------------------------------------------------------------------------------
// Tlv

/// One TLV as it stood on the wire; unpacks as `(type, value)`.
#[pyclass(module = "proxyproto_rs._core", name = "Tlv", frozen)]
pub struct PyTlv {
    kind: u8,
    value: Py<PyBytes>,
}

impl PyTlv {
    fn new_bound<'py>(py: Python<'py>, kind: u8, value: &[u8]) -> PyResult<Bound<'py, Self>> {
        Bound::new(py, Self { kind, value: PyBytes::new(py, value).unbind() })
    }
}

#[pymethods]
impl PyTlv {
    #[new]
    #[pyo3(signature = (r#type, value))]
    fn py_new(py: Python<'_>, r#type: i64, value: &Bound<'_, PyAny>) -> PyResult<Self> {
        let Ok(kind) = u8::try_from(r#type) else {
            return Err(PyValueError::new_err(format!("TLV type {type} is not in 0-255")));
        };
        let value = with_bytes(value, |b| PyBytes::new(py, b).unbind())?;
        Ok(Self { kind, value })
    }

    #[getter]
    fn r#type(&self) -> u8 {
        self.kind
    }

    #[getter]
    fn value(&self, py: Python<'_>) -> Py<PyBytes> {
        self.value.clone_ref(py)
    }

    fn __len__(&self) -> usize {
        2
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyAny>> {
        match index {
            0 | -2 => Ok(self.kind.into_pyobject(py)?.into_any()),
            1 | -1 => Ok(self.value.bind(py).clone().into_any()),
            _ => Err(PyIndexError::new_err("Tlv index out of range")),
        }
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pair = PyTuple::new(
            py,
            [self.kind.into_pyobject(py)?.into_any(), self.value.bind(py).clone().into_any()],
        )?;
        pair.try_iter().map(Bound::into_any)
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyTlv>().is_ok_and(|o| {
            let o = o.get();
            o.kind == self.kind && o.value.bind(py).as_bytes() == self.value.bind(py).as_bytes()
        })
    }

    fn __hash__(&self, py: Python<'_>) -> u64 {
        let mut h = DefaultHasher::new();
        (self.kind, self.value.bind(py).as_bytes()).hash(&mut h);
        h.finish() >> 1
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Tlv(type=0x{:02X}, value={})", self.kind, self.value.bind(py).repr()?))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.get();
        let args = (this.kind, this.value.clone_ref(py));
        (slf.get_type(), args).into_pyobject(py)
    }
}

fn tlv_tuple<'py>(py: Python<'py>, tlvs: tlv::Tlvs<'_>) -> PyResult<Bound<'py, PyTuple>> {
    let items =
        tlvs.map(|t| PyTlv::new_bound(py, t.kind, t.value)).collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}

// ---------------------------------------------------------------------------------------------
// SslInfo

/// The `PP2_TYPE_SSL` TLV (0x20): client flags, verify result and sub-TLVs. A view of its
/// header's bytes (copying the TLV cost a malloc and a free per `Header.ssl` read).
#[pyclass(module = "proxyproto_rs._core", name = "SslInfo", frozen)]
pub struct PySslInfo {
    header: Py<PyHeader>,
}

impl PySslInfo {
    fn ssl(&self) -> Ssl<'_> {
        // Made only for a header with an SSL TLV, and headers never change.
        let none = Ssl { client: 0, verify: 0, sub: &[], sub_offset: 5 };
        self.header.get().view().ssl().unwrap_or(none)
    }

    fn text<'py>(&self, py: Python<'py>, kind: u8) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.ssl().get(kind).map(|v| utf8_text(py, v)).transpose()
    }
}

#[pymethods]
impl PySslInfo {
    #[getter]
    fn client(&self) -> u8 {
        self.ssl().client
    }
    #[getter]
    fn verify(&self) -> u32 {
        self.ssl().verify
    }
    #[getter]
    fn client_ssl(&self) -> bool {
        self.ssl().client & tlv::CLIENT_SSL != 0
    }
    #[getter]
    fn client_cert_conn(&self) -> bool {
        self.ssl().client & tlv::CLIENT_CERT_CONN != 0
    }
    #[getter]
    fn client_cert_sess(&self) -> bool {
        self.ssl().client & tlv::CLIENT_CERT_SESS != 0
    }
    #[getter]
    fn client_cert_verified(&self) -> bool {
        self.ssl().client_cert_verified()
    }
    #[getter]
    fn version<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_VERSION)
    }
    #[getter]
    fn cn<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_CN)
    }
    #[getter]
    fn cipher<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_CIPHER)
    }
    #[getter]
    fn sig_alg<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_SIG_ALG)
    }
    #[getter]
    fn key_alg<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_KEY_ALG)
    }
    #[getter]
    fn group<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_GROUP)
    }
    #[getter]
    fn sig_scheme<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_SIG_SCHEME)
    }
    #[getter]
    fn client_cert<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.ssl().get(tlv::SSL_CLIENT_CERT).map(|v| PyBytes::new(py, v))
    }
    #[getter]
    fn tlvs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        tlv_tuple(py, self.ssl().tlvs())
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PySslInfo>().is_ok_and(|o| {
            let (a, b) = (o.get().ssl(), self.ssl());
            (a.client, a.verify, a.sub) == (b.client, b.verify, b.sub)
        })
    }

    fn __hash__(&self) -> u64 {
        let mut h = DefaultHasher::new();
        let s = self.ssl();
        (s.client, s.verify, s.sub).hash(&mut h);
        h.finish() >> 1
    }

    fn __repr__(&self) -> String {
        let s = self.ssl();
        format!(
            "SslInfo(client=0x{:02X}, verify={}, tlvs={})",
            s.client,
            s.verify,
            s.tlvs().count()
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Header

/// A header's wire bytes: inline when short (most headers: no allocation besides the
/// Python object), on the heap otherwise. The length is the layout's. (A struct, not an
/// enum: an enum's tag shifted the array by a byte, and the shifted copy right after the
/// bytes were stored stalled on store forwarding; perf annotate of `header_from`.)
#[repr(C)] // `inline` first, at offset 0: moved in the same 16-byte pieces it was stored in
struct Raw {
    inline: [u8; Raw::INLINE],
    /// The whole header when it is longer than `INLINE` (else empty, which allocates
    /// nothing): one allocation behind an 8-byte pointer, so a Header stays at 112 bytes
    /// (tracemalloc; a LOCAL header's 16 wire bytes may cost 160, issue 5) without the second
    /// allocation a `Box<Box<[u8]>>` took.
    heap: ThinVec<u8>,
}

impl Raw {
    /// Covers v2 IPv4 (28 B) and IPv6 (52 B), LOCAL (16 B) and most v1 TCP4 lines.
    const INLINE: usize = 56;

    /// The first `INLINE` bytes of `buf` (all of it if shorter): a fixed-size copy when they
    /// are there, taken before parsing so that the stores have retired by the time the bytes
    /// move into the Python object. The bytes after the header's end are never read.
    #[inline]
    fn prefix(buf: &[u8]) -> Self {
        let mut inline = [0; Self::INLINE];
        match buf.first_chunk::<{ Self::INLINE }>() {
            Some(head) => inline = *head,
            None => inline[..buf.len()].copy_from_slice(buf),
        }
        Self { inline, heap: ThinVec::new() }
    }

    /// Keeps the inline copy if `header` (a prefix of what it was taken from) fits in it.
    #[inline]
    fn fit(mut self, header: &[u8]) -> Self {
        if header.len() > Self::INLINE {
            self.heap = ThinVec::from(header);
        }
        self
    }

    fn get(&self, len: u32) -> &[u8] {
        if self.heap.is_empty() {
            self.inline.get(..len as usize).unwrap_or(&self.inline)
        } else {
            &self.heap
        }
    }
}

/// A parsed PROXY protocol header: wire bytes plus what parsing learned.
///
/// Up to 64 freed objects are kept for reuse (at most ~8 KiB): a server makes and drops one
/// per connection, and skipping the allocator took 5-7 ns off `parse(d)` (two builds timed
/// in one process, issue 5).
#[pyclass(module = "proxyproto_rs._core", name = "Header", frozen, freelist = 64)]
pub struct PyHeader {
    raw: Raw,
    layout: Layout,
}

impl PyHeader {
    #[inline]
    fn new(raw: Raw, header: &[u8], layout: Layout) -> Self {
        Self { raw: raw.fit(header), layout }
    }

    /// The header's wire bytes.
    fn bytes(&self) -> &[u8] {
        self.raw.get(self.layout.len)
    }

    fn view(&self) -> Header<'_> {
        // `raw` and `layout` come from one successful parse, so they fit without re-checking.
        Header::from_parsed(self.bytes(), self.layout)
    }

    /// `.source` or `.destination`. A v1 IPv4 host is the line's own text, canonical already
    /// (rule 10), so it is neither read into an address nor written back out.
    fn end<'py>(&self, py: Python<'py>, end: End) -> PyResult<Bound<'py, PyAny>> {
        let (layout, bytes) = (&self.layout, self.bytes());
        if layout.family == Family::Inet && layout.has_addresses() {
            if layout.version == 2 {
                // Straight from the address block, without the general `Address` on the way.
                if let Some(SocketAddr::V4(a)) = v2::endpoint(bytes, Family::Inet, end) {
                    return inet_pair(py, IpAddr::V4(*a.ip()), a.port());
                }
            } else if let Some((start, stop, port)) = v1::endpoint_at(bytes, layout, end) {
                // Copied to an 8-byte aligned buffer first: CPython's ASCII decoder reads
                // aligned words, and byte by byte otherwise (callgrind: 90 vs 34 instructions).
                // An address (at most 15 bytes) is followed by at least " 0 0\r\n" in a valid
                // line, so 16 bytes from its start are there: one fixed-size copy.
                #[repr(align(8))]
                struct Aligned([u8; 16]);
                let text = match bytes.get(start..).and_then(<[u8]>::first_chunk::<16>) {
                    Some(head) => &Aligned(*head).0[..],
                    None => bytes.get(start..).unwrap_or_default(),
                };
                let host =
                    utf8_text(py, text.get(..stop.saturating_sub(start)).unwrap_or_default())?;
                return host_port(py, host, port);
            }
        }
        address(py, self.view().end(end))
    }

    fn tlv_value(&self, kind: u8) -> Option<&[u8]> {
        self.view().tlv(kind).map(|t| t.value)
    }
}

/// Parses `buf` into a new Python `Header`. The object is made here, where the layout is,
/// rather than returning the 80-byte struct through `Result`s to `PyO3`: each of those moves
/// stalled on store forwarding (perf annotate of `parse`).
fn header_from<'py>(py: Python<'py>, buf: &[u8], opts: &Options) -> PyResult<Bound<'py, PyHeader>> {
    let raw = Raw::prefix(buf);
    match crate::parse(buf, opts) {
        Ok(Status::Complete { header, .. }) => {
            Bound::new(py, PyHeader::new(raw, header.as_bytes(), *header.layout()))
        }
        Ok(Status::Partial { needed }) => Err(incomplete_error(py, buf.len(), needed)),
        Err(e) => Err(parse_error(py, e)),
    }
}

/// Options that accept anything a successful parse produced (for unpickling and builders).
const PERMISSIVE: Options = Options {
    allow_v1: true,
    allow_v2: true,
    verify_checksum: false,
    max_size: v2::MAX_LEN,
    haproxy_limits: false,
};

#[pymethods]
impl PyHeader {
    #[getter]
    fn version(&self) -> u8 {
        self.layout.version
    }

    #[getter]
    fn command<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static COMMAND: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
        enum_member(py, &COMMAND, "Command", self.layout.command as u8)
    }

    #[getter]
    fn family<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static FAMILY: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
        enum_member(py, &FAMILY, "Family", self.layout.family as u8)
    }

    #[getter]
    fn protocol<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static PROTOCOL: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
        enum_member(py, &PROTOCOL, "Protocol", self.layout.protocol as u8)
    }

    #[getter]
    fn source<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.end(py, End::Source)
    }

    #[getter]
    fn destination<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.end(py, End::Destination)
    }

    #[getter]
    fn length(&self) -> usize {
        self.bytes().len()
    }

    #[getter]
    fn tlvs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        tlv_tuple(py, self.view().tlvs())
    }

    #[getter]
    fn alpn<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.tlv_value(tlv::ALPN).map(|v| PyBytes::new(py, v))
    }

    #[getter]
    fn authority<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.tlv_value(tlv::AUTHORITY).map(|v| utf8_text(py, v)).transpose()
    }

    #[getter]
    fn crc32c(&self) -> Option<u32> {
        self.tlv_value(tlv::CRC32C).and_then(|v| v.try_into().ok()).map(u32::from_be_bytes)
    }

    #[getter]
    fn unique_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.tlv_value(tlv::UNIQUE_ID).map(|v| PyBytes::new(py, v))
    }

    #[getter]
    fn ssl(slf: &Bound<'_, Self>) -> Option<PySslInfo> {
        slf.get().view().ssl().map(|_| PySslInfo { header: slf.clone().unbind() })
    }

    #[getter]
    fn netns<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.tlv_value(tlv::NETNS).map(|v| utf8_text(py, v)).transpose()
    }

    #[getter]
    fn aws_vpce_id<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.tlv_value(tlv::AWS).and_then(tlv::aws_vpce_id).map(|v| utf8_text(py, v)).transpose()
    }

    #[getter]
    fn azure_link_id(&self) -> Option<u32> {
        self.tlv_value(tlv::AZURE).and_then(tlv::azure_link_id)
    }

    #[getter]
    fn gcp_psc_connection_id(&self) -> Option<u64> {
        self.tlv_value(tlv::GCP).and_then(tlv::gcp_psc_connection_id)
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.bytes())
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.bytes())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyHeader>().is_ok_and(|o| o.get().bytes() == self.bytes())
    }

    fn __hash__(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.bytes().hash(&mut h);
        h.finish() >> 1
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let l = &self.layout;
        let cmd = if l.command == Command::Local { "LOCAL" } else { "PROXY" };
        let fam = ["UNSPEC", "INET", "INET6", "UNIX"][l.family as usize];
        let proto = ["UNSPEC", "STREAM", "DGRAM"][l.protocol as usize];
        let mut s = format!("<Header v{} {cmd} {fam} {proto}", l.version);
        if l.has_addresses() {
            let src = address(py, self.view().source())?.repr()?;
            let dst = address(py, self.view().destination())?.repr()?;
            let _ = write!(s, " source={src} destination={dst}");
        }
        let kinds: Vec<String> = self.view().tlvs().map(|t| format!("0x{:02X}", t.kind)).collect();
        if !kinds.is_empty() {
            let _ = write!(s, " tlvs=[{}]", kinds.join(", "));
        }
        let _ = write!(s, " length={}>", self.bytes().len());
        Ok(s)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        static UNPICKLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let f = UNPICKLE.import(py, "proxyproto_rs._core", "_header_from_bytes")?;
        (f, (PyBytes::new(py, self.bytes()),)).into_pyobject(py)
    }

    #[staticmethod]
    #[pyo3(signature = (source=None, destination=None))]
    fn v1<'py>(
        py: Python<'py>,
        source: Option<&Bound<'py, PyAny>>,
        destination: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let raw = build_v1(py, source, destination)?;
        header_from(py, raw.as_bytes(), &PERMISSIVE)
    }

    #[staticmethod]
    #[pyo3(signature = (source=None, destination=None, *, command=None, protocol=None, tlvs=None,
        crc32c=false, alpn=None, authority=None, unique_id=None, netns=None, aws_vpce_id=None))]
    fn v2<'py>(
        py: Python<'py>,
        source: Option<&Bound<'_, PyAny>>,
        destination: Option<&Bound<'_, PyAny>>,
        command: Option<i128>,
        protocol: Option<i128>,
        tlvs: Option<&Bound<'_, PyAny>>,
        crc32c: bool,
        alpn: Option<&Bound<'_, PyAny>>,
        authority: Option<&Bound<'_, PyString>>,
        unique_id: Option<&Bound<'_, PyAny>>,
        netns: Option<&Bound<'_, PyString>>,
        aws_vpce_id: Option<&Bound<'_, PyString>>,
    ) -> PyResult<Bound<'py, Self>> {
        let typed = TypedTlvs { alpn, authority, unique_id, netns, aws_vpce_id };
        let raw = build_v2_bytes(py, source, destination, command, protocol, tlvs, crc32c, &typed)?;
        header_from(py, &raw, &PERMISSIVE)
    }

    #[staticmethod]
    #[pyo3(signature = (*, tlvs=None, crc32c=false))]
    fn local<'py>(
        py: Python<'py>,
        tlvs: Option<&Bound<'_, PyAny>>,
        crc32c: bool,
    ) -> PyResult<Bound<'py, Self>> {
        let typed = TypedTlvs::default();
        let raw = build_v2_bytes(py, None, None, Some(0), None, tlvs, crc32c, &typed)?;
        header_from(py, &raw, &PERMISSIVE)
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Streaming, sans-IO parser for one connection.
#[pyclass(module = "proxyproto_rs._core", name = "Parser")]
pub struct PyParser {
    inner: stream::Parser,
    header: Option<Py<PyHeader>>,
    trailing: Vec<u8>,
}

#[pymethods]
impl PyParser {
    #[new]
    #[pyo3(signature = (*, allow_v1=true, allow_v2=true, verify_checksum=true, max_size=4096,
        haproxy_limits=false))]
    fn py_new(
        allow_v1: bool,
        allow_v2: bool,
        verify_checksum: bool,
        max_size: i128,
        haproxy_limits: bool,
    ) -> PyResult<Self> {
        let opts = options(allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits)?;
        Ok(Self { inner: stream::Parser::new(opts), header: None, trailing: Vec::new() })
    }

    #[pyo3(signature = (data, /))]
    fn feed(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyHeader>>> {
        let Self { inner, header, trailing } = self;
        with_bytes(data, |bytes| match inner.feed(bytes) {
            Ok(Fed::NeedMore(_)) => Ok(None),
            Ok(Fed::Complete { header: h, used }) => {
                trailing.extend_from_slice(&bytes[used..]);
                let made = Py::new(
                    py,
                    PyHeader::new(Raw::prefix(h.as_bytes()), h.as_bytes(), *h.layout()),
                )?;
                *header = Some(made.clone_ref(py));
                Ok(Some(made))
            }
            Ok(Fed::AlreadyComplete) => {
                trailing.extend_from_slice(bytes);
                Ok(header.as_ref().map(|h| h.clone_ref(py)))
            }
            Err(e) => Err(parse_error(py, e)),
        })?
    }

    #[getter]
    fn needed(&self) -> usize {
        self.inner.needed()
    }

    #[getter]
    fn header(&self, py: Python<'_>) -> Option<Py<PyHeader>> {
        self.header.as_ref().map(|h| h.clone_ref(py))
    }

    #[getter]
    fn trailing_data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.trailing)
    }

    #[getter]
    fn done(&self) -> bool {
        self.header.is_some()
    }

    #[getter]
    fn buffered(&self) -> usize {
        if self.header.is_some() {
            0
        } else {
            self.inner.buffered()
        }
    }

    fn __repr__(&self) -> String {
        match (&self.header, self.inner.error()) {
            (Some(_), _) => format!("<Parser done trailing={}>", self.trailing.len()),
            (None, Some(e)) => format!("<Parser failed: {e}>"),
            (None, None) => {
                format!(
                    "<Parser buffered={} needed={}>",
                    self.inner.buffered(),
                    self.inner.needed()
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Functions

// Fast-call entry points: `parse`, `build_v2` and `crc32c` as `CPython` calls them.

/// A module function whose usual calls skip `PyO3`'s trampoline and argument extraction:
/// they cost ~25 ns a call, a fifth of a whole v2 parse (timeit of `parse(d)`: 121 ns as a
/// `#[pyfunction]`, 94 ns through [`fast_entry`]). Every call `fast` does not take goes to
/// `checked`, the same function as a `#[pyfunction]`, so errors and edge cases stay `PyO3`'s.
trait FastFunction {
    const NAME: &'static core::ffi::CStr;
    /// Signature and docstring, in `CPython`'s `name(sig)\n--\n\ndoc` form.
    const DOC: &'static core::ffi::CStr;
    /// The `#[pyfunction]` twin.
    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>>;
    /// The result of a usual call; `None` hands the call to `checked`.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>>;
}

/// The `#[pyfunction]` twin kept in `cell`, made by `make` on first use.
fn twin<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyCFunction>>,
    make: impl FnOnce(Python<'py>) -> PyResult<Bound<'py, PyCFunction>>,
) -> PyResult<Bound<'py, PyCFunction>> {
    Ok(cell.get_or_try_init(py, || make(py).map(Bound::unbind))?.bind(py).clone())
}

/// Adds `F` to the module as a `METH_FASTCALL | METH_KEYWORDS` C function.
fn add_fast<F: FastFunction>(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // One definition per module initialisation, which `PyO3` allows once per process.
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: F::NAME.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: fast_entry::<F> },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: F::DOC.as_ptr(),
    }));
    let module_name = m.name()?;
    // SAFETY: `def` lives for the rest of the process and describes a function of the type
    // its flags name; `m` and `module_name` are live objects. The result is a new reference.
    let function = unsafe {
        Bound::from_owned_ptr_or_err(
            m.py(),
            ffi::PyCFunction_NewEx(def, m.as_ptr(), module_name.as_ptr()),
        )?
    };
    m.add(F::NAME.to_str().unwrap_or_default(), function)
}

unsafe extern "C" fn fast_entry<F: FastFunction>(
    _module: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: `CPython` calls a C function with the thread attached to the interpreter.
    let py = unsafe { Python::assume_attached() };
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the vectorcall convention: `kwnames` is NULL or a tuple of str, `args` holds
        // the positional arguments then one value for each name in `kwnames`, all borrowed
        // for the duration of the call. The high bit of `nargsf` is a flag, not a count.
        let call = unsafe {
            let nargs = nargsf.cast_unsigned() & !(1 << (usize::BITS - 1));
            let kwnames =
                Borrowed::from_ptr_or_opt(py, kwnames).map(|k| k.cast_unchecked::<PyTuple>());
            let nkw = kwnames.as_ref().map_or(0, |k| k.len());
            let all = if args.is_null() {
                &[][..]
            } else {
                core::slice::from_raw_parts(args, nargs + nkw)
            };
            Call { positional: &all[..nargs], keyword_values: &all[nargs..], kwnames }
        };
        match F::fast(py, &call) {
            Some(result) => result,
            None => call.delegate(&F::checked(py)?),
        }
        .map(Bound::into_ptr)
    }));
    match made {
        Ok(Ok(result)) => result,
        Ok(Err(err)) => {
            err.restore(py);
            core::ptr::null_mut()
        }
        Err(_) => {
            PanicException::new_err("proxyproto_rs: a fast-call function panicked").restore(py);
            core::ptr::null_mut()
        }
    }
}

/// The arguments of one vectorcall, as raw borrowed pointers.
struct Call<'a, 'py> {
    positional: &'a [*mut ffi::PyObject],
    keyword_values: &'a [*mut ffi::PyObject],
    kwnames: Option<Borrowed<'a, 'py, PyTuple>>,
}

impl<'py> Call<'_, 'py> {
    fn get(&self, py: Python<'py>, ptr: *mut ffi::PyObject) -> Borrowed<'_, 'py, PyAny> {
        // SAFETY: every pointer in `positional` and `keyword_values` is a live object borrowed
        // for the call (see `fast_entry`).
        unsafe { Borrowed::from_ptr(py, ptr) }
    }

    /// The keyword arguments as (name, value).
    fn keywords(
        &self,
        py: Python<'py>,
    ) -> impl Iterator<Item = (Borrowed<'_, 'py, PyAny>, Borrowed<'_, 'py, PyAny>)> {
        self.keyword_values.iter().enumerate().map_while(move |(i, &value)| {
            let name = self.kwnames.as_ref()?.get_borrowed_item(i).ok()?;
            Some((name, self.get(py, value)))
        })
    }

    /// Calls `checked` with the same arguments.
    fn delegate(&self, checked: &Bound<'py, PyCFunction>) -> PyResult<Bound<'py, PyAny>> {
        let py = checked.py();
        let positional = PyTuple::new(py, self.positional.iter().map(|&p| self.get(py, p)))?;
        let keywords = PyDict::new(py);
        if let Some(names) = &self.kwnames {
            for (i, &value) in self.keyword_values.iter().enumerate() {
                keywords.set_item(names.get_borrowed_item(i)?, self.get(py, value))?;
            }
        }
        checked.call(positional, Some(&keywords))
    }
}

/// `parse` with every argument checked by `PyO3`: the calls [`Parse::fast`] does not take.
#[pyfunction(name = "parse")]
#[pyo3(signature = (data, /, *, allow_v1=true, allow_v2=true, verify_checksum=true, max_size=4096,
    haproxy_limits=false))]
fn parse_checked<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    allow_v1: bool,
    allow_v2: bool,
    verify_checksum: bool,
    max_size: i128,
    haproxy_limits: bool,
) -> PyResult<Bound<'py, PyHeader>> {
    let opts = options(allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits)?;
    with_bytes(data, |bytes| header_from(py, bytes, &opts))?
}

struct Parse;

impl FastFunction for Parse {
    const NAME: &'static core::ffi::CStr = c"parse";
    const DOC: &'static core::ffi::CStr = c"parse(data, /, *, allow_v1=True, allow_v2=True, \
verify_checksum=True, max_size=4096, haproxy_limits=False)
--

Parse one PROXY protocol header at the start of data; header.length bytes belong to it.";

    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
        static CHECKED: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
        twin(py, &CHECKED, |py| wrap_pyfunction!(parse_checked, py))
    }

    /// One positional argument, and any of the keywords with values of their types.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        let &[data] = call.positional else {
            return None;
        };
        let d = Options::default();
        let (mut allow_v1, mut allow_v2, mut verify) = (d.allow_v1, d.allow_v2, d.verify_checksum);
        let (mut max_size, mut haproxy_limits) = (d.max_size as i128, d.haproxy_limits);
        let mut seen = 0;
        for (name, value) in call.keywords(py) {
            match name.cast::<PyString>().ok()?.to_str().ok()? {
                "allow_v1" => allow_v1 = value.extract().ok()?,
                "allow_v2" => allow_v2 = value.extract().ok()?,
                "verify_checksum" => verify = value.extract().ok()?,
                "max_size" => max_size = value.extract().ok()?,
                "haproxy_limits" => haproxy_limits = value.extract().ok()?,
                _ => return None,
            }
            seen += 1;
        }
        if seen != call.keyword_values.len() {
            return None;
        }
        let opts = if seen == 0 {
            Ok(d)
        } else {
            options(allow_v1, allow_v2, verify, max_size, haproxy_limits)
        };
        let made = opts.and_then(|opts| {
            with_bytes(&call.get(py, data), |bytes| header_from(py, bytes, &opts))?
        });
        Some(made.map(Bound::into_any))
    }
}

#[pyfunction]
#[pyo3(signature = (data, /))]
fn _header_from_bytes<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyHeader>> {
    with_bytes(data, |bytes| header_from(py, bytes, &PERMISSIVE))?
}

#[pyfunction]
#[pyo3(signature = (source=None, destination=None))]
fn build_v1<'py>(
    py: Python<'py>,
    source: Option<&Bound<'py, PyAny>>,
    destination: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let pair = addresses_in(py, source, destination)?;
    let ends = endpoints(py, pair.as_ref())?;
    let mut out = Vec::with_capacity(v1::MAX_LEN);
    v1::write(&mut out, &ends).map_err(|e| build_error(py, &e))?;
    Ok(PyBytes::new(py, &out))
}

struct BuildV1;

impl FastFunction for BuildV1 {
    const NAME: &'static core::ffi::CStr = c"build_v1";
    const DOC: &'static core::ffi::CStr = c"build_v1(source=None, destination=None)
--

A v1 line: TCP4 or TCP6 for the two addresses, UNKNOWN without them.";

    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
        static CHECKED: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
        twin(py, &CHECKED, |py| wrap_pyfunction!(build_v1, py))
    }

    /// The addresses given positionally.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        if call.positional.len() > 2 || call.kwnames.is_some() {
            return None;
        }
        let mut ends = [None, None];
        for (slot, &p) in ends.iter_mut().zip(call.positional) {
            *slot = Some(call.get(py, p));
        }
        let made = build_v1(py, given(ends[0].as_ref()), given(ends[1].as_ref()));
        Some(made.map(Bound::into_any))
    }
}

/// The typed TLV keyword arguments of the v2 builders.
#[derive(Default)]
struct TypedTlvs<'a, 'py> {
    alpn: Option<&'a Bound<'py, PyAny>>,
    authority: Option<&'a Bound<'py, PyString>>,
    unique_id: Option<&'a Bound<'py, PyAny>>,
    netns: Option<&'a Bound<'py, PyString>>,
    aws_vpce_id: Option<&'a Bound<'py, PyString>>,
}

/// A text TLV argument as UTF-8; a lone surrogate is a `BuildError`, not a `UnicodeError`.
fn utf8_arg<'a>(py: Python<'_>, s: &'a Bound<'_, PyString>, name: &str) -> PyResult<&'a str> {
    s.to_str().map_err(|_| build_error_with(py, "tlv", &format!("{name}: not encodable as UTF-8")))
}

fn build_v2_bytes(
    py: Python<'_>,
    source: Option<&Bound<'_, PyAny>>,
    destination: Option<&Bound<'_, PyAny>>,
    command: Option<i128>,
    protocol: Option<i128>,
    tlvs: Option<&Bound<'_, PyAny>>,
    crc32c: bool,
    typed: &TypedTlvs<'_, '_>,
) -> PyResult<Vec<u8>> {
    let pair = addresses_in(py, source, destination)?;
    let ends = endpoints(py, pair.as_ref())?;
    let command = match command {
        None if pair.is_some() => Command::Proxy,
        None | Some(0) => Command::Local,
        Some(1) => Command::Proxy,
        Some(c) => {
            return Err(build_error_with(
                py,
                "command",
                &format!("command {c} is not LOCAL (0) or PROXY (1)"),
            ))
        }
    };
    let protocol = match protocol {
        None if pair.is_some() => Protocol::Stream,
        None => Protocol::Unspec,
        Some(p) => {
            if let Some(p) = u8::try_from(p).ok().and_then(Protocol::from_nibble) {
                p
            } else {
                let msg = format!("protocol {p} is not UNSPEC (0), STREAM (1) or DGRAM (2)");
                return Err(build_error_with(py, "protocol", &msg));
            }
        }
    };
    let err = |e: BuildError| build_error(py, &e);
    let mut b = v2::Builder::new(command, protocol, &ends, crc32c).map_err(err)?;
    if let Some(alpn) = typed.alpn {
        with_bytes(alpn, |v| b.tlv(tlv::ALPN, v).map(|_| ()))?.map_err(err)?;
    }
    if let Some(authority) = typed.authority {
        b.tlv(tlv::AUTHORITY, utf8_arg(py, authority, "authority")?.as_bytes()).map_err(err)?;
    }
    if let Some(uid) = typed.unique_id {
        with_bytes(uid, |v| b.tlv(tlv::UNIQUE_ID, v).map(|_| ()))?.map_err(err)?;
    }
    if let Some(netns) = typed.netns {
        b.tlv(tlv::NETNS, utf8_arg(py, netns, "netns")?.as_bytes()).map_err(err)?;
    }
    if let Some(id) = typed.aws_vpce_id {
        let id = utf8_arg(py, id, "aws_vpce_id")?;
        let mut value = Vec::with_capacity(1 + id.len());
        value.push(0x01);
        value.extend_from_slice(id.as_bytes());
        b.tlv(tlv::AWS, &value).map_err(err)?;
    }
    if let Some(tlvs) = tlvs {
        for item in tlvs.try_iter()? {
            let item = item?;
            let (kind, value): (i64, Bound<'_, PyAny>) = if let Ok(t) = item.cast::<PyTlv>() {
                let t = t.get();
                (i64::from(t.kind), t.value.bind(py).clone().into_any())
            } else {
                item.extract().map_err(|_| {
                    build_error_with(
                        py,
                        "tlv",
                        "tlvs: each item must be a Tlv or a (type, value) pair",
                    )
                })?
            };
            let Ok(kind) = u8::try_from(kind) else {
                return Err(build_error_with(
                    py,
                    "tlv",
                    &format!("TLV type {kind} is not in 0-255"),
                ));
            };
            with_bytes(&value, |v| b.tlv(kind, v).map(|_| ()))?.map_err(err)?;
        }
    }
    b.finish().map_err(err)
}

#[pyfunction]
#[pyo3(signature = (source=None, destination=None, *, command=None, protocol=None, tlvs=None,
    crc32c=false, alpn=None, authority=None, unique_id=None, netns=None, aws_vpce_id=None))]
fn build_v2<'py>(
    py: Python<'py>,
    source: Option<&Bound<'py, PyAny>>,
    destination: Option<&Bound<'py, PyAny>>,
    command: Option<i128>,
    protocol: Option<i128>,
    tlvs: Option<&Bound<'py, PyAny>>,
    crc32c: bool,
    alpn: Option<&Bound<'py, PyAny>>,
    authority: Option<&Bound<'py, PyString>>,
    unique_id: Option<&Bound<'py, PyAny>>,
    netns: Option<&Bound<'py, PyString>>,
    aws_vpce_id: Option<&Bound<'py, PyString>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let typed = TypedTlvs { alpn, authority, unique_id, netns, aws_vpce_id };
    let raw = build_v2_bytes(py, source, destination, command, protocol, tlvs, crc32c, &typed)?;
    Ok(PyBytes::new(py, &raw))
}

/// An optional argument as `PyO3` passes it: `None` when absent or `None`.
fn given<'a, 'py>(arg: Option<&'a Borrowed<'_, 'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    arg.map(|v| &**v).filter(|v| !v.is_none())
}

/// An optional str argument; an error if it is neither a str nor `None`.
fn given_text<'a, 'py>(
    arg: Option<&'a Borrowed<'_, 'py, PyAny>>,
) -> PyResult<Option<&'a Bound<'py, PyString>>> {
    given(arg).map(|v| v.cast::<PyString>().map_err(PyErr::from)).transpose()
}

struct BuildV2;

impl FastFunction for BuildV2 {
    const NAME: &'static core::ffi::CStr = c"build_v2";
    const DOC: &'static core::ffi::CStr = c"build_v2(source=None, destination=None, *, \
command=None, protocol=None, tlvs=None, crc32c=False, alpn=None, authority=None, \
unique_id=None, netns=None, aws_vpce_id=None)
--

A v2 header's bytes: PROXY for the two addresses, or LOCAL without them.";

    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
        static CHECKED: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
        twin(py, &CHECKED, |py| wrap_pyfunction!(build_v2, py))
    }

    /// Any call whose arguments have the types of the signature.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        let mut ends = [None, None];
        for (slot, &p) in ends.iter_mut().zip(call.positional) {
            *slot = Some(call.get(py, p));
        }
        if call.positional.len() > 2 {
            return None;
        }
        let (mut command, mut protocol, mut tlvs, mut crc32c) = (None, None, None, false);
        let mut typed = [None, None, None, None, None];
        let mut seen = 0;
        for (name, value) in call.keywords(py) {
            let slot = match name.cast::<PyString>().ok()?.to_str().ok()? {
                "source" => &mut ends[0],
                "destination" => &mut ends[1],
                "command" => {
                    command = value.extract::<Option<i128>>().ok()?;
                    seen += 1;
                    continue;
                }
                "protocol" => {
                    protocol = value.extract::<Option<i128>>().ok()?;
                    seen += 1;
                    continue;
                }
                "crc32c" => {
                    crc32c = value.extract::<bool>().ok()?;
                    seen += 1;
                    continue;
                }
                "tlvs" => &mut tlvs,
                "alpn" => &mut typed[0],
                "authority" => &mut typed[1],
                "unique_id" => &mut typed[2],
                "netns" => &mut typed[3],
                "aws_vpce_id" => &mut typed[4],
                _ => return None,
            };
            if slot.is_some() {
                return None; // given twice
            }
            *slot = Some(value);
            seen += 1;
        }
        if seen != call.keyword_values.len() {
            return None;
        }
        let typed = TypedTlvs {
            alpn: given(typed[0].as_ref()),
            authority: given_text(typed[1].as_ref()).ok()?,
            unique_id: given(typed[2].as_ref()),
            netns: given_text(typed[3].as_ref()).ok()?,
            aws_vpce_id: given_text(typed[4].as_ref()).ok()?,
        };
        let made = build_v2_bytes(
            py,
            ends[0].as_deref(),
            ends[1].as_deref(),
            command,
            protocol,
            given(tlvs.as_ref()),
            crc32c,
            &typed,
        );
        Some(made.map(|raw| PyBytes::new(py, &raw).into_any()))
    }
}

#[pyfunction(name = "crc32c")]
#[pyo3(signature = (data, value=0, /))]
fn crc32c_py(py: Python<'_>, data: &Bound<'_, PyAny>, value: i128) -> PyResult<u32> {
    // Like zlib.crc32, the starting value is taken modulo 2**32.
    let value = u32::try_from(value & 0xFFFF_FFFF).unwrap_or_default();
    if let Ok(b) = data.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        if bytes.len() >= 1 << 20 {
            // bytes are immutable: safe to read without the GIL.
            return Ok(py.detach(|| crc32c::append(value, bytes)));
        }
        return Ok(crc32c::append(value, bytes));
    }
    with_bytes(data, |bytes| crc32c::append(value, bytes))
}

struct Crc32c;

impl FastFunction for Crc32c {
    const NAME: &'static core::ffi::CStr = c"crc32c";
    const DOC: &'static core::ffi::CStr = c"crc32c(data, value=0, /)
--

CRC32C (Castagnoli) of data, continuing from value (taken modulo 2**32, like zlib.crc32).";

    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
        static CHECKED: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
        twin(py, &CHECKED, |py| wrap_pyfunction!(crc32c_py, py))
    }

    /// `bytes` under 1 MiB (longer ones release the GIL), and a value that fits 32 bits.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        let (data, value) = match (call.positional, &call.kwnames) {
            (&[data], None) => (data, 0),
            (&[data, value], None) => (data, call.get(py, value).extract::<u32>().ok()?),
            _ => return None,
        };
        let data = call.get(py, data);
        let data = data.cast::<PyBytes>().ok()?;
        let bytes = data.as_bytes();
        if bytes.len() >= 1 << 20 {
            return None;
        }
        let Ok(crc) = crc32c::append(value, bytes).into_pyobject(py);
        Some(Ok(crc.into_any()))
    }
}

#[pyfunction]
#[pyo3(signature = (data, /))]
fn detect(data: &Bound<'_, PyAny>) -> PyResult<Option<u8>> {
    with_bytes(data, |bytes| match scan::detect(bytes) {
        scan::Detected::V1 => Some(1),
        scan::Detected::V2 => Some(2),
        scan::Detected::NotProxy => Some(0),
        scan::Detected::NeedMore => None,
    })
}

#[pyfunction]
#[pyo3(signature = (data, start=0, /))]
fn find_signature(py: Python<'_>, data: &Bound<'_, PyAny>, start: i128) -> PyResult<isize> {
    // Like bytes.find: a negative start counts from the end.
    let start = |len: usize| -> usize {
        let s = if start < 0 { (len as i128 + start).max(0) } else { start };
        usize::try_from(s).unwrap_or(usize::MAX)
    };
    let found = if let Ok(b) = data.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        if bytes.len() >= 1 << 20 {
            py.detach(|| scan::find_signature(bytes, start(bytes.len())))
        } else {
            scan::find_signature(bytes, start(bytes.len()))
        }
    } else {
        with_bytes(data, |bytes| scan::find_signature(bytes, start(bytes.len())))?
    };
    Ok(found.map_or(-1, |p| p as isize))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_V1_SIZE", v1::MAX_LEN)?;
    m.add("MAX_V2_SIZE", v2::MAX_LEN)?;
    m.add("V2_SIGNATURE", PyBytes::new(m.py(), &v2::SIGNATURE))?;
    m.add_class::<PyHeader>()?;
    m.add_class::<PyParser>()?;
    m.add_class::<PyTlv>()?;
    m.add_class::<PySslInfo>()?;
    add_fast::<Parse>(m)?;
    m.add_function(wrap_pyfunction!(_header_from_bytes, m)?)?;
    add_fast::<BuildV1>(m)?;
    add_fast::<BuildV2>(m)?;
    add_fast::<Crc32c>(m)?;
    m.add_function(wrap_pyfunction!(detect, m)?)?;
    m.add_function(wrap_pyfunction!(find_signature, m)?)?;
    Ok(())
}
