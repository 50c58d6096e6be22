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


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces → '-'."""
    import re

    text = re.sub(r"[`*_]", lambda m: "_" if m.group(0) == "_" else "", heading.strip().lower())
    return "".join(c for c in text if c.isalnum() or c in "-_ ").replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    fence = False
    for line in md.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        if fence or not line.startswith("#"):
            continue
        slug = _slug(line.lstrip("#"))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(md: Path):
    import re

    text = re.sub(r"```.*?```", "", md.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target.split(' "')[0]  # a title after the target is allowed


@pytest.mark.parametrize("page", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
                                  "benchmarks/README.md", "benchmarks/RESULTS.md", "benchmarks/RESULTS_REAL.md"])
def test_links_between_pages_reach_a_file_and_a_heading(page):
    """A measured claim links to its dated table: every relative link of the user-facing pages
    names a file that exists and, for a Markdown anchor, a heading that GitHub would anchor so."""
    md = ROOT / page
    broken = []
    for target in _links(md):
        path, _, anchor = target.partition("#")
        dest = (md.parent / path).resolve() if path else md
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page}: links to no file or no heading: {broken}"
