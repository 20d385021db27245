//! The `Header`, `Tlv` and `SslInfo` classes: a header keeps its wire bytes and a `Layout`;
//! every field is materialised only when read.

use core::hash::{Hash, Hasher};
use core::net::{IpAddr, SocketAddr};
use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple};
use thin_vec::ThinVec;

use super::build::{build_v1, build_v2_bytes, TypedTlvs};
use super::convert::{
    address, ascii_text, enum_member, host_port, incomplete_error, inet_pair, int_text,
    invalid_error_with, parse_error, saturating_i128, tlv_text, with_bytes,
};
use crate::header::{End, Family, Header, Layout};
use crate::tlv::{self, Ssl};
use crate::{v1, v2, Command, Options, Status};

/// One TLV as it stood on the wire; unpacks as ``(type, value)``.
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
    fn py_new(
        py: Python<'_>,
        #[pyo3(from_py_with = saturating_i128)] r#type: i128,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let Ok(kind) = u8::try_from(r#type) else {
            let msg = format!("TLV type {} is not in 0-255", int_text(r#type));
            return Err(PyValueError::new_err(msg));
        };
        let value = with_bytes(value, |b| PyBytes::new(py, b).unbind())?;
        Ok(Self { kind, value })
    }

    /// The type byte (0-255).
    #[getter]
    fn r#type(&self) -> u8 {
        self.kind
    }

    /// The value bytes, exactly as received.
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

/// The TLVs as a tuple of `Tlv`s, filled in place: collecting them into a `Vec` first cost a
/// `malloc` and a `free` per read (speed trick `tlv-tuple` in benchmarks/README.md:
/// `ir_py "$TLV6" 'r = h.tlvs'`).
pub(super) fn tlv_tuple<'py>(
    py: Python<'py>,
    tlvs: tlv::Tlvs<'_>,
) -> PyResult<Bound<'py, PyTuple>> {
    let len = tlvs.clone().count();
    // SAFETY: `PyTuple_New` returns a new reference or NULL with an exception set.
    let tuple = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(len as ffi::Py_ssize_t))?
            .cast_into_unchecked::<PyTuple>()
    };
    let mut filled = 0;
    for (i, t) in tlvs.take(len).enumerate() {
        let item = PyTlv::new_bound(py, t.kind, t.value)?;
        filled += 1;
        // SAFETY: `tuple` is new, not yet shared, and `i < len`, its size; `PyTuple_SetItem`
        // takes over the reference `into_ptr` gives up (and drops it on failure).
        if unsafe { ffi::PyTuple_SetItem(tuple.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) }
            < 0
        {
            return Err(PyErr::fetch(py));
        }
    }
    // The walk is the same both times; were it not, an unfilled slot must never be seen.
    if filled != len {
        return Err(PyValueError::new_err("the TLVs changed while being read"));
    }
    Ok(tuple)
}

// A view of its header's bytes: copying the TLV cost a malloc and a free per `Header.ssl`
// read (measure: `python benchmarks/bench.py --only TLVs`, whose read takes `h.ssl`). Where
// the value lies is kept, so that each property read skips the walk over the header's TLVs
// (speed trick `ssl-view` in benchmarks/README.md: `ir_py "$TLV6" 's = h.ssl; r = (s.version,
// s.cn)'`). No `freelist` here or on `Tlv`: with three classes using one, `PyO3`'s freelist
// code was no longer inlined into `Header`'s, +18 instructions on every `parse(d)`.
/// The PP2_TYPE_SSL TLV (0x20): client flags, verify result and sub-TLVs (SPEC 37-38).
#[pyclass(module = "proxyproto_rs._core", name = "SslInfo", frozen)]
pub struct PySslInfo {
    pub(super) header: Py<PyHeader>,
    /// The SSL TLV's value: its start and end in the header's bytes.
    value: (u32, u32),
}

impl PySslInfo {
    /// The SSL TLV of `header`, if it has one that decodes.
    fn of(header: &Bound<'_, PyHeader>) -> Option<Self> {
        let t = header.get().view().tlv(tlv::SSL)?;
        Ssl::new(t.value)?;
        // A TLV's value starts 3 bytes after its type byte; headers are under 64 KiB + 16.
        let start = u32::try_from(t.offset + 3).ok()?;
        let end = start.checked_add(u32::try_from(t.value.len()).ok()?)?;
        Some(Self { header: header.clone().unbind(), value: (start, end) })
    }

    pub(super) fn ssl(&self) -> Ssl<'_> {
        // Made only for a header with an SSL TLV that decodes, and headers never change.
        let none = Ssl { client: 0, verify: 0, sub: &[], sub_offset: 5 };
        let (start, end) = (self.value.0 as usize, self.value.1 as usize);
        self.header.get().bytes().get(start..end).and_then(Ssl::new).unwrap_or(none)
    }

    pub(super) fn text<'py>(
        &self,
        py: Python<'py>,
        kind: u8,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.ssl().get(kind).map(|v| tlv_text(py, v)).transpose()
    }
}

#[pymethods]
impl PySslInfo {
    /// The ``client`` bit field (0x01 SSL, 0x02 CERT_CONN, 0x04 CERT_SESS).
    #[getter]
    fn client(&self) -> u8 {
        self.ssl().client
    }
    /// 0 when a client certificate was presented and verified, non-zero otherwise.
    #[getter]
    fn verify(&self) -> u32 {
        self.ssl().verify
    }
    /// PP2_CLIENT_SSL: the client connected over TLS.
    #[getter]
    fn client_ssl(&self) -> bool {
        self.ssl().client & tlv::CLIENT_SSL != 0
    }
    /// PP2_CLIENT_CERT_CONN: a client certificate was presented on this connection.
    #[getter]
    fn client_cert_conn(&self) -> bool {
        self.ssl().client & tlv::CLIENT_CERT_CONN != 0
    }
    /// PP2_CLIENT_CERT_SESS: a client certificate was presented in this TLS session.
    #[getter]
    fn client_cert_sess(&self) -> bool {
        self.ssl().client & tlv::CLIENT_CERT_SESS != 0
    }
    /// A CERT bit is set AND ``verify == 0`` (HAProxy sends 0 when no cert was given).
    #[getter]
    fn client_cert_verified(&self) -> bool {
        self.ssl().client_cert_verified()
    }
    /// Sub-TLV 0x21: TLS version, e.g. ``"TLSv1.3"``.
    #[getter]
    fn version<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_VERSION)
    }
    /// Sub-TLV 0x22: Common Name of the client certificate.
    #[getter]
    fn cn<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_CN)
    }
    /// Sub-TLV 0x23: cipher name, e.g. ``"ECDHE-RSA-AES128-GCM-SHA256"``.
    #[getter]
    fn cipher<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_CIPHER)
    }
    /// Sub-TLV 0x24: signature algorithm of the frontend certificate.
    #[getter]
    fn sig_alg<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_SIG_ALG)
    }
    /// Sub-TLV 0x25: key algorithm of the frontend certificate.
    #[getter]
    fn key_alg<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_KEY_ALG)
    }
    /// Sub-TLV 0x26: key-exchange group, e.g. ``"secp256r1"``.
    #[getter]
    fn group<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_GROUP)
    }
    /// Sub-TLV 0x27: signature scheme, e.g. ``"rsa_pss_rsae_sha256"``.
    #[getter]
    fn sig_scheme<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(py, tlv::SSL_SIG_SCHEME)
    }
    /// Sub-TLV 0x28: the client certificate, DER.
    #[getter]
    fn client_cert<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.ssl().get(tlv::SSL_CLIENT_CERT).map(|v| PyBytes::new(py, v))
    }
    /// Every sub-TLV in wire order.
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
/// bytes were stored stalled on store forwarding: speed trick `raw-struct` in
/// benchmarks/README.md.)
#[repr(C)] // `inline` first, at offset 0: moved in the same 16-byte pieces it was stored in
pub(super) struct Raw {
    pub(super) inline: [u8; Raw::INLINE],
    /// The whole header when it is longer than `INLINE` (else empty, which allocates
    /// nothing): one allocation behind an 8-byte pointer, so a Header stays at 112 bytes
    /// without the second allocation a `Box<Box<[u8]>>` took (speed trick `raw-thin-vec` in
    /// benchmarks/README.md: `python benchmarks/memory.py`).
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

// A parsed header: wire bytes plus what parsing learned. Up to 64 freed objects are kept
// for reuse (at most ~8 KiB): a server makes and drops one per connection, and skipping the
// allocator took 5-7 ns off `parse(d)` (speed trick `header-freelist` in
// benchmarks/README.md: `python -m timeit -s "$V2" 'p.parse(d)'` with and without it).
/// A parsed PROXY protocol header: immutable, hashable, ``==`` by value, picklable.
///
/// Fields are read lazily from the wire bytes; ``bytes(header)`` gives them back exactly.
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
            } else {
                // Copied to an 8-byte aligned buffer first: CPython's ASCII decoder reads
                // aligned words, and byte by byte otherwise (90 vs 34 instructions:
                // speed trick `v1-source-aligned`, `ir_py "$V1" 'h.source'`).
                // An address (at most 15 bytes) is followed by at least " 0 0\r\n" in a valid
                // line, so 16 bytes from its start are there: one fixed-size copy.
                #[repr(align(8))]
                struct Aligned([u8; 16]);
                // The layout came from parsing these bytes: the port text is known good.
                let (start, stop, port) = v1::parsed_endpoint_at(bytes, layout, end);
                let text = match bytes.get(start..).and_then(<[u8]>::first_chunk::<16>) {
                    Some(head) => &Aligned(*head).0[..],
                    None => bytes.get(start..).unwrap_or_default(),
                };
                let host =
                    ascii_text(py, text.get(..stop.saturating_sub(start)).unwrap_or_default())?;
                return host_port(py, host, port);
            }
        }
        address(py, self.view().end(end))
    }

    /// `.source_inet` or `.destination_inet`: `(host, port)` for INET and INET6, else `None`.
    fn inet_end<'py>(&self, py: Python<'py>, end: End) -> PyResult<Option<Bound<'py, PyAny>>> {
        let inet = matches!(self.layout.family, Family::Inet | Family::Inet6);
        if inet && self.layout.has_addresses() {
            self.end(py, end).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(super) fn tlv_value(&self, kind: u8) -> Option<&[u8]> {
        self.view().tlv(kind).map(|t| t.value)
    }
}

/// Parses `buf` into a new Python `Header`. The object is made here, where the layout is,
/// rather than returning the 80-byte struct through `Result`s to `PyO3`: each of those moves
/// stalled on store forwarding (speed trick `header-from` in benchmarks/README.md).
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

/// Options that accept anything the builders produce: their output is valid by construction,
/// so its checksum is not verified again.
pub(super) const PERMISSIVE: Options = Options {
    allow_v1: true,
    allow_v2: true,
    verify_checksum: false,
    max_size: v2::MAX_LEN,
    haproxy_limits: false,
};

#[pymethods]
impl PyHeader {
    /// 1 for the text format, 2 for the binary one.
    #[getter]
    fn version(&self) -> u8 {
        self.layout.version
    }

    /// PROXY for a relayed connection, LOCAL for the proxy's own (v1 is always PROXY).
    #[getter]
    fn command<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static COMMAND: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
        enum_member(py, &COMMAND, "Command", self.layout.command as u8)
    }

    /// Address family; UNSPEC for v1 UNKNOWN.
    #[getter]
    fn family<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static FAMILY: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
        enum_member(py, &FAMILY, "Family", self.layout.family as u8)
    }

    /// Transport; STREAM for v1 TCP4/TCP6, UNSPEC for v1 UNKNOWN.
    #[getter]
    fn protocol<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static PROTOCOL: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
        enum_member(py, &PROTOCOL, "Protocol", self.layout.protocol as u8)
    }

    /// The client's address, like ``socket.getpeername()``.
    ///
    /// ``None`` for LOCAL, UNSPEC and v1 UNKNOWN: use the real connection's address then.
    #[getter]
    fn source<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.end(py, End::Source)
    }

    /// The address the client connected to, like ``socket.getsockname()``; or ``None``.
    #[getter]
    fn destination<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.end(py, End::Destination)
    }

    /// ``source`` when it is an INET or INET6 ``(host, port)``, else ``None``.
    ///
    /// The typed way to unpack an IP endpoint: ``host, port = h.source_inet`` after a
    /// ``None`` check, where ``h.source`` may also be a UNIX path.
    #[getter]
    fn source_inet<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inet_end(py, End::Source)
    }

    /// ``destination`` when it is an INET or INET6 ``(host, port)``, else ``None``.
    #[getter]
    fn destination_inet<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inet_end(py, End::Destination)
    }

    /// Bytes the header took on the wire; the payload starts there.
    #[getter]
    fn length(&self) -> usize {
        self.bytes().len()
    }

    /// Every TLV in wire order, duplicates and unknown types kept (v1: empty).
    #[getter]
    fn tlvs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        tlv_tuple(py, self.view().tlvs())
    }

    /// TLV 0x01: the application protocol, e.g. ``b"h2"``.
    #[getter]
    fn alpn<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.tlv_value(tlv::ALPN).map(|v| PyBytes::new(py, v))
    }

    /// TLV 0x02: the host name the client asked for (TLS SNI).
    #[getter]
    fn authority<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.tlv_value(tlv::AUTHORITY).map(|v| tlv_text(py, v)).transpose()
    }

    /// TLV 0x03: the CRC32C value as sent (verified unless checking was turned off).
    #[getter]
    fn crc32c(&self) -> Option<u32> {
        self.tlv_value(tlv::CRC32C).and_then(|v| v.try_into().ok()).map(u32::from_be_bytes)
    }

    /// TLV 0x05: opaque connection id, at most 128 bytes.
    #[getter]
    fn unique_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.tlv_value(tlv::UNIQUE_ID).map(|v| PyBytes::new(py, v))
    }

    /// TLV 0x20: TLS details of the client connection.
    #[getter]
    fn ssl(slf: &Bound<'_, Self>) -> Option<PySslInfo> {
        PySslInfo::of(slf)
    }

    /// TLV 0x30: network namespace name.
    #[getter]
    fn netns<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.tlv_value(tlv::NETNS).map(|v| tlv_text(py, v)).transpose()
    }

    /// TLV 0xEA subtype 0x01: the AWS PrivateLink VPC endpoint id.
    ///
    /// The first such TLV whose id is plausible (letters, digits and ``-``, at least one
    /// character); ``None`` if there is none, so the text is always safe to print.
    #[getter]
    fn aws_vpce_id<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.view().aws_vpce_id().map(|id| tlv_text(py, id.as_bytes())).transpose()
    }

    /// TLV 0xEE subtype 0x01: the Azure Private Link LINKID (u32, little-endian).
    ///
    /// The first 0xEE TLV of that subtype and 5 bytes; other 0xEE TLVs are skipped.
    #[getter]
    fn azure_link_id(&self) -> Option<u32> {
        self.view().azure_link_id()
    }

    /// TLV 0xE0 of exactly 8 bytes read as GCP's pscConnectionId (u64, big-endian).
    ///
    /// The first 0xE0 TLV of 8 bytes. 0xE0 is also generic custom space: this only
    /// interprets, it never rejects.
    #[getter]
    fn gcp_psc_connection_id(&self) -> Option<u64> {
        self.view().gcp_psc_connection_id()
    }

    /// The header exactly as it stood on the wire.
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
        static UNPICKLE_FN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let f = UNPICKLE_FN.import(py, "proxyproto_rs._core", "_header_from_bytes")?;
        // A header parsed with verify_checksum=False may carry a CRC32C that does not verify:
        // its pickle says so, so that it loads again; every other pickle has its CRC32C
        // checked when loaded, which is what catches altered bytes.
        let verifies = crate::parse(self.bytes(), &UNPICKLE).is_ok();
        (f, (PyBytes::new(py, self.bytes()), verifies)).into_pyobject(py)
    }

    /// ``parse(build_v1(source, destination))``: see :func:`build_v1`.
    ///
    /// Raises:
    ///     BuildError: as :func:`build_v1` raises it.
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

    /// ``parse(build_v2(...))`` with the same arguments: see :func:`build_v2` for source,
    /// destination, command, protocol, tlvs, crc32c, alpn, authority, unique_id, netns and
    /// aws_vpce_id.
    ///
    /// Raises:
    ///     BuildError: as :func:`build_v2` raises it.
    #[staticmethod]
    #[pyo3(signature = (source=None, destination=None, *, command=None, protocol=None, tlvs=None,
        crc32c=false, alpn=None, authority=None, unique_id=None, netns=None, aws_vpce_id=None))]
    fn v2<'py>(
        py: Python<'py>,
        source: Option<&Bound<'_, PyAny>>,
        destination: Option<&Bound<'_, PyAny>>,
        command: Option<&Bound<'_, PyAny>>,
        protocol: Option<&Bound<'_, PyAny>>,
        tlvs: Option<&Bound<'_, PyAny>>,
        crc32c: bool,
        alpn: Option<&Bound<'_, PyAny>>,
        authority: Option<&Bound<'_, PyString>>,
        unique_id: Option<&Bound<'_, PyAny>>,
        netns: Option<&Bound<'_, PyString>>,
        aws_vpce_id: Option<&Bound<'_, PyString>>,
    ) -> PyResult<Bound<'py, Self>> {
        let typed = TypedTlvs { alpn, authority, unique_id, netns, aws_vpce_id };
        let command = command.map(saturating_i128).transpose()?;
        let protocol = protocol.map(saturating_i128).transpose()?;
        let raw = build_v2_bytes(py, source, destination, command, protocol, tlvs, crc32c, &typed)?;
        header_from(py, &raw, &PERMISSIVE)
    }

    /// A v2 LOCAL header (health check) with no addresses.
    ///
    /// Args:
    ///     tlvs: TLVs to carry, as for :func:`build_v2`.
    ///     crc32c: add a CRC32C TLV first and fill it in.
    ///
    /// Raises:
    ///     BuildError: as :func:`build_v2` raises it.
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

/// What unpickling accepts: exactly what `parse()` checks (the CRC32C included), at any size
/// a header may have, since a pickle may come from anywhere.
const UNPICKLE: Options = Options { verify_checksum: true, ..PERMISSIVE };

/// Unpickling helper: ``parse(data)`` with every check ``parse()`` makes (the CRC32C
/// included unless *verify_checksum* is false) at any header size; *data* must be the header
/// and nothing more.
///
/// Args:
///     data: the header's bytes, as ``bytes(header)`` gives them.
///     verify_checksum: False only in the pickle of a header that was parsed with
///         ``verify_checksum=False`` and whose CRC32C does not verify.
///
/// Raises:
///     InvalidHeaderError: *data* is not exactly one valid header (kind ``trailing_data``
///         when bytes follow it).
///     IncompleteHeaderError: *data* is an unfinished header.
#[pyfunction]
#[pyo3(signature = (data, verify_checksum=true, /))]
pub(super) fn _header_from_bytes<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    verify_checksum: bool,
) -> PyResult<Bound<'py, PyHeader>> {
    let opts = if verify_checksum { UNPICKLE } else { PERMISSIVE };
    with_bytes(data, |bytes| {
        let header = header_from(py, bytes, &opts)?;
        let len = header.get().bytes().len();
        if len != bytes.len() {
            let msg = format!("{} bytes after the {len}-byte header", bytes.len() - len);
            return Err(invalid_error_with(py, "trailing_data", &msg, len));
        }
        Ok(header)
    })?
}
