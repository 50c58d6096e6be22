"""surfrec.support against naive references."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from helpers import naive_point_triangle_distance
from surfrec.input.inspect import find_outliers, scan_spacing
from surfrec.run import mesh_config, mesh_stages
from surfrec.settings import SupportConfig
from surfrec.surface.decide import SurfaceDecision
from surfrec.surface.support import (
    SUPPORT_ATTRIBUTE,
    measure_support,
    point_mesh_distance,
    trim_unsupported,
    vertex_support,
)


def _mesh(result, device="cpu", **overrides):
    """The mesh and the typed report of the stages after the fit."""
    return mesh_stages(result, mesh_config(result, **overrides), device=device)


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
    tri = v[f]
    for i, q in enumerate(p):
        out[i] = naive_point_triangle_distance(q, tri).min()
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
    mask = find_outliers(pts)
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


# ----------------------------------------------------------------------------- surface mode


def _sphere_result(r: float = 0.5):
    from helpers import Sphere

    from surfrec.settings import get_config
    from surfrec.input.normalize import Normalization
    from surfrec.result import FitResult

    return FitResult(model=Sphere(r), normalization=Normalization(center=np.zeros(3), scale=1.0),
                     config=get_config("fast"), history={}, seconds=0.0, steps=0, data_points=None)


def _sphere_points(n: int, r: float = 0.5, upper_only: bool = False) -> np.ndarray:
    p = np.random.default_rng(4).normal(size=(n, 3))
    p = r * p / np.linalg.norm(p, axis=1, keepdims=True)
    return p[p[:, 2] > 0] if upper_only else p


def test_decide_surface():
    from surfrec.settings import SurfaceConfig
    from surfrec.surface.decide import decide_surface

    assert decide_surface(0.01) == "closed"
    assert decide_surface(0.5) == "open"
    assert decide_surface(0.2, SurfaceConfig(open_phantom=0.1)) == "open"
    # a closed blob that leaves most of the scan far away is not the surface either
    assert decide_surface(0.01, missed=0.9) == "open"
    assert decide_surface(0.01, missed=0.1) == "closed"
    with pytest.raises(ValueError):
        decide_surface(1.5)
    with pytest.raises(ValueError):
        SurfaceConfig(open_phantom=0.0)


def test_surface_step_keeps_closed_scans_and_trims_single_views():
    """pipeline.extract_mesh's surface step on an exact sphere field: data on the whole sphere
    stays closed (and the decision measures the closed mesh once), data on the upper half
    becomes an open, trimmed surface; both carry the support map."""
    from surfrec.run import extract_mesh
    from surfrec.surface.support import SUPPORT_ATTRIBUTE

    result = _sphere_result()
    result.data_points = _sphere_points(20_000).astype(np.float32)
    # fill off: moving the vertices in the random sample's gaps would make a second measurement necessary
    mesh, report = _mesh(result, resolution=48, device="cpu", refine=False, fill=0.0)
    assert report.surface.surface == "closed" and report.surface.phantom_closed < 0.01
    assert mesh.is_watertight
    assert report.support.phantom == report.surface.phantom_closed  # one measurement
    assert report.support.missed == report.surface.missed_closed  # scan distances measured once too
    q = mesh.vertex_attributes[SUPPORT_ATTRIBUTE]
    assert q.shape == (len(mesh.vertices),) and q.max() < 4.0  # within the phantom radius everywhere

    half = _sphere_points(20_000, upper_only=True)
    result.data_points = half.astype(np.float32)
    result.index = None
    mesh, report = _mesh(result, resolution=48, device="cpu", refine=False)
    assert report.surface.surface == "open" and report.surface.phantom_closed > 0.4
    assert not mesh.is_watertight
    rep = measure_support(mesh.vertices, mesh.faces, half)
    assert rep.cover > 0.95 and rep.phantom < 0.05
    assert report.support.phantom == pytest.approx(rep.phantom, abs=0.02)
    assert len(mesh.vertex_attributes[SUPPORT_ATTRIBUTE]) == len(mesh.vertices)

    mesh, report = _mesh(result, resolution=48, device="cpu", refine=False, surface="closed")
    assert mesh.is_watertight and report.surface.mode == "closed" and report.surface.surface == "closed"
    # the lower half, which no point supports, is the membrane of the equator (a flat disk)
    assert report.surface.filled > 0.4 and mesh.vertices[:, 2].min() > -0.05
    assert 0.25 < report.support.phantom < 0.34  # the disk: a third of the area, measured as written
    with pytest.raises(ValueError, match="surface: got 'bogus', expected one of auto, closed, open"):
        extract_mesh(result, surface="bogus")
    # another level: no surface step, no support map
    mesh, report = _mesh(result, resolution=32, level=0.05, device="cpu")
    assert report.surface.skipped is not None and report.support is None
    assert SUPPORT_ATTRIBUTE not in mesh.vertex_attributes


def test_surface_config_fields_are_checked():
    from surfrec.settings import MeshConfig, SurfaceConfig
    from surfrec.settings.declare import from_dict

    with pytest.raises(ValueError, match="SurfaceConfig.shell_quantile: got 1"):
        SurfaceConfig(shell_quantile=1.0)
    with pytest.raises(ValueError, match="MeshConfig.surface: got 'flat'"):
        MeshConfig(surface="flat")
    cfg = MeshConfig(surface="open", surface_config=SurfaceConfig(open_phantom=0.5))
    assert from_dict(MeshConfig, cfg.to_dict()) == cfg


def test_render_support_colours_supported_green_and_phantom_red(tmp_path):
    from surfrec.errors import InputError
    from surfrec.evaluation.render import render, render_file
    from surfrec.surface.support import attach_support

    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    attach_support(mesh, _sphere_points(20_000, upper_only=True))
    img = render(mesh, views=1, size=64, color="support")
    red = (img[..., 0] > 2 * img[..., 1]).sum()
    green = (img[..., 1] > 2 * img[..., 0]).sum()
    assert red > 50 and green > 50
    plain = tmp_path / "plain.ply"
    trimesh.creation.icosphere(subdivisions=1).export(plain)
    with pytest.raises(InputError):
        render_file(plain, tmp_path / "x.png", color="support")
    with pytest.raises(ValueError):
        render(trimesh.creation.icosphere(subdivisions=1), color="support")


def test_support_attribute_reaches_ply(tmp_path):
    """The PLY 'quality' property round-trips (trimesh export; surfrec.io.save_mesh writes
    vertex_attributes the same way once the io rewrite lands)."""
    from surfrec.surface.support import attach_support, read_support

    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    q = attach_support(mesh, _sphere_points(5_000, upper_only=True))
    path = tmp_path / "m.ply"
    mesh.export(path)
    np.testing.assert_allclose(read_support(path), q, rtol=1e-6)


def test_evaluate_scan_reports_support():
    pytest.importorskip("open3d")
    from surfrec.evaluation.metrics import evaluate, format_report

    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    res = evaluate(mesh, None, scan=_sphere_points(5_000, upper_only=True), n_samples=2_000)
    assert res["support"]["cover"] > 0.99 and 0.4 < res["support"]["phantom"] < 0.55
    assert "phantom" in format_report(res)


def test_surface_step_without_a_closed_level_set_is_open():
    """F never crosses the fitted level (-1 for ‖x‖ − 0.5): auto and open find the shell
    around the data, closed is the empty-level-set error."""
    from surfrec.errors import EmptyLevelSetError
    from surfrec.settings import get_config
    from surfrec.run import extract_mesh

    half = _sphere_points(20_000, upper_only=True)
    result = _sphere_result()
    result.config = get_config("fast", **{"fit.level": -1.0})
    result.data_points = half.astype(np.float32)
    for mode in ("auto", "open"):
        mesh, report = _mesh(result, resolution=48, device="cpu", surface=mode)
        assert report.surface.surface == "open" and len(mesh.faces) > 0
        assert report.surface.phantom_closed == 1.0
        assert measure_support(mesh.vertices, mesh.faces, half).cover > 0.95
    with pytest.raises(EmptyLevelSetError, match="never crosses"):
        extract_mesh(result, resolution=48, device="cpu", surface="closed")


@pytest.mark.parametrize("shape", ["cap", "sphere"])
def test_fitted_open_cap_is_opened_and_closed_sphere_stays_closed(shape):
    """A tiny fit (60 steps) of a spherical cap (one view) and of a whole sphere:
    the fit decides open / closed, the open mesh invents little surface, the closed
    one stays watertight, both carry the support map."""
    from surfrec.run import fit
    from surfrec.run import extract_mesh
    from surfrec.surface.support import SUPPORT_ATTRIBUTE

    p = np.random.default_rng(0).normal(size=(6000, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    pts = p[p[:, 2] > 0.2] if shape == "cap" else p[:3000]
    res = fit(pts, preset="fast", iterations=60, time_budget=0, device="cpu", threads=1, seed=0)
    mesh, report = _mesh(res, resolution=40, device="cpu")
    if shape == "cap":  # decided open before the fit, from the closure of its normals
        assert report.surface.surface == "open" and res.shape.closure > 0.3
        assert res.shape.fit_surface == "open"
        assert not mesh.is_watertight and report.support.phantom < 0.05
    else:
        assert report.surface.surface == "closed" and report.surface.phantom_closed < 0.05
        assert mesh.is_watertight
    assert report.support.cover > 0.95
    # the report's phantom is the written mesh's, against the scan itself (scan units)
    rep = measure_support(mesh.vertices, mesh.faces, pts)
    assert report.support.phantom == pytest.approx(rep.phantom, abs=0.02)
    q = mesh.vertex_attributes[SUPPORT_ATTRIBUTE]
    assert q.shape == (len(mesh.vertices),) and q.dtype == np.float32
    # to the points kept with the model (the inspection merged the few pairs closer than 0.1 s), in their spacing
    kept = res.normalization.to_input(res.data_points)
    np.testing.assert_allclose(q, vertex_support(mesh.vertices, kept, res.input.spacing_scan), rtol=1e-4, atol=1e-4)


def test_remove_stray_drops_flying_pixels_before_the_fit():
    """``remove_stray``: the points find_outliers flags are not fitted and not kept as data
    points; off (the default), every point is kept."""
    from surfrec.run import fit

    rng = np.random.default_rng(0)
    p = rng.normal(size=(3000, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    strays = p[:12] * rng.uniform(1.5, 1.9, size=(12, 1))  # flying pixels outside the sphere
    pts = np.concatenate([p, strays])
    flagged = find_outliers(pts)
    assert flagged[-12:].all()
    res = fit(pts, preset="fast", iterations=3, device="cpu", threads=1, remove_stray=True)
    assert res.input.stray == int(flagged.sum()) and res.input.stray_removed
    assert len(res.data_points) == len(pts) - res.input.stray - res.input.near_duplicates
    radii = np.linalg.norm(res.normalization.to_input(res.data_points), axis=1)
    assert radii.max() < 1.01
    keep = fit(pts, preset="fast", iterations=3, device="cpu", threads=1)
    assert keep.input.stray == res.input.stray and not keep.input.stray_removed
    assert len(keep.data_points) == len(pts) - keep.input.near_duplicates


def test_trim_opt_in_drops_the_closed_surface_over_a_hole():
    """``trim`` on a closed fit: the cap a watertight surface spans over a scan's hole goes
    (all of it lies farther than 4 s from the data), the rest stays as it was, the area
    share removed is the cap's, and the mesh is no longer watertight; 0 keeps it watertight."""
    from surfrec.run import extract_mesh

    result = _sphere_result()
    pts = _sphere_points(20_000)
    kept = pts[pts[:, 2] > -0.3]  # no scan points on a bottom cap of the sphere (r = 0.5)
    result.data_points = kept.astype(np.float32)
    closed, base = _mesh(result, resolution=48, device="cpu", refine=False, surface="closed")
    assert closed.is_watertight and base.surface.trimmed_area is None
    mesh, report = _mesh(result, resolution=48, device="cpu", refine=False, surface="closed", trim=4.0)
    assert not mesh.is_watertight
    s = scan_spacing(kept)
    far = vertex_support(mesh.vertices, kept, s)
    # a face goes only when all of its vertices are beyond the radius
    assert (far[np.asarray(mesh.faces)].min(axis=1) <= 4.0).all()
    assert report.support.phantom < 0.2 * base.support.phantom
    assert report.support.cover == pytest.approx(base.support.cover, abs=1e-3)
    gone = 1.0 - mesh.area / closed.area
    assert report.surface.trimmed_area == pytest.approx(gone, abs=2e-3) and gone > 0.02
    assert report.surface.trim == 4.0
    # a radius no vertex meets: nothing would be left, so the closed surface is kept
    kept_mesh, report = _mesh(result, resolution=48, device="cpu", refine=False, surface="closed", trim=1e-9)
    assert kept_mesh.is_watertight and report.surface.trimmed_area == 0.0
    with pytest.raises(ValueError, match="trim: got -1"):
        extract_mesh(result, trim=-1.0)


def test_fill_spans_the_hole_of_a_closed_scan_with_its_membrane():
    """``fill`` (on by default, 2 s): the cap a closed fit spans over a scan's hole is moved
    onto the membrane of its rim (it no longer bulges to the sphere's bottom), the mesh
    stays watertight with the same faces, the report says which share moved, the support
    map describes the moved vertices, and 0 turns it off."""
    from surfrec.run import extract_mesh

    result = _sphere_result()
    pts = _sphere_points(20_000)
    kept = pts[pts[:, 2] > -0.3]  # no scan points on a bottom cap of the sphere (r = 0.5)
    result.data_points = kept.astype(np.float32)
    bulge, off = _mesh(result, resolution=48, device="cpu", refine=False, surface="closed", fill=0.0)
    assert off.surface.filled is None and bulge.vertices[:, 2].min() < -0.49
    mesh, report = _mesh(result, resolution=48, device="cpu", refine=False, surface="closed")
    assert result.config.mesh.fill == 2.0 and report.surface.fill == 2.0
    assert mesh.is_watertight and np.array_equal(mesh.faces, bulge.faces)
    moved = np.linalg.norm(mesh.vertices - bulge.vertices, axis=1) > 0
    assert report.surface.filled == pytest.approx(moved.mean(), abs=1e-4) and moved.mean() > 0.05
    assert mesh.vertices[:, 2].min() > -0.33  # the membrane of the rim at z ≈ -0.3, not the sphere's bottom
    assert mesh.area < bulge.area and report.support.phantom < off.support.phantom
    s = scan_spacing(kept)
    q = mesh.vertex_attributes[SUPPORT_ATTRIBUTE]
    np.testing.assert_allclose(q, vertex_support(mesh.vertices, kept, s), rtol=1e-4, atol=1e-4)
    cap = moved & (bulge.vertices[:, 2] < -0.4)  # (the rest of what moved bridges gaps of the random sample)
    assert cap.sum() > 50 and (mesh.vertex_normals[cap, 2] < -0.99).mean() > 0.9  # the membrane faces down
    with pytest.raises(ValueError, match="fill: got -1"):
        extract_mesh(result, fill=-1.0)


def test_neighbors_fix_the_refinements_k_from_the_model_and_the_command_line():
    """``neighbors`` (``--neighbors K``): the refinement's k is K instead of the noise's rule,
    it is kept with the model's settings, ``auto`` / 0 returns to the rule, and a bad value
    is a specific error before any work."""
    from surfrec.cli.main import build_parser
    from surfrec.cli.options import as_arguments, overrides
    from surfrec.run import extract_mesh

    result = _sphere_result()
    rng = np.random.default_rng(5)
    result.data_points = (_sphere_points(20_000) + rng.normal(scale=0.004, size=(20_000, 3))).astype(np.float32)
    _, auto = _mesh(result, resolution=48, device="cpu", surface="closed")
    _, fixed = _mesh(result, resolution=48, device="cpu", surface="closed", neighbors=9)
    assert auto.refine.applied and auto.refine.neighbors != 9 and fixed.refine.neighbors == 9
    assert mesh_config(result, neighbors=9).neighbors == 9 and result.config.mesh.neighbors == 0
    with pytest.raises(ValueError, match="neighbors: got 3, expected auto"):
        extract_mesh(result, neighbors=3)
    args = build_parser(only="fit").parse_args(["fit", "scan.xyz", "--neighbors", "14"])
    resume = as_arguments(args, ("mesh",))
    assert overrides(args)["mesh.neighbors"] == 14 and resume[resume.index("--neighbors") + 1] == "14"
    args = build_parser(only="mesh").parse_args(["mesh", "model.pt", "-o", "out.ply", "--neighbors", "auto"])
    assert overrides(args)["mesh.neighbors"] == 0
    assert as_arguments(build_parser(only="fit").parse_args(["fit", "s.xyz", "--neighbors", "auto"]),
                        ("mesh",))[-1] == "auto"


def test_fill_reaches_extraction_from_the_command_line_and_the_summary_line():
    from surfrec.cli.main import build_parser
    from surfrec.cli.options import as_arguments, overrides
    from surfrec.run import summary_line

    args = build_parser(only="mesh").parse_args(["mesh", "model.pt", "-o", "out.ply", "--fill", "0"])
    assert overrides(args)["mesh.fill"] == 0.0
    args = build_parser(only="fit").parse_args(["fit", "scan.xyz", "--fill", "3"])
    resume = as_arguments(args, ("mesh",))
    assert overrides(args)["mesh.fill"] == 3.0 and resume[resume.index("--fill") + 1] == "3.0"
    line = summary_line(SurfaceDecision(mode="auto", surface="closed", fill=2.0, filled=0.0501), None)
    assert "0.050 of the vertices beyond 2 s on the membrane fill" in line
    assert "membrane" not in summary_line(SurfaceDecision(mode="auto", surface="closed", fill=2.0, filled=0.0), None)


def test_trim_reaches_extraction_from_the_command_line_and_the_summary_line():
    """``--trim`` of ``fit`` and ``mesh`` becomes MeshConfig.trim (and is repeated in the
    resume command); the summary line says how much was trimmed and that the mesh is open."""
    from surfrec.cli.main import build_parser
    from surfrec.cli.options import as_arguments, overrides
    from surfrec.run import summary_line

    args = build_parser(only="mesh").parse_args(["mesh", "model.pt", "-o", "out.ply", "--trim", "2"])
    assert overrides(args)["mesh.trim"] == 2.0
    args = build_parser(only="fit").parse_args(["fit", "scan.xyz", "--trim", "2.5"])
    assert overrides(args)["mesh.trim"] == 2.5
    resume = as_arguments(args, ("mesh",))
    assert resume[resume.index("--trim") + 1] == "2.5"
    assert "mesh.trim" not in overrides(build_parser(only="fit").parse_args(["fit", "scan.xyz"]))
    line = summary_line(SurfaceDecision(mode="auto", surface="closed", trim=2.0, trimmed_area=0.0511), None)
    assert "trimmed beyond 2 s: 0.051 of the area removed, not watertight" in line
    assert "trimmed" not in summary_line(SurfaceDecision(mode="auto", surface="closed"), None)
