//! The builders: `build_v1()`, `build_v2()` and the arguments they share with `Header.v1()`,
//! `Header.v2()` and `Header.local()`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::convert::{
    addresses_in, build_error, build_error_with, endpoints, int_text, saturating_i128, with_bytes,
    AddrIn,
};
use super::fastcall::fast_function;
use super::header::PyTlv;
use crate::header::Protocol;
use crate::tlv::{self};
use crate::{v1, v2, BuildError, Command};

fast_function! {
    /// A v1 line: ``TCP4``/``TCP6`` from ``(host, port)``; ``None, None`` gives
    /// ``b"PROXY UNKNOWN\r\n"``.
    ///
    /// Args:
    ///     source: the client's address, like ``socket.getpeername()`` (an IPv6 zone such as
    ///         ``%eth0`` is dropped: the line has no room for it).
    ///     destination: the address the client connected to.
    ///
    /// Returns:
    ///     The line, CRLF included.
    ///
    /// Raises:
    ///     BuildError: a bad address (an IPv4 host with a zone included) or port, mixed
    ///         families, a UNIX address, or only one address.
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

/// The `tlvs` argument as (type, value) pairs. A CRC32C TLV must have its 4-byte shape (its
/// value is recomputed) and come at most once.
fn tlv_items<'py>(
    py: Python<'py>,
    tlvs: &Bound<'py, PyAny>,
) -> PyResult<Vec<(u8, Bound<'py, PyAny>)>> {
    let not_a_pair =
        || build_error_with(py, "tlv", "tlvs: each item must be a Tlv or a (type, value) pair");
    let mut out = Vec::new();
    for item in tlvs.try_iter()? {
        let item = item?;
        let (kind, value) = if let Ok(t) = item.cast::<PyTlv>() {
            let t = t.get();
            (t.kind, t.value.bind(py).clone().into_any())
        } else {
            let (kind, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) =
                item.extract().map_err(|_| not_a_pair())?;
            let kind = saturating_i128(&kind).map_err(|_| not_a_pair())?;
            let Ok(kind) = u8::try_from(kind) else {
                let msg = format!("TLV type {} is not in 0-255", int_text(kind));
                return Err(build_error_with(py, "tlv", &msg));
            };
            (kind, value)
        };
        if kind == tlv::CRC32C {
            let len = with_bytes(&value, <[u8]>::len)?;
            if len != 4 {
                return Err(build_error(py, &BuildError::TlvLength { kind, len }));
            }
            if out.iter().any(|(k, _)| *k == tlv::CRC32C) {
                let msg = "tlvs: more than one CRC32C TLV (0x03); a header carries one checksum";
                return Err(build_error_with(py, "tlv", msg));
            }
        }
        out.push((kind, value));
    }
    Ok(out)
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
    build_v2_pair(py, pair.as_ref(), command, protocol, tlvs, crc32c, typed)
}

/// `build_v2(source, destination)` with nothing else, the usual call. Two IP endpoints of one
/// family (PROXY, STREAM, no TLV) are written on the stack and copied once into the `bytes`:
/// the general builder's `Vec` cost a `malloc` and a `free` per call (speed trick
/// `build-v2-stack` in benchmarks/README.md: `ir_py "$B2" 'b2(S4, D4)'`). Anything else goes
/// through [`build_v2_pair`]; tests/test_build.py holds the two paths to the same bytes.
pub(super) fn build_v2_plain<'py>(
    py: Python<'py>,
    source: Option<&Bound<'py, PyAny>>,
    destination: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let pair = addresses_in(py, source, destination)?;
    if let Some((AddrIn::Ip(s), AddrIn::Ip(d))) = &pair {
        if let Some((header, len)) = v2::inet_header(Command::Proxy, Protocol::Stream, *s, *d) {
            return Ok(PyBytes::new(py, header.get(..len).unwrap_or_default()));
        }
    }
    let raw = build_v2_pair(py, pair.as_ref(), None, None, None, false, &TypedTlvs::default())?;
    Ok(PyBytes::new(py, &raw))
}

/// [`build_v2_bytes`] with the addresses already converted.
fn build_v2_pair(
    py: Python<'_>,
    pair: Option<&(AddrIn, AddrIn)>,
    command: Option<i128>,
    protocol: Option<i128>,
    tlvs: Option<&Bound<'_, PyAny>>,
    crc32c: bool,
    typed: &TypedTlvs<'_, '_>,
) -> PyResult<Vec<u8>> {
    let ends = endpoints(py, pair)?;
    let command = match command {
        None if pair.is_some() => Command::Proxy,
        None | Some(0) => Command::Local,
        Some(1) => Command::Proxy,
        Some(c) => {
            return Err(build_error_with(
                py,
                "command",
                &format!("command {} is not LOCAL (0) or PROXY (1)", int_text(c)),
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
                let msg =
                    format!("protocol {} is not UNSPEC (0), STREAM (1) or DGRAM (2)", int_text(p));
                return Err(build_error_with(py, "protocol", &msg));
            }
        }
    };
    let err = |e: BuildError| build_error(py, &e);
    // A CRC32C TLV in `tlvs` (a header rebuilt from the TLVs it came with) keeps its place and
    // is recomputed; it takes the place of the one `crc32c=True` puts first.
    let given = tlvs.map(|t| tlv_items(py, t)).transpose()?.unwrap_or_default();
    let crc_given = given.iter().any(|(kind, _)| *kind == tlv::CRC32C);
    let mut b = v2::Builder::new(command, protocol, &ends, crc32c && !crc_given).map_err(err)?;
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
    for (kind, value) in &given {
        if *kind == tlv::CRC32C {
            b.crc32c().map_err(err)?;
        } else {
            with_bytes(value, |v| b.tlv(*kind, v).map(|_| ()))?.map_err(err)?;
        }
    }
    b.finish().map_err(err)
}

fast_function! {
    /// A v2 header. No addresses gives the LOCAL/UNSPEC form (health check).
    ///
    /// Args:
    ///     source: the client's address: ``(host, port)``, or a ``str``/``bytes`` UNIX path.
    ///     destination: the address the client connected to, of the same family.
    ///     command: PROXY (the default with addresses) or LOCAL (the default without).
    ///     protocol: STREAM (the default with addresses), DGRAM or UNSPEC.
    ///     tlvs: more TLVs, as ``Tlv`` objects or ``(type, value)`` pairs, in wire order.
    ///     crc32c: add a CRC32C TLV first and fill it in.
    ///     alpn: TLV 0x01.
    ///     authority: TLV 0x02 (UTF-8).
    ///     unique_id: TLV 0x05, at most 128 bytes.
    ///     netns: TLV 0x30 (UTF-8).
    ///     aws_vpce_id: TLV 0xEA with subtype 0x01.
    ///
    /// Returns:
    ///     The header's bytes. TLVs are written in this order: CRC32C (when ``crc32c=True``),
    ///     ALPN, AUTHORITY, UNIQUE_ID, NETNS, AWS, then ``tlvs`` as given. A CRC32C TLV in
    ///     ``tlvs`` (a header rebuilt with ``tlvs=h.tlvs``) keeps its place and is recomputed;
    ///     it is then the only one, whatever ``crc32c`` says.
    ///
    /// Raises:
    ///     BuildError: port out of range, bad address, mixed families, UNIX path over 108
    ///         bytes, a TLV value over 65535 bytes or a header over 65551 bytes, a TLV type,
    ///         command or protocol out of range (however large), a CRC32C TLV in ``tlvs``
    ///         that is not 4 bytes or comes twice.
    ///     TypeError: an argument of the wrong type.
    pub(super) struct BuildV2 = "build_v2"
        (source = None, destination = None, *, command = None, protocol = None, tlvs = None,
        crc32c = false, alpn = None, authority = None, unique_id = None, netns = None,
        aws_vpce_id = None);
    fn build_v2<'py>(
        py: Python<'py>,
        source: Option<&Bound<'py, PyAny>>,
        destination: Option<&Bound<'py, PyAny>>,
        command: Option<&Bound<'py, PyAny>>,
        protocol: Option<&Bound<'py, PyAny>>,
        tlvs: Option<&Bound<'py, PyAny>>,
        crc32c: bool,
        alpn: Option<&Bound<'py, PyAny>>,
        authority: Option<&Bound<'py, PyString>>,
        unique_id: Option<&Bound<'py, PyAny>>,
        netns: Option<&Bound<'py, PyString>>,
        aws_vpce_id: Option<&Bound<'py, PyString>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let typed = TypedTlvs { alpn, authority, unique_id, netns, aws_vpce_id };
        let command = command.map(saturating_i128).transpose()?;
        let protocol = protocol.map(saturating_i128).transpose()?;
        let raw =
            build_v2_bytes(py, source, destination, command, protocol, tlvs, crc32c, &typed)?;
        Ok(PyBytes::new(py, &raw))
    }
}
