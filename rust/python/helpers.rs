//! The helper functions: `crc32c()`, `detect()` and `find_signature()`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::convert::{saturating_i128, with_bytes, wrapped_u32};
use super::fastcall::fast_function;
use crate::{crc32c, scan};

fast_function! {
    /// CRC32C (Castagnoli) of *data*, chainable like ``zlib.crc32``:
    /// ``crc32c(b, crc32c(a)) == crc32c(a + b)``.
    ///
    /// Args:
    ///     data: any C-contiguous buffer, read as raw bytes whatever its item format (as
    ///         ``zlib.crc32`` reads it).
    ///     value: the CRC to continue from, taken modulo 2**32 however large or negative.
    ///
    /// Returns:
    ///     The CRC32C, 0 to 2**32 - 1.
    ///
    /// Raises:
    ///     ValueError: *data* is not C-contiguous.
    ///     TypeError: *data* is not a buffer, or *value* not an integer.
    pub(super) struct Crc32c = "crc32c" (data, value = 0, /);
    fn crc32c_py(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = wrapped_u32)] value: u32,
    ) -> PyResult<u32> {
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
}

enum Found {
    Version(u8),
    Spp,
    NeedMore,
}

/// Which PROXY protocol version *data* starts with, from its first bytes only.
///
/// Args:
///     data: any C-contiguous buffer, read as raw bytes.
///     spp: also recognise Cloudflare Spectrum's Simple Proxy Protocol.
///
/// Returns:
///     1 for v1, 2 for v2, 0 if *data* cannot start a PROXY header, None if more bytes
///     are needed to tell. With ``spp=True``, ``"spp"`` when *data* starts with the Simple
///     Proxy Protocol magic ``0x56EC`` (and None for its first byte alone); off by default:
///     two bytes are a weak signature, so only ask where Cloudflare Spectrum's UDP traffic
///     is expected.
///
/// Raises:
///     ValueError: *data* is not C-contiguous.
///     TypeError: *data* is not a buffer.
#[pyfunction]
#[pyo3(signature = (data, /, *, spp=false))]
pub(super) fn detect<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    spp: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let found = with_bytes(data, |bytes| {
        if spp {
            match crate::spp::detect(bytes) {
                Some(true) => return Found::Spp,
                None if !bytes.is_empty() => return Found::NeedMore,
                _ => {}
            }
        }
        match scan::detect(bytes) {
            scan::Detected::V1 => Found::Version(1),
            scan::Detected::V2 => Found::Version(2),
            scan::Detected::NotProxy => Found::Version(0),
            scan::Detected::NeedMore => Found::NeedMore,
        }
    })?;
    Ok(match found {
        Found::Version(v) => v.into_pyobject(py)?.into_any(),
        Found::Spp => "spp".into_pyobject(py)?.into_any(),
        Found::NeedMore => py.None().into_bound(py),
    })
}

/// Offset of the first v1 (``b"PROXY "``) or v2 signature at or after *start*, or -1.
///
/// Args:
///     data: any C-contiguous buffer, read as raw bytes.
///     start: where to start looking; negative counts from the end, and any size is
///         clamped to the buffer, as ``bytes.find`` does.
///
/// Returns:
///     The offset of the signature, or -1.
///
/// Raises:
///     ValueError: *data* is not C-contiguous.
///     TypeError: *data* is not a buffer, or *start* not an integer.
#[pyfunction]
#[pyo3(signature = (data, start=0, /))]
pub(super) fn find_signature(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = saturating_i128)] start: i128,
) -> PyResult<isize> {
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
