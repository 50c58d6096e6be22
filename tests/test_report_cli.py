"""The report pages from the command line and the API: ``surfrec fit --report``,
``surfrec report MODEL [MESH]``, ``surfrec bench --html``, ``surfrec.report``; and their
bad inputs (one line, exit code 2, no HTML left behind).

The pages made here are opened in the browser by tests/test_report.py (``cli_pages``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

import surfrec
from surfrec.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example.xyz"
EXAMPLE_GT = ROOT / "data" / "example.gt.ply"
#: a short fit (the page's content, not the fit's quality, is under test)
QUICK = ["--iters", "120", "--resolution", "64", "--device", "cpu", "--quiet"]


def make_pages(out: Path) -> dict[str, Path]:
    """fit --report --gt (with the model saved), then report from the model alone and with
    its mesh: the three pages, the mesh and the model."""
    paths = {"fit": out / "fit.html", "model": out / "m.pt", "mesh": out / "m.ply",
             "again": out / "again.html", "with_mesh": out / "with_mesh.html"}
    assert main(["fit", str(EXAMPLE), "-o", str(paths["mesh"]), *QUICK, "--save-model", str(paths["model"]),
                 "--report", str(paths["fit"]), "--gt", str(EXAMPLE_GT)]) == 0
    assert main(["report", str(paths["model"]), "-o", str(paths["again"]), "--device", "cpu", "--quiet"]) == 0
    assert main(["report", str(paths["model"]), str(paths["mesh"]), "-o", str(paths["with_mesh"]), "--quiet"]) == 0
    return paths


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    return make_pages(tmp_path_factory.mktemp("report_cli"))


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_fit_report_holds_the_fit_and_its_ground_truth(made):
    page = _text(made["fit"])
    assert "Chamfer" in page and "F-score" in page
    assert "surfrec fit" in page and "--report" in page  # the command line that made it
    assert surfrec.__version__ in page
    assert "residual after k Newton steps" in page or "Newton" in page


def test_report_from_the_model_has_no_ground_truth_rows(made):
    for key in ("again", "with_mesh"):
        page = _text(made[key])
        assert "Chamfer" not in page, key
        assert "surfrec fit" in page, key  # the command stored with the model


def test_the_stored_command_and_timings_survive_the_model_file(made):
    result = surfrec.load_model(made["model"])
    assert result.command.startswith("surfrec fit ") and "--save-model" in result.command
    assert result.timings.get("fit", 0) > 0


def test_api_report_of_a_reconstruction(tmp_path):
    rec = surfrec.reconstruct(str(EXAMPLE), iterations=60, resolution=48, device="cpu", keep_raw=True)
    assert rec.report.raw is not None and len(rec.report.raw.faces) > 0
    page = surfrec.report(rec, path=tmp_path / "api.html")
    assert (tmp_path / "api.html").read_text(encoding="utf-8") == page.html
    assert page._repr_html_().startswith("<iframe srcdoc=")


# ------------------------------------------------------------------------- bad inputs
def _one_line_error(capsys, args: list[str], *expected: str) -> str:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in expected:
        assert part in err, err
    return err


def test_a_model_file_of_another_format(capsys, tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "format": "someone-else"}, other)
    newer = tmp_path / "newer.pt"
    torch.save({"format": "surfrec-model", "format_version": 99}, newer)
    page = tmp_path / "r.html"
    _one_line_error(capsys, ["report", str(other), "-o", str(page)], "not a surfrec model file")
    _one_line_error(capsys, ["report", str(newer), "-o", str(page)], "format 99 is not supported")
    assert not page.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["newer.pt", "other.pt"]


def test_a_mesh_that_does_not_belong_to_the_model(capsys, made, tmp_path):
    page = tmp_path / "r.html"
    mesh = trimesh.load(made["mesh"], process=False)
    far = tmp_path / "far.ply"
    trimesh.Trimesh(mesh.vertices + 100.0 * np.ptp(mesh.vertices, axis=0), mesh.faces).export(far)
    other = tmp_path / "other.ply"
    centre, size = mesh.vertices.mean(axis=0), np.ptp(mesh.vertices, axis=0).max()
    ball = trimesh.creation.icosphere(4, radius=0.3 * size)
    ball.apply_translation(centre)
    ball.export(other)
    _one_line_error(capsys, ["report", str(made["model"]), str(far), "-o", str(page)],
                    "does not belong to the model", "outside the model's fitting box")
    _one_line_error(capsys, ["report", str(made["model"]), str(other), "-o", str(page)],
                    "does not belong to the model", "level set")
    notamesh = tmp_path / "points.ply"
    trimesh.PointCloud(mesh.vertices[:100]).export(notamesh)
    _one_line_error(capsys, ["report", str(made["model"]), str(notamesh), "-o", str(page)], "no faces")
    assert not page.exists()


def test_unwritable_or_clashing_paths(capsys, made, tmp_path):
    folder = tmp_path / "a_folder.html"
    folder.mkdir()
    _one_line_error(capsys, ["report", str(made["model"]), "-o", str(folder)], "folder")
    _one_line_error(capsys, ["report", str(made["model"]), "-o", str(tmp_path / "missing" / "r.html")],
                    "does not exist")
    scan = tmp_path / "scan.html"  # a scan that would be overwritten by its own report
    scan.write_text(EXAMPLE.read_text())
    _one_line_error(capsys, ["fit", str(scan), "-o", str(tmp_path / "m.ply"), "--report", str(scan)])


def test_a_bad_ground_truth_stops_the_fit_before_any_work(capsys, tmp_path):
    gt = tmp_path / "gt.ply"
    gt.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 2\n")  # truncated
    out, page = tmp_path / "m.ply", tmp_path / "r.html"
    _one_line_error(capsys, ["fit", str(EXAMPLE), "-o", str(out), "--report", str(page), "--gt", str(gt)])
    assert not out.exists() and not page.exists()


def test_a_failing_report_leaves_no_partial_file(capsys, made, tmp_path, monkeypatch):
    from surfrec.evaluation import report as engine

    page = tmp_path / "r.html"

    def broken(*args, **kwargs):
        raise surfrec.InputError("report data", "mesh_faces: indices out of range")

    monkeypatch.setattr(engine, "_fit_context", broken)
    _one_line_error(capsys, ["report", str(made["model"]), str(made["mesh"]), "-o", str(page)], "out of range")
    assert list(tmp_path.iterdir()) == []
