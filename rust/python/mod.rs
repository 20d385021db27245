//! Python bindings (`proxyproto_rs._core`): the only place that names pyo3.
//!
//! Strategy: the core does every byte-level job; these files only move values across the
//! boundary, one file per job:
//! - `convert`: buffers, arguments and addresses in; errors, text and addresses out. Every core
//!   error becomes one of `proxyproto_rs._errors`' classes there, and nowhere else.
//! - `header`: the `Header`, `Tlv` and `SslInfo` classes. A header keeps its wire bytes and a
//!   `Layout`; every field is materialised only when read.
//! - `parser`: `parse()` and the streaming `Parser`.
//! - `build`: `build_v1()`, `build_v2()` and what `Header.v1/v2/local` share with them.
//! - `helpers`: `crc32c()`, `detect()`, `find_signature()`.
//! - `spp`: Cloudflare's Simple Proxy Protocol: `parse_spp()`, `build_spp()`, `SppHeader`.
//! - `scan`: `_Scanner`, the iterator behind `scan()`.
//! - `trust`: `_TrustedNetworks`, the servers' per-connection test of the peer's address.
//! - `socket_reader`: `_SocketReader`, `sync.read_header`'s one-call path for a header
//!   already waiting on a socket (Unix only).
//! - `fastcall`: the raw `METH_FASTCALL` entries of the hot functions.
//! - this file: the module's registration.
//!
//! Threads. What each piece assumes, checked for a free-threaded (no-GIL) interpreter:
//! - `Header`, `Tlv`, `SslInfo` and `_TrustedNetworks` are `frozen` and never change after
//!   creation: safe to share between threads. `Parser` is `frozen` with its state behind a mutex: a call made
//!   while another runs gets a `ValueError` (never corrupt state, never a wait).
//! - `fastcall::fast_entry` assumes the calling thread is attached to the interpreter, which
//!   `CPython` guarantees for any C function call, with or without a GIL; the argument
//!   pointers are borrowed from the caller for the call. The `PyOnceLock` statics (error
//!   classes, enum members, the checked twins) initialise once under their own lock.
//! - `crc32c()` and `find_signature()` detach from the interpreter only over `bytes`, which
//!   are immutable. `_SocketReader.read` detaches over its own stack or heap buffer.
//! - `convert::with_bytes` reads a mutable exporter's memory (`bytearray`, `memoryview`,
//!   `array`) in place. With the GIL held and no Python code run meanwhile, no other thread
//!   can write it; without a GIL another thread could, which is a data race on the `&[u8]`
//!   (and `parse` could keep a header whose bytes changed between its prefix copy and the
//!   parse). Until those buffers are copied (or read through `bytes` snapshots) on
//!   free-threaded builds, the module declares that it needs the GIL: `gil_used = true`,
//!   so a free-threaded interpreter re-enables the GIL when it imports it.

// The `///` text of every Python-visible item is its Python docstring, copied word for word
// from `_core.pyi` (reST, not Markdown: tests/test_runtime_docs.py compares them).
#![allow(
    clippy::doc_markdown,
    clippy::fn_params_excessive_bools,
    clippy::too_many_arguments,
    clippy::unused_self,
    clippy::cast_possible_wrap,
    clippy::needless_pass_by_value
)]

mod build;
mod convert;
mod fastcall;
mod header;
mod helpers;
mod parser;
mod scan;
#[cfg(unix)]
mod socket_reader;
mod spp;
mod trust;

use build::{BuildV1, BuildV2};
use fastcall::add_fast;
use header::{_header_from_bytes, PyHeader, PySslInfo, PyTlv};
use helpers::{detect, find_signature, Crc32c};
use parser::{Parse, PyParser};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use spp::{build_spp, parse_spp, PySppHeader};

use crate::{v1, v2};

#[pymodule(gil_used = true)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_V1_SIZE", v1::MAX_LEN)?;
    m.add("MAX_V2_SIZE", v2::MAX_LEN)?;
    m.add("V2_SIGNATURE", PyBytes::new(m.py(), &v2::SIGNATURE))?;
    m.add_class::<PyHeader>()?;
    m.add_class::<PyParser>()?;
    m.add_class::<PyTlv>()?;
    m.add_class::<PySslInfo>()?;
    m.add_class::<PySppHeader>()?;
    #[cfg(unix)]
    m.add_class::<socket_reader::PySocketReader>()?;
    add_fast::<Parse>(m)?;
    m.add_function(wrap_pyfunction!(_header_from_bytes, m)?)?;
    add_fast::<BuildV1>(m)?;
    add_fast::<BuildV2>(m)?;
    add_fast::<Crc32c>(m)?;
    m.add_function(wrap_pyfunction!(detect, m)?)?;
    m.add_function(wrap_pyfunction!(find_signature, m)?)?;
    m.add_function(wrap_pyfunction!(parse_spp, m)?)?;
    m.add_function(wrap_pyfunction!(build_spp, m)?)?;
    m.add("SPP_MAGIC", PyBytes::new(m.py(), &crate::spp::MAGIC))?;
    m.add("SPP_SIZE", crate::spp::LEN)?;
    m.add_class::<scan::PyScanner>()?;
    m.add_class::<trust::PyTrustedNetworks>()?;
    Ok(())
}
