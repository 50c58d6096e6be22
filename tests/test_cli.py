"""End-to-end CLI runs on the repository's example scan (small settings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example.xyz"


def surfrec(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surfrec", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("fit")
    out, model = d / "example.ply", d / "example.pt"
    r = surfrec("fit", str(EXAMPLE), "-o", str(out), "--iters", "40", "--resolution", "48",
                "--save-model", str(model), "--quiet", "--device", "cpu", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and out.is_file() and model.is_file()  # --quiet: errors only
    return out, model


def test_fit_writes_closed_mesh_in_scan_coordinates(fitted):
    out, _ = fitted
    mesh = trimesh.load(out, force="mesh")
    assert mesh.is_watertight and len(mesh.faces) > 100
    pts = np.loadtxt(EXAMPLE)
    lo, hi = pts.min(0), pts.max(0)
    # the mesh sits where the scan is (the example is far from the origin on purpose)
    assert np.all(mesh.bounds[0] > lo - 0.2 * (hi - lo)) and np.all(mesh.bounds[1] < hi + 0.2 * (hi - lo))
    assert mesh.volume > 0  # outward-facing normals


def test_mesh_command_replays_the_fit_settings(fitted, tmp_path):
    """`surfrec mesh model.pt` without options writes the mesh `surfrec fit` wrote (the fit's
    --resolution 48 travels in the model's config)."""
    out, model = fitted
    again = tmp_path / "again.ply"
    r = surfrec("mesh", str(model), "-o", str(again), "-q", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert again.read_bytes() == out.read_bytes()
    from surfrec.result import load_model
    from surfrec.surface.support import read_support

    assert read_support(out) is not None  # the support map travels in the PLY
    decision = load_model(model).surface  # saved after meshing: the decision is in the model file
    assert decision.mode == "auto" and decision.surface in ("open", "closed") and decision.phantom_closed is not None


def test_mesh_command_and_level_offsets(fitted, tmp_path):
    _, model = fitted
    vols = []
    for level in ("-0.02", "0.0", "0.02"):
        out = tmp_path / f"l{level}.obj"
        r = surfrec("mesh", str(model), "-o", str(out), "--resolution", "48", "--level", level, "-q")
        assert r.returncode == 0, r.stderr
        vols.append(trimesh.load(out, force="mesh").volume)
    assert vols[0] < vols[1] < vols[2]  # F < 0 inside: higher levels enclose more
    r = surfrec("mesh", str(model), "-o", str(tmp_path / "none.ply"), "--resolution", "32", "--level", "50")
    assert r.returncode == 2 and "never crosses" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "none.ply").exists()


def test_residuals_and_eval_commands(fitted, tmp_path):
    out, model = fitted
    js = tmp_path / "res.json"
    r = surfrec("residuals", str(model), "--steps", "0,10", "--seeds", "2000", "--plot", str(tmp_path / "r.png"),
                "--json", str(js))
    assert r.returncode == 0, r.stderr
    rows = json.loads(js.read_text())["rows"]
    assert rows[1]["converged"] > rows[0]["converged"]
    assert (tmp_path / "r.png").stat().st_size > 1000
    r = surfrec("eval", str(out), "--gt", str(ROOT / "data" / "example.gt.ply"), "--samples", "5000",
                "--json", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["chamfer_l1"] < 0.05 * 7.5  # a rough shape after 40 steps, in scan units


def test_fit_refuses_bad_output_before_working(tmp_path):
    r = surfrec("fit", str(EXAMPLE), "-o", str(tmp_path / "x.docx"), "--iters", "1")
    assert r.returncode == 2 and "x.docx" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.docx").exists()


def test_help_on_every_command():
    from surfrec.cli.main import COMMANDS

    for name in COMMANDS:
        r = surfrec(name, "--help")
        assert r.returncode == 0 and "usage" in r.stdout, name


def test_degenerate_clouds(tmp_path):
    rng = np.random.default_rng(0)
    t = rng.random(200)
    line = tmp_path / "line.xyz"
    np.savetxt(line, np.stack([t, 2 * t, 3 * t], axis=1))
    r = surfrec("fit", str(line), "-o", str(tmp_path / "line.ply"), "--iters", "2")
    assert r.returncode == 2 and "line.xyz" in r.stderr and "one line" in r.stderr
    assert not (tmp_path / "line.ply").exists()
    plane = tmp_path / "plane.xyz"
    np.savetxt(plane, np.stack([rng.random(500), rng.random(500), np.zeros(500)], axis=1))
    r = surfrec("fit", str(plane), "-o", str(tmp_path / "plane.ply"), "--iters", "3", "--resolution", "32",
                "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "one plane" in r.stderr and (tmp_path / "plane.ply").is_file()


@pytest.mark.slow
def test_open_range_scan_is_reported(shared_data, tmp_path):
    scan = shared_data / "scans" / "bunny_rangescan_bun000.xyz"
    r = surfrec("fit", str(scan), "-o", str(tmp_path / "bun.ply"), "--preset", "fast", "--resolution", "96")
    assert r.returncode == 0, r.stderr
    assert "surface open (auto" in r.stdout  # issue 14: decided open, trimmed to the data


def test_mesh_refinement_is_reported_and_can_be_turned_off(fitted, tmp_path):
    _, model = fitted
    refined, raw = tmp_path / "refined.ply", tmp_path / "raw.ply"
    # --surface closed: a 40-step fit's raw level set lies far enough from the data (closed-mesh
    # phantom 0.39 vs 0.21 refined) for auto to open it, and this test compares connectivity
    r = surfrec("mesh", str(model), "-o", str(refined), "--resolution", "64", "--surface", "closed")
    assert r.returncode == 0, r.stderr
    assert "refined onto the data" in r.stdout and "cells" in r.stdout
    assert "surface closed (closed" in r.stdout and "cover" in r.stdout  # mesh reports support too
    r = surfrec("mesh", str(model), "-o", str(raw), "--resolution", "64", "--no-refine", "-q", "--surface", "closed")
    assert r.returncode == 0, r.stderr
    a, b = trimesh.load(refined, process=False), trimesh.load(raw, process=False)
    assert np.array_equal(a.faces, b.faces)  # same connectivity, moved vertices
    pts = np.loadtxt(EXAMPLE)
    from scipy.spatial import cKDTree

    tree = cKDTree(pts)
    # the refined vertices lie closer to the scan than the raw level set's (a 40-step fit)
    assert tree.query(a.vertices)[0].mean() < 0.7 * tree.query(b.vertices)[0].mean()


def test_fit_warns_when_the_surface_misses_the_scan(tmp_path):
    # two far-apart clusters fitted for 3 steps: the initial sphere reaches neither
    rng = np.random.default_rng(0)
    d = rng.normal(size=(600, 3))
    d = 0.1 * d / np.linalg.norm(d, axis=1, keepdims=True)
    scan = tmp_path / "two.xyz"
    np.savetxt(scan, np.vstack([d + (-1.0, 0, 0), d + (1.0, 0, 0)]))
    r = surfrec("fit", str(scan), "-o", str(tmp_path / "two.ply"), "--iters", "3", "--resolution", "32",
                "--threads", "1", "--device", "cpu", "--data-weight", "2")  # not -q: it hides warnings
    assert r.returncode == 0, r.stderr
    assert "of the input points are farther than" in r.stderr and "misses part of the scan" in r.stderr


def test_fit_surface_mode_argument_and_summary(tmp_path):
    r = surfrec("fit", str(EXAMPLE), "-o", str(tmp_path / "x.ply"), "--surface", "sheet")
    assert r.returncode == 2 and "--surface" in r.stderr and not (tmp_path / "x.ply").exists()
    r = surfrec("fit", str(EXAMPLE), "-o", str(tmp_path / "c.ply"), "--iters", "5", "--resolution", "32",
                "--surface", "closed", "--threads", "1", "--device", "cpu", "--no-refine")
    assert r.returncode == 0, r.stderr
    assert "surface closed (closed" in r.stdout and "cover" in r.stdout and "stray points" in r.stdout
    assert "side term o" in r.stdout and "trusted normals" in r.stdout  # the closed side term's evidence
    assert trimesh.load(tmp_path / "c.ply", force="mesh").is_watertight


def test_log_lines_clear_an_open_progress_bar(capsys):
    """The CLI's log handler writes through tqdm.write: with a bar open, the line comes out
    on its own line, not appended to the half-drawn bar."""
    import logging

    from tqdm import tqdm

    from surfrec.cli.main import _BarSafeHandler

    handler = _BarSafeHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    bar = tqdm(total=10, desc="fit", file=__import__("sys").stderr)
    bar.update(3)
    handler.emit(logging.LogRecord("surfrec", logging.INFO, __file__, 1, "a log line", None, None))
    bar.close()
    err = capsys.readouterr().err
    assert "\na log line\n" in err.replace("\r", "\n")
    assert not any(line.startswith("fit:") and "a log line" in line for line in err.replace("\r", "\n").splitlines())
