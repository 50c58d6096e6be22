"""The level-set machinery against independent references (bisection, analytic fields),
and the numbers docs/studies.md publishes, asserted on a small sphere network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surfrec.field.levelset import newton_iterate, project_to_level_set
from surfrec.field.losses import sample_network
from helpers import perturbed_mlp


def _model():
    return perturbed_mlp()


def _bisect(fn, lo: torch.Tensor, hi: torch.Tensor, iters: int = 200) -> torch.Tensor:
    """Roots t of fn(t) = 0 per row, with fn(lo) < 0 < fn(hi) (checked)."""
    assert bool((fn(lo) < 0).all() and (fn(hi) > 0).all()), "bracket does not hold"
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        neg = fn(mid) < 0
        lo, hi = torch.where(neg, mid, lo), torch.where(neg, hi, mid)
    return 0.5 * (lo + hi)


def _shift(params, direction, h):
    with torch.no_grad():
        for p, d in zip(params, direction):
            p.add_(h * d)


def test_sample_network_theta_gradient_matches_resolved_level_set_point():
    """∂p(θ)/∂θ·δ, projected on the normal, against a finite difference of the *true* level-set
    point: re-solve F(p* + t n; θ ± hδ) = c by bisection along the normal n at p*."""
    m, c = _model(), 0.0
    seeds = torch.rand(40, 3, dtype=torch.float64) * 1.2 - 0.6
    proj = project_to_level_set(m, seeds, c, max_steps=40, tol=1e-13, box=None)
    p_star = proj.points[proj.converged]
    assert len(p_star) >= 10
    _, g = m.gradient(p_star)
    n = (g / g.norm(dim=1, keepdim=True)).detach()
    weights = torch.randn(len(p_star), dtype=torch.float64)
    m.zero_grad()
    ((sample_network(m, p_star) * n).sum(1) * weights).sum().backward()
    params = list(m.parameters())
    direction = [torch.randn_like(p) for p in params]
    analytic = sum((p.grad * d).sum() for p, d in zip(params, direction)).item()

    def root(h: float) -> torch.Tensor:
        _shift(params, direction, h)
        with torch.no_grad():
            t = _bisect(lambda t: m(p_star + t.unsqueeze(1) * n) - c,
                        torch.full((len(p_star),), -1e-3, dtype=torch.float64),
                        torch.full((len(p_star),), 1e-3, dtype=torch.float64))
        _shift(params, direction, -h)
        return t

    h = 1e-6
    numeric = ((root(h) - root(-h)) / (2 * h) * weights).sum().item()
    assert abs(analytic - numeric) <= 1e-4 * max(1.0, abs(numeric))


def _torus_sdf(x: torch.Tensor, R: float = 0.5, r: float = 0.2) -> torch.Tensor:
    q = torch.stack([torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2) - R, x[:, 2]], dim=1)
    return q.norm(dim=1) - r


def test_newton_projection_matches_bisection_on_a_torus_sdf():
    """On an exact SDF the Newton iterate from x stays on the line x − t∇F(x); the reference
    point is the root of F(x − t∇F(x)) = c on that line, found by bisection."""
    c = 0.05
    g = torch.Generator().manual_seed(1)
    x = torch.rand(400, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8
    f0 = _torus_sdf(x)
    # away from the medial axes (the circle of radius R and the z axis), where ∇F is undefined
    rho = torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2)
    q = torch.sqrt((rho - 0.5) ** 2 + x[:, 2] ** 2)
    x = x[(q > 0.05) & (rho > 0.05) & ((f0 - c).abs() < 0.4)]
    proj = project_to_level_set(_torus_sdf, x, c, max_steps=10, tol=1e-6, box=None)  # float32 there
    assert bool(proj.converged.all()) and len(x) > 100
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_torus_sdf(xr).sum(), xr)
    sign = torch.sign(_torus_sdf(x) - c)  # move against the gradient when above the level
    t = _bisect(lambda t: -sign * (_torus_sdf(x - (sign * t).unsqueeze(1) * grad) - c),
                torch.zeros(len(x), dtype=torch.float64), 1.5 * (_torus_sdf(x) - c).abs())
    reference = x - (sign * t).unsqueeze(1) * grad
    assert torch.allclose(proj.points.double(), reference, atol=2e-6)
    # and the fit's plain iteration is the same method
    p, f, _ = newton_iterate(_torus_sdf, x, c, steps=3)
    assert torch.allclose(p, reference, atol=1e-8) and float((f - c).abs().max()) < 1e-10


# ------------------------------------------------------- published study numbers
@pytest.fixture(scope="module")
def sphere_network():
    """A small network fitted to a sphere scan, as the studies fit it (quick settings)."""
    from surfrec.studies import common

    case = common.sphere_case(n_points=400)
    res = common.fit_case(case, quick=True, device="cpu", seed=0)
    seeds = common.fit_like_seeds(res.normalization.to_unit(case.points).astype(np.float32), 2000, seed=7)
    return res.model, seeds


def test_newton_reaches_1e5_within_five_evaluations_per_seed(sphere_network):
    """docs/studies.md §1: Newton brings 90% of the seeds below 1e-5 in 3-4 evaluations per seed."""
    from surfrec.studies.projection import newton_projection

    model, seeds = sphere_network
    tr = newton_projection(model, seeds, 0.0, steps=20)
    _, evals = tr.first_reaching(1e-5, 0.9)
    assert np.isfinite(evals) and evals / len(seeds) <= 5.0


def test_ten_newton_steps_put_samples_on_the_level_set(sphere_network):
    """docs/studies.md §2: after 10 steps ≥ 99.7% of the seeds are below 1e-5, and every
    failure is a seed that left the box."""
    from surfrec.studies.residuals import classify_failures, newton_history

    model, seeds = sphere_network
    hist = newton_history(model, seeds, 0.0, steps=10)
    r = np.abs(hist["r"][-1])
    ok = (r < 1e-5) & ~hist["left"]
    assert ok.mean() >= 0.997
    reasons = classify_failures(hist, tol=1e-5)
    assert set(reasons[~ok]) <= {"left box"}
