"""Session-wide checks: which proxyproto_rs the suite is testing.

The header line of every run names the package under test and how it was installed. With
``PROXYPROTO_TEST_INSTALLED=1`` (set by .ci/run, which runs the suite against the built wheel
in a fresh venv) the session refuses to start unless ``proxyproto_rs`` is an installed,
non-editable copy, not the package sources in python/: a green run then says the wheel
works, not the checkout.
"""

import json
import os
from importlib import metadata
from pathlib import Path

import proxyproto_rs
import pytest

SOURCES = Path(__file__).resolve().parent.parent / "python"


def _install_kind() -> str:
    """``editable``, ``installed`` (a wheel or sdist build), or ``unknown`` (no metadata)."""
    try:
        dist = metadata.distribution("proxyproto_rs")
    except metadata.PackageNotFoundError:
        return "unknown"
    direct_url = dist.read_text("direct_url.json")
    if direct_url and json.loads(direct_url).get("dir_info", {}).get("editable"):
        return "editable"
    return "installed"


def _package_dir() -> Path:
    return Path(proxyproto_rs.__file__).resolve().parent


def pytest_report_header(config: pytest.Config) -> str:
    return f"proxyproto_rs {proxyproto_rs.__version__} ({_install_kind()}) from {_package_dir()}"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PROXYPROTO_TEST_INSTALLED") != "1":
        return
    where = _package_dir()
    if where.is_relative_to(SOURCES) or _install_kind() != "installed":
        raise pytest.UsageError(
            f"PROXYPROTO_TEST_INSTALLED=1 but proxyproto_rs is the {_install_kind()} copy at "
            f"{where}, not an installed wheel (the sources are in {SOURCES})"
        )
