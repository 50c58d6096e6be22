"""Tests of surfrec.metrics: the fast paths against naive references, and known answers."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from surfrec.errors import InputError
from surfrec.evaluation.metrics import _to_mesh, evaluate, format_report, threshold_key

# ----------------------------------------------------------------------------- naive references
from helpers import naive_point_triangle_distance  # noqa: E402




def naive_to_mesh(points: np.ndarray, mesh: trimesh.Trimesh, tie: float = 1e-9):
    """Per point: distance to the mesh, and the list of unit normals of all triangles that
    are closest within ``tie`` (the closest point may lie on a shared edge/vertex)."""
    tri = np.asarray(mesh.triangles, dtype=np.float64)
    fn = np.asarray(mesh.face_normals)
    dist, normals = [], []
    for p in points:
        d = naive_point_triangle_distance(p, tri)
        dmin = d.min()
        dist.append(dmin)
        normals.append(fn[d <= dmin + tie])
    return np.array(dist), normals


def naive_nn(query: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.linalg.norm(query[:, None, :] - points[None, :, :], axis=2)
    idx = d.argmin(axis=1)
    return d[np.arange(len(query)), idx], idx


def bumpy_sphere(subdivisions: int = 2, seed: int = 0) -> trimesh.Trimesh:
    """A non-convex closed test mesh: an icosphere with randomly displaced vertices."""
    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    rng = np.random.default_rng(seed)
    v = m.vertices * (1.0 + 0.15 * rng.uniform(-1, 1, size=(len(m.vertices), 1)))
    return trimesh.Trimesh(v, m.faces, process=False)


# ----------------------------------------------------------------------------- fast vs naive


def test_point_to_triangle_soup_matches_naive():
    """Random triangles of every shape and points in every Voronoi region (faces, edges,
    corners), against the brute-force reference over all triangles."""
    rng = np.random.default_rng(1)
    tri = rng.normal(size=(200, 3, 3))
    soup = trimesh.Trimesh(tri.reshape(-1, 3), np.arange(600).reshape(-1, 3), process=False)
    p = rng.normal(size=(400, 3)) * 2.0
    got, _ = _to_mesh(p, soup, origin=np.zeros(3))
    want, _ = naive_to_mesh(p, soup)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_point_to_mesh_far_from_origin_keeps_precision():
    mesh = bumpy_sphere(1, seed=5)
    shift = np.array([1e6, -2e6, 5e5])
    far = trimesh.Trimesh(mesh.vertices + shift, mesh.faces, process=False)
    query = np.random.default_rng(4).normal(size=(50, 3))
    want, _ = naive_to_mesh(query, mesh)
    got, _ = _to_mesh(query + shift, far, origin=shift)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_point_to_mesh_distances_and_normals_match_naive():
    mesh = bumpy_sphere(2, seed=3)
    rng = np.random.default_rng(2)
    query = rng.normal(size=(300, 3)) * 0.8  # inside, outside and near the surface
    dist, normals = _to_mesh(query, mesh, origin=np.zeros(3))
    want, tied = naive_to_mesh(query, mesh)
    np.testing.assert_allclose(dist, want, rtol=1e-9, atol=1e-12)
    for got_n, cands in zip(normals, tied):
        assert np.min(np.linalg.norm(cands - got_n, axis=1)) < 1e-6


def test_evaluate_mesh_vs_mesh_matches_naive():
    rec = bumpy_sphere(2, seed=0)
    gt = bumpy_sphere(2, seed=1)
    n, seed = 300, 7
    res = evaluate(rec, gt, n_samples=n, seed=seed, thresholds=[0.02, 0.05])

    rec_pts, rec_fi = trimesh.sample.sample_surface(rec, n, seed=seed)
    gt_pts, gt_fi = trimesh.sample.sample_surface(gt, n, seed=seed + 1)
    d_acc, n_acc = naive_to_mesh(rec_pts, gt)
    d_comp, n_comp = naive_to_mesh(gt_pts, rec)

    assert res["acc"] == pytest.approx(d_acc.mean(), rel=1e-9)
    assert res["comp"] == pytest.approx(d_comp.mean(), rel=1e-9)
    assert res["chamfer_l1"] == pytest.approx(0.5 * (d_acc.mean() + d_comp.mean()), rel=1e-9)
    assert res["chamfer_l2"] == pytest.approx(
        0.5 * (np.mean(d_acc**2) + np.mean(d_comp**2)), rel=1e-9
    )
    assert res["hausdorff"] == pytest.approx(max(d_acc.max(), d_comp.max()), rel=1e-9)
    for t in (0.02, 0.05):
        p, r = np.mean(d_acc < t), np.mean(d_comp < t)
        assert res[threshold_key("precision", t)] == pytest.approx(p)
        assert res[threshold_key("recall", t)] == pytest.approx(r)
        assert res[threshold_key("fscore", t)] == pytest.approx(2 * p * r / (p + r))

    # normal consistency: the closest triangle is unique for almost every sample; where
    # it is tied, any tied triangle is a right answer, so bound the mean between the two
    def bounds(sample_normals, tied):
        dots = [np.abs(c @ s) for s, c in zip(sample_normals, tied)]
        return np.mean([d.min() for d in dots]), np.mean([d.max() for d in dots])

    lo_a, hi_a = bounds(rec.face_normals[rec_fi], n_acc)
    lo_c, hi_c = bounds(gt.face_normals[gt_fi], n_comp)
    nc = res["normal_consistency"]
    assert 0.5 * (lo_a + lo_c) - 1e-9 <= nc <= 0.5 * (hi_a + hi_c) + 1e-9


def test_evaluate_against_gt_points_matches_naive_nn():
    rec = bumpy_sphere(2, seed=0)
    rng = np.random.default_rng(5)
    gt_pts = rng.normal(size=(400, 3))
    gt_pts /= np.linalg.norm(gt_pts, axis=1, keepdims=True)
    gt_nrm = gt_pts * rng.choice([-1.0, 1.0], size=(400, 1))  # orientation must not matter
    n, seed = 250, 3
    res = evaluate(rec, (gt_pts, gt_nrm), n_samples=n, seed=seed, thresholds=[0.05])

    rec_pts, rec_fi = trimesh.sample.sample_surface(rec, n, seed=seed)
    d_acc, idx = naive_nn(rec_pts, gt_pts)  # rec samples -> nearest gt point
    d_comp, _ = naive_to_mesh(gt_pts, rec)  # gt points (used as given) -> rec mesh
    assert res["protocol"]["n_gt"] == 400
    assert res["protocol"]["distances"]["rec_to_gt"].startswith("nearest")
    assert res["acc"] == pytest.approx(d_acc.mean(), rel=1e-9)
    assert res["comp"] == pytest.approx(d_comp.mean(), rel=1e-9)
    nc_acc = np.mean(np.abs(np.einsum("ij,ij->i", rec.face_normals[rec_fi], gt_nrm[idx])))
    assert 0 < nc_acc <= 1
    assert res["normal_consistency"] is not None

    # without gt normals there is no normal consistency, and distances do not change
    res2 = evaluate(rec, gt_pts, n_samples=n, seed=seed, thresholds=[0.05])
    assert res2["normal_consistency"] is None
    assert res2["acc"] == res["acc"]


def test_scan_distances_match_naive():
    rec = bumpy_sphere(2, seed=0)
    gt = bumpy_sphere(2, seed=0)
    rng = np.random.default_rng(9)
    scan = rng.normal(size=(200, 3))
    res = evaluate(rec, gt, scan=scan, n_samples=300, seed=0)
    rec_pts, _ = trimesh.sample.sample_surface(rec, 300, seed=0)
    d_s2r, _ = naive_to_mesh(scan, rec)
    d_r2s, _ = naive_nn(rec_pts, scan)
    assert res["scan_to_rec_mean"] == pytest.approx(d_s2r.mean(), rel=1e-9)
    assert res["scan_to_rec_max"] == pytest.approx(d_s2r.max(), rel=1e-9)
    assert res["rec_to_scan_mean"] == pytest.approx(d_r2s.mean(), rel=1e-9)
    assert res["rec_to_scan_max"] == pytest.approx(d_r2s.max(), rel=1e-9)
    assert res["protocol"]["n_scan"] == 200

    # without gt: only the scan metrics, box taken from the scan
    only = evaluate(rec, None, scan=scan, n_samples=300, seed=0)
    assert "chamfer_l1" not in only
    assert only["scan_to_rec_mean"] == res["scan_to_rec_mean"]
    assert only["protocol"]["box_source"] == "scan"


# ----------------------------------------------------------------------------- known answers


def test_mesh_against_itself_is_zero():
    mesh = bumpy_sphere(3, seed=4)
    res = evaluate(mesh, mesh, n_samples=20_000)
    assert res["chamfer_l1"] < 1e-9
    assert res["chamfer_l2"] < 1e-15
    assert res["hausdorff"] < 1e-6
    assert res["normal_consistency"] == pytest.approx(1.0, abs=1e-9)
    for t in res["protocol"]["thresholds"]:
        assert res[threshold_key("fscore", t)] == 1.0


def test_concentric_spheres():
    inner = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    outer = trimesh.creation.icosphere(subdivisions=5, radius=1.1)
    # subdivision 5: edges ~0.038, so flat faces sag at most ~2e-4 below the vertex sphere
    res = evaluate(inner, outer, n_samples=50_000, thresholds=[0.05, 0.2])
    assert res["chamfer_l1"] == pytest.approx(0.1, abs=1e-3)
    assert res["acc"] == pytest.approx(0.1, abs=1e-3)
    assert res["comp"] == pytest.approx(0.1, abs=1e-3)
    assert res["chamfer_l2"] == pytest.approx(0.01, abs=2e-4)
    assert res["hausdorff"] == pytest.approx(0.1, abs=1e-3)
    assert res["normal_consistency"] == pytest.approx(1.0, abs=1e-3)
    assert res[threshold_key("fscore", 0.05)] == 0.0
    assert res[threshold_key("fscore", 0.2)] == 1.0


def test_normal_consistency_is_orientation_agnostic():
    other = bumpy_sphere(2, seed=1)
    mesh = bumpy_sphere(2, seed=0)
    pts, fi = trimesh.sample.sample_surface(mesh, 3000, seed=0)
    nrm = mesh.face_normals[fi]
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(len(pts), 1))
    a = evaluate((pts, nrm), other, n_samples=3000)
    b = evaluate((pts, -nrm), other, n_samples=3000)
    c = evaluate((pts, nrm * signs), other, n_samples=3000)
    assert a["normal_consistency"] == pytest.approx(b["normal_consistency"], abs=1e-12)
    assert a["normal_consistency"] == pytest.approx(c["normal_consistency"], abs=1e-12)
    # reversing the faces of a mesh moves its samples (trimesh samples from corner 0),
    # so the value only agrees statistically
    flipped = trimesh.Trimesh(mesh.vertices, mesh.faces[:, ::-1], process=False)
    d = evaluate(mesh, other, n_samples=20_000)
    e = evaluate(flipped, other, n_samples=20_000)
    assert d["normal_consistency"] == pytest.approx(e["normal_consistency"], abs=0.01)


def test_default_thresholds_follow_gt_box():
    gt = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    res = evaluate(gt, gt, n_samples=1000)
    p = res["protocol"]
    assert p["box_side"] == pytest.approx(2.0)
    assert p["thresholds"] == pytest.approx([0.01, 0.02])
    assert threshold_key("fscore", 0.01) in res and threshold_key("fscore", 0.02) in res
    frac = evaluate(gt, gt, n_samples=1000, threshold_fractions=[0.1])
    assert frac["protocol"]["thresholds"] == pytest.approx([0.2])


def test_seeded_and_reproducible():
    rec, gt = bumpy_sphere(2, seed=0), bumpy_sphere(2, seed=1)
    a = evaluate(rec, gt, n_samples=2000, seed=11)
    b = evaluate(rec, gt, n_samples=2000, seed=11)
    c = evaluate(rec, gt, n_samples=2000, seed=12)
    assert a["chamfer_l1"] == b["chamfer_l1"]
    assert a["chamfer_l1"] != c["chamfer_l1"]
    assert a["protocol"]["seeds"] == {"rec": 11, "gt": 12}


def test_mesh_paths(tmp_path):
    rec, gt = bumpy_sphere(2, seed=0), bumpy_sphere(2, seed=1)
    rec.export(tmp_path / "rec.ply")
    gt.export(tmp_path / "gt.obj")
    from_files = evaluate(tmp_path / "rec.ply", str(tmp_path / "gt.obj"), n_samples=3000)
    in_memory = evaluate(rec, gt, n_samples=3000)
    assert from_files["chamfer_l1"] == pytest.approx(in_memory["chamfer_l1"], rel=1e-6)
    assert from_files["protocol"]["sources"]["rec"] == str(tmp_path / "rec.ply")


def test_point_file_paths(tmp_path):
    """Point files (and PLY files without faces) are read as point sets."""
    rec = bumpy_sphere(2, seed=0)
    pts = np.random.default_rng(0).normal(size=(500, 3))
    np.savetxt(tmp_path / "gt.xyz", pts)
    trimesh.PointCloud(pts).export(tmp_path / "gt_points.ply")
    direct = evaluate(rec, pts, n_samples=2000)
    for name in ("gt.xyz", "gt_points.ply"):
        res = evaluate(rec, tmp_path / name, n_samples=2000)
        assert res["protocol"]["distances"]["rec_to_gt"].startswith("nearest")
        # (trimesh writes PLY points as float32)
        assert res["acc"] == pytest.approx(direct["acc"], rel=1e-6)
        assert res["comp"] == pytest.approx(direct["comp"], rel=1e-6)


def test_format_report_states_units_and_counts():
    mesh = bumpy_sphere(2)
    res = evaluate(mesh, mesh, scan=mesh.vertices, n_samples=1234)
    text = format_report(res)
    assert "input units of gt" in text
    assert "1,234" in text
    assert "CD x1000" in text
    assert "scan->rec" in text and "rec->scan" in text
    assert len(text.splitlines()) > 5


# ----------------------------------------------------------------------------- input errors


def test_empty_mesh_is_an_input_error():
    empty = trimesh.Trimesh(np.zeros((3, 3)), np.zeros((0, 3), dtype=np.int64), process=False)
    with pytest.raises(InputError, match="mesh has no faces"):
        evaluate(empty, bumpy_sphere(1))
    with pytest.raises(InputError, match="<gt>: mesh has no faces"):
        evaluate(bumpy_sphere(1), empty)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rec": np.zeros((0, 3))}, "empty"),
        ({"rec": np.zeros((5, 2))}, r"shape \(N, 3\)"),
        ({"rec": np.array([[0.0, 0.0, np.nan]])}, "NaN"),
        ({"rec": (np.zeros((4, 3)), np.ones((3, 3)))}, "3 normals for 4 points"),
        ({"n_samples": 0}, "n_samples"),
        ({"thresholds": [0.01, -1.0]}, "thresholds"),
        ({"thresholds": [0.01], "threshold_fractions": [0.01]}, "not both"),
        ({"gt": None}, "nothing to evaluate against"),
        ({"rec": {"a": 1}}, "cannot evaluate a dict"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = {"rec": bumpy_sphere(1), "gt": bumpy_sphere(1), **kwargs}
    rec, gt = args.pop("rec"), args.pop("gt")
    with pytest.raises(InputError, match=match):
        evaluate(rec, gt, **args)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        evaluate(tmp_path / "nope.ply", bumpy_sphere(1))


def test_scan_must_be_points():
    with pytest.raises(InputError, match="scan must be a point set"):
        evaluate(bumpy_sphere(1), bumpy_sphere(1), scan=bumpy_sphere(1))


# ----------------------------------------------------------------------------- CLI


def _run_eval(argv: list[str]) -> int:
    import argparse

    from surfrec.cli import eval_cmd

    parser = argparse.ArgumentParser(prog="surfrec eval")
    eval_cmd.add_arguments(parser)
    return eval_cmd.run(parser.parse_args(argv))


def test_eval_command_prints_report_and_writes_json(tmp_path, capsys):
    import json

    rec, gt = bumpy_sphere(2, seed=0), bumpy_sphere(2, seed=1)
    rec.export(tmp_path / "rec.ply")
    gt.export(tmp_path / "gt.ply")
    np.savetxt(tmp_path / "scan.xyz", gt.vertices)
    out = tmp_path / "scores.json"
    code = _run_eval([
        str(tmp_path / "rec.ply"), "--gt", str(tmp_path / "gt.ply"),
        "--scan", str(tmp_path / "scan.xyz"), "--samples", "5000",
        "--thresholds", "0.01,0.05", "--json", str(out),
    ])
    assert code == 0
    text = capsys.readouterr().out
    assert "input units of gt" in text and "5,000" in text and f"wrote {out}" in text
    saved = json.loads(out.read_text())
    direct = evaluate(rec, gt, scan=gt.vertices, n_samples=5000, threshold_fractions=[0.01, 0.05])
    assert saved["chamfer_l1"] == pytest.approx(direct["chamfer_l1"], rel=1e-6)
    assert saved["scan_to_rec_mean"] == pytest.approx(direct["scan_to_rec_mean"], rel=1e-6)
    assert saved["protocol"]["threshold_fractions"] == [0.01, 0.05]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_eval_command_errors(tmp_path):
    from surfrec.errors import SurfrecError

    bumpy_sphere(1).export(tmp_path / "rec.ply")
    with pytest.raises(SurfrecError, match="--gt GT, --scan SCAN"):
        _run_eval([str(tmp_path / "rec.ply")])
    with pytest.raises(InputError, match="does not exist"):
        _run_eval([str(tmp_path / "rec.ply"), "--gt", str(tmp_path / "rec.ply"),
                   "--json", str(tmp_path / "no" / "x.json")])
    with pytest.raises(SystemExit):  # argparse rejects non-positive thresholds
        _run_eval([str(tmp_path / "rec.ply"), "--gt", str(tmp_path / "rec.ply"),
                   "--thresholds", "0,0.1"])
