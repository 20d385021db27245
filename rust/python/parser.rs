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
    /// Parse one header at the start of *data*; ``header.length`` bytes belong to it.
    ///
    /// Args:
    ///     data: any C-contiguous buffer (bytes, bytearray, memoryview, array ...), read as
    ///         raw bytes without copying.
    ///     allow_v1: accept the text format.
    ///     allow_v2: accept the binary format.
    ///     verify_checksum: check a CRC32C TLV if present (SPEC rule 34).
    ///     max_size: largest v2 header accepted, 16-65551 (v1 is always capped at 107).
    ///     haproxy_limits: HAProxy's receiver profile: only the short ``PROXY UNKNOWN``,
    ///         AUTHORITY at most 255 bytes, any TLV value at most 1024 bytes.
    ///
    /// Returns:
    ///     The header; ``header.length`` bytes of *data* belong to it, the rest is payload.
    ///
    /// Raises:
    ///     IncompleteHeaderError: *data* is a valid but unfinished prefix.
    ///     InvalidHeaderError: *data* can never start a valid header (HeaderTooLargeError,
    ///         ChecksumError are subclasses).
    ///     ValueError: ``max_size`` outside 16-65551 (however large), both versions
    ///         disallowed, or *data* not C-contiguous.
    ///     TypeError: *data* is not a buffer, or an option has the wrong type.
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

// The state sits behind a mutex so that the class can be `frozen`: a second call while one
// runs (another thread, or a buffer exporter re-entering `feed`) gets a clear `ValueError`
// instead of waiting or seeing half-updated state. Uncontended, the lock is one atomic swap
// each way (measure: `python benchmarks/bench.py --only feed`).
/// Streaming, sans-IO parser for one connection: feed it bytes as they arrive.
///
/// Any split of the same bytes gives the same outcome. It never buffers more than
/// ``max_size`` bytes of header (v1: 107), nor more than ``max_size`` bytes of trailing
/// data after it, and once it raised it stays failed. Use one Parser per connection from
/// one thread at a time: a call made while another runs raises ``ValueError``.
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

    /// Buffer *data*; return the header once it is complete, else ``None``.
    ///
    /// Args:
    ///     data: any C-contiguous buffer, read as raw bytes.
    ///
    /// Returns:
    ///     The header once complete (again on every later call), else ``None``.
    ///
    /// Bytes beyond the header go to ``trailing_data``: all of those that came with the
    /// header, then later ones while ``trailing_data`` stays within ``max_size`` bytes.
    /// Read ``trailing_data`` and hand the rest of the stream to the application.
    ///
    /// Raises:
    ///     InvalidHeaderError: the bytes fed can never form a valid header (or a subclass:
    ///         HeaderTooLargeError, ChecksumError). Raised again by every later call.
    ///     ValueError: after completion, *data* would take ``trailing_data`` past
    ///         ``max_size`` (nothing of it is kept); another call on this Parser is
    ///         running; or *data* is not C-contiguous.
    ///     TypeError: *data* is not a buffer.
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

    /// Lower bound on the bytes still required (exact for v2 once 16 are in); 0 when done.
    #[getter]
    fn needed(&self) -> PyResult<usize> {
        Ok(self.state()?.inner.needed())
    }

    /// The header once complete.
    #[getter]
    fn header(&self, py: Python<'_>) -> PyResult<Option<Py<PyHeader>>> {
        Ok(self.state()?.header.as_ref().map(|h| h.clone_ref(py)))
    }

    /// Bytes fed beyond the header: the start of the application stream.
    #[getter]
    fn trailing_data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.state()?.trailing))
    }

    /// True once the header is complete.
    #[getter]
    fn done(&self) -> PyResult<bool> {
        Ok(self.state()?.header.is_some())
    }

    /// Bytes held while the header is incomplete.
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
