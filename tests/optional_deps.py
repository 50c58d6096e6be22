"""Optional dependencies that some tests need, without silent skips in CI.

``pytest.importorskip`` would turn a broken install (e.g. open3d without the system library
libusb) into a green run with skipped tests. :func:`require` fails instead when the
environment variable ``CI`` is set (``.ci/run`` sets it: CI installs every extra and every
system package), and skips with the command that installs the dependency otherwise.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

#: How to install what a test needs.
HINTS = {
    "open3d": "pip install 'surfrec[baselines]'; on Debian/Ubuntu also apt-get install -y libusb-1.0-0",
    "plotly": "pip install 'surfrec[viz]'",
    "matplotlib": "pip install 'surfrec[viz]'",
    "playwright": "pip install 'surfrec[dev]'",
    "ray": "pip install 'surfrec[ray]'",
}


def missing(reason: str) -> None:
    """Fail in CI, skip elsewhere (with the reason and how to fix it)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs every extra: this is a broken install)", pytrace=False)
    pytest.skip(reason)


def require(module: str) -> ModuleType:
    """Import ``module`` or fail in CI / skip elsewhere with the install hint."""
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as exc:
        top = module.split(".")[0]
        missing(f"{top} cannot be imported ({' '.join(str(exc).split())}); {HINTS.get(top, f'pip install {top}')}")


def require_open3d() -> ModuleType:
    """The ``open3d`` module (see :func:`require`)."""
    return require("open3d")
