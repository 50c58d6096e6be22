"""Odd coordinates: a scan offset by 5e6 (UTM-like) or scaled by 1e-3 reconstructs exactly like
the same scan at unit scale (normalization is float64, fitting float32 in the unit box)."""

from __future__ import annotations

import numpy as np
import pytest

from surfrec.run import fit
from surfrec.run import extract_mesh

SMALL = dict(preset="fast", iterations=15, n_samples=1024, batch_points=1024, n_distance_samples=512,
             device="cpu", threads=1, seed=3)


@pytest.fixture(scope="module")
def cloud() -> np.ndarray:
    rng = np.random.default_rng(0)
    p = rng.normal(size=(3000, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True) * np.array([1.0, 0.7, 0.5])


@pytest.fixture(scope="module")
def reference(cloud):
    result = fit(cloud, **SMALL)
    return extract_mesh(result, resolution=40, device="cpu")


@pytest.mark.parametrize(("offset", "scale"), [(5e6, 1.0), (0.0, 1e-3), (-3.2e5, 250.0)])
def test_offset_and_scale_do_not_change_the_result(cloud, reference, offset, scale):
    moved = cloud * scale + offset
    result = fit(moved, **SMALL)
    mesh = extract_mesh(result, resolution=40, device="cpu")
    assert len(mesh.faces) == len(reference.faces)
    back = (np.asarray(mesh.vertices, dtype=np.float64) - offset) / scale
    assert np.abs(back - reference.vertices).max() < 1e-4


def test_far_outliers_do_not_wreck_the_normalization(cloud, reference, caplog):
    rng = np.random.default_rng(1)
    outliers = rng.normal(size=(5, 3)) * 200.0  # a few stray points 200x farther than the object
    dupes = np.repeat(cloud[:50], 4, axis=0)  # duplicated points
    with caplog.at_level("WARNING", logger="surfrec.input.inspect"):
        result = fit(np.concatenate([cloud, outliers, dupes]), **SMALL)
    assert "5 far outliers" in caplog.text
    # the box is the object's, not the outliers'
    assert result.normalization.scale == pytest.approx(np.ptp(cloud, axis=0).max() / 1.6, rel=1e-6)
    mesh = extract_mesh(result, resolution=40, device="cpu")
    assert mesh.is_watertight
    assert np.all(mesh.bounds[1] < 1.5) and np.all(mesh.bounds[0] > -1.5)
