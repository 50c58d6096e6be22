"""End-to-end fits of small generated shapes (CPU, a few seconds each)."""

import copy
import math

import numpy as np
import pytest
import torch

from surfrec.errors import FitDivergedError
from surfrec.field.optim import level_weights
from surfrec.result import FitResult, load_model, save_model
from surfrec.run import extract_mesh, fit
from surfrec.settings import PRESETS, ModelConfig, ReconstructionConfig, get_config


def _torus(n: int, seed: int = 0, R: float = 1.0, r: float = 0.4) -> np.ndarray:
    """Points uniform in area on a torus (rejection on the area element)."""
    rng = np.random.default_rng(seed)
    out = []
    while sum(len(o) for o in out) < n:
        u, v = rng.uniform(0, 2 * math.pi, (2, 4 * n))
        keep = rng.uniform(0, 1, 4 * n) < (R + r * np.cos(v)) / (R + r)
        u, v = u[keep], v[keep]
        out.append(np.stack([(R + r * np.cos(v)) * np.cos(u), (R + r * np.cos(v)) * np.sin(u), r * np.sin(v)], 1))
    return np.concatenate(out)[:n] + np.array([3.0, -1.0, 2.0])


def _torus_distance(x: np.ndarray, R: float = 1.0, r: float = 0.4) -> np.ndarray:
    x = x - np.array([3.0, -1.0, 2.0])
    q = np.hypot(x[:, 0], x[:, 1]) - R
    return np.abs(np.hypot(q, x[:, 2]) - r)


SMALL = dict(iterations=150, batch_points=1024, n_samples=1024, n_distance_samples=512,
             device="cpu", threads=1, log_every=10)


def _small_config(encoding: str = "none") -> ReconstructionConfig:
    model = (ModelConfig(encoding="grid", hidden_dim=32, n_hidden_layers=2, grid_levels=3,
                         grid_min_res=8, grid_max_res=32)
             if encoding == "grid" else ModelConfig(hidden_dim=32, n_hidden_layers=3))
    return get_config("default", model=model, **SMALL)


@pytest.fixture(scope="module")
def torus_fit() -> tuple[np.ndarray, FitResult]:
    pts = _torus(2000)
    return pts, fit(pts, config=_small_config())


def test_fit_recovers_a_torus(torus_fit):
    pts, res = torus_fit
    mesh = extract_mesh(res, resolution=64, device="cpu")
    surf = mesh.sample(5000, seed=0) if "seed" in mesh.sample.__code__.co_varnames else mesh.sample(5000)
    acc = _torus_distance(np.asarray(surf)).mean()                     # reconstruction -> truth
    from scipy.spatial import cKDTree
    comp = cKDTree(np.asarray(surf)).query(pts)[0].mean()              # data -> reconstruction
    assert acc < 0.03 and comp < 0.05, (acc, comp)                      # torus tube radius 0.4
    assert res.steps == SMALL["iterations"]
    for key in ("loss", "residual_median", "surface", "data", "distance"):
        assert len(res.history[key]) == len(res.history["step"]) > 0
    assert np.isfinite(res.history["loss"]).all()


@pytest.mark.parametrize("encoding", ["none", "grid"])
def test_same_seed_same_result(encoding):
    pts = _torus(500, seed=1)
    cfg = get_config(_small_config(encoding), iterations=20)
    a, b = fit(pts, config=cfg), fit(pts, config=cfg)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    c = fit(pts, config=cfg, seed=1)
    assert not torch.equal(a.model.out.weight, c.model.out.weight)


def test_step_hook_sees_the_loop_and_can_stop_it():
    """A fit stopped by the on_step hook at step 10 holds the weights the full run had at step 10
    (the loop's steps are deterministic and the hook changes nothing else)."""
    pts = _torus(500, seed=1)
    cfg = get_config(_small_config(), iterations=20)
    seen = {}

    def watch(st):
        if st.step == 10:
            seen.update(copy.deepcopy(st.model.state_dict()))
        assert st.loss is not None and "data" in st.terms

    full = fit(pts, config=cfg, on_step=watch)
    assert full.steps == 20
    stopped = fit(pts, config=cfg, on_step=lambda st: st.step == 10)
    assert stopped.steps == 10
    for k, v in stopped.model.state_dict().items():
        assert torch.equal(v, seen[k]), k


def test_reconstruct_is_fit_then_extract():
    from surfrec.run import reconstruct

    pts = _torus(500, seed=5)
    cfg = get_config(_small_config(), iterations=10, resolution=32)
    rec = reconstruct(pts, config=cfg)
    again = extract_mesh(fit(pts, config=cfg), device="cpu")
    assert np.array_equal(rec.mesh.vertices, again.vertices) and np.array_equal(rec.mesh.faces, again.faces)
    assert rec.result.steps == rec.report.fit.steps == 10
    assert rec.report.input.points == 500 - rec.report.input.near_duplicates and rec.report.timings.fit > 0


def test_one_spatial_index_per_fit(monkeypatch):
    """Seeds, loss, component filter and refinement share the fit's KD-tree (one over the
    normalized points; the input inspection's merge rounds have trees of their own, over
    the scan in its units)."""
    import surfrec.input.index as index

    built = []
    real = index.SpatialIndex.__init__

    def counting(self, points):
        built.append((len(points), str(points.dtype)))
        real(self, points)

    monkeypatch.setattr(index.SpatialIndex, "__init__", counting)
    pts = _torus(3000, seed=6)
    res = fit(pts, config=get_config(_small_config(), iterations=5))
    extract_mesh(res, resolution=48, device="cpu")
    fit_trees = [b for b in built if b[1] == "float32"]
    assert fit_trees == [(len(res.data_points), "float32")]
    assert len(built) - len(fit_trees) <= 2  # a merge round that merged, one that found nothing


def test_time_budget_stops_the_fit():
    pts = _torus(500, seed=2)
    res = fit(pts, config=_small_config(), iterations=100_000, time_budget=1.0)
    assert 0 < res.steps < 100_000
    assert res.seconds < 5.0


def test_save_load_round_trip(torus_fit, tmp_path):
    _, res = torus_fit
    path = save_model(res, tmp_path / "torus.pt")
    back = load_model(path)
    x = np.random.default_rng(0).uniform(-1, 1, (200, 3)).astype(np.float32)
    assert np.array_equal(res.field()(x), back.field()(x))
    assert back.config == res.config and back.steps == res.steps


def test_grid_model_fits_and_round_trips(tmp_path):
    pts = _torus(500, seed=4)
    res = fit(pts, config=_small_config("grid"), iterations=20, coarse_to_fine=0.5, grid_decay_weight=0.1)
    assert res.model.config.encoding == "grid" and not res.model.sparse_grid_grad
    assert torch.equal(res.model.level_weights, torch.ones(3))          # all levels on at the end
    back = load_model(save_model(res, tmp_path / "grid.pt"))
    x = np.random.default_rng(0).uniform(-1, 1, (200, 3)).astype(np.float32)
    assert np.array_equal(res.field()(x), back.field()(x))


@pytest.mark.parametrize("engine", ["torch", "fused"])
def test_non_finite_loss_rolls_back_then_raises(monkeypatch, engine):
    """Two non-finite losses are rolled back (lower learning rate, fresh samples) and the fit
    goes on; a loss that stays non-finite ends the fit with FitDivergedError (both loops)."""
    import dataclasses

    import surfrec.field.step as step
    import surfrec.field.train as fitting

    calls = {"n": 0}
    if engine == "torch":
        real, where, name = fitting.surface_sample_loss, fitting, "surface_sample_loss"

        def poisoned(p_theta, targets):
            calls["n"] += 1
            out = real(p_theta, targets)
            return out * float("nan") if calls["n"] in (3, 4) else out

        def always(p, t):
            return real(p, t) * float("nan")
    else:
        real, where, name = step.loss_weights, step, "loss_weights"

        def poisoned(*args):
            calls["n"] += 1
            out = real(*args)
            return dataclasses.replace(out, loss=float("nan")) if calls["n"] in (3, 4) else out

        def always(*args):
            return dataclasses.replace(real(*args), loss=float("nan"))

    monkeypatch.setattr(where, name, poisoned)
    pts = _torus(500, seed=3)
    res = fit(pts, config=_small_config("none"), iterations=10, engine=engine)     # two bad steps: recovered
    assert res.steps == 10 and calls["n"] >= 12
    assert all(np.isfinite(p).all() for p in (t.detach().numpy() for t in res.model.parameters()))

    monkeypatch.setattr(where, name, always)
    with pytest.raises(FitDivergedError):
        fit(pts, config=_small_config("none"), iterations=10, engine=engine)


def test_presets_and_overrides():
    assert set(PRESETS) >= {"fast", "default", "quality"}
    cfg = get_config("fast", iterations=7, lr=None)
    assert cfg.fit.iterations == 7 and cfg.fit.lr == PRESETS["fast"].fit.lr
    assert ReconstructionConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="ambiguous"):
        get_config("fast", level=0.1)  # the fitted level or the extracted one: say fit.level or mesh.level
    assert get_config("fast", **{"mesh.level": 0.1}).mesh.level == 0.1
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("nope")


def test_coarse_to_fine_weights():
    assert level_weights(3, 0.0, 0.5) == [1.0, 0.0, 0.0]
    assert level_weights(3, 0.125, 0.5) == [1.0, 0.5, 0.0]
    assert level_weights(3, 0.6, 0.5) == [1.0, 1.0, 1.0]


def test_two_stage_nearest_points_match_exact_search_near_the_data():
    from scipy.spatial import cKDTree

    from surfrec.input.index import COARSE_NN_ABOVE, NearestPoints, SpatialIndex

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(COARSE_NN_ABOVE + 1000, 3)).astype(np.float32)
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    nn = NearestPoints(SpatialIndex(pts))
    assert nn.coarse is not None
    near_q = torch.from_numpy(pts[:500] * 1.001)
    far_q = torch.from_numpy(rng.normal(size=(500, 3)).astype(np.float32) * 0.1)
    exact = cKDTree(pts)
    got = nn(near_q).numpy()
    assert np.array_equal(got, pts[exact.query(near_q.numpy())[1]])
    d_true = exact.query(far_q.numpy())[0]
    d_got = np.linalg.norm(nn(far_q).numpy() - far_q.numpy(), axis=1)
    assert np.all(d_got <= d_true * 1.05 + 1e-6)


def test_adam_matches_torch_adam():
    from surfrec.field.optim import Adam

    torch.manual_seed(0)
    a = [torch.randn(5, 3, requires_grad=True), torch.randn(3, requires_grad=True)]
    b = [t.detach().clone().requires_grad_(True) for t in a]
    ours = Adam([{"params": a, "base_lr": 1e-2}], lr=1e-2)
    ref = torch.optim.Adam(b, lr=1e-2)
    for step in range(30):
        for params, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            loss = (params[0].sin() ** 2).sum() + (params[0] @ params[1]).pow(3).mean()
            loss.backward()
            if step == 10:
                params[1].grad = None  # a parameter without a gradient is skipped, as in torch
            opt.step()
        if step == 15:  # lr changes through param_groups, as the schedule does
            for opt in (ours, ref):
                opt.param_groups[0]["lr"] = 3e-3
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)
    # state round trip (checkpoints) resumes identically
    saved = copy.deepcopy(ours.state_dict())
    again = Adam([{"params": [t.detach().clone().requires_grad_(True) for t in a], "base_lr": 1e-2}], lr=1e-2)
    again.load_state_dict(saved)
    assert again.state[0][0][0] == ours.state[0][0][0] == 30
    torch.testing.assert_close(again.state[0][1][2], ours.state[0][1][2])


def test_presets_stop_on_step_count():
    # the result must not depend on how busy or how big the machine is: a step count, never
    # the clock (the thread count does not matter: tests/test_run.py, tests/test_engine.py)
    for name, cfg in PRESETS.items():
        assert cfg.fit.time_budget is None, name


def test_time_budget_is_opt_in_and_says_it_cut_the_fit_short(tmp_path):
    pts = np.random.default_rng(0).normal(size=(500, 3))
    full = fit(pts, iterations=20, seed=0, device="cpu")
    assert full.stopped_by == "iterations" and full.steps == 20
    assert set(full.timings) >= {"read", "inspect", "index", "start", "fit"}
    assert set(fit(pts, iterations=5, seed=0, device="cpu", engine="torch").timings) >= {"start", "fit"}
    cut = fit(pts, iterations=100_000, time_budget=0.5, seed=0, device="cpu")
    assert cut.stopped_by == "time_budget" and cut.steps < 100_000


def test_fit_restores_the_callers_thread_count():
    import torch

    before = torch.get_num_threads()
    fit(np.random.default_rng(1).normal(size=(300, 3)), iterations=2, threads=1, seed=0, device="cpu")
    assert torch.get_num_threads() == before


def test_refresh_keeps_the_samples_farthest_from_the_data():
    """keep_far_fraction: the refresh never replaces the samples farthest from the data."""
    from surfrec.field.train import FitState, _refresh_indices

    cfg = get_config("default", n_samples=100, keep_far_fraction=0.2).fit
    st = FitState(model=None, opt=None, gen=torch.Generator().manual_seed(0), buf=torch.zeros(100, 3))
    st.d_buf = torch.rand(100, generator=torch.Generator().manual_seed(1))
    far = set(torch.argsort(st.d_buf)[80:].tolist())
    idx = _refresh_indices(cfg, st, 1000)
    assert not far & set(idx.tolist()) and len(set(idx.tolist())) > 60
    st.d_buf = None  # no distances yet (first step, fresh buffer): uniform over all slots
    assert far & set(_refresh_indices(cfg, st, 1000).tolist())


@pytest.mark.parametrize("surface", ["closed", "open"])
def test_lookup_thread_gives_the_same_fit(surface):
    """The nearest-point query in the helper thread (``parallel_nearest``) changes nothing:
    the same weights as the query in line, on the closed path (sign push on) and the open one."""
    if surface == "open":
        rng = np.random.default_rng(3)
        xy = rng.uniform(-1, 1, (1500, 2))
        pts = np.column_stack([xy, 0.2 * np.sin(3 * xy[:, 0])])
    else:
        pts = _torus(1500, seed=3)
    cfg = get_config(_small_config(), iterations=40, sign_after=0.25, surface=surface)
    a = fit(pts, config=get_config(cfg, parallel_nearest=True))
    b = fit(pts, config=get_config(cfg, parallel_nearest=False))
    assert a.shape.fit_surface == surface
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    assert not torch.equal(a.model.out.weight, fit(pts, config=get_config(cfg, iterations=39)).model.out.weight)


def test_eikonal_term_alone_has_its_points():
    """eikonal_weight > 0 with the distance term off: the eikonal term gets its own points
    (it once got an empty batch, a NaN loss, and the fit diverged at step 0)."""
    pts = _torus(800, seed=4)
    res = fit(pts, config=get_config(_small_config(), iterations=15, eikonal_weight=0.1, distance_weight=0.0))
    assert res.steps == 15 and np.isfinite(res.history["loss"]).all()


def test_slope_term_keeps_the_field_from_flattening_on_a_noisy_scan():
    """On a noisy scan the data term λ·|F − c| is lowered by flattening F (the sample terms do
    not depend on F's scale): without the slope term ‖∇F‖ at the data falls far below 1;
    with it, it stays near 1."""
    from surfrec.field.levelset import value_and_grad

    pts = _torus(2000, seed=7)
    pts = pts + np.random.default_rng(0).normal(scale=0.03, size=pts.shape)

    def median_slope(weight: float) -> float:
        r = fit(pts, config=get_config(_small_config(), iterations=300, slope_weight=weight))
        x = torch.from_numpy(r.normalization.to_unit(pts).astype(np.float32))
        return float(value_and_grad(r.model, x)[1].norm(dim=1).median())

    assert median_slope(0.0) < 0.4
    assert median_slope(0.1) > 0.7


def test_a_scan_above_the_cap_is_fitted_on_the_kept_subset():
    """Above ``input.max_data_points`` the fit draws its batches and nearest points from the
    random subset kept with the model (its steps then cost what a scan of that size costs);
    at or below it, from every point in the scan's order."""
    from surfrec.field.data import prepare_fit
    from surfrec.input.inspect import inspect_scan
    from surfrec.io import PointCloud
    from surfrec.settings import FitConfig, InputConfig

    pts = np.random.default_rng(3).normal(size=(3000, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    cfg = FitConfig()
    big = inspect_scan(PointCloud.from_arrays(pts), InputConfig(max_data_points=1000))
    data = prepare_fit(big, False, cfg, torch.device("cpu"))
    assert len(big.points) > 1000 and data.points.shape == (1000, 3)
    assert np.array_equal(data.points, big.data_points) and len(data.nearest.points) == 1000
    small = inspect_scan(PointCloud.from_arrays(pts), InputConfig())
    data = prepare_fit(small, False, cfg, torch.device("cpu"))
    assert np.array_equal(data.points, small.points) and len(data.nearest.points) == len(small.points)
