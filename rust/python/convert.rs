//! Conversions at the boundary: Python buffers, arguments and addresses into the core's
//! types, the core's errors and values into Python objects.

use core::net::{IpAddr, SocketAddr};

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple, PyType};

use crate::header::{unix_path, Address};
use crate::{ip_text, v2, BuildError, Endpoints, ErrorKind, Options, ParseError};

/// Calls `f` with the bytes of any object that supports the buffer protocol, without copying.
/// Like `zlib.crc32`, any C-contiguous buffer is read as its raw bytes whatever its item
/// format (`array('i')`, `memoryview.cast('b')`); a non-contiguous one is a `ValueError`.
pub(super) fn with_bytes<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    let buf = PyUntypedBuffer::get(obj)?;
    if !buf.is_c_contiguous() {
        return Err(PyValueError::new_err("the buffer must be C-contiguous"));
    }
    let (ptr, len) = (buf.buf_ptr().cast::<u8>().cast_const(), buf.len_bytes());
    let slice: &[u8] = if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: a C-contiguous buffer is `len` bytes from `ptr`, and `buf` keeps the
        // exporter's memory alive and pinned until it is dropped at the end of this function;
        // the slice does not outlive it. We hold the GIL (the module declares it needs it) and
        // run no Python code while the slice is in use, so nothing can resize or write the
        // buffer meanwhile.
        unsafe { core::slice::from_raw_parts(ptr, len) }
    };
    Ok(f(slice))
}

/// An integer argument of any size (for `#[pyo3(from_py_with)]`). Values beyond `i128`
/// saturate, so that range checks report them as `ValueError`s like any other out-of-range
/// value, never `OverflowError`; [`int_text`] shows them.
pub(super) fn saturating_i128(obj: &Bound<'_, PyAny>) -> PyResult<i128> {
    match obj.extract::<i128>() {
        Ok(v) => Ok(v),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            Ok(if obj.lt(0)? { i128::MIN } else { i128::MAX })
        }
        Err(e) => Err(e),
    }
}

/// A [`saturating_i128`] value for a message.
pub(super) fn int_text(v: i128) -> String {
    match v {
        i128::MAX => "2**127 or more".to_owned(),
        i128::MIN => "-2**127 or less".to_owned(),
        v => v.to_string(),
    }
}

/// An integer taken modulo 2**32 whatever its size, as `zlib.crc32` takes its start value
/// (for `#[pyo3(from_py_with)]`).
pub(super) fn wrapped_u32(obj: &Bound<'_, PyAny>) -> PyResult<u32> {
    let low = match obj.extract::<i128>() {
        Ok(v) => v & 0xFFFF_FFFF,
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            obj.bitand(0xFFFF_FFFF_u32)?.extract::<i128>()?
        }
        Err(e) => return Err(e),
    };
    Ok(u32::try_from(low).unwrap_or_default())
}

pub(super) static ERRORS_MODULE: &str = "proxyproto_rs._errors";

pub(super) fn error_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, ERRORS_MODULE, name)
}

pub(super) fn make_error(
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

pub(super) fn parse_error(py: Python<'_>, e: ParseError) -> PyErr {
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

/// An `InvalidHeaderError` the core's parser does not produce (e.g. bytes left over when
/// unpickling).
pub(super) fn invalid_error_with(py: Python<'_>, kind: &str, msg: &str, offset: usize) -> PyErr {
    static INVALID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    match error_class(py, &INVALID, "InvalidHeaderError") {
        Ok(class) => make_error(py, class, msg, kind, offset as i64),
        Err(err) => err,
    }
}

pub(super) fn incomplete_error(py: Python<'_>, len: usize, needed: usize) -> PyErr {
    static INCOMPLETE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    match error_class(py, &INCOMPLETE, "IncompleteHeaderError") {
        Ok(class) => {
            let msg = format!("incomplete header: {len} bytes, at least {needed} more needed");
            make_error(py, class, &msg, "incomplete", len as i64)
        }
        Err(err) => err,
    }
}

pub(super) fn build_error_with(py: Python<'_>, kind: &str, msg: &str) -> PyErr {
    static BUILD: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    match error_class(py, &BUILD, "BuildError") {
        Ok(class) => make_error(py, class, msg, kind, -1),
        Err(err) => err,
    }
}

pub(super) fn build_error(py: Python<'_>, e: &BuildError) -> PyErr {
    build_error_with(py, e.kind(), &e.to_string())
}

/// The members of one of the `IntEnum`s in `proxyproto_rs._enums`, by value, fetched once: calling
/// the enum class on every read cost about 1 us (measure: `python -m timeit -s "$V2" 'h.command'`,
/// `$V2` as in benchmarks/README.md).
pub(super) fn enum_member<'py>(
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

pub(super) fn options(
    allow_v1: bool,
    allow_v2: bool,
    verify_checksum: bool,
    max_size: i128,
    haproxy_limits: bool,
) -> PyResult<Options> {
    // Out of range, however far (see `saturating_i128`), is a ValueError.
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

pub(super) fn ip_string(py: Python<'_>, ip: IpAddr) -> Bound<'_, PyString> {
    ip_text::with_ip_text(ip, |text| {
        // SAFETY: the text is only ASCII digits, hex digits, colons and dots: valid UTF-8.
        // Checking it with `str::from_utf8` cost ~90 of the ~2700 instructions of
        // `parse(v2).source`, hence the unchecked conversion (speed trick `utf8-unchecked` in
        // benchmarks/README.md: `ir_py "$V2" 'h.source'`).
        PyString::new(py, unsafe { core::str::from_utf8_unchecked(text) })
    })
}

/// Text as Python reads it from a UTF-8 field: lossless, undecodable bytes as surrogates.
/// One call into `CPython`'s decoder, which checks and copies in one pass (checking in Rust
/// first, with `str::from_utf8` or `is_ascii`, cost ~60-120 instructions more per short TLV:
/// speed trick `tlv-text` in benchmarks/README.md: `ir_py "$TLV" 'h.authority'`).
pub(super) fn utf8_text<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
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

/// A `str` of text known to be ASCII (an address's text as a v1 line carries it), through
/// `CPython`'s ASCII decoder, which skips the UTF-8 decoder's layers (speed trick
/// `v1-source-ascii` in benchmarks/README.md: `ir_py "$V1" 'h.source'`). Not-ASCII bytes
/// would raise `UnicodeDecodeError`, never be misread.
pub(super) fn ascii_text<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // An address's text is at most 45 bytes, so the length fits.
    let len = ffi::Py_ssize_t::try_from(raw.len()).unwrap_or(ffi::Py_ssize_t::MAX);
    // SAFETY: `raw` is valid for `len` bytes during the call, and NULL asks for the strict
    // error handler; the result is a new reference, or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeASCII(raw.as_ptr().cast(), len, core::ptr::null()),
        )
    }
}

/// [`utf8_text`] of a short TLV value, decoded from an 8-byte aligned copy: `CPython`'s decoder
/// reads aligned text a word at a time, and unaligned text byte by byte up to its first
/// aligned word (speed trick `tlv-text-aligned` in benchmarks/README.md:
/// `ir_py "$TLV6" 'r = h.authority'`). Values under 8 bytes (no whole word: the copy would
/// only cost) and over 64 are decoded where they lie.
pub(super) fn tlv_text<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    #[repr(align(8))]
    struct Aligned([u8; 64]);
    if !(8..=64).contains(&raw.len()) {
        return utf8_text(py, raw);
    }
    let mut copy = Aligned([0; 64]);
    let head = copy.0.get_mut(..raw.len()).unwrap_or_default();
    head.copy_from_slice(raw);
    utf8_text(py, head)
}

/// `(host, port)`: the first two items of `socket.getpeername()`.
#[inline]
pub(super) fn inet_pair(py: Python<'_>, ip: IpAddr, port: u16) -> PyResult<Bound<'_, PyAny>> {
    host_port(py, ip_string(py, ip).into_any(), port)
}

/// `(host, port)` from a host string already made.
#[inline]
pub(super) fn host_port<'py>(
    py: Python<'py>,
    host: Bound<'py, PyAny>,
    port: u16,
) -> PyResult<Bound<'py, PyAny>> {
    let Ok(port) = port.into_pyobject(py);
    Ok((host, port).into_pyobject(py)?.into_any())
}

pub(super) fn address<'py>(
    py: Python<'py>,
    addr: Option<Address<'_>>,
) -> PyResult<Bound<'py, PyAny>> {
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
pub(super) enum AddrIn {
    Ip(SocketAddr),
    Unix(Vec<u8>),
}

pub(super) fn address_in(py: Python<'_>, obj: &Bound<'_, PyAny>, which: &str) -> PyResult<AddrIn> {
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
            // The caller's text is quoted as repr() shows it: a message read in a log or on a
            // terminal never carries its control characters (CR LF, ESC, U+202E) raw.
            let shown =
                host_str.repr().map_or_else(|_| String::from("the host"), |r| r.to_string());
            let msg = format!("{which}: {shown} is not an IPv4 or IPv6 address");
            build_error_with(py, "address", &msg)
        };
        let host = host_str.to_str().map_err(|_| bad_host())?;
        // A socket's IPv6 name may carry a zone (`fe80::1%eth0`); the wire has no room for it,
        // so it is dropped. IPv4 has no zones: `1.2.3.4%eth0` is not an address.
        // The zone is looked for only when the text is not IPv4: a `memchr` call, ~60
        // instructions per address (`ir_py "$B2" 'b2(S4, D4)'` of benchmarks/README.md).
        let ip = if let Some(v4) = ip_text::ipv4_text(host.as_bytes()) {
            IpAddr::V4(v4)
        } else {
            let bare = host.split_once('%').map_or(host, |(bare, _)| bare);
            bare.parse().map(IpAddr::V6).map_err(|_| bad_host())?
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

pub(super) fn addresses_in(
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

pub(super) fn endpoints<'a>(
    py: Python<'_>,
    pair: Option<&'a (AddrIn, AddrIn)>,
) -> PyResult<Endpoints<'a>> {
    Ok(match pair {
        None => Endpoints::None,
        Some((AddrIn::Ip(s), AddrIn::Ip(d))) => Endpoints::Inet(*s, *d),
        Some((AddrIn::Unix(s), AddrIn::Unix(d))) => Endpoints::Unix(s, d),
        Some(_) => return Err(build_error(py, &BuildError::MixedFamilies)),
    })
}
