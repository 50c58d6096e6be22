import dataclasses
import numpy as np
import pytest

from helpers import Sphere
from surfrec.settings import get_config
from surfrec.input.normalize import Normalization
from surfrec.settings import RefineConfig
from surfrec.input.local import estimate_noise, local_heights
from surfrec.surface.refine import plan_for as plan, refine_vertices, with_neighbors
from surfrec.run import extract_mesh
from surfrec.result import FitResult


def sphere_points(n: int, r: float = 0.5, seed: int = 0) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=(n, 3))
    return r * d / np.linalg.norm(d, axis=1, keepdims=True)


def naive_frame(center, normal, points, k):
    """The k nearest points in the tangent frame of ``normal`` at ``center``, written out:
    (neighbour order, heights s, tangent coordinates u, w, r² = u² + w², h² = lower median of r²)."""
    order = np.argsort(np.linalg.norm(points - center, axis=1))[:k]
    nb = points[order] - center
    n = normal / np.linalg.norm(normal)
    helper = np.array([1.0, 0, 0]) if abs(n[0]) < 0.9 else np.array([0, 1.0, 0])
    t1 = np.cross(n, helper)
    t1 /= np.linalg.norm(t1)
    t2 = np.cross(n, t1)
    s, u, w = nb @ n, nb @ t1, nb @ t2
    r2 = u * u + w * w
    return order, s, u, w, r2, np.sort(r2)[(k - 1) // 2]  # the lower median (torch.median)


def naive_height(center, normal, points, k):
    """One plain weighted least-squares quadric, written out (robust_iterations=0)."""
    _, s, u, w, r2, h2 = naive_frame(center, normal, points, k)
    un, wn = u / np.sqrt(h2), w / np.sqrt(h2)
    A = np.stack([np.ones(k), un, wn, un * un, un * wn, wn * wn], 1)
    wt = np.exp(-0.5 * r2 / h2)
    lhs = (A * wt[:, None]).T @ A + np.diag([0, 1, 1, 1, 1, 1]) * 1e-3 * wt.sum()
    return np.linalg.solve(lhs, (A * wt[:, None]).T @ s)[0]


def test_local_heights_match_naive_reference():
    rng = np.random.default_rng(1)
    pts = sphere_points(3000)
    centers = sphere_points(40, r=0.51, seed=2)
    normals = centers + rng.normal(scale=0.05, size=centers.shape)  # slightly wrong normals
    got, _ = local_heights(centers, normals, pts, 16, robust_iterations=0, chunk_size=7)
    want = [naive_height(c, n, pts, 16) for c, n in zip(centers, normals)]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)  # float32 fits


def test_vertices_move_onto_a_curved_surface():
    pts = sphere_points(20000)
    verts = sphere_points(500, r=1.0, seed=3)
    verts *= (0.5 + np.random.default_rng(4).uniform(-0.01, 0.01, size=(500, 1)))  # ±2 cells off
    out, rep = refine_vertices(verts, verts, pts, cell=0.005)
    assert rep.applied and rep.neighbors == 20 + int(rep.neighbors > 20)  # clean: k ≈ 20
    before = np.abs(np.linalg.norm(verts, axis=1) - 0.5)
    after = np.abs(np.linalg.norm(out, axis=1) - 0.5)
    assert before.mean() > 4e-3 and after.max() < 2e-4


def test_noise_is_estimated_and_averaged_out():
    rng = np.random.default_rng(5)
    clean = sphere_points(30000)
    sigma = 0.004
    noisy = clean + rng.normal(scale=sigma, size=clean.shape)
    noise, spacing = estimate_noise(noisy)
    assert 0.7 * sigma < noise < 1.4 * sigma
    assert estimate_noise(clean)[0] < 0.05 * sigma
    p = plan(noisy, cell=0.005)
    assert p.apply and p.neighbors > 60  # k grows with the noise
    verts = sphere_points(400, seed=6)
    out, _ = refine_vertices(verts, verts, noisy, cell=0.005, refine_plan=p)
    err = np.abs(np.linalg.norm(out, axis=1) - 0.5)
    assert err.mean() < 0.3 * sigma  # far below the noise of the points themselves
    small_k = plan(noisy, cell=0.005, config=RefineConfig(noise_neighbors=0.0))
    assert small_k.neighbors == 20
    out20, _ = refine_vertices(verts, verts, noisy, cell=0.005, refine_plan=small_k)
    assert np.abs(np.linalg.norm(out20, axis=1) - 0.5).mean() > 1.5 * err.mean()


def test_point_normals_keep_a_thin_sheet_apart():
    # two parallel planes 1.5 spacings apart (a thin plate): a vertex near the top one must
    # land on it, not on the mid-plane that a fit through both sheets gives
    g = np.stack(np.meshgrid(np.arange(-15, 16), np.arange(-15, 16)), -1).reshape(-1, 2) * 0.01
    top = np.column_stack([g, np.full(len(g), 0.015)])
    bottom = np.column_stack([g + 0.005, np.zeros(len(g))])
    pts = np.vstack([top, bottom])
    v = np.array([[0.001, 0.002, 0.011]])
    n = np.array([[0.0, 0.0, 1.0]])
    pn = np.repeat([[0.0, 0, 1], [0.0, 0, -1]], len(g), axis=0)  # outward normals of the plate
    oriented, _ = local_heights(v, n, pts, 24, point_normals=pn)
    blind, _ = local_heights(v, n, pts, 24)
    assert abs(v[0, 2] + oriented[0] - 0.015) < 1e-6
    assert abs(v[0, 2] + blind[0] - 0.0075) < 2e-3  # the mid-plane
    # a vertex with no agreeing neighbours stays where it is
    lonely, _ = local_heights(v, -n * 0 + np.array([[1.0, 0, 0]]), pts, 24, point_normals=pn)
    assert lonely[0] == 0.0


def test_k_rule_max_and_sum():
    """k: the floor plus the neighbours the noise asks for (``sum``, the default), or the
    larger of the two (``max``); the noise estimate's own neighbours are ``noise_k``
    either way."""
    rng = np.random.default_rng(7)
    noisy = sphere_points(30000) + rng.normal(scale=0.0015, size=(30000, 3))
    noise, spacing = estimate_noise(noisy, k=20)
    want = 150.0 * (noise / spacing) ** 2
    assert 10 < want < 128
    assert plan(noisy, cell=0.005).neighbors == int(np.ceil(20 + want))
    assert plan(noisy, cell=0.005, config=RefineConfig(k_rule="max", neighbors=10)).neighbors == int(np.ceil(want))
    assert plan(noisy, cell=0.005, config=RefineConfig(k_rule="max", neighbors=40)).neighbors == max(40, int(np.ceil(want)))
    with pytest.raises(ValueError, match="k_rule"):
        RefineConfig(k_rule="min")


def test_fixed_k_ignores_the_noise():
    """``fixed`` (``--neighbors K``, :func:`with_neighbors`): k is K on a noisy scan too,
    beyond ``max_neighbors`` if asked; 0 leaves the configuration alone."""
    rng = np.random.default_rng(7)
    noisy = sphere_points(30000) + rng.normal(scale=0.0015, size=(30000, 3))
    auto = plan(noisy, cell=0.005)
    assert auto.neighbors > 30
    fixed = plan(noisy, cell=0.005, config=with_neighbors(RefineConfig(), 14))
    assert fixed.neighbors == 14 and "fixed" in fixed.reason and fixed.noise == pytest.approx(auto.noise)
    big = with_neighbors(RefineConfig(), 200)
    assert big.max_neighbors == 200 and plan(noisy, cell=0.005, config=big).neighbors == 200
    base = RefineConfig()
    assert with_neighbors(base, 0) is base
    # fewer neighbours follow the noise: the refined vertices scatter more about the sphere
    verts = sphere_points(400, seed=3)
    spread = {}
    for k in (8, 64):
        cfg = with_neighbors(RefineConfig(), k)
        out, rep = refine_vertices(verts, verts, noisy, cell=0.005, config=cfg)
        assert rep.neighbors == k
        spread[k] = np.std(np.linalg.norm(out, axis=1) - 0.5)
    assert spread[8] > 1.5 * spread[64]


def test_moves_are_clipped_to_max_shift():
    pts = sphere_points(20000)
    verts = sphere_points(50, r=0.6, seed=7)  # 0.1 off = 10 cells of 0.01
    out, rep = refine_vertices(verts, verts, pts, cell=0.01, config=RefineConfig(max_shift=2, iterations=2))
    moved = np.linalg.norm(out - verts, axis=1)
    assert rep.applied and rep.clipped == 1.0
    np.testing.assert_allclose(moved, 2 * 2 * 0.01, rtol=1e-9)


def test_moves_shrink_on_scans_sparser_than_the_grid():
    """Up to ``max_spacing`` cells the whole move; then a linear share, none from
    ``taper_spacing``: the partial mesh is exactly that share of the way to the full one."""
    pts = sphere_points(3000)
    verts = sphere_points(200, r=0.52, seed=5)
    spacing = estimate_noise(pts)[1]
    cfg = RefineConfig(max_spacing=2.0, taper_spacing=3.0)
    full = plan(pts, cell=spacing / 1.9, config=cfg)
    part = plan(pts, cell=spacing / 2.5, config=cfg)
    none = plan(pts, cell=spacing / 3.1, config=cfg)
    assert full.apply and full.weight == 1.0 and "of each move" not in full.reason
    assert part.apply and part.weight == pytest.approx(0.5) and "0.50 of each move" in part.reason
    assert not none.apply and none.weight == 0.0 and "sparser" in none.reason
    moved_full, _ = refine_vertices(verts, verts, pts, part.cell, cfg,
                                    refine_plan=dataclasses.replace(part, weight=1.0, reason="full"))
    moved_part, rep = refine_vertices(verts, verts, pts, part.cell, cfg, refine_plan=part)
    np.testing.assert_allclose(moved_part, verts + 0.5 * (moved_full - verts), atol=1e-12)
    assert rep.weight == pytest.approx(0.5) and rep.mean_shift > 0
    with pytest.raises(ValueError, match="taper_spacing"):
        RefineConfig(max_spacing=2.0, taper_spacing=1.0)


def test_sparse_scans_and_tiny_scans_are_skipped():
    pts = sphere_points(300)
    p = plan(pts, cell=0.002)
    assert not p.apply and "sparser" in p.reason
    verts = sphere_points(10, r=0.52)
    out, rep = refine_vertices(verts, verts, pts, cell=0.002)
    assert not rep.applied and np.array_equal(out, verts)
    assert not plan(sphere_points(50), cell=1.0).apply


def test_bad_inputs_are_specific_errors():
    pts = sphere_points(100)
    with pytest.raises(ValueError, match=r"centers must have shape \(N, 3\)"):
        local_heights(np.zeros((3, 2)), np.ones((3, 3)), pts, 10)
    with pytest.raises(ValueError, match="at least 6"):
        local_heights(pts[:2], pts[:2], pts, 5)
    with pytest.raises(ValueError, match="NaN"):
        local_heights(np.full((1, 3), np.nan), np.ones((1, 3)), pts, 10)
    with pytest.raises(ValueError, match="match"):
        refine_vertices(pts[:3], pts[:2], pts, 0.01)
    with pytest.raises(ValueError, match="non-zero"):
        local_heights(pts[:2], np.zeros((2, 3)), pts, 10)
    with pytest.raises(ValueError, match="max_neighbors"):
        RefineConfig(neighbors=30, max_neighbors=20)
    with pytest.raises(ValueError, match="cell"):
        plan(pts, cell=0.0)


# ----------------------------------------------------------------- in extract_mesh
def _mesh(result, device="cpu", **overrides):
    from surfrec.run import mesh_config, mesh_stages

    return mesh_stages(result, mesh_config(result, **overrides), device=device)


def _result(field_r: float, data_r: float, n: int = 20000, level: float = 0.0) -> FitResult:
    cfg = get_config("fast", **{"fit.level": level})
    return FitResult(model=Sphere(field_r), normalization=Normalization(center=np.array([3.0, 0, 0]), scale=2.0),
                     config=cfg, history={}, seconds=0.0, steps=0,
                     data_points=sphere_points(n, data_r).astype(np.float32))


def test_extract_mesh_refines_onto_the_data():
    result = _result(0.5, 0.52)  # the field is 0.02 (about 2 cells at 128) inside the data
    # fill off: the vertices in the random sample's gaps would get face normals (test_fill.py)
    mesh, report = _mesh(result, resolution=128, device="cpu", fill=0.0)
    radii = np.linalg.norm(mesh.vertices - (3.0, 0, 0), axis=1) / 2.0
    assert report.refine.applied and np.abs(radii - 0.52).max() < 1e-3
    assert mesh.is_watertight
    plain = extract_mesh(result, resolution=128, device="cpu", refine=False)
    assert np.abs(np.linalg.norm(plain.vertices - (3.0, 0, 0), axis=1) / 2.0 - 0.5).max() < 2e-3
    # vertex normals are ∇F at the moved vertices (radial here)
    nrm = mesh.vertex_normals
    radial = (mesh.vertices - (3.0, 0, 0)) / np.linalg.norm(mesh.vertices - (3.0, 0, 0), axis=1, keepdims=True)
    assert (nrm * radial).sum(1).min() > 0.999


def test_offset_levels_are_not_refined():
    mesh, report = _mesh(_result(0.5, 0.52), resolution=96, level=0.05, device="cpu")
    assert report.refine is None
    assert np.abs(np.linalg.norm(mesh.vertices - (3.0, 0, 0), axis=1) / 2.0 - 0.55).max() < 3e-3


def naive_robust_height(center, normal, points, k, point_normals, robust_iterations, ridge=1e-3,
                        agreement=0.5, min_support=6):
    """local_heights' whole recipe for one centre, written out in float64: neighbours facing
    away get weight 1e-6, reweighting by the residual over 3 robust (MAD) scales."""
    order, s, u, w, r2, h2 = naive_frame(center, normal, points, k)
    n = normal / np.linalg.norm(normal)
    h = np.sqrt(h2)
    A = np.stack([np.ones(k), u / h, w / h, (u / h) ** 2, u * w / h2, (w / h) ** 2], 1)
    pn = point_normals[order] / np.linalg.norm(point_normals[order], axis=1, keepdims=True)
    agree = pn @ n >= agreement
    base = np.exp(-0.5 * r2 / h2) * np.where(agree, 1.0, 1e-6)
    wt = base
    for it in range(robust_iterations + 1):
        lhs = (A * wt[:, None]).T @ A + np.diag([0, 1, 1, 1, 1, 1]) * ridge * wt.sum()
        coef = np.linalg.solve(lhs, (A * wt[:, None]).T @ s)
        res = s - A @ coef
        scale = 1.4826 * np.sort(np.abs(res))[(k - 1) // 2] + 1e-6 * h
        wt = base * np.exp(-((res / (3.0 * scale)) ** 2))
    return (coef[0] if agree.sum() >= min_support else 0.0), scale


@pytest.mark.parametrize("k", [16, 21, 128])
def test_robust_oriented_heights_match_naive_reference(k):
    # the vectorized fit (monomial-major design, one bmm for both sides of the normal
    # equations, numpy's partition for the medians) against the recipe written out per centre
    rng = np.random.default_rng(3)
    pts = sphere_points(4000) + rng.normal(scale=0.004, size=(4000, 3))    # a noisy scan
    pn = pts + rng.normal(scale=0.2, size=pts.shape)                       # rough normals, some flipped
    pn[rng.random(len(pn)) < 0.1] *= -1
    centers = sphere_points(60, r=0.505, seed=4)
    normals = centers + rng.normal(scale=0.05, size=centers.shape)
    got, scale = local_heights(centers, normals, pts, k, robust_iterations=2, point_normals=pn, chunk_size=13)
    want = np.array([naive_robust_height(c, n, pts, k, pn, 2) for c, n in zip(centers, normals)])
    np.testing.assert_allclose(got, want[:, 0], rtol=1e-3, atol=2e-6)      # float32 fits
    np.testing.assert_allclose(scale, want[:, 1], rtol=1e-3, atol=2e-6)


def test_lower_median_and_gather_equal_torch():
    import torch

    from surfrec.input.local import _gather, _lower_median

    x = torch.rand(300, 128)
    x[:, 5] = x[:, 7]                                                      # ties
    for k in (6, 21, 128):
        assert torch.equal(_lower_median(x[:, :k].contiguous()), x[:, :k].median(dim=1, keepdim=True).values)
    table = torch.rand(1000, 3, dtype=torch.float64)
    idx = np.random.default_rng(0).integers(0, 1000, (50, 17))
    assert torch.equal(_gather(table, idx), table[torch.from_numpy(idx)])


def test_intercept_variance_matches_the_written_out_formula():
    """``_robust_quadric(..., intercept_variance=True)``: v = e₀ᵀ L⁻¹ AᵀW²A L⁻¹ e₀ (numpy,
    float64, one fit at a time), and the height and scale are those of the plain call."""
    import torch

    from surfrec.input.local import _local_design, _robust_quadric

    rng = np.random.default_rng(3)
    nb = torch.from_numpy(rng.normal(scale=[0.02, 1.0, 1.0], size=(5, 30, 3))).float()
    n = torch.tensor([[1.0, 0.0, 0.0]]).repeat(5, 1)
    s, design, w, h = _local_design(nb, n)
    for robust in (0, 1):
        coef, scale, v = _robust_quadric(design, s, w, h, robust, 1e-3, intercept_variance=True)
        coef0, scale0 = _robust_quadric(design, s, w, h, robust, 1e-3)
        assert torch.equal(coef, coef0) and torch.equal(scale, scale0)
        if robust:
            continue  # the final weights are internal; the formula is checked with the base weights
        for i in range(5):
            A = design[i].double().numpy().T                 # (k, 6)
            W = np.diag(w[i].double().numpy())
            L = A.T @ W @ A + np.diag([0.0] + [1e-3] * 5) * w[i].double().sum().item()
            r = np.linalg.solve(L, np.eye(6)[0])
            want = r @ A.T @ W @ W @ A @ r
            assert v[i].item() == pytest.approx(want, rel=1e-3)
