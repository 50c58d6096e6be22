"""Headless pictures: the numpy renderer, ``surfrec render`` and ``surfrec fit --preview``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from surfrec.evaluation import render

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example.xyz"
EXAMPLE_MESH = ROOT / "data" / "example.gt.ply"


def surfrec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surfrec", *args], capture_output=True, text=True, timeout=600)


def read_png(path: Path) -> np.ndarray:
    import matplotlib.image

    return np.asarray(matplotlib.image.imread(path))[..., :3]


def covered(panel: np.ndarray) -> float:
    """Share of non-white pixels."""
    return float((panel < 0.98).any(axis=-1).mean())


def test_mesh_views_show_the_object_shaded(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=2.0)
    img = render.render(mesh, views=3, size=64)
    assert img.shape == (64, 3 * 64, 3) and img.min() >= 0 and img.max() <= 1
    for i in range(3):
        panel = img[:, i * 64:(i + 1) * 64]
        # a sphere spans 2r of a 2r√3·1.05 frame: about π/4/3.3 ≈ 0.24 of the panel
        assert 0.15 < covered(panel) < 0.35
        inside = panel[(panel < 0.98).any(axis=-1)]
        assert inside.std() > 0.02  # shaded, not a flat silhouette
    out = render.render_png(mesh, tmp_path / "sphere.png", views=5, size=40)
    assert read_png(out).shape == (80, 160, 3)  # 5 views: 4 per row, 2 rows


def test_point_cloud_without_normals_is_drawn_without_holes():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(3000, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    img = render.render(pts, views=1, size=80)
    # the splat radius adapts to the spacing: the disc is filled, not a sprinkle of pixels
    assert covered(img) > 0.15
    nrm = render.estimate_normals(pts)
    assert np.abs(np.einsum("ij,ij->i", nrm, pts)).min() > 0.9  # sphere normals are radial


def test_views_are_distinct_and_up_axis_matters():
    mesh = trimesh.creation.box(extents=(1.0, 2.0, 4.0))
    y_up = render.render(mesh, views=2, size=48, up="y")
    z_up = render.render(mesh, views=2, size=48, up="z")
    assert not np.allclose(y_up, z_up)
    assert not np.allclose(y_up[:, :48], y_up[:, 48:])
    with pytest.raises(ValueError):
        render.render(mesh, views=0)


def test_cli_render_mesh_and_scan(tmp_path):
    out = tmp_path / "mesh.png"
    r = surfrec("render", str(EXAMPLE_MESH), "-o", str(out), "--views", "2", "--size", "96", "--up", "z")
    assert r.returncode == 0, r.stderr
    img = read_png(out)
    assert img.shape == (96, 192, 3) and covered(img) > 0.1
    out = tmp_path / "scan.png"
    r = surfrec("render", str(EXAMPLE), "-o", str(out), "--views", "1", "--size", "96", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and covered(read_png(out)) > 0.1


@pytest.mark.parametrize("args, needle", [
    (("missing.ply",), "missing.ply: file not found"),
    ((str(EXAMPLE), "--views", "0"), "--views"),
])
def test_cli_render_errors_exit_2_without_output(tmp_path, args, needle):
    out = tmp_path / "x.png"
    r = surfrec("render", *[str(tmp_path / a) if a == "missing.ply" else a for a in args], "-o", str(out))
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_render_rejects_non_png_output(tmp_path):
    r = surfrec("render", str(EXAMPLE), "-o", str(tmp_path / "x.jpg"))
    assert r.returncode == 2 and ".png" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_open3d_backend_fails_clearly_or_works(tmp_path):
    out = tmp_path / "o3d.png"
    r = surfrec("render", str(EXAMPLE_MESH), "-o", str(out), "--backend", "open3d", "--views", "1",
                "--size", "64")
    if r.returncode == 0:  # a machine with EGL/OSMesa
        assert covered(read_png(out)) > 0.05
    else:
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1, r.stderr
        # no EGL/OSMesa, or open3d itself missing (its wheel needs libusb): both say what to do
        assert ("open3d backend is not available" in r.stderr
                or "apt-get install -y libusb-1.0-0" in r.stderr), r.stderr
        assert not out.exists()


def test_fit_preview_writes_png(tmp_path):
    mesh, preview = tmp_path / "m.ply", tmp_path / "m.png"
    r = surfrec("fit", str(EXAMPLE), "-o", str(mesh), "--preview", str(preview), "--iters", "5",
                "--resolution", "32", "--quiet", "--device", "cpu", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert mesh.exists() and preview.exists()
    img = read_png(preview)
    assert img.shape == (400, 1600, 3) and covered(img) > 0.05


def test_fit_preview_path_checked_before_fitting(tmp_path):
    r = surfrec("fit", str(EXAMPLE), "-o", str(tmp_path / "m.ply"), "--preview", str(tmp_path / "no" / "m.png"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert list(tmp_path.iterdir()) == []
