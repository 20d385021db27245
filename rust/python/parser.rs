//! `parse()` and the streaming `Parser` class.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::convert::{options, parse_error, with_bytes};
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
        max_size: i128,
        haproxy_limits: bool,
    ) -> PyResult<Bound<'py, PyHeader>> {
        let opts = options(allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits)?;
        with_bytes(data, |bytes| header_from(py, bytes, &opts))?
    }
}

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
