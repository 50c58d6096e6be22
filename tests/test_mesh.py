"""Tests of surfrec.mesh with analytic signed distance functions."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
from scipy.spatial import cKDTree

from surfrec.errors import EmptyLevelSetError, InputError
from surfrec.surface.extract import extract_mesh_from_field
from surfrec.surface.components import mesh_report

BOX = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


def cell(resolution: int, bounds: np.ndarray = BOX) -> float:
    return float((bounds[1] - bounds[0]).max()) / (resolution - 1)


def sphere(center=(0.0, 0.0, 0.0), radius: float = 0.6):
    c = np.asarray(center, np.float32)

    def f(p: np.ndarray) -> np.ndarray:
        return (np.linalg.norm(p - c, axis=1) - radius).astype(np.float32)

    return f


def sphere_grad(center=(0.0, 0.0, 0.0)):
    c = np.asarray(center, np.float32)

    def g(p: np.ndarray) -> np.ndarray:
        d = p - c
        return (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)

    return g


def torus(p: np.ndarray, major: float = 0.55, minor: float = 0.2) -> np.ndarray:
    q = np.linalg.norm(p[:, :2], axis=1) - major
    return (np.sqrt(q**2 + p[:, 2] ** 2) - minor).astype(np.float32)


def two_spheres(p: np.ndarray) -> np.ndarray:
    """Union of a big sphere (r=0.45) and a small one (r=0.2), well separated."""
    return np.minimum(sphere((-0.4, 0.0, 0.0), 0.45)(p), sphere((0.6, 0.1, 0.0), 0.2)(p))


def thin_disk(p: np.ndarray) -> np.ndarray:
    """A disk of radius 0.6 and thickness 0.03 (about 1.4 cells at resolution 96)."""
    d = np.stack([np.linalg.norm(p[:, :2], axis=1) - 0.6, np.abs(p[:, 2] - 0.013) - 0.015], axis=1)
    outside = np.linalg.norm(np.maximum(d, 0.0), axis=1)
    return (outside + np.minimum(d.max(axis=1), 0.0)).astype(np.float32)


class Counting:
    """Wraps a field and counts its evaluations and calls."""

    def __init__(self, f) -> None:
        self.f = f
        self.points = 0
        self.calls = 0
        self.largest_call = 0

    def __call__(self, p: np.ndarray) -> np.ndarray:
        assert p.dtype == np.float32 and p.ndim == 2 and p.shape[1] == 3
        self.points += len(p)
        self.calls += 1
        self.largest_call = max(self.largest_call, len(p))
        return self.f(p)


def hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    return max(cKDTree(a).query(b)[0].max(), cKDTree(b).query(a)[0].max())


def assert_same_mesh(a, b, tol: float) -> None:
    """Same vertices (within ``tol``) and the same oriented faces, in any order."""
    assert len(a.vertices) == len(b.vertices) and len(a.faces) == len(b.faces)
    dist, match = cKDTree(b.vertices).query(a.vertices)
    assert dist.max() <= tol
    assert len(np.unique(match)) == len(match)  # a one-to-one vertex correspondence

    def canonical(faces: np.ndarray) -> np.ndarray:
        # Rotate each face so that its smallest index comes first (keeps orientation).
        roll = np.argmin(faces, axis=1)
        idx = (roll[:, None] + np.arange(3)) % 3
        f = np.take_along_axis(faces, idx, axis=1)
        return f[np.lexsort(f.T[::-1])]

    np.testing.assert_array_equal(canonical(match[a.faces]), canonical(np.asarray(b.faces)))


# ------------------------------------------------------------------------------ dense


def test_dense_sphere_radius_watertight_outward():
    res = 64
    mesh = extract_mesh_from_field(sphere(), BOX, res, method="dense")
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(r - 0.6).max() < cell(res)
    report = mesh_report(mesh)
    assert report["watertight"] and report["n_components"] == 1 and report["genus"] == 0
    assert report["volume"] > 0
    assert report["volume"] == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.02)
    assert np.all(np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center) > 0)


def test_narrowband_sphere_outward():
    mesh = extract_mesh_from_field(sphere(), BOX, 96, method="narrowband")
    assert mesh.volume > 0
    assert np.all(np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center) > 0)


@pytest.mark.parametrize("method", ["dense", "narrowband"])
@pytest.mark.parametrize("c", [-0.2, 0.15])
def test_level_gives_offset_sphere(method, c):
    res = 80
    mesh = extract_mesh_from_field(sphere(), BOX, res, level=c, method=method)
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(r - (0.6 + c)).max() < cell(res)
    assert mesh.volume > 0


# ----------------------------------------------------------------- narrow band = dense


@pytest.mark.parametrize(
    "field, res, genus, n_components",
    [
        (sphere(), 64, 0, 1),
        (sphere((0.1, -0.05, 0.02), 0.5), 96, 0, 1),
        (torus, 80, 1, 1),
        (two_spheres, 96, 0, 2),
        (thin_disk, 96, 0, 1),
    ],
    ids=["sphere64", "sphere96", "torus80", "two_spheres96", "thin_disk96"],
)
def test_narrowband_equals_dense(field, res, genus, n_components):
    dense = extract_mesh_from_field(field, BOX, res, method="dense")
    band = extract_mesh_from_field(field, BOX, res, method="narrowband")
    assert len(band.faces) == len(dense.faces)
    assert hausdorff(band.vertices, dense.vertices) <= 0.1 * cell(res)
    assert_same_mesh(band, dense, tol=1e-4 * cell(res))
    # Seams are closed: the stitched mesh is watertight with the right topology.
    report = mesh_report(band)
    assert report["watertight"] and report["winding_consistent"]
    assert report["genus"] == genus and report["n_components"] == n_components
    assert report["volume"] == pytest.approx(mesh_report(dense)["volume"], rel=1e-6)


def test_narrowband_steeper_than_distance_still_equals_dense():
    """|grad F| = 3 is within the default band (exact for |grad F| <= 4)."""

    def steep(p):
        return 3.0 * torus(p)

    dense = extract_mesh_from_field(steep, BOX, 72, method="dense")
    band = extract_mesh_from_field(steep, BOX, 72, method="narrowband")
    assert_same_mesh(band, dense, tol=1e-4 * cell(72))


def test_narrowband_evaluates_far_fewer_points():
    dense_f, band_f = Counting(sphere()), Counting(sphere())
    extract_mesh_from_field(dense_f, BOX, 128, method="dense")
    extract_mesh_from_field(band_f, BOX, 128, method="narrowband")
    assert dense_f.points == 128**3
    assert band_f.points < 0.3 * dense_f.points


def test_chunk_size_bounds_field_calls():
    f = Counting(torus)
    extract_mesh_from_field(f, BOX, 64, method="narrowband", chunk_size=5000)
    assert f.largest_call <= 5000
    g = Counting(torus)
    extract_mesh_from_field(g, BOX, 40, method="dense", chunk_size=7000)
    assert g.largest_call <= 7000 and g.calls == -(-(40**3) // 7000)


def test_auto_method_switches_above_the_threshold(caplog):
    from surfrec.surface.extract import AUTO_NARROWBAND_ABOVE

    with caplog.at_level(logging.INFO, logger="surfrec.surface.extract"):
        extract_mesh_from_field(sphere(), BOX, AUTO_NARROWBAND_ABOVE)
        extract_mesh_from_field(sphere(), BOX, AUTO_NARROWBAND_ABOVE + 1)
    messages = [r.getMessage() for r in caplog.records if "field evaluations" in r.getMessage()]
    assert messages[0].startswith("dense") and messages[1].startswith("narrowband")
    assert "% of the grid" in messages[1]


# ------------------------------------------------------------------- non-cubic bounds


@pytest.mark.parametrize("method", ["dense", "narrowband"])
def test_non_cubic_bounds(method):
    bounds = np.array([[1.0, -2.0, 10.0], [3.0, -1.0, 10.7]])
    center, radius = (2.0, -1.5, 10.35), 0.3
    res = 90  # cells of 2/89 along x; 46 samples along y, 33 along z
    f = Counting(sphere(center, radius))
    mesh = extract_mesh_from_field(f, bounds, res, method=method)
    r = np.linalg.norm(mesh.vertices - center, axis=1)
    assert np.abs(r - radius).max() < cell(res, bounds)
    assert mesh.is_watertight and mesh.volume > 0
    if method == "dense":
        assert f.points == 90 * 46 * 33
    other = extract_mesh_from_field(sphere(center, radius), bounds, res, method="narrowband")
    assert_same_mesh(other, mesh, tol=1e-4 * cell(res, bounds))


def test_surface_touching_box_side_is_cut_at_the_box():
    """The grid starts at the box's min corner: a sphere cut by the box stays open."""
    mesh = extract_mesh_from_field(sphere((0.0, 0.0, 0.0), 0.6), np.array([[-1, -1, -0.3], [1, 1, 1.0]]), 64)
    assert mesh.vertices[:, 2].min() >= -0.3 - 1e-9
    assert not mesh_report(mesh)["watertight"]


# ----------------------------------------------------------------------- empty / errors


@pytest.mark.parametrize("method", ["dense", "narrowband"])
def test_empty_level_set_raises(method):
    with pytest.raises(EmptyLevelSetError, match=r"level 2 .*\[") as info:
        extract_mesh_from_field(sphere(), BOX, 64, level=2.0, method=method)
    assert "-0.6" in str(info.value) or "-0.5" in str(info.value)  # min of F is reported
    with pytest.raises(EmptyLevelSetError):
        extract_mesh_from_field(lambda p: np.ones(len(p), np.float32), BOX, 40, method=method)


def test_bad_inputs():
    with pytest.raises(InputError, match="shape"):
        extract_mesh_from_field(sphere(), np.zeros(3), 32)
    with pytest.raises(InputError, match="exceed"):
        extract_mesh_from_field(sphere(), np.array([[0, 0, 0], [1, 0, 1.0]]), 32)
    with pytest.raises(InputError, match="data_points"):
        extract_mesh_from_field(sphere(), BOX, 32, components="near-data")
    with pytest.raises(ValueError, match="method"):
        extract_mesh_from_field(sphere(), BOX, 32, method="sparse")
    with pytest.raises(InputError, match="non-finite"):
        extract_mesh_from_field(lambda p: np.full(len(p), np.nan, np.float32), BOX, 32)
    with pytest.raises(InputError, match="one value per point"):
        extract_mesh_from_field(lambda p: np.zeros(3, np.float32), BOX, 32)


# ------------------------------------------------------------------------- components


@pytest.mark.parametrize("method", ["dense", "narrowband"])
def test_components_largest(method):
    full = extract_mesh_from_field(two_spheres, BOX, 72, method=method)
    assert mesh_report(full)["n_components"] == 2
    big = extract_mesh_from_field(two_spheres, BOX, 72, method=method, components="largest")
    assert mesh_report(big)["n_components"] == 1
    assert np.abs(np.linalg.norm(big.vertices - (-0.4, 0, 0), axis=1) - 0.45).max() < cell(72)


def test_components_near_data():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(200, 3))
    data = (0.6, 0.1, 0.0) + 0.2 * d / np.linalg.norm(d, axis=1, keepdims=True)  # small sphere
    mesh = extract_mesh_from_field(two_spheres, BOX, 72, components="near-data", data_points=data)
    assert mesh_report(mesh)["n_components"] == 1
    assert np.abs(np.linalg.norm(mesh.vertices - (0.6, 0.1, 0), axis=1) - 0.2).max() < cell(72)
    # Data far from both spheres with a small distance: nothing qualifies, so nothing is
    # dropped (a filter that empties the mesh would only hide a fit that went wrong)
    far = extract_mesh_from_field(
        two_spheres, BOX, 48, components="near-data", data_points=np.array([[0.0, 0.9, 0.9]]),
        near_distance=0.05,
    )
    assert mesh_report(far)["n_components"] == 2


# --------------------------------------------------------------------------- normals


@pytest.mark.parametrize("method", ["dense", "narrowband"])
def test_gradient_normals_match_analytic(method):
    center = (0.05, -0.1, 0.0)
    mesh = extract_mesh_from_field(sphere(center, 0.5), BOX, 64, method=method, gradient=sphere_grad(center))
    analytic = mesh.vertices - center
    analytic /= np.linalg.norm(analytic, axis=1, keepdims=True)
    assert np.einsum("ij,ij->i", mesh.vertex_normals, analytic).min() > 0.9999
    # Without a gradient the face-averaged normals are close and outward too.
    plain = extract_mesh_from_field(sphere(center, 0.5), BOX, 64, method=method)
    assert np.einsum("ij,ij->i", plain.vertex_normals, plain.vertices - center).min() > 0


# ---------------------------------------------------------------------- progress, report


@pytest.mark.parametrize("method", ["dense", "narrowband"])
def test_progress_reaches_total(method):
    calls: list[tuple[int, int]] = []
    extract_mesh_from_field(torus, BOX, 80, method=method, chunk_size=50_000, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(calls))


def test_mesh_report_open_mesh():
    import trimesh

    mesh = trimesh.Trimesh(
        vertices=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], faces=[[0, 2, 1], [0, 1, 3]], process=False
    )
    report = mesh_report(mesh)
    assert report["n_faces"] == 2 and report["n_components"] == 1
    assert not report["watertight"] and report["genus"] is None and report["volume"] is None


def test_band_factor_bounds_the_steepness_the_band_follows():
    """A small sphere inside one coarse block, with |grad F| = 20: the default band
    misses it (and says how to fix that); a band wide enough for that slope finds it."""
    small = sphere((0.31, -0.27, 0.13), 0.06)

    def steep_small(p):
        return 20.0 * small(p)

    with pytest.raises(EmptyLevelSetError, match="band_factor"):
        extract_mesh_from_field(steep_small, BOX, 96, method="narrowband")
    dense = extract_mesh_from_field(steep_small, BOX, 96, method="dense")
    wide = extract_mesh_from_field(steep_small, BOX, 96, method="narrowband", band_factor=10.0)
    assert_same_mesh(wide, dense, tol=1e-4 * cell(96))


def test_mesh_report_agrees_with_trimesh():
    import trimesh

    closed = extract_mesh_from_field(torus, BOX, 48)
    opened = trimesh.Trimesh(closed.vertices, closed.faces[closed.triangles_center[:, 2] < 0.1], process=False)
    flipped = trimesh.Trimesh(closed.vertices, np.vstack([closed.faces[:10, ::-1], closed.faces[10:]]), process=False)
    for mesh in (closed, opened, flipped):
        report = mesh_report(mesh)
        assert report["watertight"] == mesh.is_watertight
        assert report["winding_consistent"] == mesh.is_winding_consistent
        assert report["euler"] == mesh.euler_number
        assert report["area"] == pytest.approx(mesh.area, rel=1e-9)
    assert mesh_report(closed)["volume"] == pytest.approx(closed.volume, rel=1e-9)
    assert mesh_report(closed)["genus"] == 1
    assert mesh_report(flipped)["genus"] is None and mesh_report(flipped)["volume"] is None


def test_level_exactly_at_samples_on_block_seams():
    """A cube whose faces lie on grid planes that are also block boundaries (F = level
    exactly at samples there): vertices at samples are merged the same way as dense."""

    def cube(p):
        q = np.abs(p) - 0.5
        return (np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)).astype(np.float32)

    res = 129  # cells of 1/64: the faces x = +-0.5 are the planes of samples 32 and 96
    dense = extract_mesh_from_field(cube, BOX, res, method="dense")
    band = extract_mesh_from_field(cube, BOX, res, method="narrowband")
    assert_same_mesh(band, dense, tol=1e-6 * cell(res))
    report = mesh_report(band)
    assert report["watertight"] and report["genus"] == 0
    assert report["volume"] == pytest.approx(1.0, rel=1e-6)


def test_gradient_calls_are_chunked():
    grad = Counting(sphere_grad())
    mesh = extract_mesh_from_field(sphere(), BOX, 48, gradient=grad, chunk_size=4000)
    assert grad.points == len(mesh.vertices) and grad.largest_call <= 1000


def test_near_data_drops_a_stray_piece_that_only_touches_the_data():
    # data on the big sphere and on one cap of the small one: with near_fraction 0 the
    # small sphere stays (one vertex near is enough); with the default share it goes,
    # and when no piece reaches the share the best-supported one is still kept
    rng = np.random.default_rng(1)
    d = rng.normal(size=(4000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    big = (-0.4, 0.0, 0.0) + 0.45 * d
    cap = (0.6, 0.1, 0.0) + 0.2 * d[d[:, 0] < -0.95]      # a few points on the small sphere's cap
    data = np.vstack([big, cap])
    both = extract_mesh_from_field(two_spheres, BOX, 72, components="near-data", data_points=data,
                                   near_fraction=0.0)
    assert mesh_report(both)["n_components"] == 2
    one = extract_mesh_from_field(two_spheres, BOX, 72, components="near-data", data_points=data)
    assert mesh_report(one)["n_components"] == 1
    assert np.abs(np.linalg.norm(one.vertices - (-0.4, 0, 0), axis=1) - 0.45).max() < cell(72)
    only_cap = extract_mesh_from_field(two_spheres, BOX, 72, components="near-data", data_points=cap,
                                       near_fraction=0.99)
    assert mesh_report(only_cap)["n_components"] == 1
    assert np.abs(np.linalg.norm(only_cap.vertices - (0.6, 0.1, 0), axis=1) - 0.2).max() < cell(72)
    with pytest.raises(ValueError, match="near_fraction"):
        extract_mesh_from_field(two_spheres, BOX, 32, components="near-data", data_points=data, near_fraction=2)


def test_narrowband_is_watertight_when_the_field_rounds_by_batch_position():
    """A field whose last bits depend on a point's position in the batch (as BLAS tiles and
    vectorized loops do), with its level set through many samples: blocks that evaluated a
    shared sample apart would disagree there and leave holes at the seams. Each sample is
    evaluated once, so the stitched mesh is closed."""

    def cube(p: np.ndarray) -> np.ndarray:  # faces at ±0.5: exactly on samples at resolution 65
        wobble = 1e-6 * (2.0 * (np.arange(len(p)) % 2) - 1.0)  # never exactly on the level
        return (np.abs(p).max(axis=1) - 0.5 + wobble).astype(np.float32)

    dense = mesh_report(extract_mesh_from_field(cube, BOX, 65, method="dense"))
    band = mesh_report(extract_mesh_from_field(cube, BOX, 65, method="narrowband"))
    assert dense["watertight"] and band["watertight"] and band["n_components"] == 1
