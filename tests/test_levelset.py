import numpy as np
import pytest
import torch

from surfrec.field.levelset import draw_seeds, knn_sigma, project_to_level_set, value_and_grad
from surfrec.field.model import ImplicitMLP
from surfrec.settings import ModelConfig


def sphere_sdf(r: float = 0.5):
    return lambda x: x.norm(dim=1) - r


@pytest.mark.parametrize("level", [0.0, 0.2, -0.3])
def test_newton_reaches_level_on_sphere_sdf_in_five_steps(level):
    gen = torch.Generator().manual_seed(0)
    seeds = torch.rand(2000, 3, generator=gen) * 1.6 - 0.8
    seeds = seeds[seeds.norm(dim=1) > 0.05]  # the gradient is undefined at the centre
    proj = project_to_level_set(sphere_sdf(0.5), seeds, level, max_steps=5, tol=1e-6, box=None)
    assert proj.steps <= 5
    assert float(proj.residuals.max()) < 1e-6
    assert bool(proj.converged.all())
    assert torch.allclose(proj.points.norm(dim=1), torch.full((len(seeds),), 0.5 + level), atol=1e-5)


def test_projection_accepts_numpy_and_reports_failures():
    pts = np.array([[0.3, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    flat = lambda x: torch.zeros(len(x)) + 1.0 + 0.0 * x.sum(dim=1)  # F = 1 everywhere: no level set
    proj = project_to_level_set(flat, pts, 0.0, max_steps=3)
    assert isinstance(proj.points, np.ndarray)
    assert proj.zero_gradient.all() and not proj.converged.any()
    far = project_to_level_set(sphere_sdf(3.0), pts[:1], 0.0, box=1.0)
    assert far.left_box.all() and not far.converged.any()


def test_projection_on_network_uses_closed_form_gradient():
    torch.manual_seed(0)
    m = ImplicitMLP(ModelConfig(hidden_dim=64, n_hidden_layers=3))
    seeds = torch.rand(1000, 3) * 1.6 - 0.8
    proj = project_to_level_set(m, seeds, 0.05, max_steps=20, tol=1e-5)
    assert proj.summary()["converged"] > 0.95
    f, _ = value_and_grad(m, proj.points[proj.converged])
    assert float((f - 0.05).abs().max()) < 1e-5


def test_knn_sigma_matches_brute_force():
    rng = np.random.default_rng(0)
    pts = rng.random((300, 3))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    d.sort(axis=1)
    assert np.allclose(knn_sigma(pts, k=5), d[:, 5])


def test_draw_seeds_counts_and_spread():
    gen = torch.Generator().manual_seed(1)
    pts = torch.zeros(10, 3)
    sigma = torch.full((10,), 0.01)
    s = draw_seeds(pts, sigma, 1000, uniform_fraction=0.3, bounds=(-1, 1), generator=gen)
    assert s.shape == (1000, 3)
    gau, uni = s[:700], s[700:]
    assert gau.std().item() == pytest.approx(0.01, rel=0.2)
    assert uni.abs().max() <= 1 and uni.std().item() > 0.4
    with pytest.raises(ValueError):
        draw_seeds(pts, sigma, 10, uniform_fraction=1.5)


def test_seed_sigmas_clip_duplicates_and_outliers_or_use_a_fixed_value():
    from surfrec.field.levelset import seed_sigmas

    rng = np.random.default_rng(0)
    pts = rng.random((500, 3))
    pts = np.concatenate([pts, pts[:20], [[50.0, 50.0, 50.0]]])  # duplicates and one far outlier
    s = seed_sigmas(pts, k=1)
    med = np.median(knn_sigma(pts, k=1))
    assert s.min() >= 0.1 * med - 1e-12 and s.max() <= 10 * med + 1e-12
    assert np.all(seed_sigmas(pts, fixed=0.02) == 0.02)
    with pytest.raises(ValueError):
        seed_sigmas(pts, fixed=0.0)
