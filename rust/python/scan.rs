//! `_Scanner`: the iterator behind `proxyproto_rs.scan()`, every valid header of a buffer.
//!
//! The search and the refusal of candidates that do not start a valid header stay in the core
//! (`crate::scan::ScanState`): Python sees one call per header found, never one per
//! candidate, so a hostile buffer holding a signature every few bytes costs no Python work.
//! The buffer is borrowed anew on each call (a `bytearray` may change between them); only the
//! scan's position and its remembered matches are kept.

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};

use super::convert::{options, with_bytes};
use super::header::{PyHeader, Raw};
use crate::scan::ScanState;

/// Iterator of ``(offset, Header)`` for every valid header in a buffer (``scan()``).
#[pyclass(module = "proxyproto_rs._core", name = "_Scanner")]
pub struct PyScanner {
    data: Py<PyAny>,
    state: ScanState,
}

#[pymethods]
impl PyScanner {
    #[new]
    #[pyo3(signature = (data, /, *, verify_checksum=true, max_size=None))]
    fn py_new(
        data: Bound<'_, PyAny>,
        verify_checksum: bool,
        max_size: Option<&Bound<'_, PyInt>>,
    ) -> PyResult<Self> {
        // An int too large for i128 is as out of range as 15: a ValueError, not an OverflowError.
        let max_size = match max_size {
            None => 4096,
            Some(n) => n.as_any().extract::<i128>().unwrap_or(0),
        };
        let opts = options(true, true, verify_checksum, max_size, false)?;
        // Checked here, so that a non-buffer fails at the call rather than at the first `next`.
        with_bytes(&data, |_| ())?;
        Ok(Self { data: data.unbind(), state: ScanState::new(0, opts) })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let Self { data, state } = self;
        let found = with_bytes(data.bind(py), |bytes| {
            state.next_header(bytes).map(|(at, h, _)| {
                (at, PyHeader::new(Raw::prefix(h.as_bytes()), h.as_bytes(), *h.layout()))
            })
        })?;
        match found {
            Some((at, header)) => Ok(Some((at, Bound::new(py, header)?).into_pyobject(py)?)),
            None => Ok(None),
        }
    }

    /// Where the search resumes: past the last header returned.
    #[getter]
    fn position(&self) -> usize {
        self.state.position()
    }
}
