"""Runtime docstrings match the stubs.

``help(proxyproto_rs.parse)`` and ``inspect.getdoc`` read the native module's own
docstrings; the stubs in ``_core.pyi`` are what editors and type checkers show. Both say the
same: for every function, class, method and property the stub documents, the runtime
docstring is the stub's text exactly, and every public callable has one that names its
parameters.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import proxyproto_rs as pp
import pytest
from proxyproto_rs import _core

STUB = Path(_core.__file__).with_name("_core.pyi")
if not STUB.exists():  # an installed wheel keeps the stub beside the package
    STUB = Path(pp.__file__).with_name("_core.pyi")


def _stub_entries() -> list[tuple[str, Any, str | None, list[str]]]:
    """(qualified name, runtime object, stub docstring, parameter names) for every public
    function, class, method and property of the stub (dunders aside)."""
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    out: list[tuple[str, Any, str | None, list[str]]] = []

    def params(fn: ast.FunctionDef) -> list[str]:
        a = fn.args
        names = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]]
        return [n for n in names if n not in ("self", "cls")]

    def bare_overload(fn: ast.FunctionDef) -> bool:
        """A later ``@overload`` of a function whose first overload carries the docs."""
        overloaded = any(isinstance(d, ast.Name) and d.id == "overload" for d in fn.decorator_list)
        return overloaded and ast.get_docstring(fn) is None

    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and bare_overload(node):
            continue
        if isinstance(node, ast.FunctionDef):
            out.append(
                (node.name, getattr(_core, node.name), ast.get_docstring(node), params(node))
            )
        elif isinstance(node, ast.ClassDef):
            cls = getattr(_core, node.name)
            out.append((node.name, cls, ast.get_docstring(node), []))
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    runtime = inspect.getattr_static(cls, item.name)
                    if isinstance(runtime, staticmethod):
                        runtime = runtime.__func__
                    out.append(
                        (f"{node.name}.{item.name}", runtime, ast.get_docstring(item), params(item))
                    )
    return out


ENTRIES = _stub_entries()


@pytest.mark.parametrize(("name", "runtime", "doc", "params"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_runtime_docstring_is_the_stubs(
    name: str, runtime: Any, doc: str | None, params: list[str]
) -> None:
    assert doc, f"{name}: the stub has no docstring"
    got = runtime.__doc__
    assert got, f"{name}: no docstring at runtime"
    assert inspect.cleandoc(got) == doc, f"{name}: runtime and stub docstrings differ"


@pytest.mark.parametrize(("name", "runtime", "doc", "params"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_documented_parameters(name: str, runtime: Any, doc: str | None, params: list[str]) -> None:
    """A callable taking arguments names each of them in its docstring (an ``Args:`` entry
    or prose), so ``help()`` explains every parameter."""
    for p in params:
        assert doc is not None, f"{name}: no docstring"
        assert p in doc, f"{name}: parameter {p!r} not in its docstring"


def test_every_public_callable_is_covered() -> None:
    covered = {e[0] for e in ENTRIES}
    for name in _core.__all__:
        obj = getattr(_core, name)
        if callable(obj):
            assert name in covered, f"{name} is public but not in the stub"


def test_help_shows_the_whole_parse_docstring() -> None:
    text = pp.parse.__doc__ or ""
    for part in ("Args:", "max_size", "Returns:", "Raises:", "IncompleteHeaderError"):
        assert part in text
    assert str(inspect.signature(pp.parse)).startswith("(data, /, *, allow_v1=True")
