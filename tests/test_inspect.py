"""The input inspection: duplicates and clustered returns merged, one spacing estimate that
survives them and does not depend on subsampling, checks before any work, and the quirks
of real clouds giving the clean twin's mesh."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import cKDTree

from surfrec.errors import InputError
from surfrec.input.inspect import inspect_scan, merge_duplicates, scan_spacing
from surfrec.input.quirks import QUIRKS
from surfrec.io import PointCloud
from surfrec.settings import InputConfig


def _sphere(n: int, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def _true_spacing(points: np.ndarray) -> float:
    """The sampling's spacing: the median nearest-neighbour distance of the clean samples (brute force)."""
    d = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


@pytest.fixture(scope="module")
def clean():
    p = _sphere(3000)
    return p, _true_spacing(p)


@pytest.mark.parametrize("quirk", list(QUIRKS))
def test_spacing_is_the_sampling_spacing_whatever_the_quirk(clean, quirk):
    """Within 10% (measured: 0.7–1.5%) of the clean samples' spacing, with every point twice,
    near duplicates at 1e-6 of the spacing, 3–5 returns per sample, float32 UTM coordinates,
    far strays, and all at once."""
    points, s = clean
    cloud = QUIRKS[quirk](points, s)
    scale = 2000.0 / float(np.ptp(points, axis=0).max()) if quirk in ("utm_float32", "all") else 1.0
    merged = merge_duplicates(cloud)
    assert merged.spacing / scale == pytest.approx(s, rel=0.1)
    assert len(merged.points) == pytest.approx(len(points), rel=0.02)  # one point per sample is left


def test_spacing_does_not_depend_on_subsampling(clean):
    """Measured from 300 random points or from all of them, against all: the same within 10%;
    and the scan spacing of an inspection is the whole scan's, whether the points kept with
    the model are a subset or not."""
    points, s = clean
    assert scan_spacing(points, max_queries=300) == pytest.approx(scan_spacing(points), rel=0.1)
    cloud = PointCloud.from_arrays(QUIRKS["clustered_returns"](points, s))
    full = inspect_scan(cloud, InputConfig(), orient=False).report
    capped = inspect_scan(cloud, InputConfig(max_data_points=1000), orient=False).report
    assert capped.data_points == 1000 < full.data_points
    assert capped.scan_spacing == full.scan_spacing == pytest.approx(s, rel=0.1)
    assert full.spacing * full.scale == pytest.approx(full.scan_spacing, rel=0.02)  # kept = all: the same s
    assert capped.spacing > 1.5 * full.spacing  # the subset's own spacing, which its radii use


def test_merge_counts_and_keeps_the_first_occurrence():
    p = _sphere(500, seed=1)
    normals = p.copy()
    cloud = np.concatenate([p, p[:100], p[:50] + 1e-9])
    nrm = np.concatenate([normals, -normals[:100], -normals[:50]])
    m = merge_duplicates(cloud, nrm)
    assert m.exact == 100 and m.near >= 50 and len(m.points) <= 500
    # the first occurrence's normal survives (not the flipped copy's)
    tree = cKDTree(m.points)
    idx = tree.query(p[:50])[1]
    assert np.allclose(m.normals[idx], normals[:50])
    assert merge_duplicates(cloud, tolerance=0.0).near == 0  # exact only


@pytest.mark.parametrize(("cloud", "message"), [
    (np.repeat(_sphere(1), 500, axis=0), "only 1 distinct points (499 exact"),
    (np.repeat(_sphere(6, seed=2), 100, axis=0), "only 6 distinct points (594 exact"),
    (np.repeat(np.linspace(0, 1, 50)[:, None] * [[1.0, 2.0, 3.0]], 3, axis=0), "lie on one line"),
])
def test_clouds_no_stage_could_fit_are_refused_before_any_work(cloud, message, tmp_path):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        inspect_scan(PointCloud.from_arrays(cloud))
    scan = tmp_path / "bad.xyz"
    np.savetxt(scan, cloud)
    r = subprocess.run([sys.executable, "-m", "surfrec", "fit", str(scan), "-o", str(tmp_path / "m.ply")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xyz"]


def test_the_report_counts_what_the_inspection_merged(clean):
    points, s = clean
    rep = inspect_scan(PointCloud.from_arrays(QUIRKS["twice"](points, s)), orient=False).report
    assert rep.points_read == 6000 and rep.duplicates == 3000 and rep.points == 6000 - 3000 - rep.near_duplicates
    assert rep.merge_tolerance == pytest.approx(0.1 * s, rel=0.15) and rep.noise is not None


@pytest.mark.parametrize("quirk", [q for q in QUIRKS if q != "clean"])
def test_quirks_give_the_clean_twins_mesh(quirk, tmp_path):
    """A short fit of each quirk of a sphere scan: no error, and the same cover and phantom
    as the clean twin's (within 0.02; the full measurement is benchmarks/quirks.py)."""
    from surfrec.run import reconstruct

    points = _sphere(3000, seed=4) * 50.0
    s = _true_spacing(points)
    settings = dict(preset="fast", iterations=150, resolution=48, device="cpu", threads=1, seed=0)
    twin = reconstruct(points, **settings).report.support
    cloud = QUIRKS[quirk](points, s)
    rec = reconstruct(cloud, **settings)
    sup = rec.report.support
    assert abs(sup.cover - twin.cover) <= 0.02 and abs(sup.phantom - twin.phantom) <= 0.02, (sup, twin)
    assert rec.mesh.is_watertight


def test_far_strays_are_dropped_even_when_there_are_many(clean):
    """1% of the points 100 shape sizes away (ten times the quirk's share): the robust box is
    that of the points that are not stray, so all of them are left out of the fit."""
    from surfrec.input.quirks import far_strays

    points, s = clean
    cloud = far_strays(points, s, share=0.01)
    rep = inspect_scan(PointCloud.from_arrays(cloud), orient=False).report
    assert rep.far_outliers == 30 and rep.points == len(points) - 30 - rep.near_duplicates
    assert rep.scale == pytest.approx(1.0 / 0.8, rel=0.02)  # the sphere's box, not the strays'
