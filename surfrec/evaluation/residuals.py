"""Diagnostics of a fitted model: are the level-set samples really on the level set?

:func:`residual_report` answers the reviewer's request for the paper: draw seeds as in
fitting, project them with k generalized Newton steps, and report the distribution of
|F(p*) − c| after each k, the share that converged, why the others failed (vanishing
gradient, leaving the box), and how far the samples lie from the input points.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..field.levelset import draw_seeds, project_to_level_set, seed_sigmas
from ..result import FitResult
from ..validation import RESIDUALS, check_each, check_range

log = logging.getLogger(__name__)


@dataclass
class ResidualReport:
    """Residuals of Newton projection after several step counts.

    Attributes
    ----------
    level : float
        The level c.
    n_seeds : int
        Seeds projected.
    rows : list of dict
        One per step count: steps, median, p90, max, converged (fraction), zero_gradient
        (fraction), left_box (fraction), dist_median / dist_p90 (distance of converged p*
        to the nearest input point, normalized units and input units).
    residuals : dict[int, (n_seeds,) ndarray]
        Raw residuals per step count (for plots).
    points : dict[int, (n_seeds, 3) ndarray]
        The projected samples per step count, in input coordinates (``keep_points=True``).
    """

    level: float
    n_seeds: int
    tol: float
    rows: list[dict] = field(default_factory=list)
    residuals: dict[int, np.ndarray] = field(default_factory=dict)
    points: dict[int, np.ndarray] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return {"level": self.level, "n_seeds": self.n_seeds, "tol": self.tol, "rows": self.rows}

    def format(self) -> str:
        """A human-readable table."""
        lines = [f"Newton projection onto F = {self.level:g}: {self.n_seeds} seeds "
                 f"(converged: |F - c| < {self.tol:g}, gradient not vanishing, inside the box)",
                 f"{'steps':>5} {'median':>10} {'p90':>10} {'max':>10} {'converged':>9} "
                 f"{'zero-grad':>9} {'left-box':>8} {'dist med':>10} {'dist p90':>10}"]
        for r in self.rows:
            lines.append(f"{r['steps']:>5} {r['median']:>10.2e} {r['p90']:>10.2e} {r['max']:>10.2e} "
                         f"{r['converged']:>9.3f} {r['zero_gradient']:>9.3f} {r['left_box']:>8.3f} "
                         f"{r['dist_median_input']:>10.3g} {r['dist_p90_input']:>10.3g}")
        lines.append("residuals in F units (normalized); distances to the nearest input point in input units")
        return "\n".join(lines)


def residual_report(
    result: FitResult,
    points: np.ndarray | None = None,
    *,
    steps: Sequence[int] = (10, 20),
    level: float | None = None,
    n_seeds: int = 20_000,
    tol: float = 1e-5,
    seed: int = 0,
    device: str | torch.device = "cpu",
    keep_points: bool = False,
) -> ResidualReport:
    """Project seeds drawn as in fitting and report the residual distribution.

    Parameters
    ----------
    result : FitResult
        A fitted model.
    points : (N, 3) array, optional
        The scan in INPUT coordinates; default: the data subsample stored with the model.
    steps : sequence of int
        Newton step counts to report (each projection starts from the same seeds).
    level : float, optional
        Level c; default the fitted level.
    n_seeds : int
        Number of seeds.
    tol : float
        Residual under which a sample counts as converged.
    seed : int
        Random seed of the seeds.
    device : str or torch.device
    keep_points : bool
        Keep the projected samples of each step count (``ResidualReport.points``).

    Returns
    -------
    ResidualReport
    """
    from scipy.spatial import cKDTree

    steps = check_each("steps", steps, RESIDUALS["steps"])
    for name, value in (("n_seeds", n_seeds), ("tol", tol), ("level", level), ("seed", seed)):
        check_range(name, value, RESIDUALS[name])
    cfg = result.config.fit
    lvl = cfg.level if level is None else float(level)
    if points is not None:
        unit = result.normalization.to_unit(np.asarray(points, dtype=np.float64)).astype(np.float32)
    elif result.data_points is not None:
        unit = np.asarray(result.data_points, dtype=np.float32)
    else:
        raise ValueError("no points: pass the scan (the model file stores none)")
    tree = cKDTree(unit)
    sigma = seed_sigmas(unit, cfg.seed_k, fixed=cfg.seed_sigma, tree=tree).astype(np.float32)
    gen = torch.Generator().manual_seed(seed)
    seeds = draw_seeds(torch.from_numpy(unit), torch.from_numpy(sigma), n_seeds,
                       uniform_fraction=cfg.uniform_fraction, bounds=(-cfg.box, cfg.box),
                       sigma_scale=cfg.seed_sigma_scale, generator=gen)
    model = result.model.to(device).eval()
    seeds = seeds.to(device)
    report = ResidualReport(level=lvl, n_seeds=n_seeds, tol=tol)
    for k in sorted(set(int(s) for s in steps)):
        proj = project_to_level_set(model, seeds, lvl, max_steps=k, tol=tol, eps=cfg.eps, box=cfg.box)
        res = proj.residuals.detach().cpu().numpy().astype(np.float64)
        conv = proj.converged.cpu().numpy()
        pts = proj.points.detach().cpu().numpy()
        finite = np.isfinite(pts).all(axis=1)
        d = tree.query(pts[conv & finite])[0] if (conv & finite).any() else np.array([np.nan])
        fin_res = res[np.isfinite(res)]
        row = {
            "steps": k,
            "median": float(np.median(fin_res)) if fin_res.size else float("nan"),
            "p90": float(np.percentile(fin_res, 90)) if fin_res.size else float("nan"),
            "max": float(fin_res.max()) if fin_res.size else float("nan"),
            "converged": float(conv.mean()),
            "zero_gradient": float(proj.zero_gradient.cpu().numpy().mean()),
            "left_box": float(proj.left_box.cpu().numpy().mean()),
            "dist_median": float(np.median(d)),
            "dist_p90": float(np.percentile(d, 90)),
            "dist_median_input": float(np.median(d) * result.normalization.scale),
            "dist_p90_input": float(np.percentile(d, 90) * result.normalization.scale),
            "evaluations": int(proj.evaluations),
        }
        report.rows.append(row)
        report.residuals[k] = res
        if keep_points:
            report.points[k] = result.normalization.to_input(pts)
    result.model.to("cpu")
    return report


def plot_residuals(report: ResidualReport, path: str | os.PathLike) -> Path:
    """Histogram of log10 residuals per step count, written atomically as PNG."""
    from ..io import atomic_path
    from ..optional import require

    Figure = require("matplotlib.figure", "the residual histogram (--plot)").Figure  # no pyplot: the caller's backend stays

    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    ax = fig.add_subplot()
    floor = 1e-12
    for k, res in sorted(report.residuals.items()):
        r = np.log10(np.clip(res[np.isfinite(res)], floor, None))
        ax.hist(r, bins=60, histtype="step", linewidth=1.5, label=f"{k} Newton steps")
    ax.axvline(np.log10(report.tol), color="k", linestyle="--", linewidth=1, label=f"tol {report.tol:g}")
    ax.set_xlabel("log10 |F(p*) - c|")
    ax.set_ylabel("samples")
    ax.set_title(f"Residuals of Newton projection onto F = {report.level:g} ({report.n_seeds} seeds)")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
