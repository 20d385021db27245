"""The package as installed: one version source, what ``import proxyproto_rs`` costs, lazy names.

The version lives in Cargo.toml only; maturin copies it into the wheel's metadata and the
native module exposes it as ``__version__``. Import cost is checked by what gets imported, not
by timing (the machine is shared): a plain ``import proxyproto_rs`` must not pull in ``typing``
(most of its start-up time once), and the package has no module ``__getattr__``, which would
keep CPython 3.11+ from specialising every ``proxyproto_rs.parse`` lookup.
"""

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import proxyproto_rs
import pytest

CARGO_TOML = Path(__file__).resolve().parent.parent / "Cargo.toml"


def test_version_is_the_distribution_version() -> None:
    assert proxyproto_rs.__version__ == importlib.metadata.version("proxyproto_rs")


@pytest.mark.skipif(not CARGO_TOML.is_file(), reason="no source checkout beside the tests")
def test_version_comes_from_cargo_toml() -> None:
    cargo = tomllib.loads(CARGO_TOML.read_text())
    assert proxyproto_rs.__version__ == cargo["package"]["version"]


def _fresh_import(code: str) -> str:
    """Run *code* after ``import proxyproto_rs`` in a new interpreter without site (-S)."""
    parent = str(Path(proxyproto_rs.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": parent}
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_does_not_pull_in_typing() -> None:
    out = _fresh_import(
        "import sys\n"
        "before = set(sys.modules)\n"
        "import proxyproto_rs\n"
        "print(proxyproto_rs.__file__)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    path, loaded = out.splitlines()
    assert Path(path).resolve() == Path(proxyproto_rs.__file__).resolve()
    new = set(loaded.split())
    assert "proxyproto_rs._core" in new
    assert not new & {"typing", "re", "inspect", "ipaddress", "asyncio", "ssl"}


def test_module_attribute_lookups_can_specialise() -> None:
    """A module ``__getattr__`` (PEP 562) makes CPython give up specialising attribute
    lookups on the module: ``proxyproto_rs.parse(d)`` then costs ~280 more instructions a
    call (speed trick ``module-attr`` in benchmarks/README.md)."""
    assert "__getattr__" not in vars(proxyproto_rs)


def test_every_public_name_resolves() -> None:
    for name in proxyproto_rs.__all__:
        assert getattr(proxyproto_rs, name) is not None
        assert name in dir(proxyproto_rs)
    namespace: dict[str, object] = {}
    exec("from proxyproto_rs import *", namespace)
    assert set(proxyproto_rs.__all__) <= set(namespace)
    assert int(proxyproto_rs.Family.INET6) == 2
    assert int(proxyproto_rs.Protocol.DGRAM) == 2


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        proxyproto_rs.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_metadata_declares_licenses_and_python_versions() -> None:
    meta = metadata_of_installed()
    assert meta["License-Expression"] == "MIT OR Apache-2.0"
    assert sorted(meta.get_all("License-File") or []) == ["LICENSE-APACHE", "LICENSE-MIT"]
    assert meta["Requires-Python"] == ">=3.11"
    classifiers = set(meta.get_all("Classifier") or [])
    for minor in range(11, 16):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(urls)


def test_typing_files_ship_with_the_package() -> None:
    here = Path(proxyproto_rs.__file__).parent
    assert (here / "py.typed").is_file()
    assert (here / "_core.pyi").is_file()


def metadata_of_installed() -> importlib.metadata.PackageMetadata:
    return importlib.metadata.metadata("proxyproto_rs")
