//! `parse()` and the streaming `Parser` class.

use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::convert::{options, parse_error, saturating_i128, with_bytes};
use super::fastcall::fast_function;
use super::header::{header_from, PyHeader, Raw};
use crate::stream::{self, Fed};

fast_function! {
    doc = "Parse one PROXY protocol header at the start of data; header.length bytes belong to it."
    pub(super) struct Parse = "parse"
        (data, /, *, allow_v1 = true, allow_v2 = true, verify_checksum = true, max_size = 4096,
        haproxy_limits = false);
    /// `parse` with every argument checked by `PyO3`: the calls [`Parse`]'s fast entry does not
    /// take.
    fn parse_checked<'py>(
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        allow_v1: bool,
        allow_v2: bool,
        verify_checksum: bool,
        #[pyo3(from_py_with = saturating_i128)] max_size: i128,
        haproxy_limits: bool,
    ) -> PyResult<Bound<'py, PyHeader>> {
        let opts = options(allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits)?;
        with_bytes(data, |bytes| header_from(py, bytes, &opts))?
    }
}

/// Streaming, sans-IO parser for one connection.
///
/// Its state sits behind a mutex so that the class can be `frozen`: a second call while one
/// runs (another thread, or a buffer exporter re-entering `feed`) gets a clear `ValueError`
/// instead of waiting or seeing half-updated state. Uncontended, the lock is one atomic swap
/// each way (`python benchmarks/bench.py --only feed`).
#[pyclass(module = "proxyproto_rs._core", name = "Parser", frozen)]
pub struct PyParser {
    state: Mutex<State>,
}

struct State {
    inner: stream::Parser,
    header: Option<Py<PyHeader>>,
    trailing: Vec<u8>,
    /// The most `trailing` may hold after calls past the completing one: `max_size`.
    cap: usize,
}

impl PyParser {
    fn state(&self) -> PyResult<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(guard) => Ok(guard),
            // A panic never happens while the lock is held (the core does not panic), and the
            // state is whole between statements anyway.
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => Err(PyValueError::new_err(
                "Parser is in use by another call (another thread, or a buffer re-entering \
                 feed()): use one Parser per connection, from one thread at a time",
            )),
        }
    }
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
        #[pyo3(from_py_with = saturating_i128)] max_size: i128,
        haproxy_limits: bool,
    ) -> PyResult<Self> {
        let opts = options(allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits)?;
        let state = State {
            inner: stream::Parser::new(opts),
            header: None,
            trailing: Vec::new(),
            cap: opts.max_size,
        };
        Ok(Self { state: Mutex::new(state) })
    }

    #[pyo3(signature = (data, /))]
    fn feed(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyHeader>>> {
        let mut state = self.state()?;
        let State { inner, header, trailing, cap } = &mut *state;
        with_bytes(data, |bytes| match inner.feed(bytes) {
            Ok(Fed::NeedMore(_)) => Ok(None),
            Ok(Fed::Complete { header: h, used }) => {
                // What came with the header is kept whole: it is the caller's own buffer.
                trailing.extend_from_slice(&bytes[used..]);
                let made = Py::new(
                    py,
                    PyHeader::new(Raw::prefix(h.as_bytes()), h.as_bytes(), *h.layout()),
                )?;
                *header = Some(made.clone_ref(py));
                Ok(Some(made))
            }
            Ok(Fed::AlreadyComplete) => {
                if !bytes.is_empty() && trailing.len() + bytes.len() > *cap {
                    return Err(PyValueError::new_err(format!(
                        "the header is complete and trailing_data holds {} bytes: feeding {} \
                         more would pass max_size ({cap}); hand the stream to the application",
                        trailing.len(),
                        bytes.len()
                    )));
                }
                trailing.extend_from_slice(bytes);
                Ok(header.as_ref().map(|h| h.clone_ref(py)))
            }
            Err(e) => Err(parse_error(py, e)),
        })?
    }

    #[getter]
    fn needed(&self) -> PyResult<usize> {
        Ok(self.state()?.inner.needed())
    }

    #[getter]
    fn header(&self, py: Python<'_>) -> PyResult<Option<Py<PyHeader>>> {
        Ok(self.state()?.header.as_ref().map(|h| h.clone_ref(py)))
    }

    #[getter]
    fn trailing_data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.state()?.trailing))
    }

    #[getter]
    fn done(&self) -> PyResult<bool> {
        Ok(self.state()?.header.is_some())
    }

    #[getter]
    fn buffered(&self) -> PyResult<usize> {
        let state = self.state()?;
        Ok(if state.header.is_some() { 0 } else { state.inner.buffered() })
    }

    fn __repr__(&self) -> PyResult<String> {
        let state = self.state()?;
        Ok(match (&state.header, state.inner.error()) {
            (Some(_), _) => format!("<Parser done trailing={}>", state.trailing.len()),
            (None, Some(e)) => format!("<Parser failed: {e}>"),
            (None, None) => {
                format!(
                    "<Parser buffered={} needed={}>",
                    state.inner.buffered(),
                    state.inner.needed()
                )
            }
        })
    }
}
