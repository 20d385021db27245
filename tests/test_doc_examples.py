"""Every ```python example in README.md and docs/ runs against the current API, as far as a
reader can tell without running it.

Strategy: each block is compiled (top-level ``await`` allowed, ``>>>`` prompts stripped),
then read with :mod:`ast`: every name it takes from ``proxyproto_rs`` (``pp.X``,
``proxyproto_rs.X``, ``from proxyproto_rs.aio import X``, ``aio.X`` after
``from proxyproto_rs import aio``) must exist, and every call of such a name must bind to
its signature (how many positional arguments, which keywords). Attributes of values (a
header's ``.source``) are not followed: the block is never run. A name whose module needs a
server package that is not installed is skipped, not failed.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```(?:python|py|pycon)[ \t]*\n(.*?)^```", re.S | re.M)
DEFAULT_ALIASES = {"pp": "proxyproto_rs", "proxyproto_rs": "proxyproto_rs"}


class _Missing(Exception):
    """The name does not exist."""


class _NotInstalled(Exception):
    """The module that holds the name needs a package this environment lacks."""


def _blocks() -> list[Any]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            line = text[: m.start()].count("\n") + 2
            where = f"{page.relative_to(ROOT)}:{line}"
            found.append(pytest.param(where, m.group(1), id=where))
    return found


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as exc:
            if exc.name and not exc.name.startswith("proxyproto_rs"):
                raise _NotInstalled(exc.name) from None
            continue
        break
    else:
        raise _Missing(dotted)
    for attr in parts[i:]:
        if not hasattr(obj, attr):
            raise _Missing(dotted)
        obj = getattr(obj, attr)
    return obj


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """``pp.aio.wrap`` -> ``proxyproto_rs.aio.wrap`` when the root is a known alias."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases:
        return ".".join([aliases[node.id], *reversed(names)])
    return None


def _aliases(tree: ast.AST, problems: list[str]) -> dict[str, str]:
    aliases = dict(DEFAULT_ALIASES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "proxyproto_rs":
                    aliases[a.asname or "proxyproto_rs"] = a.name if a.asname else "proxyproto_rs"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("proxyproto_rs"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                _check_exists(full, problems)
                aliases[a.asname or a.name] = full
    return aliases


def _check_exists(dotted: str, problems: list[str]) -> Any:
    try:
        return _resolve(dotted)
    except _Missing:
        problems.append(f"{dotted} does not exist")
    except _NotInstalled:
        pass
    return None


def _check_call(call: ast.Call, dotted: str, problems: list[str]) -> None:
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        return
    obj = _check_exists(dotted, problems)
    if obj is None:
        return
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*range(len(call.args)), **{str(k.arg): 0 for k in call.keywords})
    except TypeError as exc:
        problems.append(f"{dotted}(...): {exc}")


@pytest.mark.parametrize(("where", "source"), _blocks())
def test_example_uses_the_current_api(where: str, source: str) -> None:
    if source.lstrip().startswith(">>>"):
        lines = source.splitlines()
        source = "\n".join(line[4:] for line in lines if line.startswith((">>> ", "... ")))
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = compile(source, where, "exec", flags=flags)
    problems: list[str] = []
    aliases = _aliases(tree, problems)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            dotted = aliases.get(name) if name else _dotted(func, aliases)
            if dotted:
                _check_call(node, dotted, problems)
        elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Store):
            dotted = _dotted(node, aliases)
            if dotted:
                _check_exists(dotted, problems)
    assert not problems, f"{where}: " + "; ".join(sorted(set(problems)))


def test_pages_hold_examples() -> None:
    """The extraction finds the examples (a changed fence style would make every test vacuous)."""
    assert len(_blocks()) >= 20
