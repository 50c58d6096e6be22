"""Study ``curves``: the method in 2-D, where every piece can be seen.

Noisy point samples of planar curves (a heart, a five-pointed star, two circles; generated
here) are fitted with the same machinery as 3-D scans:

* the network is surfrec's 3-D :class:`ImplicitMLP` restricted to the plane z = 0
  (:class:`PlanarField`): its forward pass pads (M, 2) points with z = 0, and its
  ``value_and_grad`` returns the first two components of ∇F — exactly the gradient of the
  restricted function, so :mod:`surfrec.field.levelset` (seeds, Newton projection) and the sample
  network of :mod:`surfrec.field.losses` work unchanged in 2-D;
* :func:`fit_curve` runs the training loop of :func:`surfrec.fit` itself
  (:func:`surfrec.field.train.train`) on the 2-D points: a warm-started buffer of level-set
  samples (kNN-σ Gaussian seeds + 20% uniform, one Newton step per training step), the
  sample network pulled to the nearest input point, λ·|F| on the data, and the
  distance-sample term.

The figures show F's level sets, seeds, Newton trajectories and the final samples.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..field.levelset import newton_delta, project_to_level_set, value_and_grad
from ..field.model import build_model
from . import common

log = logging.getLogger(__name__)


class PlanarField(nn.Module):
    """A 3-D implicit network restricted to the plane z = 0: F₂(x, y) = F(x, y, 0).

    Parameters
    ----------
    model : ImplicitMLP
        Any module with ``forward`` (M, 3) → (M,) and ``value_and_grad``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @staticmethod
    def _pad(x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"expected points of shape (M, 2), got {tuple(x.shape)}")
        return torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """F(x, y, 0), (M,)."""
        return self.model(self._pad(x))

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """F and (∂F/∂x, ∂F/∂y) at z = 0: (M,), (M, 2)."""
        f, g = self.model.value_and_grad(self._pad(x))
        return f, g[:, :2]

    def gradient(self, x: torch.Tensor, create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Autograd version of :meth:`value_and_grad` (differentiable in θ when asked)."""
        f, g = self.model.gradient(self._pad(x), create_graph=create_graph)
        return f, g[:, :2]

    def mlp_parameters(self) -> list:
        """The network's parameters (all of them: the planar field has no grid)."""
        return self.model.mlp_parameters()

    def grid_parameters(self) -> list:
        """No feature grid: an empty list."""
        return self.model.grid_parameters()


# ------------------------------------------------------------------------ curves
def _resample(curve: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniformly by arc length on a closed polyline (K, 2)."""
    seg = np.diff(np.vstack([curve, curve[:1]]), axis=0)
    length = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(length)])
    s = rng.uniform(0, cum[-1], n)
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(curve) - 1)
    t = (s - cum[i]) / np.maximum(length[i], 1e-12)
    return curve[i] + t[:, None] * seg[i]


def curve_polylines(name: str, k: int = 2000) -> list[np.ndarray]:
    """Dense closed polylines of a named curve: ``heart``, ``star`` or ``two_circles``."""
    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    if name == "heart":
        x = 16 * np.sin(t) ** 3
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return [np.stack([x, y], 1) / 17.0]
    if name == "star":
        r = 1.0 + 0.35 * np.cos(5 * t)
        return [np.stack([r * np.cos(t), r * np.sin(t)], 1)]
    if name == "two_circles":
        c = np.stack([np.cos(t), np.sin(t)], 1)
        return [c * 0.45 + [-0.55, 0.0], c * 0.3 + [0.6, 0.1]]
    raise ValueError(f"unknown curve {name!r}")


def curve_points(name: str, n: int = 400, noise: float = 0.005, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy samples of a curve in the normalized frame (box ±0.8) and its dense polyline.

    Returns
    -------
    points : (n, 2) float64
    truth : (K, 2) float64
        Dense points on the true curve (same frame).
    """
    rng = np.random.default_rng(seed)
    polys = curve_polylines(name)
    lengths = np.array([np.linalg.norm(np.diff(p, axis=0), axis=1).sum() for p in polys])
    counts = np.maximum(1, np.round(n * lengths / lengths.sum()).astype(int))
    pts = np.vstack([_resample(p, c, rng) for p, c in zip(polys, counts)])
    truth = np.vstack(polys)
    lo, hi = truth.min(0), truth.max(0)
    center, scale = (lo + hi) / 2, (hi - lo).max() / 1.6
    pts = (pts - center) / scale
    truth = (truth - center) / scale
    return pts + rng.normal(0, noise, pts.shape), truth


def fit_curve(points: np.ndarray, *, steps: int = 400, n_samples: int = 1024, lr: float = 5e-3,
              quick: bool = False, seed: int = 0, snapshots: tuple[int, ...] = (),
              distance_weight: float = 0.5) -> tuple[PlanarField, list[tuple[int, dict]]]:
    """Fit F₂ to 2-D points (normalized frame) with :func:`surfrec.field.train.train`, the loop of
    :func:`surfrec.fit` (cosine schedule without warm-up, all points in the data term).

    Returns
    -------
    field : PlanarField
    snaps : list of (step, state_dict) at the requested ``snapshots`` steps
    """
    import time

    from ..field.data import FitData
    from ..field.train import init_state, train
    from ..input.index import NearestPoints, SpatialIndex
    from ..field.levelset import seed_sigmas

    cfg = common.fit_config(quick, "cpu", seed, iterations=steps, n_samples=n_samples, lr=lr, warmup_steps=0,
                            batch_points=len(points), n_distance_samples=n_samples,
                            distance_weight=distance_weight, distance_nn_eps=0.0)
    unit = np.ascontiguousarray(points, dtype=np.float32)
    index = SpatialIndex(unit)
    x = torch.from_numpy(unit)
    sigma = torch.from_numpy(seed_sigmas(unit, cfg.seed_k, tree=index).astype(np.float32))
    data = FitData(points=unit, nearest=NearestPoints(index), x_all=x, seed_pts=x, sigma=sigma)
    st = init_state(cfg, data, torch.device("cpu"), model=PlanarField(build_model(cfg.model)))
    snaps = [(0, copy.deepcopy(st.model.state_dict()))] if 0 in snapshots else []

    def keep_snapshot(state) -> None:
        if state.step in snapshots:
            snaps.append((state.step, copy.deepcopy(state.model.state_dict())))

    st.t0 = time.perf_counter()
    train(cfg, data, st, on_step=keep_snapshot)
    st.model.eval()
    return st.model, snaps


def newton_trajectories(field: nn.Module, seeds: torch.Tensor, steps: int = 10) -> np.ndarray:
    """Iterates of generalized Newton from each seed, (steps+1, M, 2)."""
    p = seeds.clone()
    path = [p.numpy().copy()]
    for _ in range(steps):
        f, g = value_and_grad(field, p)
        p = p - newton_delta(f, g, 0.0, 1e-8)
        path.append(p.numpy().copy())
    return np.array(path)


def _draw_field(ax, field, pts=None, title: str = "") -> None:
    t = np.linspace(-1, 1, 201)
    X, Y = np.meshgrid(t, t)
    with torch.no_grad():
        F = field(torch.from_numpy(np.stack([X.ravel(), Y.ravel()], 1).astype(np.float32))).numpy()
    F = F.reshape(X.shape)
    lim = max(1e-3, float(np.abs(F).max()))
    ax.contourf(X, Y, F, levels=30, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.contour(X, Y, F, levels=np.arange(-2, 2.01, 0.1), colors="k", linewidths=0.3, alpha=0.6)
    ax.contour(X, Y, F, levels=[0.0], colors="k", linewidths=1.6)
    if pts is not None:
        ax.scatter(pts[:, 0], pts[:, 1], s=2, color="gold", zorder=3)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def run_curves_study(cases: Any = None, out: str | Path = "out/studies/curves", quick: bool = False,
                     seed: int = 0, device: str = "cpu") -> Path:
    """Fit 2-D curves and draw level sets, seeds, Newton trajectories and samples.

    ``cases`` is ignored unless it is a list of curve names (the curves are generated);
    ``device`` is ignored (2-D fits are tiny and run on the CPU).

    Returns
    -------
    Path of ``report.md`` (beside it: ``curves.csv``, ``curves.png``, ``curves_training.png``).
    """
    from scipy.spatial import cKDTree

    out = common.prepare_out(out)
    names = list(cases) if isinstance(cases, (list, tuple)) and cases and isinstance(cases[0], str) \
        else (["heart"] if quick else ["heart", "star", "two_circles"])
    steps = 40 if quick else 400
    n_pts = 150 if quick else 400
    plt = common.plt()
    rows, fitted = [], {}
    snaps_at = (0, steps // 10, steps // 3, steps)
    for i, name in enumerate(names):
        pts, truth = curve_points(name, n_pts, seed=seed + i)
        field, snaps = fit_curve(pts, steps=steps, n_samples=256 if quick else 1024, quick=quick,
                                 seed=seed, snapshots=snaps_at)
        gen_seeds = common.fit_like_seeds(pts.astype(np.float32), 500 if quick else 2000, seed=seed + 5)
        proj = project_to_level_set(field, gen_seeds, 0.0, max_steps=10, tol=1e-5, box=1.0)
        conv = np.asarray(proj.converged)
        samples = np.asarray(proj.points)[conv]
        d1 = cKDTree(truth).query(samples)[0] if len(samples) else np.array([np.nan])
        d2 = cKDTree(samples).query(truth)[0] if len(samples) else np.array([np.nan])
        rows.append({"curve": name, "points": n_pts, "steps": steps,
                     "chamfer_x1000": 1000 * 0.5 * (d1.mean() + d2.mean()) / 1.6,
                     "samples_to_truth_p90_x1000": 1000 * float(np.quantile(d1, 0.9)) / 1.6,
                     "converged_share": float(conv.mean()),
                     "median_residual": float(np.median(np.asarray(proj.residuals)))})
        fitted[name] = (pts, field, snaps, gen_seeds, samples)
    common.write_csv(rows, out / "curves.csv")

    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.7), squeeze=False)
    for j, name in enumerate(names):
        pts, field, _, gen_seeds, samples = fitted[name]
        ax = axes[0, j]
        _draw_field(ax, field, pts, f"{name}")
        sub = gen_seeds[torch.randperm(len(gen_seeds), generator=torch.Generator().manual_seed(1))[:40]]
        traj = newton_trajectories(field, sub, 10)
        for m in range(traj.shape[1]):
            ax.plot(traj[:, m, 0], traj[:, m, 1], color="lime", linewidth=0.8, zorder=4)
        ax.scatter(traj[0, :, 0], traj[0, :, 1], s=10, marker="x", color="k", zorder=5, label="seeds")
        ax.scatter(samples[:400, 0], samples[:400, 1], s=3, color="red", zorder=6, label="samples p*")
        if j == 0:
            ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig_path = common.save_figure(fig, out / "curves.png")

    name0 = names[0]
    pts, field, snaps, _, _ = fitted[name0]
    fig, axes = plt.subplots(1, len(snaps), figsize=(3.0 * len(snaps), 3.1), squeeze=False)
    probe = PlanarField(copy.deepcopy(field.model))
    for j, (st, sd) in enumerate(snaps):
        probe.load_state_dict(sd)
        probe.eval()
        _draw_field(axes[0, j], probe, pts, f"{name0}: step {st}")
    fig.tight_layout()
    train_path = common.save_figure(fig, out / "curves_training.png")

    return _report(fig_path=fig_path, n_pts=n_pts, name0=name0, out=out, quick=quick, rows=rows, seed=seed, steps=steps, train_path=train_path)


def _report(fig_path, n_pts, name0, out, quick, rows, seed, steps, train_path) -> Path:
    rep = common.Report("Study: curves in 2-D")
    rep.add(f"Run: {'quick' if quick else 'full'} mode, seed {seed}, CPU. {n_pts} noisy points per curve "
            f"(σ = 0.005 of the normalized frame, box ±0.8), {steps} training steps, network "
            f"{common.model_config(quick).hidden_dim} × {common.model_config(quick).n_hidden_layers}.\n")
    rep.add(__doc__.split("\n\n", 1)[1])
    rep.add("## Results\n")
    rep.add("`chamfer_x1000`: symmetric mean distance between converged Newton samples (10 steps "
            f"from {500 if quick else 2000} seeds) and the true curve, ×1000 of the box side (1.6).")
    rep.table(rows)
    rep.figure(fig_path, "F (red > 0, blue < 0; thin contours every 0.1, thick: F = 0), input points "
                         "(gold), 40 seeds (×) with their Newton trajectories (green) and final "
                         "samples p* (red).")
    rep.figure(train_path, f"{name0}: F during training (step 0 is the geometric initialization, a "
                           "circle of radius 0.5).")
    return rep.write(out / "report.md")
