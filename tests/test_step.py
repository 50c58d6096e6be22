"""The fused step against torch autograd: on random networks and batches, the loss, dL/dF,
every θ-gradient and the weights after Adam agree to float32 tolerance, for every loss term
the default and the presets use (sample pull, sign push, data, side, slope; closed and open)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surfrec.field.engine import FusedMLP
from surfrec.field.losses import sample_network, side_loss, sign_push_loss, slope_loss, surface_sample_loss
from surfrec.field.model import ImplicitMLP
from surfrec.field.optim import Adam
from surfrec.field.step import Batch, loss_weights
from surfrec.settings import FitConfig, ModelConfig


def _batch(rng: np.random.Generator, model: ImplicitMLP, m=96, nb=64, ns=32, nl=24, open_surface=False,
           sign_on=False) -> Batch:
    f32 = np.float32
    ps = rng.uniform(-0.7, 0.7, (m, 3)).astype(f32)
    with torch.no_grad():
        g0 = model.value_and_grad(torch.from_numpy(ps))[1].numpy()
    g0[:3] = 0.0  # vanishing gradients: left out
    target = (ps + rng.normal(scale=0.05, size=(m, 3))).astype(f32)
    target[:5] = ps[:5]  # a sample on its target: zero distance, no direction
    b = Batch(ps=ps, g0=g0, target=target, near=rng.random(m) > 0.2, xb=rng.uniform(-0.8, 0.8, (nb, 3)).astype(f32),
              xs=rng.uniform(-0.8, 0.8, (ns, 3)).astype(f32), side=rng.choice([-1.0, 1.0], ns).astype(f32),
              delta=rng.uniform(0.005, 0.03, ns).astype(f32), xl=rng.uniform(-0.8, 0.8, (2 * nl, 3)).astype(f32))
    if open_surface:
        n = rng.normal(size=(m, 3))
        b.sheet_normals = (n / np.linalg.norm(n, axis=1, keepdims=True)).astype(f32)
    if sign_on:
        b.winding = rng.uniform(0, 1, m).astype(f32)
        b.far, b.inside, b.outside = 0.04, 0.75, 0.25
    return b


def _reference(cfg: FitConfig, b: Batch, f: torch.Tensor, model, sign_on: bool, open_surface: bool):
    """The torch loop's loss (surfrec.field.train._loss and _sample_terms) on this batch."""
    m, nb, ns = len(b.ps), len(b.xb), len(b.xs)
    f_s, f_x, f_side, f_l = torch.split(f, [m, nb, ns, len(b.xl)])
    t = {k: torch.from_numpy(np.ascontiguousarray(getattr(b, k))) for k in ("ps", "g0", "target", "side", "delta")}
    f0 = f_s.detach()
    ok = ((f0 - cfg.level).abs() < cfg.sample_tol) & ((t["g0"] * t["g0"]).sum(dim=1) > cfg.eps)
    terms = {}
    ps, g0, target = t["ps"][ok], t["g0"][ok], t["target"][ok]
    p_theta = sample_network(model, ps, f0[ok], g0, eps=cfg.eps, f=f_s[ok])
    if open_surface:
        keep = torch.from_numpy(b.near)[ok] & ((g0 * torch.from_numpy(b.sheet_normals)[ok]).sum(dim=1) > 0)
        p_theta, target = p_theta[keep], target[keep]
    elif sign_on:
        w = torch.from_numpy(b.winding)[ok]
        far = (ps - target).norm(dim=1) > b.far
        push = torch.where(far, (w > b.inside).float() - (w < b.outside).float(), torch.zeros_like(w))
        on = push != 0
        if on.any():
            terms["sign"] = (cfg.surface_weight * cfg.sign_weight,
                             sign_push_loss(f_s[ok][on], f0[ok][on], push[on], ps.shape[0]))
            p_theta, target = p_theta[~on], target[~on]
    if target.shape[0]:
        terms["surface"] = (cfg.surface_weight, surface_sample_loss(p_theta, target))
    terms["data"] = (cfg.data_weight, (f_x - cfg.level).abs().mean())
    terms["side"] = (cfg.side_weight if open_surface else cfg.closed_side_weight,
                     side_loss(f_side, t["side"], t["delta"], cfg.level, cfg.side_margin))
    terms["slope"] = (cfg.slope_weight, slope_loss(*f_l.chunk(2), cfg.slope_step))
    return sum(w * v for w, v in terms.values()), {k: float(v.detach()) for k, (_, v) in terms.items()}


CASES = [("closed", False, False), ("closed, sign push", False, True), ("open", True, False)]


@pytest.mark.parametrize(("width", "depth"), [(16, 2), (64, 3), (128, 4)])
@pytest.mark.parametrize(("name", "open_surface", "sign_on"), CASES)
def test_loss_and_gradients_match_torch_autograd(width, depth, name, open_surface, sign_on):
    rng = np.random.default_rng(width + depth)
    torch.manual_seed(width)
    model = ImplicitMLP(ModelConfig(hidden_dim=width, n_hidden_layers=depth))
    cfg = FitConfig(sample_tol=0.2)  # most samples usable on a random network
    b = _batch(rng, model, open_surface=open_surface, sign_on=sign_on)
    x = torch.from_numpy(b.points())
    f = model(x)  # torch's training forward
    loss, terms = _reference(cfg, b, f, model, sign_on, open_surface)
    ref_grads = torch.autograd.grad(loss, list(model.parameters()))
    with FusedMLP(model, threads=2) as eng:
        fv = eng.forward_train(b.points()).copy()
        np.testing.assert_allclose(fv, f.detach().numpy(), rtol=1e-5, atol=1e-6)
        out = loss_weights(cfg, b, fv, sign_on, open_surface)
        assert out.loss == pytest.approx(float(loss.detach()), rel=1e-5, abs=1e-7)
        for k, v in terms.items():
            assert out.terms[k] == pytest.approx(v, rel=1e-5, abs=1e-7), k
        # dL/dF against autograd through F itself
        leaf = f.detach().clone().requires_grad_(True)
        ref_w = torch.autograd.grad(_reference(cfg, b, leaf, model, sign_on, open_surface)[0], leaf)[0].numpy()
        np.testing.assert_allclose(out.w, ref_w, rtol=1e-4, atol=1e-6 * np.abs(ref_w).max())
        eng.backward(out.w)
        for got, want in zip(eng.gradients(), ref_grads):
            np.testing.assert_allclose(got, want.numpy(), rtol=2e-4, atol=2e-5 * float(want.abs().max()) + 1e-9)
        # one Adam step: the same weights (its first step moves every weight by ±lr whatever
        # the gradient's size, so a float32 difference of a near-zero gradient shows up to
        # ~1% of lr: the tolerance)
        opt = Adam([{"params": list(model.parameters())}], lr=1e-3)
        for p, g in zip(model.parameters(), ref_grads):
            p.grad = g
        opt.step()
        eng.adam_step(1e-3)
        for got, want in zip(eng.parameters(), model.parameters()):
            np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_a_sign_pushed_sample_leaves_the_pull():
    """Samples far from the data where the winding number is sure of the side get the push
    (±1 / usable count), not the pull."""
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    model = ImplicitMLP(ModelConfig(hidden_dim=16, n_hidden_layers=2))
    b = _batch(rng, model, sign_on=True)
    b.target = (b.ps + 0.1).astype(np.float32)  # every sample far (distance 0.17 > 0.04)
    b.winding[:] = 0.9  # all inside
    cfg = FitConfig(sample_tol=10.0)
    f = model(torch.from_numpy(b.points())).detach().numpy()
    out = loss_weights(cfg, b, f, True, False)
    ok = out.usable
    assert "surface" not in out.terms and "sign" in out.terms
    np.testing.assert_allclose(out.w[:len(b.ps)][ok], cfg.surface_weight * cfg.sign_weight / ok.sum(), rtol=1e-6)


def test_trilinear_is_grid_sample():
    """The step's winding-number lookup against torch's grid_sample (align_corners, border)."""
    from surfrec.field import _step_kernels as k
    from surfrec.field.data import SignData

    rng = np.random.default_rng(0)
    grid = rng.normal(size=(9, 9, 9)).astype(np.float32)
    signs = SignData(grid=torch.from_numpy(grid)[None, None], box=1.1, far=0.1, inside=0.75, outside=0.25)
    p = rng.uniform(-1.3, 1.3, (500, 3)).astype(np.float32)   # some beyond the grid: clamped
    out = np.empty(len(p), np.float32)
    k.trilinear(grid, 1.1, p, out)
    assert np.allclose(out, signs.winding(torch.from_numpy(p)).numpy(), atol=1e-5)
