"""surfrec bench on a tiny generated case folder (one good case, one broken scan)."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import trimesh


def test_bench_runs_scores_reports_and_resumes(tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    sphere.export(cases / "ball.gt.ply")
    np.savetxt(cases / "ball.xyz", trimesh.sample.sample_surface(sphere, 3000, seed=0)[0])
    sphere.export(cases / "broken.gt.ply")
    (cases / "broken.xyz").write_text("1 2 3\nnot numbers\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "surfrec", "bench", str(cases), "--methods", "surfrec-fast,surfrec-raw,poisson", "--out",
           str(out), "--iters", "60", "--resolution", "48", "--poisson-depth", "6", "--samples", "5000", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stderr  # one case failed, the others ran
    with open(out / "results.csv", newline="") as fh:
        rows = {(row["case"], row["method"]): row for row in csv.DictReader(fh)}
    assert rows["ball", "poisson"]["status"] == "ok" and rows["ball", "surfrec-fast"]["status"] == "ok"
    assert float(rows["ball", "poisson"]["chamfer_l1"]) < 0.01
    assert float(rows["ball", "surfrec-fast"]["chamfer_l1"]) < 0.05
    assert float(rows["ball", "surfrec-fast"]["peak_mem_mb"]) > 50
    assert rows["ball", "surfrec-raw"]["status"] == "ok"  # the default preset without the refinement
    assert rows["broken", "poisson"]["status"] == "failed" and "broken.xyz" in rows["broken", "poisson"]["error"]
    md = (out / "RESULTS.md").read_text()
    assert "| ball | surfrec-fast |" in md and "failed" in md
    assert (out / "previews" / "ball.png").read_bytes()[:4] == b"\x89PNG"
    # a re-run does not redo finished cases
    mtime = (out / "meshes" / "ball__poisson.ply").stat().st_mtime_ns
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert (out / "meshes" / "ball__poisson.ply").stat().st_mtime_ns == mtime
