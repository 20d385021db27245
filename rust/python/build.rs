//! The builders: `build_v1()`, `build_v2()` and the arguments they share with `Header.v1()`,
//! `Header.v2()` and `Header.local()`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::convert::{addresses_in, build_error, build_error_with, endpoints, with_bytes};
use super::fastcall::fast_function;
use super::header::PyTlv;
use crate::header::Protocol;
use crate::tlv::{self};
use crate::{v1, v2, BuildError, Command};

fast_function! {
    doc = "A v1 line: TCP4 or TCP6 for the two addresses, UNKNOWN without them."
    pub(super) struct BuildV1 = "build_v1" (source = None, destination = None);
    pub(super) fn build_v1<'py>(
        py: Python<'py>,
        source: Option<&Bound<'py, PyAny>>,
        destination: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let pair = addresses_in(py, source, destination)?;
        let ends = endpoints(py, pair.as_ref())?;
        let mut out = Vec::with_capacity(v1::MAX_LEN);
        v1::write(&mut out, &ends).map_err(|e| build_error(py, &e))?;
        Ok(PyBytes::new(py, &out))
    }
}

/// The typed TLV keyword arguments of the v2 builders.
#[derive(Default)]
pub(super) struct TypedTlvs<'a, 'py> {
    pub(super) alpn: Option<&'a Bound<'py, PyAny>>,
    pub(super) authority: Option<&'a Bound<'py, PyString>>,
    pub(super) unique_id: Option<&'a Bound<'py, PyAny>>,
    pub(super) netns: Option<&'a Bound<'py, PyString>>,
    pub(super) aws_vpce_id: Option<&'a Bound<'py, PyString>>,
}

/// A text TLV argument as UTF-8; a lone surrogate is a `BuildError`, not a `UnicodeError`.
pub(super) fn utf8_arg<'a>(
    py: Python<'_>,
    s: &'a Bound<'_, PyString>,
    name: &str,
) -> PyResult<&'a str> {
    s.to_str().map_err(|_| build_error_with(py, "tlv", &format!("{name}: not encodable as UTF-8")))
}

pub(super) fn build_v2_bytes(
    py: Python<'_>,
    source: Option<&Bound<'_, PyAny>>,
    destination: Option<&Bound<'_, PyAny>>,
    command: Option<i128>,
    protocol: Option<i128>,
    tlvs: Option<&Bound<'_, PyAny>>,
    crc32c: bool,
    typed: &TypedTlvs<'_, '_>,
) -> PyResult<Vec<u8>> {
    let pair = addresses_in(py, source, destination)?;
    let ends = endpoints(py, pair.as_ref())?;
    let command = match command {
        None if pair.is_some() => Command::Proxy,
        None | Some(0) => Command::Local,
        Some(1) => Command::Proxy,
        Some(c) => {
            return Err(build_error_with(
                py,
                "command",
                &format!("command {c} is not LOCAL (0) or PROXY (1)"),
            ))
        }
    };
    let protocol = match protocol {
        None if pair.is_some() => Protocol::Stream,
        None => Protocol::Unspec,
        Some(p) => {
            if let Some(p) = u8::try_from(p).ok().and_then(Protocol::from_nibble) {
                p
            } else {
                let msg = format!("protocol {p} is not UNSPEC (0), STREAM (1) or DGRAM (2)");
                return Err(build_error_with(py, "protocol", &msg));
            }
        }
    };
    let err = |e: BuildError| build_error(py, &e);
    let mut b = v2::Builder::new(command, protocol, &ends, crc32c).map_err(err)?;
    if let Some(alpn) = typed.alpn {
        with_bytes(alpn, |v| b.tlv(tlv::ALPN, v).map(|_| ()))?.map_err(err)?;
    }
    if let Some(authority) = typed.authority {
        b.tlv(tlv::AUTHORITY, utf8_arg(py, authority, "authority")?.as_bytes()).map_err(err)?;
    }
    if let Some(uid) = typed.unique_id {
        with_bytes(uid, |v| b.tlv(tlv::UNIQUE_ID, v).map(|_| ()))?.map_err(err)?;
    }
    if let Some(netns) = typed.netns {
        b.tlv(tlv::NETNS, utf8_arg(py, netns, "netns")?.as_bytes()).map_err(err)?;
    }
    if let Some(id) = typed.aws_vpce_id {
        let id = utf8_arg(py, id, "aws_vpce_id")?;
        let mut value = Vec::with_capacity(1 + id.len());
        value.push(0x01);
        value.extend_from_slice(id.as_bytes());
        b.tlv(tlv::AWS, &value).map_err(err)?;
    }
    if let Some(tlvs) = tlvs {
        for item in tlvs.try_iter()? {
            let item = item?;
            let (kind, value): (i64, Bound<'_, PyAny>) = if let Ok(t) = item.cast::<PyTlv>() {
                let t = t.get();
                (i64::from(t.kind), t.value.bind(py).clone().into_any())
            } else {
                item.extract().map_err(|_| {
                    build_error_with(
                        py,
                        "tlv",
                        "tlvs: each item must be a Tlv or a (type, value) pair",
                    )
                })?
            };
            let Ok(kind) = u8::try_from(kind) else {
                return Err(build_error_with(
                    py,
                    "tlv",
                    &format!("TLV type {kind} is not in 0-255"),
                ));
            };
            with_bytes(&value, |v| b.tlv(kind, v).map(|_| ()))?.map_err(err)?;
        }
    }
    b.finish().map_err(err)
}

fast_function! {
    doc = "A v2 header's bytes: PROXY for the two addresses, or LOCAL without them."
    pub(super) struct BuildV2 = "build_v2"
        (source = None, destination = None, *, command = None, protocol = None, tlvs = None,
        crc32c = false, alpn = None, authority = None, unique_id = None, netns = None,
        aws_vpce_id = None);
    fn build_v2<'py>(
        py: Python<'py>,
        source: Option<&Bound<'py, PyAny>>,
        destination: Option<&Bound<'py, PyAny>>,
        command: Option<i128>,
        protocol: Option<i128>,
        tlvs: Option<&Bound<'py, PyAny>>,
        crc32c: bool,
        alpn: Option<&Bound<'py, PyAny>>,
        authority: Option<&Bound<'py, PyString>>,
        unique_id: Option<&Bound<'py, PyAny>>,
        netns: Option<&Bound<'py, PyString>>,
        aws_vpce_id: Option<&Bound<'py, PyString>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let typed = TypedTlvs { alpn, authority, unique_id, netns, aws_vpce_id };
        let raw =
            build_v2_bytes(py, source, destination, command, protocol, tlvs, crc32c, &typed)?;
        Ok(PyBytes::new(py, &raw))
    }
}
