//! The raw fast-call entries: `parse`, `build_v1`, `build_v2` and `crc32c` as `CPython`
//! calls them, skipping `PyO3`'s argument handling for their usual calls.

use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyString, PyTuple};

use super::build::{build_v1, build_v2, build_v2_bytes, TypedTlvs};
use super::convert::{options, with_bytes};
use super::header::header_from;
use super::helpers::crc32c_py;
use super::parser::parse_checked;
use crate::{crc32c, Options};

// Fast-call entry points: `parse`, `build_v2` and `crc32c` as `CPython` calls them.

/// A module function whose usual calls skip `PyO3`'s trampoline and argument extraction:
/// they cost ~25 ns a call, a fifth of a whole v2 parse (timeit of `parse(d)`: 121 ns as a
/// `#[pyfunction]`, 94 ns through [`fast_entry`]). Every call `fast` does not take goes to
/// `checked`, the same function as a `#[pyfunction]`, so errors and edge cases stay `PyO3`'s.
pub(super) trait FastFunction {
    const NAME: &'static core::ffi::CStr;
    /// Signature and docstring, in `CPython`'s `name(sig)\n--\n\ndoc` form.
    const DOC: &'static core::ffi::CStr;
    /// The `#[pyfunction]` twin.
    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>>;
    /// The result of a usual call; `None` hands the call to `checked`.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>>;
}

/// The `#[pyfunction]` twin kept in `cell`, made by `make` on first use.
pub(super) fn twin<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyCFunction>>,
    make: impl FnOnce(Python<'py>) -> PyResult<Bound<'py, PyCFunction>>,
) -> PyResult<Bound<'py, PyCFunction>> {
    Ok(cell.get_or_try_init(py, || make(py).map(Bound::unbind))?.bind(py).clone())
}

/// Adds `F` to the module as a `METH_FASTCALL | METH_KEYWORDS` C function.
pub(super) fn add_fast<F: FastFunction>(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // One definition per module initialisation, which `PyO3` allows once per process.
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: F::NAME.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: fast_entry::<F> },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: F::DOC.as_ptr(),
    }));
    let module_name = m.name()?;
    // SAFETY: `def` lives for the rest of the process and describes a function of the type
    // its flags name; `m` and `module_name` are live objects. The result is a new reference.
    let function = unsafe {
        Bound::from_owned_ptr_or_err(
            m.py(),
            ffi::PyCFunction_NewEx(def, m.as_ptr(), module_name.as_ptr()),
        )?
    };
    m.add(F::NAME.to_str().unwrap_or_default(), function)
}

pub(super) unsafe extern "C" fn fast_entry<F: FastFunction>(
    _module: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: `CPython` calls a C function with the thread attached to the interpreter.
    let py = unsafe { Python::assume_attached() };
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the vectorcall convention: `kwnames` is NULL or a tuple of str, `args` holds
        // the positional arguments then one value for each name in `kwnames`, all borrowed
        // for the duration of the call. The high bit of `nargsf` is a flag, not a count.
        let call = unsafe {
            let nargs = nargsf.cast_unsigned() & !(1 << (usize::BITS - 1));
            let kwnames =
                Borrowed::from_ptr_or_opt(py, kwnames).map(|k| k.cast_unchecked::<PyTuple>());
            let nkw = kwnames.as_ref().map_or(0, |k| k.len());
            let all = if args.is_null() {
                &[][..]
            } else {
                core::slice::from_raw_parts(args, nargs + nkw)
            };
            Call { positional: &all[..nargs], keyword_values: &all[nargs..], kwnames }
        };
        match F::fast(py, &call) {
            Some(result) => result,
            None => call.delegate(&F::checked(py)?),
        }
        .map(Bound::into_ptr)
    }));
    match made {
        Ok(Ok(result)) => result,
        Ok(Err(err)) => {
            err.restore(py);
            core::ptr::null_mut()
        }
        Err(_) => {
            PanicException::new_err("proxyproto_rs: a fast-call function panicked").restore(py);
            core::ptr::null_mut()
        }
    }
}

/// The arguments of one vectorcall, as raw borrowed pointers.
pub(super) struct Call<'a, 'py> {
    pub(super) positional: &'a [*mut ffi::PyObject],
    pub(super) keyword_values: &'a [*mut ffi::PyObject],
    pub(super) kwnames: Option<Borrowed<'a, 'py, PyTuple>>,
}

impl<'py> Call<'_, 'py> {
    pub(super) fn get(&self, py: Python<'py>, ptr: *mut ffi::PyObject) -> Borrowed<'_, 'py, PyAny> {
        // SAFETY: every pointer in `positional` and `keyword_values` is a live object borrowed
        // for the call (see `fast_entry`).
        unsafe { Borrowed::from_ptr(py, ptr) }
    }

    /// The keyword arguments as (name, value).
    pub(super) fn keywords(
        &self,
        py: Python<'py>,
    ) -> impl Iterator<Item = (Borrowed<'_, 'py, PyAny>, Borrowed<'_, 'py, PyAny>)> {
        self.keyword_values.iter().enumerate().map_while(move |(i, &value)| {
            let name = self.kwnames.as_ref()?.get_borrowed_item(i).ok()?;
            Some((name, self.get(py, value)))
        })
    }

    /// Calls `checked` with the same arguments.
    pub(super) fn delegate(
        &self,
        checked: &Bound<'py, PyCFunction>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = checked.py();
        let positional = PyTuple::new(py, self.positional.iter().map(|&p| self.get(py, p)))?;
        let keywords = PyDict::new(py);
        if let Some(names) = &self.kwnames {
            for (i, &value) in self.keyword_values.iter().enumerate() {
                keywords.set_item(names.get_borrowed_item(i)?, self.get(py, value))?;
            }
        }
        checked.call(positional, Some(&keywords))
    }
}

pub(super) struct Parse;

impl FastFunction for Parse {
    const NAME: &'static core::ffi::CStr = c"parse";
    const DOC: &'static core::ffi::CStr = c"parse(data, /, *, allow_v1=True, allow_v2=True, \
verify_checksum=True, max_size=4096, haproxy_limits=False)
--

Parse one PROXY protocol header at the start of data; header.length bytes belong to it.";

    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
        static CHECKED: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
        twin(py, &CHECKED, |py| wrap_pyfunction!(parse_checked, py))
    }

    /// One positional argument, and any of the keywords with values of their types.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        let &[data] = call.positional else {
            return None;
        };
        let d = Options::default();
        let (mut allow_v1, mut allow_v2, mut verify) = (d.allow_v1, d.allow_v2, d.verify_checksum);
        let (mut max_size, mut haproxy_limits) = (d.max_size as i128, d.haproxy_limits);
        let mut seen = 0;
        for (name, value) in call.keywords(py) {
            match name.cast::<PyString>().ok()?.to_str().ok()? {
                "allow_v1" => allow_v1 = value.extract().ok()?,
                "allow_v2" => allow_v2 = value.extract().ok()?,
                "verify_checksum" => verify = value.extract().ok()?,
                "max_size" => max_size = value.extract().ok()?,
                "haproxy_limits" => haproxy_limits = value.extract().ok()?,
                _ => return None,
            }
            seen += 1;
        }
        if seen != call.keyword_values.len() {
            return None;
        }
        let opts = if seen == 0 {
            Ok(d)
        } else {
            options(allow_v1, allow_v2, verify, max_size, haproxy_limits)
        };
        let made = opts.and_then(|opts| {
            with_bytes(&call.get(py, data), |bytes| header_from(py, bytes, &opts))?
        });
        Some(made.map(Bound::into_any))
    }
}

pub(super) struct BuildV1;

impl FastFunction for BuildV1 {
    const NAME: &'static core::ffi::CStr = c"build_v1";
    const DOC: &'static core::ffi::CStr = c"build_v1(source=None, destination=None)
--

A v1 line: TCP4 or TCP6 for the two addresses, UNKNOWN without them.";

    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
        static CHECKED: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
        twin(py, &CHECKED, |py| wrap_pyfunction!(build_v1, py))
    }

    /// The addresses given positionally.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        if call.positional.len() > 2 || call.kwnames.is_some() {
            return None;
        }
        let mut ends = [None, None];
        for (slot, &p) in ends.iter_mut().zip(call.positional) {
            *slot = Some(call.get(py, p));
        }
        let made = build_v1(py, given(ends[0].as_ref()), given(ends[1].as_ref()));
        Some(made.map(Bound::into_any))
    }
}

/// An optional argument as `PyO3` passes it: `None` when absent or `None`.
pub(super) fn given<'a, 'py>(
    arg: Option<&'a Borrowed<'_, 'py, PyAny>>,
) -> Option<&'a Bound<'py, PyAny>> {
    arg.map(|v| &**v).filter(|v| !v.is_none())
}

/// An optional str argument; an error if it is neither a str nor `None`.
pub(super) fn given_text<'a, 'py>(
    arg: Option<&'a Borrowed<'_, 'py, PyAny>>,
) -> PyResult<Option<&'a Bound<'py, PyString>>> {
    given(arg).map(|v| v.cast::<PyString>().map_err(PyErr::from)).transpose()
}

pub(super) struct BuildV2;

impl FastFunction for BuildV2 {
    const NAME: &'static core::ffi::CStr = c"build_v2";
    const DOC: &'static core::ffi::CStr = c"build_v2(source=None, destination=None, *, \
command=None, protocol=None, tlvs=None, crc32c=False, alpn=None, authority=None, \
unique_id=None, netns=None, aws_vpce_id=None)
--

A v2 header's bytes: PROXY for the two addresses, or LOCAL without them.";

    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
        static CHECKED: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
        twin(py, &CHECKED, |py| wrap_pyfunction!(build_v2, py))
    }

    /// Any call whose arguments have the types of the signature.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        let mut ends = [None, None];
        for (slot, &p) in ends.iter_mut().zip(call.positional) {
            *slot = Some(call.get(py, p));
        }
        if call.positional.len() > 2 {
            return None;
        }
        let (mut command, mut protocol, mut tlvs, mut crc32c) = (None, None, None, false);
        let mut typed = [None, None, None, None, None];
        let mut seen = 0;
        for (name, value) in call.keywords(py) {
            let slot = match name.cast::<PyString>().ok()?.to_str().ok()? {
                "source" => &mut ends[0],
                "destination" => &mut ends[1],
                "command" => {
                    command = value.extract::<Option<i128>>().ok()?;
                    seen += 1;
                    continue;
                }
                "protocol" => {
                    protocol = value.extract::<Option<i128>>().ok()?;
                    seen += 1;
                    continue;
                }
                "crc32c" => {
                    crc32c = value.extract::<bool>().ok()?;
                    seen += 1;
                    continue;
                }
                "tlvs" => &mut tlvs,
                "alpn" => &mut typed[0],
                "authority" => &mut typed[1],
                "unique_id" => &mut typed[2],
                "netns" => &mut typed[3],
                "aws_vpce_id" => &mut typed[4],
                _ => return None,
            };
            if slot.is_some() {
                return None; // given twice
            }
            *slot = Some(value);
            seen += 1;
        }
        if seen != call.keyword_values.len() {
            return None;
        }
        let typed = TypedTlvs {
            alpn: given(typed[0].as_ref()),
            authority: given_text(typed[1].as_ref()).ok()?,
            unique_id: given(typed[2].as_ref()),
            netns: given_text(typed[3].as_ref()).ok()?,
            aws_vpce_id: given_text(typed[4].as_ref()).ok()?,
        };
        let made = build_v2_bytes(
            py,
            ends[0].as_deref(),
            ends[1].as_deref(),
            command,
            protocol,
            given(tlvs.as_ref()),
            crc32c,
            &typed,
        );
        Some(made.map(|raw| PyBytes::new(py, &raw).into_any()))
    }
}

pub(super) struct Crc32c;

impl FastFunction for Crc32c {
    const NAME: &'static core::ffi::CStr = c"crc32c";
    const DOC: &'static core::ffi::CStr = c"crc32c(data, value=0, /)
--

CRC32C (Castagnoli) of data, continuing from value (taken modulo 2**32, like zlib.crc32).";

    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>> {
        static CHECKED: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
        twin(py, &CHECKED, |py| wrap_pyfunction!(crc32c_py, py))
    }

    /// `bytes` under 1 MiB (longer ones release the GIL), and a value that fits 32 bits.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        let (data, value) = match (call.positional, &call.kwnames) {
            (&[data], None) => (data, 0),
            (&[data, value], None) => (data, call.get(py, value).extract::<u32>().ok()?),
            _ => return None,
        };
        let data = call.get(py, data);
        let data = data.cast::<PyBytes>().ok()?;
        let bytes = data.as_bytes();
        if bytes.len() >= 1 << 20 {
            return None;
        }
        let Ok(crc) = crc32c::append(value, bytes).into_pyobject(py);
        Some(Ok(crc.into_any()))
    }
}
