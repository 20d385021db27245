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
//! - `scan`: `_Scanner`, the iterator behind `scan()`.
//! - `fastcall`: the raw `METH_FASTCALL` entries of the hot functions.
//! - this file: the module's registration.

#![allow(
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

use build::{BuildV1, BuildV2};
use fastcall::add_fast;
use header::{_header_from_bytes, PyHeader, PySslInfo, PyTlv};
use helpers::Crc32c;
use helpers::{detect, find_signature};
use parser::Parse;
use parser::PyParser;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{v1, v2};

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_V1_SIZE", v1::MAX_LEN)?;
    m.add("MAX_V2_SIZE", v2::MAX_LEN)?;
    m.add("V2_SIGNATURE", PyBytes::new(m.py(), &v2::SIGNATURE))?;
    m.add_class::<PyHeader>()?;
    m.add_class::<PyParser>()?;
    m.add_class::<PyTlv>()?;
    m.add_class::<PySslInfo>()?;
    add_fast::<Parse>(m)?;
    m.add_function(wrap_pyfunction!(_header_from_bytes, m)?)?;
    add_fast::<BuildV1>(m)?;
    add_fast::<BuildV2>(m)?;
    add_fast::<Crc32c>(m)?;
    m.add_function(wrap_pyfunction!(detect, m)?)?;
    m.add_function(wrap_pyfunction!(find_signature, m)?)?;
    m.add_class::<scan::PyScanner>()?;
    Ok(())
}
