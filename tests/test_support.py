"""surfrec.support against naive references."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from surfrec.metrics import closest_points_on_triangles
from surfrec.support import (
    OutlierConfig,
    SupportConfig,
    find_outliers,
    measure_support,
    point_mesh_distance,
    scan_spacing,
    trim_unsupported,
    vertex_support,
)


def _square(n: int = 20) -> trimesh.Trimesh:
    """Unit square [0,1]^2 at z=0, triangulated on an n x n grid."""
    g = np.linspace(0.0, 1.0, n + 1)
    x, y = np.meshgrid(g, g, indexing="ij")
    v = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], axis=1)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    f = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return trimesh.Trimesh(v, f, process=False)


def _grid_points(h: float, x_max: float) -> np.ndarray:
    x = np.arange(0.0, x_max + 1e-9, h)
    y = np.arange(0.0, 1.0 + 1e-9, h)
    xx, yy = np.meshgrid(x, y, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)], axis=1)


def _naive_point_mesh(p, v, f):
    out = np.empty(len(p))
    for i, q in enumerate(p):
        qq = np.repeat(q[None], len(f), 0)
        c = closest_points_on_triangles(qq, v[f[:, 0]], v[f[:, 1]], v[f[:, 2]])
        out[i] = np.linalg.norm(c - qq, axis=1).min()
    return out


def test_spacing_matches_naive():
    rng = np.random.default_rng(0)
    p = rng.random((300, 3))
    d = np.linalg.norm(p[:, None] - p[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert scan_spacing(p) == pytest.approx(np.median(d.min(axis=1)))


def test_point_mesh_distance_matches_naive():
    rng = np.random.default_rng(1)
    mesh = trimesh.creation.icosphere(subdivisions=1)
    p = rng.normal(size=(200, 3)) * 0.8
    got = point_mesh_distance(p, mesh.vertices, mesh.faces)
    want = _naive_point_mesh(p, np.asarray(mesh.vertices), np.asarray(mesh.faces))
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_plane_half_covered_phantom_is_unsupported_area():
    h = 0.01
    mesh = _square()
    pts = _grid_points(h, 0.5)  # data on x <= 0.5 only
    rep = measure_support(mesh.vertices, mesh.faces, pts, SupportConfig(min_samples=200_000))
    assert rep.spacing == pytest.approx(h)
    assert rep.cover == 1.0
    # naive: the area of the square farther than 4h from the half-square x <= 0.5
    want = 1.0 - (0.5 + 4 * h)
    assert rep.phantom == pytest.approx(want, abs=0.005)
    assert rep.scan_to_mesh_mean == pytest.approx(0.0, abs=1e-12)
    # mesh->scan mean: the mean over the square of max(0, x - 0.5) (grid aliasing < h/2)
    assert rep.mesh_to_scan_mean == pytest.approx(0.125, abs=h)
    assert rep.mesh_to_scan_mean_s == pytest.approx(rep.mesh_to_scan_mean / h)


def test_invented_cap_on_sphere():
    """Points on the upper half of a sphere: the lower cap is phantom, the points covered."""
    mesh = trimesh.creation.icosphere(subdivisions=5)
    rng = np.random.default_rng(2)
    p = rng.normal(size=(20_000, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    p = p[p[:, 2] > 0]
    rep = measure_support(mesh.vertices, mesh.faces, p)
    assert rep.cover > 0.99
    # naive: area share of the sphere with z < -sin(4 s) (arc 4 s below the equator)
    z0 = -np.sin(4 * rep.spacing)
    assert rep.phantom == pytest.approx((1 + z0) / 2, abs=0.01)
    # a mesh far from the data covers nothing and is all phantom
    far = mesh.copy()
    far.apply_translation([10, 0, 0])
    rep = measure_support(far.vertices, far.faces, p)
    assert rep.cover == 0.0 and rep.phantom == 1.0


def test_vertex_support_and_trim():
    h = 0.01
    mesh = _square()
    pts = _grid_points(h, 0.5)
    q = vertex_support(mesh.vertices, pts)
    x = np.asarray(mesh.vertices)[:, 0]
    np.testing.assert_allclose(q, np.maximum(0.0, x - 0.5) / h, atol=0.6)  # grid: < h/2 aliasing
    mesh.vertex_attributes["quality"] = q
    out, keep = trim_unsupported(mesh, pts, radius_s=4.0)
    assert out.vertices[:, 0].max() <= 0.5 + 4 * h + 0.05 + 1e-9  # one face row beyond
    assert out.vertices[:, 0].max() >= 0.5
    assert len(out.vertex_attributes["quality"]) == len(out.vertices)


def test_outliers_flag_flying_pixels_not_density_changes():
    rng = np.random.default_rng(3)
    dense = _grid_points(0.01, 0.5)
    sparse = _grid_points(0.1, 1.0)  # 10x sparser elsewhere
    sparse = sparse[sparse[:, 0] > 0.6] + [0, 0, 0]
    stray = rng.random((5, 3)) + [0, 0, 1.0]
    pts = np.concatenate([dense, sparse, stray])
    mask = find_outliers(pts, OutlierConfig())
    assert mask[-5:].all()
    assert mask[: len(dense) + len(sparse)].mean() < 0.01


@pytest.mark.parametrize("bad", [dict(cover_radius=0), dict(phantom_radius=-1), dict(min_samples=0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        SupportConfig(**bad)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        scan_spacing(np.zeros((5, 2)))
    with pytest.raises(ValueError):
        measure_support(np.zeros((3, 3)), np.zeros((0, 3), int), np.random.rand(10, 3))
