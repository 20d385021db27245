//! The `Header`, `Tlv` and `SslInfo` classes: a header keeps its wire bytes and a `Layout`;
//! every field is materialised only when read.

use core::hash::{Hash, Hasher};
use core::net::{IpAddr, SocketAddr};
use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple};
use thin_vec::ThinVec;

use super::build::{build_v1, build_v2_bytes, TypedTlvs};
use super::convert::{
    address, enum_member, host_port, incomplete_error, inet_pair, parse_error, utf8_text,
    with_bytes,
};
use crate::header::{End, Family, Header, Layout};
use crate::tlv::{self, Ssl};
use crate::{v1, v2, Command, Options, Status};

/// One TLV as it stood on the wire; unpacks as `(type, value)`.
#[pyclass(module = "proxyproto_rs._core", name = "Tlv", frozen)]
pub struct PyTlv {
    pub(super) kind: u8,
    pub(super) value: Py<PyBytes>,
}

impl PyTlv {
    pub(super) fn new_bound<'py>(
        py: Python<'py>,
        kind: u8,
        value: &[u8],
    ) -> PyResult<Bound<'py, Self>> {
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

pub(super) fn tlv_tuple<'py>(
    py: Python<'py>,
    tlvs: tlv::Tlvs<'_>,
) -> PyResult<Bound<'py, PyTuple>> {
    let items =
        tlvs.map(|t| PyTlv::new_bound(py, t.kind, t.value)).collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}

/// The `PP2_TYPE_SSL` TLV (0x20): client flags, verify result and sub-TLVs. A view of its
/// header's bytes (copying the TLV cost a malloc and a free per `Header.ssl` read).
#[pyclass(module = "proxyproto_rs._core", name = "SslInfo", frozen)]
pub struct PySslInfo {
    pub(super) header: Py<PyHeader>,
}

impl PySslInfo {
    pub(super) fn ssl(&self) -> Ssl<'_> {
        // Made only for a header with an SSL TLV, and headers never change.
        let none = Ssl { client: 0, verify: 0, sub: &[], sub_offset: 5 };
        self.header.get().view().ssl().unwrap_or(none)
    }

    pub(super) fn text<'py>(
        &self,
        py: Python<'py>,
        kind: u8,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
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

/// A header's wire bytes: inline when short (most headers: no allocation besides the
/// Python object), on the heap otherwise. The length is the layout's. (A struct, not an
/// enum: an enum's tag shifted the array by a byte, and the shifted copy right after the
/// bytes were stored stalled on store forwarding; perf annotate of `header_from`.)
#[repr(C)] // `inline` first, at offset 0: moved in the same 16-byte pieces it was stored in
pub(super) struct Raw {
    pub(super) inline: [u8; Raw::INLINE],
    /// The whole header when it is longer than `INLINE` (else empty, which allocates
    /// nothing): one allocation behind an 8-byte pointer, so a Header stays at 112 bytes
    /// (tracemalloc; a LOCAL header's 16 wire bytes may cost 160, issue 5) without the second
    /// allocation a `Box<Box<[u8]>>` took.
    pub(super) heap: ThinVec<u8>,
}

impl Raw {
    /// Covers v2 IPv4 (28 B) and IPv6 (52 B), LOCAL (16 B) and most v1 TCP4 lines.
    const INLINE: usize = 56;

    /// The first `INLINE` bytes of `buf` (all of it if shorter): a fixed-size copy when they
    /// are there, taken before parsing so that the stores have retired by the time the bytes
    /// move into the Python object. The bytes after the header's end are never read.
    #[inline]
    pub(super) fn prefix(buf: &[u8]) -> Self {
        let mut inline = [0; Self::INLINE];
        match buf.first_chunk::<{ Self::INLINE }>() {
            Some(head) => inline = *head,
            None => inline[..buf.len()].copy_from_slice(buf),
        }
        Self { inline, heap: ThinVec::new() }
    }

    /// Keeps the inline copy if `header` (a prefix of what it was taken from) fits in it.
    #[inline]
    pub(super) fn fit(mut self, header: &[u8]) -> Self {
        if header.len() > Self::INLINE {
            self.heap = ThinVec::from(header);
        }
        self
    }

    pub(super) fn get(&self, len: u32) -> &[u8] {
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
    pub(super) raw: Raw,
    pub(super) layout: Layout,
}

impl PyHeader {
    #[inline]
    pub(super) fn new(raw: Raw, header: &[u8], layout: Layout) -> Self {
        Self { raw: raw.fit(header), layout }
    }

    /// The header's wire bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        self.raw.get(self.layout.len)
    }

    pub(super) fn view(&self) -> Header<'_> {
        // `raw` and `layout` come from one successful parse, so they fit without re-checking.
        Header::from_parsed(self.bytes(), self.layout)
    }

    /// `.source` or `.destination`. A v1 IPv4 host is the line's own text, canonical already
    /// (rule 10), so it is neither read into an address nor written back out.
    pub(super) fn end<'py>(&self, py: Python<'py>, end: End) -> PyResult<Bound<'py, PyAny>> {
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

    pub(super) fn tlv_value(&self, kind: u8) -> Option<&[u8]> {
        self.view().tlv(kind).map(|t| t.value)
    }
}

/// Parses `buf` into a new Python `Header`. The object is made here, where the layout is,
/// rather than returning the 80-byte struct through `Result`s to `PyO3`: each of those moves
/// stalled on store forwarding (perf annotate of `parse`).
pub(super) fn header_from<'py>(
    py: Python<'py>,
    buf: &[u8],
    opts: &Options,
) -> PyResult<Bound<'py, PyHeader>> {
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
pub(super) const PERMISSIVE: Options = Options {
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

#[pyfunction]
#[pyo3(signature = (data, /))]
pub(super) fn _header_from_bytes<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyHeader>> {
    with_bytes(data, |bytes| header_from(py, bytes, &PERMISSIVE))?
}
