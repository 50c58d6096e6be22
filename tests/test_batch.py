"""surfrec batch: local workers and a real local Ray instance on tiny generated scans."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from surfrec.batch import default_threads, expand_inputs, plan_jobs, run_batch
from surfrec.errors import InputError
from surfrec.settings import get_config, with_overrides

TINY = get_config("fast", iterations=3, n_samples=512, batch_points=512, n_distance_samples=256, resolution=24,
                  threads=1)


def _sphere(path: Path, n: int = 400, center=(0.0, 0.0, 0.0), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3))
    p = p / np.linalg.norm(p, axis=1, keepdims=True) + np.asarray(center)
    np.savetxt(path, p)
    return path


@pytest.fixture
def scans(tmp_path) -> Path:
    d = tmp_path / "scans"
    d.mkdir()
    _sphere(d / "a.xyz", seed=1)
    _sphere(d / "b.xyz", center=(5, 0, 0), seed=2)
    (d / "broken.xyz").write_text("1 2 3\n4 5 nope\n")
    (d / "notes.md").write_text("not a scan")
    return d


def _manifest(out: Path) -> dict[str, dict]:
    data = json.loads((out / "manifest.json").read_text())
    return {Path(r["input"]).name: r for r in data["scans"]}


def test_expand_inputs_and_names(tmp_path, scans):
    found = expand_inputs([scans, str(scans / "a.*")])
    assert [p.name for p in found] == ["a.xyz", "b.xyz", "broken.xyz"]
    other = tmp_path / "other"
    other.mkdir()
    _sphere(other / "a.xyz")
    jobs = plan_jobs(expand_inputs([scans / "a.xyz", other / "a.xyz"]), tmp_path / "out")
    assert len({j.output for j in jobs}) == 2  # same name in two folders: no clash
    with pytest.raises(InputError, match="nothing-here"):
        expand_inputs([tmp_path / "nothing-here"])
    assert default_threads(1) >= default_threads(2) >= 1


def test_sequential_batch_reports_failure_and_resumes(tmp_path, scans):
    out = tmp_path / "out"
    records = run_batch([scans], out, TINY, workers=1)
    m = _manifest(out)
    assert m["a.xyz"]["status"] == "ok" and Path(m["a.xyz"]["output"]).is_file()
    assert m["b.xyz"]["status"] == "ok"
    assert m["broken.xyz"]["status"] == "failed" and "broken.xyz" in m["broken.xyz"]["error"]
    assert not (out / "broken.ply").exists()
    assert len(records) == 3
    # a second run does no work twice: only the failed scan is retried
    mtime = Path(m["a.xyz"]["output"]).stat().st_mtime_ns
    seen = []
    run_batch([scans], out, TINY, workers=1, progress=lambda d, t, r: seen.append(r and Path(r["input"]).name))
    assert [s for s in seen if s] == ["broken.xyz"]
    assert Path(m["a.xyz"]["output"]).stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_two_local_workers(tmp_path, scans):
    out = tmp_path / "out"
    run_batch([scans / "a.xyz", scans / "b.xyz", scans / "broken.xyz"], out, TINY, workers=2)
    m = _manifest(out)
    assert [m[k]["status"] for k in ("a.xyz", "b.xyz", "broken.xyz")] == ["ok", "ok", "failed"]


def test_ray_local_cluster(tmp_path, scans):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'surfrec[ray]'")
    out = tmp_path / "out"
    run_batch([scans], out, TINY, ray="local")
    m = _manifest(out)
    assert [m[k]["status"] for k in ("a.xyz", "b.xyz", "broken.xyz")] == ["ok", "ok", "failed"]
    assert "nope" in m["broken.xyz"]["error"] or "number" in m["broken.xyz"]["error"]
    # resumed: nothing done twice
    seen = []
    run_batch([scans], out, TINY, ray="local", progress=lambda d, t, r: seen.append(r and Path(r["input"]).name))
    assert [s for s in seen if s] == ["broken.xyz"]


def test_cli_batch_exit_codes(tmp_path, scans):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "surfrec", "batch", str(scans / "a.xyz"), "-o", str(out), "--iters", "2",
           "--resolution", "24", "--preset", "fast", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / "a.ply").is_file() and (out / "manifest.json").is_file()
    r = subprocess.run(cmd[:4] + [str(tmp_path / "missing.xyz")] + cmd[5:], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "missing.xyz" in r.stderr and "Traceback" not in r.stderr


def test_batch_surface_mode_reaches_the_fit(tmp_path):
    """``--surface`` decides the fit too, as in ``surfrec fit``: open fits a closed sphere as an
    open surface, closed skips the decision, auto measures the closure."""
    from surfrec.result import load_model

    d = tmp_path / "scans"
    d.mkdir()
    _sphere(d / "s.xyz", n=1500)
    shapes = {}
    for mode in ("open", "closed", "auto"):
        out = tmp_path / f"out-{mode}"
        run_batch([d], out, with_overrides(TINY, surface=mode), workers=1, save_models=True)
        shapes[mode] = load_model(out / "s.pt").shape
    assert shapes["open"].fit_surface == "open"
    assert shapes["closed"].fit_surface == "closed"  # measured too: the sign push uses the orientation
    assert shapes["auto"].fit_surface == "closed" and shapes["auto"].closure < 0.1


def test_batch_mesh_options_reach_the_meshes_and_the_models(tmp_path):
    """``--fill``, ``--trim`` and ``--neighbors`` are those of ``surfrec fit``: stored with each
    model, and a trimmed closed mesh is no longer watertight; bad values are specific errors."""
    import trimesh

    from surfrec.result import load_model

    d = tmp_path / "scans"
    d.mkdir()
    rng = np.random.default_rng(0)
    p = rng.normal(size=(3000, 3))
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    np.savetxt(d / "cap.xyz", p[p[:, 2] > -0.6])  # a sphere without its bottom cap: a hole to fill or trim
    opts = with_overrides(TINY, surface="closed", fill=0.0, trim=4.0, neighbors=9)
    run_batch([d], tmp_path / "out", opts, workers=1, save_models=True)
    ec = load_model(tmp_path / "out" / "cap.pt").config.mesh
    assert (ec.fill, ec.trim, ec.neighbors) == (0.0, 4.0, 9)
    assert not trimesh.load(tmp_path / "out" / "cap.ply").is_watertight
    for bad, name in (({"fill": -1.0}, "fill"), ({"trim": float("nan")}, "trim"), ({"neighbors": 3}, "neighbors")):
        with pytest.raises(ValueError, match=f"MeshConfig.{name}"):
            with_overrides(TINY, **bad)
