//! `_SocketReader`: a PROXY header already waiting on a connected socket, taken in one call.
//!
//! Strategy: `proxyproto_rs.sync` reads a header with a `MSG_PEEK` recv, a parse and one exact
//! recv, so not a byte past the header leaves the kernel. When the whole header is already in
//! the receive queue (the usual case: a proxy sends it with, or before, the client's first
//! bytes) those three steps run here in one call, with the interpreter released once around
//! all of them and every recv made with `MSG_DONTWAIT`: nothing waits, so neither the socket's
//! mode nor its timeout is touched. Anything else (nothing there yet, part of a header, bytes
//! that are no valid header, a second header or the prefix of one right after it, end of
//! stream) returns `None` with nothing consumed, and the Python reader, which owns deadlines
//! and every error but a failing socket, starts from the same state. A socket error is raised
//! as the `OSError` Python's own `recv` raises for it.
//!
//! Measured: `python benchmarks/sync_read_header.py` and the callgrind count of
//! `sync.read_header` in benchmarks/RESULTS.md ("Issue 13, round three").

use std::io;
use std::mem::MaybeUninit;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::convert::{error_class, make_error, options, saturating_i128};
use super::header::{PyHeader, Raw};
use crate::scan::{self, Detected};
use crate::{Options, Status};

/// Bytes peeked at once unless ``max_size`` is larger: any default header fits.
const PEEK: usize = 4096;

/// Reads a header already waiting on a socket in one call (``sync.read_header``'s fast path).
///
/// Args:
///     allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits: the parser options.
///     allow_chained: accept a second header right after the first.
#[pyclass(module = "proxyproto_rs._core", name = "_SocketReader", frozen)]
pub struct PySocketReader {
    opts: Options,
    allow_chained: bool,
}

/// What one attempt ended with, before the interpreter is attached again.
enum Outcome {
    /// The header, its bytes consumed from the socket.
    Read(PyHeader),
    /// Nothing consumed: the caller's general path decides.
    Fallback,
    /// The socket failed (nothing consumed, or the header only partly).
    Failed(io::Error),
}

#[pymethods]
impl PySocketReader {
    #[new]
    #[pyo3(signature = (*, allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits, allow_chained))]
    fn new(
        allow_v1: bool,
        allow_v2: bool,
        verify_checksum: bool,
        #[pyo3(from_py_with = saturating_i128)] max_size: i128,
        haproxy_limits: bool,
        allow_chained: bool,
    ) -> PyResult<Self> {
        let opts = options(allow_v1, allow_v2, verify_checksum, max_size, haproxy_limits)?;
        Ok(Self { opts, allow_chained })
    }

    /// The header waiting at the start of connected socket *fd*, its bytes consumed, or None.
    ///
    /// None when the whole header is not there yet or anything about it needs a decision
    /// (invalid, end of stream, a second header after it): nothing is consumed then.
    ///
    /// Raises:
    ///     OSError: the socket failed, as ``socket.recv`` raises it.
    #[pyo3(signature = (fd, /))]
    fn read<'py>(&self, py: Python<'py>, fd: i32) -> PyResult<Option<Bound<'py, PyHeader>>> {
        // Left uninitialised: zeroing 4 KiB cost more than all the rest of the call (4,168 of
        // 10,352 instructions; ir_py in benchmarks/README.md, RESULTS.md "Issue 13, round three").
        let size = self.opts.max_size.max(PEEK);
        let outcome = if size == PEEK {
            let mut buf = [MaybeUninit::<u8>::uninit(); PEEK];
            py.detach(|| self.take(fd, &mut buf))
        } else {
            let mut buf = Vec::<u8>::with_capacity(size);
            let spare = buf.spare_capacity_mut();
            py.detach(|| self.take(fd, spare))
        };
        match outcome {
            Outcome::Read(header) => Ok(Some(Bound::new(py, header)?)),
            Outcome::Fallback => Ok(None),
            Outcome::Failed(e) => Err(os_error(py, &e)),
        }
    }
}

impl PySocketReader {
    /// Peek, parse, consume; `buf` is the peek buffer, reused to receive the header's bytes.
    fn take(&self, fd: i32, buf: &mut [MaybeUninit<u8>]) -> Outcome {
        let got = match recv(fd, buf, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
            Ok(0) => return Outcome::Fallback, // end of stream: the general path says so
            Ok(n) => n,
            Err(e) if retry_later(&e) => return Outcome::Fallback,
            Err(e) => return Outcome::Failed(e),
        };
        // SAFETY: `recv` wrote the first `got` bytes of `buf` (`got <= buf.len()`, checked in
        // `recv`); they stay borrowed, unchanged, until `peeked` is last used below.
        let peeked = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), got) };
        let (header, len) = match crate::parse(peeked, &self.opts) {
            Ok(Status::Complete { header, consumed }) => {
                let raw = Raw::prefix(peeked);
                (PyHeader::new(raw, header.as_bytes(), *header.layout()), consumed)
            }
            Ok(Status::Partial { .. }) | Err(_) => return Outcome::Fallback,
        };
        if !self.allow_chained {
            if let Some(tail) = peeked.get(len..).filter(|t| !t.is_empty()) {
                if scan::detect(tail) != Detected::NotProxy {
                    return Outcome::Fallback; // a second header, or maybe one: not ours to say
                }
            }
        }
        // The header's bytes are waiting (just peeked): one recv takes them on TCP.
        let mut left = len.min(buf.len());
        while left > 0 {
            match recv(fd, &mut buf[..left], libc::MSG_DONTWAIT) {
                Ok(0) => return Outcome::Failed(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => left -= n.min(left),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Outcome::Failed(e),
            }
        }
        Outcome::Read(header)
    }
}

/// Nothing to read now, or a signal came first: the general path waits and retries.
fn retry_later(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// One `recv(2)` into `buf`: how many of its first bytes the kernel wrote (at most all).
fn recv(fd: i32, buf: &mut [MaybeUninit<u8>], flags: i32) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call and the kernel
    // writes at most that many; `fd` is only a number to the kernel (a closed or foreign
    // descriptor is an EBADF or ENOTSOCK error, never a write elsewhere). Calling the kernel
    // directly is the trick that pays: one call instead of two Python `recv` calls and the
    // bookkeeping around them (`python benchmarks/sync_read_header.py`; callgrind count in
    // benchmarks/RESULTS.md, "Issue 13, round three").
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
    match usize::try_from(n) {
        Ok(n) => Ok(n.min(buf.len())),
        Err(_) => Err(io::Error::last_os_error()),
    }
}

/// `OSError(errno, os.strerror(errno))`, from which Python picks the subclass
/// (`ConnectionResetError` ...), as its own `recv` raises it. A header that a peek showed
/// whole but that ended inside the recv taking it (never seen on TCP) is the
/// `IncompleteHeaderError` (kind ``"eof"``) the Python reader raises for it.
fn os_error(py: Python<'_>, e: &io::Error) -> PyErr {
    let Some(errno) = e.raw_os_error() else {
        static INCOMPLETE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        return match error_class(py, &INCOMPLETE, "IncompleteHeaderError") {
            Ok(class) => make_error(py, class, "connection closed inside the header", "eof", 0),
            Err(err) => err,
        };
    };
    let text =
        py.import("os").and_then(|os| os.getattr("strerror")?.call1((errno,))?.extract::<String>());
    match text {
        Ok(text) => PyOSError::new_err((errno, text)),
        Err(err) => err,
    }
}
