"""Normals, their orientation and the closure test (surfrec.orient), against naive references,
and the open fit they drive (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from surfrec.input.orient import closure, estimate_normals, orient_normals, scan_orientation


def _sphere(n: int, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def _naive_normals(p: np.ndarray, k: int) -> np.ndarray:
    """Smallest principal direction of each point's k nearest points (itself included), brute force."""
    d = np.linalg.norm(p[:, None] - p[None], axis=2)
    out = np.empty_like(p)
    for i in range(len(p)):
        nb = p[np.argsort(d[i])[:k]]
        w, v = np.linalg.eigh(np.cov((nb - nb.mean(0)).T))
        out[i] = v[:, 0]
    return out


def _naive_closure(p: np.ndarray, n: np.ndarray, k: int, clip: float = np.inf) -> float:
    d = np.sort(np.linalg.norm(p[:, None] - p[None], axis=2), axis=1)[:, k]  # k-th other point
    a = np.minimum(d ** 2, clip * np.median(d ** 2))
    return float(np.linalg.norm((n * a[:, None]).sum(0)) / a.sum())


def test_normals_match_naive_plane_fit():
    p = _sphere(600, seed=1) * [1.0, 0.7, 0.5]
    n = estimate_normals(p, k=12)
    ref = _naive_normals(p, 12)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6)
    assert np.abs(np.einsum("ij,ij->i", n, ref)).min() > 0.999  # same line, any sign


def test_orientation_is_consistent_on_a_sphere_and_a_saddle():
    p = _sphere(3000)
    flips = np.where(np.random.default_rng(2).random(len(p)) < 0.5, -1.0, 1.0)
    n, labels = orient_normals(p, p * flips[:, None], k=10)
    assert labels.max() == 0
    s = np.sign(np.einsum("ij,ij->i", n, p))
    assert abs(s.sum()) == len(p)  # all outward or all inward
    # two far-apart spheres: two pieces, each consistent on its own
    two = np.concatenate([p[:1500], p[1500:] + 5.0])
    n, labels = orient_normals(two, (two - np.repeat([[0.0] * 3, [5.0] * 3], 1500, axis=0)) * flips[:, None], k=10)
    assert labels.max() == 1 and len(set(labels[:1500])) == 1
    for part, c in ((slice(0, 1500), 0.0), (slice(1500, 3000), 5.0)):
        assert abs(np.sign(np.einsum("ij,ij->i", n[part], two[part] - c)).sum()) == 1500
    # a saddle patch z = x² − y² (open, curved both ways): one sign relative to the true normal
    rng = np.random.default_rng(3)
    xy = rng.uniform(-1, 1, size=(4000, 2))
    q = np.column_stack([xy, xy[:, 0] ** 2 - xy[:, 1] ** 2])
    true = np.column_stack([-2 * xy[:, 0], 2 * xy[:, 1], np.ones(len(q))])
    true /= np.linalg.norm(true, axis=1, keepdims=True)
    n, _ = orient_normals(q, estimate_normals(q, 16), k=10)
    s = np.sign(np.einsum("ij,ij->i", n, true))
    assert abs(s.sum()) == len(q)


def test_closure_is_zero_for_closed_and_half_for_a_hemisphere():
    p = _sphere(4000)
    cap = p[p[:, 2] > 0]
    plane = np.column_stack([np.random.default_rng(4).uniform(-1, 1, size=(2000, 2)), np.zeros(2000)])
    assert closure(p, p, k=10) < 0.03
    assert closure(cap, cap, k=10) == pytest.approx(0.5, abs=0.05)
    assert closure(plane, np.tile([0.0, 0.0, 1.0], (2000, 1)), k=10) == pytest.approx(1.0, abs=1e-9)
    # against the brute-force formula on an uneven sample (density must not weigh)
    q = cap[:800]
    assert closure(q, q, k=10) == pytest.approx(_naive_closure(q, q, 10, clip=1.0), rel=1e-9)
    assert closure(q, q, k=10, area_clip=1e9) == pytest.approx(_naive_closure(q, q, 10), rel=1e-9)
    # sparse points with wrong normals (leaking through at silhouettes) do not outweigh the rest
    rng = np.random.default_rng(6)
    leak = np.column_stack([rng.uniform(-1, 1, size=(40, 2)), np.full(40, -0.3)])  # sparse: big areas
    view = np.concatenate([cap, leak])
    normals = np.concatenate([cap, np.tile([0.0, 0.0, -1.0], (40, 1))])
    assert closure(view, normals, k=10) > 0.45
    assert closure(view, normals, k=10, area_clip=1e9) < 0.3  # uncapped they would
    # two caps far apart, one with its normals flipped (each piece's sign is arbitrary)
    caps = np.concatenate([cap, cap + 5.0])
    signs = np.repeat([1.0, -1.0], len(cap))[:, None]
    labels = np.repeat([0, 1], len(cap))
    assert closure(caps, np.concatenate([cap, cap]) * signs, k=10, pieces=labels) == pytest.approx(0.5, abs=0.05)
    assert closure(caps, np.concatenate([cap, cap]) * signs, k=10) < 0.05  # as one piece they cancel
    dense = np.concatenate([cap[cap[:, 0] > 0], _sphere(20000, seed=5)])  # half of the cap 10x denser
    dense = dense[dense[:, 2] > 0]
    assert closure(dense, dense, k=10) == pytest.approx(0.5, abs=0.06)


def test_scan_orientation_separates_closed_and_single_view():
    p = _sphere(5000)
    c_closed = scan_orientation(p).closure
    c_view = scan_orientation(p[p[:, 2] > 0.1]).closure
    assert c_closed < 0.05 and c_view > 0.35


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        closure(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        estimate_normals(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="normals must have"):
        orient_normals(_sphere(20), np.zeros((19, 3)))


def test_side_loss_matches_naive():
    import torch

    from surfrec.field.losses import side_loss

    g = torch.Generator().manual_seed(0)
    f, delta = torch.randn(50, generator=g), torch.rand(50, generator=g)
    side = torch.randint(0, 2, (50,), generator=g) * 2.0 - 1.0
    ref = np.mean([max(0.0, 0.2 * d - s * (v - 0.3)) if s > 0 else max(0.0, v - 0.3 + 0.2 * d)
                   for v, s, d in zip(f.tolist(), side.tolist(), delta.tolist())])
    assert float(side_loss(f, side, delta, level=0.3, margin=0.2)) == pytest.approx(ref, rel=1e-6)
    # satisfied sides cost nothing
    assert float(side_loss(torch.tensor([1.0, -1.0]), torch.tensor([1.0, -1.0]), torch.full((2,), 0.1))) == 0.0


def _wavy_sheet(n: int, seed: int = 0) -> np.ndarray:
    xy = np.random.default_rng(seed).uniform(-1, 1, size=(n, 2))
    return np.column_stack([xy, 0.25 * np.sin(2.5 * xy[:, 0]) * np.cos(2 * xy[:, 1])])


def test_single_view_sheet_is_fitted_open_and_covered():
    """A wavy open sheet (a terrain-like single view): decided open before the fit, the field
    crosses its level at the sheet, and the written mesh covers the scan with no invented
    surface; the decision and its evidence are in the report and the model file."""
    from surfrec.run import fit, mesh_config, mesh_stages, summary_line
    from surfrec.surface.support import measure_support

    pts = _wavy_sheet(4000)
    res = fit(pts, preset="fast", iterations=300, device="cpu", threads=1, seed=0)
    assert res.shape.fit_surface == "open" and res.shape.closure > 0.8
    assert res.input.closure == res.shape.closure and "orient" in res.timings
    mesh, report = mesh_stages(res, mesh_config(res, resolution=64), device="cpu")
    assert report.surface.surface == "open"
    assert not mesh.is_watertight
    rep = measure_support(mesh.vertices, mesh.faces, pts)
    assert rep.cover > 0.97 and rep.phantom < 0.03
    assert "closure of the scan normals" in summary_line(report.surface, report.support, shape=res.shape)


def test_open_fit_model_file_keeps_the_decision(tmp_path):
    from surfrec.run import fit
    from surfrec.result import load_model, save_model

    res = fit(_wavy_sheet(1500), preset="fast", iterations=5, device="cpu", threads=1, seed=0)
    save_model(res, tmp_path / "m.pt")
    assert load_model(tmp_path / "m.pt").shape == res.shape


def test_closed_scan_fit_is_unchanged_by_the_decision():
    """A closed scan takes the closed path: the same model as with the decision off."""
    import torch

    from surfrec.run import fit

    p = _sphere(2000) * 0.7
    a = fit(p, preset="fast", iterations=40, device="cpu", threads=1, seed=0)
    b = fit(p, preset="fast", iterations=40, device="cpu", threads=1, seed=0, surface="closed")
    assert a.shape.fit_surface == "closed" and a.shape.closure < 0.05
    assert b.shape.fit_surface == "closed"
    c = fit(p, preset="fast", iterations=1, device="cpu", threads=1, seed=0, sign_weight=0.0,
            closed_side_weight=0.0, surface="closed")
    assert c.shape.fit_surface == "closed" and c.shape.closure is None  # nothing measured: no orientation needed
    assert c.input.closure is None
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_open_fit_follows_density_that_varies_100x():
    """A wavy sheet whose density falls 100x from one side to the other (a depth camera's
    near and far): fitted open, the sparse far side is covered too."""
    from surfrec.run import fit
    from surfrec.run import extract_mesh
    from surfrec.surface.support import measure_support, point_mesh_distance

    rng = np.random.default_rng(1)
    p = _wavy_sheet(30000)
    pts = p[rng.random(len(p)) < 10 ** (-(p[:, 0] + 1))]  # keep 100% at x = -1, 1% at x = 1
    res = fit(pts, preset="fast", iterations=400, device="cpu", threads=1, seed=0)
    assert res.shape.fit_surface == "open"
    mesh = extract_mesh(res, resolution=96, device="cpu")
    rep = measure_support(mesh.vertices, mesh.faces, pts)
    far = pts[:, 0] > 0.3
    d = point_mesh_distance(pts[far], mesh.vertices, mesh.faces)
    assert rep.cover > 0.97 and rep.phantom < 0.03
    assert np.mean(d <= 2 * rep.spacing) > 0.95  # the sparse side, in the scan's median spacing


def test_bounded_nearest_searches_match_brute_force():
    """``NearestPoints.indices(upto=r)`` and ``vertex_support(upto=r)`` (the open fit's sample
    term, trimming) against brute force: the nearest point within r, else −1 / inf."""
    import torch

    from surfrec.input.index import NearestPoints, SpatialIndex
    from surfrec.surface.support import vertex_support

    rng = np.random.default_rng(7)
    pts = rng.uniform(-1, 1, size=(500, 3)).astype(np.float32)
    q = rng.uniform(-1.5, 1.5, size=(300, 3)).astype(np.float32)
    d = np.linalg.norm(q[:, None].astype(np.float64) - pts[None], axis=2)
    near, dmin = d.argmin(1), d.min(1)
    r = 0.15
    got = NearestPoints(SpatialIndex(pts)).indices(torch.from_numpy(q), upto=r)
    assert np.array_equal(got, np.where(dmin <= r, near, -1))
    assert 0 < (got >= 0).sum() < len(q)  # both cases occur
    assert np.array_equal(NearestPoints(SpatialIndex(pts)).indices(torch.from_numpy(q)), near)
    s = 0.05
    v = vertex_support(q, pts, spacing=s, upto=r / s)
    inside = dmin <= r
    np.testing.assert_allclose(v[inside], dmin[inside] / s, rtol=1e-5)
    assert np.isinf(v[~inside]).all()


# ------------------------------------------------------------------ winding number (sign push)
def _naive_winding(c: np.ndarray, m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Σ_j m_j · (c_j − x) / (4π |c_j − x|³), one query and one dipole at a time."""
    out = np.zeros(len(x))
    for i in range(len(x)):
        for j in range(len(c)):
            r = c[j] - x[i]
            out[i] += m[j] @ r / (4 * np.pi * np.linalg.norm(r) ** 3)
    return out


def test_winding_numbers_match_naive_sum():
    from surfrec.input.orient import winding_numbers

    rng = np.random.default_rng(3)
    c, m, x = rng.normal(size=(30, 3)), rng.normal(size=(30, 3)), rng.normal(size=(17, 3)) * 2
    assert np.allclose(winding_numbers(c, m, x, chunk=5), _naive_winding(c, m, x), rtol=1e-10, atol=1e-12)


def test_point_areas_add_up_to_the_surface_and_outward_flips_inward_pieces():
    from surfrec.input.orient import outward, point_areas

    p = np.concatenate([_sphere(4000) * 0.3, _sphere(4000, seed=1) * 0.2 + 0.6])
    a = point_areas(p, k=10)
    total = 4 * np.pi * (0.3 ** 2 + 0.2 ** 2)
    assert abs(a.sum() / total - 1) < 0.15
    n = p.copy()
    n[:4000] /= 0.3
    n[4000:] = -(p[4000:] - 0.6) / 0.2  # second piece inward
    out = outward(p, n, np.repeat([0, 1], 4000), a)
    assert np.allclose(out[:4000], n[:4000]) and np.allclose(out[4000:], -n[4000:])


def test_winding_grid_is_one_inside_zero_outside_far_from_the_scan():
    from surfrec.input.orient import point_areas, winding_grid

    p = _sphere(6000) * 0.6
    w = winding_grid(p, p / 0.6, point_areas(p, k=10), resolution=16, box=1.0)
    g = np.linspace(-1, 1, 17)
    r = np.linalg.norm(np.stack(np.meshgrid(g, g, g, indexing="ij"), -1), axis=-1)
    assert np.abs(w[r < 0.45] - 1).max() < 0.05
    assert np.abs(w[r > 0.75]).max() < 0.05
    assert w[8, 8, 8] == pytest.approx(1.0, abs=0.03)  # [i, j, k] = (x_i, y_j, z_k): the centre


def test_sign_push_marks_far_samples_by_side_and_moves_them():
    """SignData: a far sample inside a closed scan gets +1, far outside −1, near the data 0;
    one gradient step on the push loss lowers F at a +1 sample and raises it at a −1 one."""
    import torch

    from surfrec.settings import get_config
    from surfrec.field.data import _sign_data
    from surfrec.field.train import sign_push
    from surfrec.field.losses import sign_push_loss
    from surfrec.field.model import ImplicitMLP
    from surfrec.settings import ModelConfig

    p = (_sphere(5000) * 0.6).astype(np.float32)
    cfg = get_config(None)
    o = scan_orientation(p)
    kth = np.full(len(p), 0.01, np.float32)
    from surfrec.input.orient import outward, point_areas

    area = point_areas(p, cfg.input.orient_k, knn=o.knn)
    signs = _sign_data(p, outward(p, o.normals, o.labels, area), area, cfg.fit, kth, torch.device("cpu"))
    assert signs.far == pytest.approx(max(4 * 0.01, 2.0 / 32))
    # the lookup honours the x, y, z order: a point off-centre along x only
    ps = torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.0, 0.0], [0.0, 0.61, 0.0], [0.3, 0.0, 0.0]])
    target = ps / ps.norm(dim=1, keepdim=True).clamp_min(1e-9) * 0.6
    target[0] = torch.tensor([0.6, 0.0, 0.0])
    assert sign_push(signs, ps, target).tolist() == [1.0, -1.0, 0.0, 1.0]

    torch.manual_seed(0)
    model = ImplicitMLP(ModelConfig(hidden_dim=16, n_hidden_layers=2))
    x = torch.tensor([[0.1, 0.2, 0.0], [0.5, -0.1, 0.2]])
    f0, g = model.value_and_grad(x)
    side = torch.tensor([1.0, -1.0])
    loss = sign_push_loss(model(x), f0, side, 2)
    loss.backward()
    with torch.no_grad():
        for q in model.parameters():
            q -= 1e-3 * q.grad
        f1 = model(x)
    assert f1[0] < f0[0] and f1[1] > f0[1]


class _TwoSpheres:
    """F(x) = s (‖x‖ − r_out)(‖x‖ − r_in): level set c = 0 is two concentric spheres."""

    def __new__(cls, r_out: float, r_in: float):
        import torch

        class Field(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.s = torch.nn.Parameter(torch.tensor(1.0))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                r = x.norm(dim=1)
                return self.s * (r - r_out) * (r - r_in)

        return Field()


def test_sign_push_starts_at_sign_after_and_pushed_samples_leave_the_pull():
    """In the loop's loss: before ``sign_after`` of the steps every usable sample is pulled
    to the data (no sign term); after it, samples of a bubble inside the closed scan get
    the sign term and leave the pull, which then only holds the samples on the scan."""
    import torch

    from surfrec.settings import get_config
    from helpers import fit_data
    from surfrec.field.levelset import value_and_grad
    from surfrec.field.train import FitState, _loss

    cfg = get_config(None, iterations=100, sign_after=0.2, device="cpu", threads=1, seed=0,
                     distance_weight=0.0, eikonal_weight=0.0)
    data = fit_data(_sphere(4000) * 0.6, cfg)[0]
    cfg = cfg.fit
    assert data.signs is not None
    r = float(np.linalg.norm(data.points, axis=1).mean())
    field = _TwoSpheres(r, 0.3 * r)
    d = torch.from_numpy(_sphere(64, seed=1).astype(np.float32))
    st = FitState(model=field, opt=None, gen=torch.Generator().manual_seed(0))

    def terms_at(step: int) -> dict:
        st.buf = torch.cat([d * r, d * (0.3 * r)])  # on the scan's sphere, and a bubble far inside
        st.g_buf = value_and_grad(field, st.buf)[1]
        st.step = step
        _loss(cfg, data, st)
        assert bool(st.usable.all())
        return {k: float(v.detach()) for k, v in st.terms.items()}

    early = terms_at(19)  # sign_after · iterations = 20
    assert "sign" not in early
    late = terms_at(20)
    assert "sign" in late  # (zero in value: linear in F − F₀; it acts through its gradient)
    from scipy.spatial import cKDTree

    on_scan = cKDTree(data.points).query((d * r).numpy())[0].mean()
    assert late["surface"] == pytest.approx(on_scan, rel=1e-3)  # only the samples on the scan are pulled
    assert early["surface"] == pytest.approx(0.5 * on_scan + 0.5 * 0.7 * r, rel=0.02)


def test_surface_variation_matches_naive_and_tells_planes_from_scatter():
    """``estimate_normals(return_variation=True)``: λ₀/(λ₀+λ₁+λ₂) of each neighbourhood, as a
    brute-force eigen-decomposition gives it; ≈ 0 on a plane, ≈ 1/3 for isotropic scatter."""
    p = _sphere(500, seed=3) * [1.0, 0.7, 0.5]
    _, var = estimate_normals(p, k=12, return_variation=True)
    d = np.linalg.norm(p[:, None] - p[None], axis=2)
    ref = np.empty(len(p))
    for i in range(len(p)):
        nb = p[np.argsort(d[i])[:12]]
        w = np.linalg.eigvalsh(np.cov((nb - nb.mean(0)).T))
        ref[i] = w[0] / w.sum()
    assert np.allclose(var, ref, atol=1e-9)
    rng = np.random.default_rng(0)
    plane = np.column_stack([rng.uniform(-1, 1, (800, 2)), np.zeros(800)])
    assert estimate_normals(plane, k=16, return_variation=True)[1].max() < 1e-12
    cloud = rng.normal(size=(800, 3))
    assert np.median(estimate_normals(cloud, k=16, return_variation=True)[1]) > 0.15


def test_closed_side_term_takes_trusted_outward_normals_and_keeps_the_pull():
    """A closed fit with ``closed_side_weight``: the side term's points are the scan's, with
    outward normals; the sample term still pulls every usable sample to its nearest scan
    point (not the open path's sheet selection); a noisy scan, whose normals cannot be
    trusted, gets no side term."""
    import torch

    from scipy.spatial import cKDTree

    from helpers import fit_data
    from surfrec.field.levelset import value_and_grad
    from surfrec.field.train import FitState, _loss
    from surfrec.settings import get_config

    cfg = get_config(None, iterations=100, device="cpu", threads=1, seed=0, closed_side_weight=1.0)
    data, shape, _ = fit_data(_sphere(4000) * 0.6, cfg)
    sides = data.sides
    assert shape.fit_surface == "closed" and sides is not None and data.sheet is None
    assert data.closed_side is True and data.closed_side_share > 0.99
    radial = sides.points / sides.points.norm(dim=1, keepdim=True)
    assert float((sides.normals * radial).sum(dim=1).min()) > 0.95  # outward, not inward

    r = float(np.linalg.norm(data.points, axis=1).mean())
    field = _TwoSpheres(r, 0.3 * r)
    d = torch.from_numpy(_sphere(64, seed=1).astype(np.float32))
    st = FitState(model=field, opt=None, gen=torch.Generator().manual_seed(0))
    st.buf = torch.cat([d * r, d * (0.3 * r)])  # on the scan; a bubble whose ∇F faces inwards
    st.g_buf = value_and_grad(field, st.buf)[1]
    st.step = 0
    _loss(get_config(cfg, sign_weight=0.0).fit, data, st)
    assert "side" in st.terms and bool(st.usable.all())
    pulled = cKDTree(data.points).query(st.buf.numpy())[0].mean()
    assert float(st.terms["surface"].detach()) == pytest.approx(pulled, rel=1e-3)

    noisy = _sphere(4000) * 0.6 + np.random.default_rng(1).normal(scale=0.03, size=(4000, 3))
    nd = fit_data(noisy, cfg)[0]
    assert nd.sides is None and nd.closed_side is False
    assert fit_data(_sphere(4000) * 0.6, get_config(cfg, closed_side_weight=0.0))[0].sides is None


def test_closed_side_term_needs_half_of_the_points_trusted():
    """The closed side term runs only when at least ``closed_side_min_share`` of the points
    pass the variation test: a scan whose noisy part outweighs its clean part gets none
    (a few trusted points steered the noisy simscan wrong), the same scan with the share
    lowered gets it on the clean points only."""
    import torch

    from helpers import fit_data
    from surfrec.settings import get_config

    p = _sphere(6000, seed=5) * 0.6
    noisy = p[:, 2] < 0.3  # ~75% of the sphere: the cap above z = 0.3 stays clean
    p[noisy] += np.random.default_rng(2).normal(scale=0.03, size=(int(noisy.sum()), 3))
    cfg = get_config(None, device="cpu", threads=1, seed=0, closed_side_weight=1.0)
    off = fit_data(p, cfg)[0]
    assert off.sides is None and off.closed_side is False
    assert 0.05 < off.closed_side_share < 0.5
    on = fit_data(p, get_config(cfg, closed_side_min_share=0.05))[0]
    assert on.sides is not None and on.closed_side is True
    assert on.sides.points.shape[0] == round(on.closed_side_share * len(on.points))
    assert float((on.sides.points[:, 2] > 0).float().mean()) > 0.9  # the trusted points: the clean cap's
