"""Study ``losses``: the sample-network loss against a pull loss and an IGR-style loss.

Same network (architecture and geometric initialization), same optimizer (Adam, the same
peak learning rate and cosine decay), same batch sizes, same training-time budget (steps =
budget / measured cost per step), same cases. Only the loss differs:

* **sample network** (surfrec): :func:`surfrec.fit` — level-set samples found by Newton
  steps, pulled to their nearest input point through the sample network, plus λ·|F| on the
  data and the distance-sample term (the studies' settings);
* **pull** (Neural-Pull, Ma et al. 2021): queries q = input point + Gaussian noise
  (σ = distance to the 50th neighbour), moved by −F(q) ∇F/‖∇F‖, must land on q's nearest
  input point: mean ‖q − F(q) ∇F(q)/‖∇F(q)‖ − nn(q)‖² (:func:`pull_loss`; needs
  second derivatives);
* **IGR-style** (Gropp et al. 2020, without normals): mean |F(x)| on input points +
  0.1 · mean (‖∇F(q)‖ − 1)² on queries near the data and uniform in the box
  (:func:`igr_loss`; second derivatives).

The alternative losses live here, not in :mod:`surfrec.field.losses`; the training loop
(:func:`train_alternative`) reuses surfrec's model, seeds' σ (:func:`knn_sigma`), and
:class:`FitResult` so that meshing and scoring are identical.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import common

log = logging.getLogger(__name__)

LOSSES = ("sample network", "pull", "igr")


def pull_loss(model: torch.nn.Module, q: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Neural-Pull loss: mean ‖q − F(q) ∇F(q)/‖∇F(q)‖ − target‖².

    Parameters
    ----------
    q : (B, D) tensor
        Query points.
    targets : (B, D) tensor
        Nearest input point of each query (detached).

    Returns
    -------
    scalar tensor
    """
    f, g = model.gradient(q, create_graph=True)
    n = g / g.norm(dim=1, keepdim=True).clamp_min(1e-8)
    moved = q - f.unsqueeze(1) * n
    return ((moved - targets.detach()) ** 2).sum(dim=1).mean()


def igr_loss(model: torch.nn.Module, x: torch.Tensor, q: torch.Tensor,
             eikonal_weight: float = 0.1) -> torch.Tensor:
    """IGR-style loss without normals: mean |F(x)| + w · mean (‖∇F(q)‖ − 1)².

    Parameters
    ----------
    x : (B, D) tensor
        Input points.
    q : (Q, D) tensor
        Points where the eikonal term is imposed.

    Returns
    -------
    scalar tensor
    """
    _, g = model.gradient(q, create_graph=True)
    return model(x).abs().mean() + eikonal_weight * ((g.norm(dim=1) - 1.0) ** 2).mean()


def train_alternative(points: np.ndarray, loss: str, *, time_budget: float, quick: bool = False,
                      seed: int = 0, device: str = "cpu", max_steps: int = 1_000_000):
    """Fit the studies' network to ``points`` with the pull or IGR loss.

    Training stops after ``time_budget`` seconds or ``max_steps`` steps; with an infinite
    budget the learning rate decays over the steps (as in :func:`surfrec.fit`).

    Returns
    -------
    FitResult
        Usable with :func:`surfrec.extract_mesh` (level 0).
    """
    from scipy.spatial import cKDTree

    from ..field.levelset import knn_sigma
    from ..field.model import build_model
    from ..input.normalize import Normalization
    from ..result import FitResult

    if loss not in ("pull", "igr"):
        raise ValueError(f"loss must be 'pull' or 'igr', got {loss!r}")
    cfg = common.fit_config(quick, device, seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    norm = Normalization.from_points(points)
    unit = norm.to_unit(points).astype(np.float32)
    tree = cKDTree(unit)
    sigma = knn_sigma(unit, 50, tree=tree).astype(np.float32)
    model = build_model(cfg.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x_all = torch.from_numpy(unit)
    sig = torch.from_numpy(sigma)
    n = len(unit)
    hist: dict[str, list[float]] = {"step": [], "time": [], "loss": []}
    t0 = time.perf_counter()
    step = 0
    while step < max_steps:
        el = time.perf_counter() - t0
        if el >= time_budget:
            break
        # cosine decay over the time budget, or over the steps when there is no time limit
        prog = step / max_steps if math.isinf(time_budget) else el / time_budget
        lo = cfg.lr * cfg.lr_final_factor
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) if step < cfg.warmup_steps else \
            lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * prog))
        for gr in opt.param_groups:
            gr["lr"] = lr
        idx = torch.randint(0, n, (min(cfg.batch_points, n),), generator=gen)
        xb = x_all[idx]
        if loss == "pull":
            q = xb + torch.randn(xb.shape, generator=gen) * sig[idx].unsqueeze(1)
            _, nn_idx = tree.query(q.numpy(), k=1)
            l = pull_loss(model, q.to(device), x_all[nn_idx].to(device))
        else:
            n_uni = cfg.n_distance_samples // 8
            qi = torch.randint(0, n, (cfg.n_distance_samples - n_uni,), generator=gen)
            near = x_all[qi] + torch.randn(len(qi), 3, generator=gen) * sig[qi].unsqueeze(1)
            uni = (torch.rand(n_uni, 3, generator=gen) * 2 - 1) * cfg.box
            l = igr_loss(model, xb.to(device), torch.cat([near, uni]).to(device))
        opt.zero_grad(set_to_none=True)
        l.backward()
        opt.step()
        step += 1
        if step % cfg.log_every == 0:
            hist["step"].append(step)
            hist["time"].append(time.perf_counter() - t0)
            hist["loss"].append(float(l.detach()))
    seconds = time.perf_counter() - t0
    model.eval()
    from ..settings import ReconstructionConfig

    return FitResult(model=model.to("cpu"), normalization=norm, config=ReconstructionConfig(fit=cfg), history=hist,
                     seconds=seconds, steps=step, data_points=unit)


def _seconds_per_step(run, repeats: int = 3, short: int = 5, long: int = 15) -> float:
    """Cost of one training step: (t(long) − t(short)) / (long − short), fastest of ``repeats``.

    Taking the fastest repeat and a difference of two run lengths (which cancels set-up
    costs) makes the estimate robust to other jobs on a shared machine.
    """
    import time as _time

    best = float("inf")
    for _ in range(repeats):
        t = []
        for n in (short, long):
            t0 = _time.perf_counter()
            run(n)
            t.append(_time.perf_counter() - t0)
        per_step = (t[1] - t[0]) / (long - short)
        # a busy machine can make the short run slower than the long one: then fall back to
        # the long run's average (set-up included, so an over-estimate)
        if per_step < 0.1 * t[1] / long:
            per_step = t[1] / long
        best = min(best, per_step)
    return best


def run_losses_study(cases: Any = None, out: str | Path = "out/studies/losses", quick: bool = False,
                     seed: int = 0, device: str = "cpu", time_budget: float | None = None) -> Path:
    """Sample-network vs pull vs IGR-style loss at equal training time (see module doc).

    "Equal time" is made robust to other jobs on the machine: each loss's cost per step is
    measured first (:func:`_seconds_per_step`), and each loss then trains for
    ``time_budget / cost`` steps (deterministic given the seed).

    Returns
    -------
    Path of ``report.md`` (beside it: ``losses.csv``, ``losses_slices.png``).
    """
    out = common.prepare_out(out)
    cases = common.load_cases(cases, quick, seed=seed)
    budget = time_budget if time_budget is not None else (1.0 if quick else 5.0)
    rows, models = [], {}
    for case in cases:
        for name in LOSSES:
            if name == "sample network":
                def run(n, case=case):
                    return common.fit_case(case, quick, device, seed, iterations=n, cache=False)
            else:
                def run(n, case=case, name=name):
                    return train_alternative(case.points, name, time_budget=float("inf"), quick=quick,
                                             seed=seed, device=device, max_steps=n)
            cost = _seconds_per_step(run, repeats=1 if quick else 3, short=2 if quick else 5,
                                     long=6 if quick else 15)
            steps = max(1, min(50 if quick else 5000, int(budget / cost)))
            res = run(steps)
            models[case.name, name] = res
            q = common.score(res, case, quick, device=device)
            rows.append({"case": case.name, "loss": name, "budget_s": budget, "ms_per_step": 1000 * cost,
                         "steps": res.steps, "seconds": res.seconds, **q})
    common.write_csv(rows, out / "losses.csv")

    plt = common.plt()
    fig, axes = plt.subplots(len(cases), len(LOSSES), figsize=(3.3 * len(LOSSES), 3.2 * len(cases)),
                             squeeze=False)
    t = np.linspace(-1, 1, 161)
    X, Y = np.meshgrid(t, t)
    grid = torch.from_numpy(np.stack([X.ravel(), Y.ravel(), np.zeros(X.size)], 1).astype(np.float32))
    for i, case in enumerate(cases):
        for j, name in enumerate(LOSSES):
            res = models[case.name, name]
            with torch.no_grad():
                F = res.model(grid).numpy().reshape(X.shape)
            ax = axes[i, j]
            lim = max(1e-3, float(np.quantile(np.abs(F), 0.98)))
            ax.contourf(X, Y, F, levels=21, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.contour(X, Y, F, levels=np.arange(-1, 1.01, 0.05), colors="k", linewidths=0.3)
            ax.contour(X, Y, F, levels=[0.0], colors="k", linewidths=1.5)
            unit = common.unit_points(res, case)
            near = np.abs(unit[:, 2]) < 0.01
            ax.scatter(unit[near, 0], unit[near, 1], s=0.5, color="yellow")
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            r = next(r for r in rows if r["case"] == case.name and r["loss"] == name)
            ax.set_title(f"{case.name}: {name}\nCD {r['cd']:.3g}, {r['steps']} steps", fontsize=8)
    fig.tight_layout()
    fig_path = common.save_figure(fig, out / "losses_slices.png")

    return _report(budget=budget, cases=cases, device=device, fig_path=fig_path, out=out, quick=quick, rows=rows, seed=seed)


def _report(budget, cases, device, fig_path, out, quick, rows, seed) -> Path:
    rep = common.Report("Study: sample-network loss vs pull loss vs IGR-style loss")
    rep.add(common.setup_note(quick, device, cases, seed,
                              f"Equal training-time budget {budget:g} s per fit: each loss's cost per step "
                              "is measured first (fastest of 3 timings, set-up cancelled), then it trains "
                              "for budget / cost steps; the actual wall-clock on the shared machine is "
                              "reported but is noisy."))
    rep.add(__doc__.split("\n\n", 1)[1])
    rep.add("## Results\n")
    rep.table(rows, ["case", "loss", "ms_per_step", "steps", "seconds", "cd", "nc", "fscore", "components",
                     "watertight"])
    rep.figure(fig_path, "F on the plane z = 0 (normalized frame): thin contours every 0.05 "
                         "(evenly spaced = distance-like), thick: F = 0; yellow: input points near the plane.")
    rep.add("## Answer\n")
    lines = []
    for case in cases:
        rs = [r for r in rows if r["case"] == case.name]
        lines.append(f"- **{case.name}**: " + "; ".join(
            f"{r['loss']} CD {r['cd']:.3g}, NC {r['nc']:.3f} ({r['steps']} steps)" for r in rs) + ".")
    rep.add("\n".join(lines))
    return rep.write(out / "report.md")
