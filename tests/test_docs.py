"""The documentation: the API reference builds in strict mode, and every public function,
class and method of the library has a docstring (the reference is built from them)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import surfrec
from optional_deps import require

ROOT = Path(__file__).resolve().parents[1]


def _public_objects():
    """(qualified name, object) of every public function, class and method of the library
    (the CLI's command modules aside: their help is ``--help``)."""
    for m in pkgutil.walk_packages(surfrec.__path__, "surfrec."):
        if m.name.startswith("surfrec.cli") or m.name.endswith("__main__"):
            continue
        mod = importlib.import_module(m.name)
        names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        for n in names:
            obj = getattr(mod, n, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or obj.__module__ != mod.__name__:
                continue
            yield f"{m.name}.{n}", obj
            if inspect.isclass(obj):
                for an, a in vars(obj).items():
                    if an.startswith("_"):
                        continue
                    f = a.fget if isinstance(a, property) else getattr(a, "__func__", a)
                    if inspect.isfunction(f):
                        yield f"{m.name}.{n}.{an}", f


def test_every_public_function_class_and_method_has_a_docstring():
    missing = [name for name, obj in _public_objects() if not (obj.__doc__ or "").strip()]
    assert not missing, f"public objects without a docstring: {missing}"


def test_the_api_reference_builds_in_strict_mode(tmp_path):
    """mkdocs + mkdocstrings (the [dev] extra): a broken reference, a docstring griffe cannot
    read or a page left out of the navigation fails the build."""
    require("mkdocs")
    require("mkdocstrings")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    page = (tmp_path / "site" / "api" / "settings" / "index.html").read_text()
    assert "merge_tolerance" in page and "--fill" in page  # the settings tables come from the declarations
    assert (tmp_path / "site" / "api" / "run" / "index.html").is_file()
