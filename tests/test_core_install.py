"""The core install works without the extras: open3d ([baselines]; its wheel fails to
import without the system library libusb-1.0), matplotlib and plotly ([viz]), ray ([ray]).

A ``sitecustomize.py`` on ``PYTHONPATH`` installs a meta-path finder that makes every
import of those packages fail (open3d as its wheel does without libusb); the CLI then runs
in subprocesses: fit -> mesh -> residuals -> eval -> render, and info on a PCD must work,
and the screened Poisson baseline and a residual plot must fail with one line naming the
extra and exit code 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example.xyz"
EXAMPLE_GT = ROOT / "data" / "example.gt.ply"

_BLOCKER = '''
import importlib.abc
import sys


class _NoOpen3d(importlib.abc.MetaPathFinder):
    """Fail like open3d's wheel does on a machine without libusb-1.0; the other extras as
    when they are not installed."""

    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top == "open3d":
            raise ImportError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")
        if top in ("matplotlib", "plotly", "ray"):
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        return None


sys.meta_path.insert(0, _NoOpen3d())
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("no_open3d_site")
    (site / "sitecustomize.py").write_text(_BLOCKER)
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), out.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return out


def run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surfrec", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd)


def test_the_blocker_blocks(env, tmp_path):
    r = subprocess.run([sys.executable, "-c", "import open3d"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 1 and "libusb-1.0.so.0" in r.stderr
    for name in ("matplotlib.pyplot", "plotly", "ray"):
        r = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                           env=env, cwd=tmp_path)
        assert r.returncode == 1 and "No module named" in r.stderr, name


def test_fit_eval_render_without_open3d(env, tmp_path):
    mesh, png, model = tmp_path / "m.ply", tmp_path / "m.png", tmp_path / "m.pt"
    r = run(env, "fit", str(EXAMPLE), "-o", str(mesh), "--iters", "30", "--resolution", "32",
            "--device", "cpu", "--threads", "1", "--quiet", "--save-model", str(model), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert mesh.stat().st_size > 0

    r = run(env, "mesh", str(model), "-o", str(tmp_path / "m2.ply"), "--resolution", "32",
            "--device", "cpu", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr

    r = run(env, "residuals", str(model), "--seeds", "200", "--device", "cpu", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr

    r = run(env, "eval", str(mesh), "--gt", str(EXAMPLE_GT), "--samples", "2000", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "chamfer_l1" in r.stdout and "fscore" in r.stdout, r.stdout

    r = run(env, "render", str(mesh), "-o", str(png), "--views", "1", "--size", "64", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert png.stat().st_size > 0


def test_pcd_reads_without_open3d(env, tmp_path):
    pcd = tmp_path / "c.pcd"
    rows = "".join(f"{i} {i % 3} {i * 0.5}\n" for i in range(12))
    pcd.write_text("VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 12\n"
                   f"HEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 12\nDATA ascii\n{rows}")
    r = run(env, "info", str(pcd), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "12" in r.stdout


def test_poisson_baseline_says_how_to_fix_it(env, tmp_path):
    out = tmp_path / "p.ply"
    r = run(env, "baseline", "poisson", str(EXAMPLE), "-o", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr  # one line, no traceback
    assert "apt-get install -y libusb-1.0-0" in r.stderr and "open3d" in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_residual_plot_names_the_viz_extra(env, tmp_path):
    model = tmp_path / "m.pt"
    r = run(env, "fit", str(EXAMPLE), "-o", str(tmp_path / "m.ply"), "--iters", "5", "--resolution", "24",
            "--device", "cpu", "--quiet", "--save-model", str(model), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run(env, "residuals", str(model), "--seeds", "100", "--plot", str(tmp_path / "r.png"), "--quiet",
            cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "surfrec[viz]" in r.stderr and not (tmp_path / "r.png").exists()


def test_report_names_the_viz_extra_before_any_work(env, tmp_path):
    mesh, page = tmp_path / "m.ply", tmp_path / "r.html"
    r = run(env, "fit", str(EXAMPLE), "-o", str(mesh), "--iters", "5", "--report", str(page), "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "surfrec[viz]" in r.stderr and "plotly" in r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing fitted, nothing written
