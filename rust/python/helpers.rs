//! The helper functions: `crc32c()`, `detect()` and `find_signature()`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::convert::with_bytes;
use super::fastcall::fast_function;
use crate::{crc32c, scan};

fast_function! {
    doc = "CRC32C (Castagnoli) of data, continuing from value (taken modulo 2**32, like zlib.crc32)."
    pub(super) struct Crc32c = "crc32c" (data, value = 0, /);
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
}

#[pyfunction]
#[pyo3(signature = (data, /))]
pub(super) fn detect(data: &Bound<'_, PyAny>) -> PyResult<Option<u8>> {
    with_bytes(data, |bytes| match scan::detect(bytes) {
        scan::Detected::V1 => Some(1),
        scan::Detected::V2 => Some(2),
        scan::Detected::NotProxy => Some(0),
        scan::Detected::NeedMore => None,
    })
}

#[pyfunction]
#[pyo3(signature = (data, start=0, /))]
pub(super) fn find_signature(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    start: i128,
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
