//! The raw fast-call entries: `parse`, `build_v1`, `build_v2` and `crc32c` as `CPython`
//! calls them, skipping `PyO3`'s argument handling for their usual calls.

use core::ffi::CStr;

use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyString, PyTuple};

use super::build::{build_v1, build_v2_bytes, build_v2_plain, BuildV1, BuildV2, TypedTlvs};
use super::convert::{options, with_bytes};
use super::header::header_from;
use super::helpers::Crc32c;
use super::parser::Parse;
use crate::{crc32c, Options};

/// Declares a module function with a fast-call entry, from ONE signature: the `#[pyfunction]`
/// twin's `PyO3` signature, the text signature of its docstring (what `inspect.signature`,
/// `help()` and stubtest read) and the parameter table the fast entry binds arguments with all
/// come from the same tokens. The Rust defaults are written as Python spells them (`True`,
/// `False`, `None`, numbers) in the docstring.
///
/// ```ignore
/// fast_function! {
///     /// The Python docstring (the stub's, word for word: tests/test_runtime_docs.py).
///     pub(super) struct Entry = "name" (data, /, *, flag = true);
///     /// The twin's Rust documentation.
///     fn name_checked(py: Python<'_>, data: &Bound<'_, PyAny>, flag: bool) -> PyResult<..> {..}
/// }
/// ```
macro_rules! fast_function {
    (
        $(#[doc = $doc:literal])*
        $vis:vis struct $entry:ident = $name:tt ($($sig:tt)*);
        $(#[$attr:meta])*
        $fvis:vis fn $checked:ident $($rest:tt)*
    ) => {
        /// The fast-call entry of the function of the same Python name.
        $vis struct $entry;

        impl $crate::python::fastcall::Signature for $entry {
            const NAME: &'static core::ffi::CStr = $crate::python::fastcall::cstr(concat!($name, "\0"));
            const DOC: &'static core::ffi::CStr = $crate::python::fastcall::cstr(concat!(
                $name, "(", $crate::python::fastcall::text_signature!(@[] $($sig)*), ")\n--\n\n",
                $($doc, "\n",)* "\0"
            ));
            const PARAMS: $crate::python::fastcall::Params =
                $crate::python::fastcall::Params::new(&$crate::python::fastcall::raw_params!(@[] $($sig)*));

            fn checked(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyCFunction>> {
                static CHECKED: pyo3::sync::PyOnceLock<Py<pyo3::types::PyCFunction>> =
                    pyo3::sync::PyOnceLock::new();
                $crate::python::fastcall::twin(py, &CHECKED, |py| wrap_pyfunction!($checked, py))
            }
        }

        #[pyfunction(name = $name)]
        #[pyo3(signature = ($($sig)*))]
        $(#[$attr])*
        $fvis fn $checked $($rest)*
    };
}
pub(super) use fast_function;

/// The parameter list as Python text: `data, /, *, flag=True`.
macro_rules! text_signature {
    (@[$($acc:tt)*]) => { concat!($($acc)*) };
    (@[$($acc:tt)*] , $($rest:tt)*) => { $crate::python::fastcall::text_signature!(@[$($acc)* ", ",] $($rest)*) };
    (@[$($acc:tt)*] / $($rest:tt)*) => { $crate::python::fastcall::text_signature!(@[$($acc)* "/",] $($rest)*) };
    (@[$($acc:tt)*] * $($rest:tt)*) => { $crate::python::fastcall::text_signature!(@[$($acc)* "*",] $($rest)*) };
    (@[$($acc:tt)*] $n:ident = true $($rest:tt)*) => {
        $crate::python::fastcall::text_signature!(@[$($acc)* stringify!($n), "=True",] $($rest)*)
    };
    (@[$($acc:tt)*] $n:ident = false $($rest:tt)*) => {
        $crate::python::fastcall::text_signature!(@[$($acc)* stringify!($n), "=False",] $($rest)*)
    };
    (@[$($acc:tt)*] $n:ident = None $($rest:tt)*) => {
        $crate::python::fastcall::text_signature!(@[$($acc)* stringify!($n), "=None",] $($rest)*)
    };
    (@[$($acc:tt)*] $n:ident = $v:literal $($rest:tt)*) => {
        $crate::python::fastcall::text_signature!(@[$($acc)* stringify!($n), "=", stringify!($v),] $($rest)*)
    };
    (@[$($acc:tt)*] $n:ident $($rest:tt)*) => {
        $crate::python::fastcall::text_signature!(@[$($acc)* stringify!($n),] $($rest)*)
    };
}
pub(super) use text_signature;

/// The parameter list as an array of names, with `"/"` and `"*"` kept as markers.
macro_rules! raw_params {
    (@[$($acc:tt)*]) => { [$($acc)*] };
    (@[$($acc:tt)*] , $($rest:tt)*) => { $crate::python::fastcall::raw_params!(@[$($acc)*] $($rest)*) };
    (@[$($acc:tt)*] / $($rest:tt)*) => { $crate::python::fastcall::raw_params!(@[$($acc)* "/",] $($rest)*) };
    (@[$($acc:tt)*] * $($rest:tt)*) => { $crate::python::fastcall::raw_params!(@[$($acc)* "*",] $($rest)*) };
    (@[$($acc:tt)*] $n:ident = $v:tt $($rest:tt)*) => {
        $crate::python::fastcall::raw_params!(@[$($acc)* stringify!($n),] $($rest)*)
    };
    (@[$($acc:tt)*] $n:ident $($rest:tt)*) => {
        $crate::python::fastcall::raw_params!(@[$($acc)* stringify!($n),] $($rest)*)
    };
}
pub(super) use raw_params;

/// `text` (which ends in its only NUL) as a C string, at compile time.
pub(super) const fn cstr(text: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(text.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("a fast-call name or docstring holds a NUL"),
    }
}

/// A fast-call function's parameters, in signature order, and how each may be passed.
pub(super) struct Params {
    /// The names in signature order (the first `len`), without the markers.
    names: [&'static str; Params::MAX],
    /// How many come first and may only be passed by position.
    positional_only: usize,
    /// How many may be passed by position.
    positional: usize,
    /// How many there are.
    len: usize,
}

impl Params {
    /// The most parameters a fast-call function may have (`build_v2` has 11).
    const MAX: usize = 16;

    /// From the names in signature order, with `"/"` where the positional-only ones end and
    /// `"*"` where the keyword-only ones start. Panics (at compile time: every caller is a
    /// `const`) on more than [`Params::MAX`] names.
    pub(super) const fn new(raw: &[&'static str]) -> Self {
        let mut names = [""; Self::MAX];
        let (mut i, mut len, mut positional_only, mut positional) = (0, 0, 0, usize::MAX);
        while i < raw.len() {
            match raw[i].as_bytes() {
                b"/" => positional_only = len,
                b"*" => positional = len,
                _ => {
                    names[len] = raw[i];
                    len += 1;
                }
            }
            i += 1;
        }
        if positional == usize::MAX {
            positional = len;
        }
        Self { names, positional_only, positional, len }
    }

    /// The slot of the parameter `name` may be given for by keyword. Lengths are compared
    /// first: the names of one function mostly differ in length, so most candidates cost one
    /// comparison instead of a `memcmp` call (`parse(d, max_size=100)`: 1,719 -> 1,556
    /// instructions, `ir_py "$V2" 'p.parse(d, max_size=100)'` of benchmarks/README.md).
    fn keyword_slot(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        let names = self.names.get(self.positional_only..self.len)?;
        let found = names.iter().position(|n| n.len() == name.len() && n.as_bytes() == name)?;
        Some(found + self.positional_only)
    }
}

/// A module function whose usual calls skip `PyO3`'s trampoline and argument extraction:
/// they cost ~25 ns a call, a fifth of a whole v2 parse (`parse(d)`: 121 ns as a
/// `#[pyfunction]`, 94 ns through [`fast_entry`]; speed trick `fast-call` in
/// benchmarks/README.md: `python -m timeit -s "$V2" 'p.parse(d)'` against a build where
/// `fast` always returns `None`). Every call `fast` does not take goes to
/// `checked`, the same function as a `#[pyfunction]`, so errors and edge cases stay `PyO3`'s.
/// [`fast_function!`] writes this half from the signature.
pub(super) trait Signature {
    const NAME: &'static CStr;
    /// Signature and docstring, in `CPython`'s `name(sig)\n--\n\ndoc` form.
    const DOC: &'static CStr;
    /// The parameters, for [`Call::bind`].
    const PARAMS: Params;
    /// The `#[pyfunction]` twin.
    fn checked(py: Python<'_>) -> PyResult<Bound<'_, PyCFunction>>;
}

/// The fast half of a [`Signature`].
pub(super) trait FastFunction: Signature {
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

    /// The arguments in signature order (`None`: not given), or `None` for a call the twin
    /// must see: too many positional arguments, or an unknown, repeated or positional-only
    /// keyword. `N` is the number of parameters.
    // Inlined into every entry whatever the optimizer thinks: otherwise `crc32c(b)` costs 724
    // instructions instead of 690 and `build_v1(s, t)` 2,243 instead of 2,214 (`ir_py` of
    // benchmarks/README.md).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(super) fn bind<const N: usize>(
        &self,
        py: Python<'py>,
        params: &Params,
    ) -> Option<[Option<Borrowed<'_, 'py, PyAny>>; N]> {
        if N != params.len || self.positional.len() > params.positional {
            return None;
        }
        let mut slots = [None; N];
        for (slot, &p) in slots.iter_mut().zip(self.positional) {
            *slot = Some(self.get(py, p));
        }
        if self.kwnames.is_none() {
            return Some(slots);
        }
        let mut seen = 0;
        for (name, value) in self.keywords(py) {
            let name = name.cast::<PyString>().ok()?;
            let slot = slots.get_mut(params.keyword_slot(name.to_str().ok()?)?)?;
            if slot.is_some() {
                return None; // given twice
            }
            *slot = Some(value);
            seen += 1;
        }
        (seen == self.keyword_values.len()).then_some(slots)
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

impl FastFunction for Parse {
    /// Any call whose arguments have the types of the signature.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        if let (&[data], None) = (call.positional, &call.kwnames) {
            // The usual call, `parse(data)`: ~15 instructions fewer than binding six slots
            // (`ir_py "$V2" 'p.parse(d)'`, benchmarks/README.md).
            let made = with_bytes(&call.get(py, data), |b| header_from(py, b, &Options::default()));
            return Some(made.and_then(|h| h).map(Bound::into_any));
        }
        let [data, allow_v1, allow_v2, verify, max_size, haproxy_limits] =
            call.bind(py, &Self::PARAMS)?;
        let data = data?;
        let d = Options::default();
        let opts = if call.keyword_values.is_empty() {
            Ok(d)
        } else {
            options(
                arg_or(allow_v1, d.allow_v1)?,
                arg_or(allow_v2, d.allow_v2)?,
                arg_or(verify, d.verify_checksum)?,
                arg_or(max_size, d.max_size as i128)?,
                arg_or(haproxy_limits, d.haproxy_limits)?,
            )
        };
        let made = opts.and_then(|opts| with_bytes(&data, |bytes| header_from(py, bytes, &opts))?);
        Some(made.map(Bound::into_any))
    }
}

impl FastFunction for BuildV1 {
    /// Any call whose arguments have the types of the signature.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        let [source, destination] = call.bind(py, &Self::PARAMS)?;
        let made = build_v1(py, given(source.as_ref()), given(destination.as_ref()));
        Some(made.map(Bound::into_any))
    }
}

impl FastFunction for BuildV2 {
    /// Any call whose arguments have the types of the signature.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        if call.kwnames.is_none() {
            // The usual call, addresses only: every keyword-only slot is empty, and skipping
            // them saves ~50 of ~2,000 instructions (`ir_py "$V2" 'p.build_v2(s, t)'` with
            // `s, t` two (host, port) pairs; benchmarks/README.md).
            let ends = match *call.positional {
                [] => [None, None],
                [s] => [Some(call.get(py, s)), None],
                [s, d] => [Some(call.get(py, s)), Some(call.get(py, d))],
                _ => return None,
            };
            let (s, d) = (given(ends[0].as_ref()), given(ends[1].as_ref()));
            return Some(build_v2_plain(py, s, d).map(Bound::into_any));
        }
        let [source, destination, command, protocol, tlvs, crc32c, alpn, authority, unique_id, netns, aws_vpce_id] =
            call.bind(py, &Self::PARAMS)?;
        let typed = TypedTlvs {
            alpn: given(alpn.as_ref()),
            authority: given_text(authority.as_ref()).ok()?,
            unique_id: given(unique_id.as_ref()),
            netns: given_text(netns.as_ref()).ok()?,
            aws_vpce_id: given_text(aws_vpce_id.as_ref()).ok()?,
        };
        let made = build_v2_bytes(
            py,
            given(source.as_ref()),
            given(destination.as_ref()),
            arg_or(command, None)?,
            arg_or(protocol, None)?,
            given(tlvs.as_ref()),
            arg_or(crc32c, false)?,
            &typed,
        );
        Some(made.map(|raw| PyBytes::new(py, &raw).into_any()))
    }
}

impl FastFunction for Crc32c {
    /// `bytes` under 1 MiB (longer ones release the GIL), and a value that fits 32 bits.
    fn fast<'py>(py: Python<'py>, call: &Call<'_, 'py>) -> Option<PyResult<Bound<'py, PyAny>>> {
        let [data, value] = call.bind(py, &Self::PARAMS)?;
        let value = arg_or(value, 0u32)?;
        let data = data?;
        let data = data.cast::<PyBytes>().ok()?;
        let bytes = data.as_bytes();
        if bytes.len() >= 1 << 20 {
            return None;
        }
        let Ok(crc) = crc32c::append(value, bytes).into_pyobject(py);
        Some(Ok(crc.into_any()))
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

/// An argument of type `T`, or `default` when not given; `None` (the twin decides) for a
/// value of another type.
fn arg_or<'py, T>(arg: Option<Borrowed<'_, 'py, PyAny>>, default: T) -> Option<T>
where
    for<'a> T: FromPyObject<'a, 'py>,
{
    match arg {
        None => Some(default),
        Some(v) => v.extract().ok(),
    }
}
