"""Fitting a neural level set to a point cloud: configuration, training loop, results.

The loop (per step):

1. A persistent buffer of level-set samples is warm-started from the previous step: a
   share is replaced by fresh seeds (:func:`surfrec.levelset.draw_seeds`) and every sample
   takes ``newton_steps`` generalized Newton steps towards F = c (no θ-gradient).
2. The sample network p(θ) of the samples is pulled towards each sample's nearest input
   point (nearest among *all* points, KD-tree), which moves the surface onto the data and
   removes surface where there is none.
3. λ·mean|F(x) − c| on a batch of input points pins the surface to the data.
4. Optionally "distance" samples (points near the data and in the box) move their own
   level set S_{F(q)} to distance |F(q)| from the data, which keeps F distance-like and
   free of stray sheets; optional eikonal and normal terms (second derivatives).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable

import numpy as np
import torch

from .device import resolve_device
from .errors import FitDivergedError, FitInterrupted, InputError
from .levelset import draw_seeds, seed_sigmas, value_and_grad
from .losses import (
    distance_sample_loss,
    eikonal_loss,
    normal_loss,
    sample_network,
    surface_sample_loss,
)
from .model import ModelConfig, build_model
from .normalize import UNIT_HALF_EXTENT, Normalization
from .refine import RefineConfig
from .result import FitResult
from .validation import FIT, check_fields

log = logging.getLogger(__name__)

@dataclass
class FitConfig:
    """Every hyperparameter of a fit. Presets are named instances (:data:`PRESETS`)."""

    model: ModelConfig = field(default_factory=lambda: ModelConfig(hidden_dim=64, n_hidden_layers=3))
    """Architecture of the implicit network."""
    refine: RefineConfig = field(default_factory=RefineConfig)
    """How :func:`surfrec.extract_mesh` refines the mesh onto the data (kept with the
    model, so a preset describes the whole pipeline)."""
    iterations: int = 6000
    """Optimization steps (the fit stops earlier when ``time_budget`` runs out)."""
    time_budget: float | None = 40.0
    """Wall-clock limit of the optimization in seconds (None or 0: no limit; with
    :func:`get_config` and ``fit(**overrides)``, where None means "not given", pass 0)."""
    lr: float = 5e-3
    """Peak Adam learning rate."""
    grid_lr: float = 2e-2
    """Peak Adam learning rate of the feature grid (``model.encoding="grid"``); grids
    usually want a much higher rate than the MLP."""
    grid_decay_weight: float = 0.0
    """Weight of mean ‖grid features‖² at points drawn uniformly in the box: pulls the grid
    back to zero away from the data, where F then follows the smooth MLP (against stray
    sheets; 0 disables it)."""
    grid_optimizer: str = "sparse_adam"
    """``sparse_adam``: the grid gets sparse gradients and SparseAdam updates only the rows
    a step touched (fast); ``adam``: dense gradients and Adam over the whole grid."""
    coarse_to_fine: float = 0.0
    """Share of the run over which grid levels are switched on, coarse to fine (each
    fades in linearly; 0: all levels from the start)."""
    lr_final_factor: float = 0.05
    """The cosine schedule decays the learning rate to ``lr * lr_final_factor``."""
    warmup_steps: int = 20
    """Linear learning-rate warm-up steps."""
    batch_points: int = 1024
    """Input points per step for the data term."""
    n_samples: int = 1024
    """Size of the persistent buffer of level-set samples."""
    refresh_fraction: float = 0.1
    """Share of the sample buffer replaced by fresh seeds at every step."""
    newton_steps: int = 1
    """Newton steps per training step for the (warm-started) sample buffer."""
    init_newton_steps: int = 10
    """Newton steps for the initial buffer."""
    seed_k: int = 10
    """Seeds around an input point have σ = distance to its ``seed_k``-th neighbour."""
    seed_sigma_scale: float = 1.0
    """Multiplier of the per-point σ."""
    seed_sigma: float | None = None
    """One fixed σ for every seed (normalized units) instead of the kNN σ (studies)."""
    uniform_fraction: float = 0.2
    """Share of fresh seeds drawn uniformly in the box (hunts stray surface)."""
    sample_tol: float = 1e-2
    """Samples whose residual |F − c| exceeds this are left out of the loss this step."""
    surface_weight: float = 1.0
    """Weight of the sample-network distance to the nearest input points."""
    data_weight: float = 1.0
    """λ: weight of mean |F(x) − c| on input points."""
    distance_weight: float = 0.0
    """Weight of the distance-sample term (0 disables it)."""
    n_distance_samples: int = 4096
    """Points per step for the distance-sample term."""
    distance_near_fraction: float = 0.5
    """Share of distance samples drawn near the data (σ-Gaussians ×3); the rest uniform."""
    distance_nn_eps: float = 0.3
    """Relative tolerance of the nearest-neighbour search for distance samples (KD-tree
    ``eps``: a neighbour within (1 + eps)× the true distance is accepted). Queries far from
    the data are the slowest part of a step when exact; 0.3 makes them ~3× faster."""
    eikonal_weight: float = 0.0
    """Weight of (‖∇F‖ − 1)² on distance samples (second derivatives: slower)."""
    normal_weight: float = 0.0
    """Weight of the normal-alignment term, used only when the scan has normals."""
    level: float = 0.0
    """The level c of the surface being fitted."""
    eps: float = 1e-8
    """Guard of max(‖∇F‖², ε) in Newton steps and the sample network."""
    box: float = 1.0
    """Half-side of the fitting box in normalized coordinates (the scan fills ±0.8)."""
    seed: int = 0
    """Seed of every random draw (reproducible fits on the same device)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    threads: int | None = None
    """CPU threads for torch (None: torch's default)."""
    log_every: int = 10
    """Record the history every this many steps."""
    max_seed_points: int = 500_000
    """Seeds and σ use a random subset of at most this many input points (huge scans)."""
    outlier_percentile: float = 0.1
    """Robust box: the [p, 100 − p] percentile box of the scan. When the exact box is more
    than ``outlier_box_ratio`` times larger, the robust box is used and the few points
    left outside the fitting box are ignored as far outliers (reported)."""
    outlier_box_ratio: float = 1.5
    """See ``outlier_percentile``."""

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        if isinstance(self.refine, dict):
            self.refine = RefineConfig(**self.refine)
        check_fields(self, FIT)  # the ranges live in surfrec.validation (shared with the CLI)
        if self.grid_optimizer not in ("sparse_adam", "adam"):
            raise ValueError(f"FitConfig.grid_optimizer: got {self.grid_optimizer!r}, expected sparse_adam or adam")
        if self.time_budget == 0:
            self.time_budget = None

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["refine"] = self.refine.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FitConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FitConfig keys: {sorted(unknown)}")
        d = dict(d)
        if "model" in d and isinstance(d["model"], dict):
            d["model"] = ModelConfig(**d["model"])
        if "refine" in d and isinstance(d["refine"], dict):
            d["refine"] = RefineConfig(**d["refine"])
        return cls(**d)


#: Named configurations, tuned for 2 CPU cores and ~50k points (benchmarks/RESULTS.md).
#: ``iterations`` sets the schedule (reproducible on any machine); ``time_budget`` caps
#: the wall clock on slow machines (the cosine schedule then follows the clock).
PRESETS: dict[str, FitConfig] = {
    # the field defaults of FitConfig are the default preset: 6000 steps (~35 s on two
    # cores, capped at 40 s), then meshing and the refinement onto the data (2-6 s each)
    "default": FitConfig(),
    # 1200 steps, ~7 s of fitting (+ 0.5 s of set-up); the refinement's neighbourhoods
    # are capped at 48 points (noisy scans: time). lr 1e-2 was tried here: one armadillo
    # seed in three blew up (CD 3.6), see benchmarks/EXPERIMENTS.md round 5
    "fast": FitConfig(iterations=1200, time_budget=7.5, refine=RefineConfig(max_neighbors=48)),
    # a 4x128 MLP with 2x larger batches: ~25 steps/s on 2 cores, a few minutes per scan
    "quality": FitConfig(
        model=ModelConfig(hidden_dim=128, n_hidden_layers=4),
        iterations=6000, time_budget=None, lr=3e-3, batch_points=2048, n_samples=2048,
    ),
}


def get_config(preset: str | FitConfig | None = "default", **overrides: Any) -> FitConfig:
    """A preset (by name) or config, with fields replaced by ``overrides`` (None ignored)."""
    if preset is None:
        preset = "default"
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        cfg = copy.deepcopy(PRESETS[preset])
    elif isinstance(preset, FitConfig):
        cfg = copy.deepcopy(preset)
    else:
        raise TypeError(f"preset must be a name or a FitConfig, got {type(preset).__name__}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **overrides) if overrides else cfg


# ---------------------------------------------------------------------------- fitting
def _prepare_points(points: Any, normals: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Accept a path, a PointCloud or arrays; validate (as the file loader does); float64 arrays."""
    from .io import PointCloud, load_points

    if not isinstance(points, (str, os.PathLike, PointCloud)):
        pc = PointCloud.from_arrays(points, normals)
        return pc.points, pc.normals, pc.source
    pc = load_points(points) if not isinstance(points, PointCloud) else points
    if normals is not None:  # given normals replace the file's
        pc = PointCloud.from_arrays(pc.points, normals, source=pc.source)
    return pc.points, pc.normals, pc.source


def _robust_normalization(
    pts: np.ndarray, nrm: np.ndarray | None, cfg: FitConfig, source: str
) -> tuple[Normalization, np.ndarray, np.ndarray | None]:
    """The box transform, robust to a few far outliers (which are then dropped, and reported)."""
    exact = Normalization.from_points(pts)
    if cfg.outlier_percentile <= 0:
        return exact, pts, nrm
    robust = Normalization.from_points(pts, percentile=cfg.outlier_percentile)
    if exact.scale <= cfg.outlier_box_ratio * robust.scale:
        return exact, pts, nrm
    # a margin of 10% of the robust box around it stays in; farther points are outliers
    keep = (np.abs(robust.to_unit(pts)) <= min(cfg.box, 1.1 * UNIT_HALF_EXTENT)).all(axis=1)
    kept = pts[keep]
    norm = Normalization.from_points(kept)
    log.warning("%s: %d far outliers (%.2f%% of the points) lie outside the robust box of the scan and are "
                "ignored (the full box is %.1fx larger)", source, int((~keep).sum()), 100 * (~keep).mean(),
                exact.scale / robust.scale)
    from .io import MIN_POINTS

    if len(kept) < MIN_POINTS:
        raise InputError(source, "too few points remain after removing far outliers")
    return norm, kept, (nrm[keep] if nrm is not None else None)


def _lr_at(cfg: FitConfig, step: int, total: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    lo = cfg.lr * cfg.lr_final_factor
    return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * t))


def _level_weights(n_levels: int, progress: float, span: float) -> list[float]:
    """Coarse-to-fine weights: level 0 always on, level k fades in over span/(L−1) of the run."""
    out = [1.0]
    per = span / (n_levels - 1)
    for k in range(1, n_levels):
        start = (k - 1) * per
        out.append(float(min(1.0, max(0.0, (progress - start) / per))))
    return out


class Adam:
    """Adam (Kingma & Ba 2015), the update of ``torch.optim.Adam`` with its defaults (no
    weight decay, no AMSGrad), written out.

    Why not torch's: building the first ``torch.optim`` optimizer in a process imports
    ``torch._dynamo``, 1.2 s of every fit's set-up on two cores (the ``fast`` preset's
    whole budget is ~13 s). The result matches ``torch.optim.Adam`` to float32 rounding
    (tests/test_fitting.py).

    Parameters
    ----------
    groups : list of dict
        Each with ``params`` (tensors) and any extra keys (kept, e.g. ``base_lr``).
    lr : float
        Default learning rate of groups without ``lr``.
    betas, eps
        As in ``torch.optim.Adam``.
    """

    def __init__(self, groups: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param_groups = [dict(g, params=list(g["params"]), lr=g.get("lr", lr)) for g in groups]
        self.betas, self.eps = betas, eps
        # per parameter: [steps taken, first moment, second moment] (None until its first grad)
        self.state: list[list[list | None]] = [[None] * len(g["params"]) for g in self.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        for g, states in zip(self.param_groups, self.state):
            for i, p in enumerate(g["params"]):
                if p.grad is None:
                    continue
                st = states[i]
                if st is None:
                    st = states[i] = [0, torch.zeros_like(p), torch.zeros_like(p)]
                st[0] += 1
                m, v = st[1], st[2]
                m.lerp_(p.grad, 1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                step_size = g["lr"] / (1 - b1 ** st[0])
                denom = (v.sqrt() / math.sqrt(1 - b2 ** st[0])).add_(self.eps)
                p.addcdiv_(m, denom, value=-step_size)

    def state_dict(self) -> dict:
        """Learning rates, extra group keys and moments (tensors, ints, floats: weights_only-safe)."""
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        return {"param_groups": groups, "state": [[None if s is None else list(s) for s in st] for st in self.state]}

    def load_state_dict(self, state: dict) -> None:
        for g, saved in zip(self.param_groups, state["param_groups"]):
            g.update(saved)
        self.state = [[None if s is None else [int(s[0]), s[1].clone(), s[2].clone()] for s in st]
                      for st in state["state"]]

    def add_param_group(self, group: dict) -> None:
        self.param_groups.append(dict(group, params=list(group["params"]), lr=group.get("lr", self.param_groups[0]["lr"])))
        self.state.append([None] * len(group["params"]))


class _Optimizers:
    """Several optimizers stepped together (Adam for the MLP, SparseAdam for the grid)."""

    def __init__(self, optimizers: list) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list:
        return [g for o in self.optimizers for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def state_dict(self) -> list:
        return [o.state_dict() for o in self.optimizers]

    def load_state_dict(self, states: list) -> None:
        for o, s in zip(self.optimizers, states):
            o.load_state_dict(s)


class _NearestPoints:
    """Nearest input point of query points, among all input points (KD-tree).

    For big clouds (more than ``COARSE_NN_ABOVE`` points) a coarse tree on a random
    subset answers first: queries within ``COARSE_NN_NEAR`` subset spacings of the data get
    the exact nearest point of the full tree, farther ones keep the subset's nearest point
    (exact search from far away visits much of a dense cloud: 14x slower at 1M points;
    the subset's answer is within a subset spacing, under 1% of the distance there).
    """

    def __init__(self, points: np.ndarray, seed: int = 0) -> None:
        from scipy.spatial import cKDTree

        self.points = np.ascontiguousarray(points, dtype=np.float32)
        self.tree = cKDTree(self.points)
        self.coarse = None
        if len(self.points) > COARSE_NN_ABOVE:
            rng = np.random.default_rng(seed)
            self.coarse_idx = rng.choice(len(self.points), COARSE_NN_POINTS, replace=False)
            self.coarse = cKDTree(self.points[self.coarse_idx])
            spacing = float(self.coarse.query(self.points[self.coarse_idx[:2000]], k=2)[0][:, 1].mean())
            self.near = COARSE_NN_NEAR * spacing

    def __call__(self, q: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
        qn = q.detach().float().cpu().numpy()
        # scipy starts and joins threads on every call: for a step's ~1k queries that costs
        # more than the search (a third of a step with workers=2); one thread below 8k
        workers = max(1, torch.get_num_threads()) if len(qn) >= PARALLEL_NN_QUERIES else 1
        if self.coarse is None:
            _, idx = self.tree.query(qn, k=1, eps=eps, workers=workers)
        else:
            dc, ic = self.coarse.query(qn, k=1, workers=workers)
            idx = self.coarse_idx[ic]
            near = dc < self.near
            if near.any():
                idx[near] = self.tree.query(qn[near], k=1, eps=eps, workers=workers)[1]
        return torch.from_numpy(self.points[idx]).to(q.device, q.dtype)


#: Queries per call from which the KD-tree search uses several threads.
PARALLEL_NN_QUERIES = 8192
#: Clouds with more points get the two-stage nearest-neighbour search.
COARSE_NN_ABOVE = 200_000
#: Size of the coarse subset.
COARSE_NN_POINTS = 100_000
#: Queries within this many subset spacings of the data get the exact full-tree answer.
COARSE_NN_NEAR = 20.0


def fit(
    points: Any,
    normals: np.ndarray | None = None,
    *,
    preset: str | FitConfig | None = "default",
    config: FitConfig | None = None,
    callback: Callable[[int, int, dict[str, float]], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    **overrides: Any,
) -> FitResult:
    """Fit a neural level set to a point cloud.

    Parameters
    ----------
    points : str, PathLike, PointCloud or (N, 3) array
        The scan (a file is read with :func:`surfrec.io.load_points`).
    normals : (N, 3) array, optional
        Normals (used only when ``normal_weight > 0``).
    preset : str or FitConfig
        ``fast``, ``default`` or ``quality`` (ignored when ``config`` is given).
    config : FitConfig, optional
        Full configuration.
    callback : callable, optional
        Called as ``callback(step, total_steps, metrics)`` after each recorded step;
        the CLI draws its progress bar with it.
    stop : callable, optional
        Polled between steps (e.g. ``threading.Event().is_set``); when it returns True the
        state is saved to ``checkpoint`` and :class:`~surfrec.errors.FitInterrupted` is raised.
    checkpoint : path, optional
        Where an interrupted fit saves its state.
    resume : path, optional
        A checkpoint to continue from. Its configuration is used (``preset``, ``config``
        and ``overrides`` are ignored) and the scan must be the one it was made from. A
        resumed fit reproduces the uninterrupted one exactly when ``iterations`` (not the
        time budget) ends it, on the same device.
    **overrides
        FitConfig fields to replace, e.g. ``iterations=200, device="cpu"``.

    Returns
    -------
    FitResult
    """
    state = _load_checkpoint(resume) if resume is not None else None
    cfg = FitConfig.from_dict(state["config"]) if state else get_config(
        config if config is not None else preset, **overrides)
    pts, nrm, source = _prepare_points(points, normals)
    fingerprint = _fingerprint(pts)
    if state and state["fingerprint"] != fingerprint:
        raise InputError(resume, f"checkpoint was made from another scan than {source}")
    if float(np.ptp(pts, axis=0).max()) == 0.0:
        raise InputError(source, "all points are identical")
    norm, pts, nrm = _robust_normalization(pts, nrm, cfg, source)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    unit = norm.to_unit(pts).astype(np.float32)
    nearest = _NearestPoints(unit)
    n = len(unit)
    seed_idx = rng.choice(n, size=min(n, cfg.max_seed_points), replace=False) if n > cfg.max_seed_points else None
    seed_np = unit if seed_idx is None else unit[seed_idx]
    sigma_np = seed_sigmas(seed_np, cfg.seed_k, fixed=cfg.seed_sigma).astype(np.float32)

    x_all = torch.from_numpy(unit).to(device)
    seed_pts = torch.from_numpy(seed_np).to(device)
    sigma = torch.from_numpy(sigma_np).to(device)
    use_normals = cfg.normal_weight > 0 and nrm is not None
    n_all = torch.from_numpy(nrm.astype(np.float32)).to(device) if use_normals else None
    if cfg.normal_weight > 0 and nrm is None:
        log.info("normal_weight > 0 but the scan has no normals: the normal term is off")

    model = build_model(cfg.model).to(device)
    groups = [{"params": model.mlp_parameters(), "base_lr": cfg.lr}]
    grid_group = {"params": model.grid_parameters(), "base_lr": cfg.grid_lr}
    optimizers = [Adam(groups, lr=cfg.lr)]
    if model.grid_parameters():
        if cfg.grid_optimizer == "sparse_adam":
            model.sparse_grid_grad = True
            optimizers.append(torch.optim.SparseAdam([grid_group], lr=cfg.grid_lr))
        else:
            optimizers[0].add_param_group(grid_group)
    opt = _Optimizers(optimizers)
    n_levels = len(model.grid_parameters())
    lvl = float(cfg.level)

    def seeds(k: int) -> torch.Tensor:
        return draw_seeds(seed_pts, sigma, k, uniform_fraction=cfg.uniform_fraction,
                          bounds=(-cfg.box, cfg.box), sigma_scale=cfg.seed_sigma_scale, generator=gen)

    def newton(p: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f, g = value_and_grad(model, p)
        for _ in range(k):
            g2 = (g * g).sum(dim=1).clamp_min(cfg.eps)
            p = p - ((f - lvl) / g2).unsqueeze(1) * g
            f, g = value_and_grad(model, p)
        return p, f, g

    buf, f_buf, g_buf = newton(seeds(cfg.n_samples), cfg.init_newton_steps)
    history: dict[str, list[float]] = {k: [] for k in (
        "step", "time", "lr", "loss", "surface", "data", "distance", "residual_median",
        "residual_p90", "converged")}
    total = cfg.iterations
    n_refresh = int(round(cfg.n_samples * cfg.refresh_fraction))
    good_state = copy.deepcopy(model.state_dict())
    good_opt = copy.deepcopy(opt.state_dict())
    failures = 0
    lr_scale = 1.0
    t0 = time.perf_counter()
    step = 0
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        buf, f_buf, g_buf = (state["buffer"][k].to(device) for k in ("p", "f", "g"))
        gen.set_state(state["generator"])
        history, step, lr_scale, failures = state["history"], state["step"], state["lr_scale"], state["failures"]
        t0 -= state["elapsed"]
        good_state, good_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
        log.info("resumed from %s at step %d of %d", resume, step, total)
    model.train()
    while step < total:
        if stop is not None and stop():
            if checkpoint is not None:
                _save_checkpoint(checkpoint, {
                    "config": cfg.to_dict(), "fingerprint": fingerprint, "model": model.state_dict(),
                    "optimizer": opt.state_dict(), "buffer": {"p": buf, "f": f_buf, "g": g_buf},
                    "generator": gen.get_state(), "history": history, "step": step, "lr_scale": lr_scale,
                    "failures": failures, "elapsed": time.perf_counter() - t0})
            raise FitInterrupted(step, total, checkpoint)
        elapsed = time.perf_counter() - t0
        if cfg.time_budget is not None and elapsed >= cfg.time_budget:
            log.info("time budget of %.1f s reached after %d steps", cfg.time_budget, step)
            break
        # the schedule follows wall-clock progress when a time budget is the binding limit
        progress_total = total
        if cfg.time_budget is not None and step > 10:
            est = int(step * cfg.time_budget / max(elapsed, 1e-6))
            progress_total = max(step + 1, min(total, est))
        lr = _lr_at(cfg, step, progress_total) * lr_scale
        for group in opt.param_groups:
            group["lr"] = lr * group["base_lr"] / cfg.lr
        if n_levels > 1 and cfg.coarse_to_fine > 0:
            model.set_level_weights(_level_weights(n_levels, step / max(1, progress_total), cfg.coarse_to_fine))

        # 1. level-set samples: refresh a share, warm-start Newton from the last positions
        with torch.no_grad():
            if n_refresh > 0:
                ridx = torch.randint(0, cfg.n_samples, (n_refresh,), generator=gen).to(device)
                buf[ridx] = seeds(n_refresh)
            buf, f_buf, g_buf = newton(buf, cfg.newton_steps)
            bad = ~torch.isfinite(buf).all(dim=1) | (buf.abs() > cfg.box).any(dim=1)
            if bad.any():
                nb = int(bad.sum())
                buf[bad] = seeds(nb)
                fb, gb = value_and_grad(model, buf[bad])
                f_buf[bad], g_buf[bad] = fb, gb
            res = (f_buf - lvl).abs()
            ok = (res < cfg.sample_tol) & ((g_buf * g_buf).sum(dim=1) > cfg.eps)
        # 2.-4. losses, from one batched forward pass of every point that needs F(·; θ)
        use_surf = bool(ok.any()) and cfg.surface_weight > 0
        ps = buf[ok] if use_surf else buf[:0]
        bidx = torch.randint(0, n, (min(cfg.batch_points, n),), generator=gen).to(device)
        xb = x_all[bidx]
        q = xb[:0]
        if cfg.distance_weight > 0 or cfg.eikonal_weight > 0:
            n_near = int(cfg.n_distance_samples * cfg.distance_near_fraction)
            near_idx = torch.randint(0, seed_pts.shape[0], (n_near,), generator=gen).to(device)
            near = seed_pts[near_idx] + torch.randn(n_near, 3, generator=gen).to(device) * (
                3.0 * sigma[near_idx]).unsqueeze(1)
            uni = (torch.rand(cfg.n_distance_samples - n_near, 3, generator=gen).to(device) * 2 - 1) * cfg.box
            q = torch.cat([near, uni])
        use_dist = cfg.distance_weight > 0 and q.shape[0] > 0
        f_all = model(torch.cat([ps, xb, q if use_dist else q[:0]]))
        f_s, f_x, f_q = torch.split(f_all, [ps.shape[0], xb.shape[0], f_all.shape[0] - ps.shape[0] - xb.shape[0]])
        loss = torch.zeros((), device=device)
        terms: dict[str, torch.Tensor] = {}
        if use_surf:
            p_theta = sample_network(model, ps, f_buf[ok], g_buf[ok], eps=cfg.eps, f=f_s)
            l_surf = surface_sample_loss(p_theta, nearest(ps))
            loss = loss + cfg.surface_weight * l_surf
            terms["surface"] = l_surf
        l_data = (f_x - lvl).abs().mean()
        loss = loss + cfg.data_weight * l_data
        terms["data"] = l_data
        if use_dist:
            fq, gq = value_and_grad(model, q)
            p_q = sample_network(model, q, fq, gq, eps=cfg.eps, f=f_q)
            l_dist = distance_sample_loss(p_q, nearest(q, cfg.distance_nn_eps), fq)
            loss = loss + cfg.distance_weight * l_dist
            terms["distance"] = l_dist
        if cfg.grid_decay_weight > 0 and n_levels:
            u = (torch.rand(cfg.batch_points, 3, generator=gen).to(device) * 2 - 1) * cfg.box
            l_decay = model._encode(u).pow(2).sum(dim=1).mean()
            loss = loss + cfg.grid_decay_weight * l_decay
            terms["grid_decay"] = l_decay
        if cfg.eikonal_weight > 0:
            l_eik = eikonal_loss(model, q)
            loss = loss + cfg.eikonal_weight * l_eik
            terms["eikonal"] = l_eik
        if use_normals:
            l_n = normal_loss(model, xb, n_all[bidx])
            loss = loss + cfg.normal_weight * l_n
            terms["normal"] = l_n

        if not torch.isfinite(loss):
            failures += 1
            if failures > 5:
                raise FitDivergedError(
                    f"the loss became non-finite {failures} times (step {step}); "
                    "try a lower learning rate (--lr) or another preset")
            lr_scale *= 0.5
            log.warning("non-finite loss at step %d: rolled back, learning rate x%.3g", step, lr_scale)
            model.load_state_dict(good_state)
            opt.load_state_dict(good_opt)
            buf, f_buf, g_buf = newton(seeds(cfg.n_samples), cfg.init_newton_steps)
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            good_state = copy.deepcopy(model.state_dict())
            good_opt = copy.deepcopy(opt.state_dict())

        if step % cfg.log_every == 0 or step == total or step == 1:
            r = res[torch.isfinite(res)]
            nan = torch.tensor(float("nan"))
            rec = {
                "step": step, "time": time.perf_counter() - t0, "lr": lr, "loss": float(loss.detach()),
                "surface": float(terms.get("surface", nan).detach()), "data": float(terms["data"].detach()),
                "distance": float(terms.get("distance", nan).detach()),
                "residual_median": float(r.median()) if r.numel() else float("nan"),
                "residual_p90": float(torch.quantile(r, 0.9)) if r.numel() else float("nan"),
                "converged": float(ok.float().mean()),
            }
            for k, v in rec.items():
                history[k].append(float(v))
            if callback is not None:
                callback(step, progress_total, rec)
    seconds = time.perf_counter() - t0
    if n_levels:
        model.set_level_weights([1.0] * n_levels)
        model.sparse_grid_grad = False
    model.eval()
    model = model.to("cpu")
    keep = rng.choice(n, size=min(n, 200_000), replace=False)
    log.info("fit: %d steps in %.1f s (%.1f steps/s)", step, seconds, step / max(seconds, 1e-9))
    return FitResult(model=model, normalization=norm, config=cfg, history=history,
                     seconds=seconds, steps=step, data_points=unit[keep])


# ------------------------------------------------------------------- checkpoints
#: Layout version of checkpoints written by an interrupted fit.
CHECKPOINT_FORMAT = 1


def _fingerprint(points: np.ndarray) -> str:
    """A hash of the scan, so a checkpoint is never resumed on another scan."""
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(points, dtype=np.float64).tobytes()).hexdigest()


def _save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    from . import __version__
    from .io import atomic_path

    payload = {"format": "surfrec-checkpoint", "format_version": CHECKPOINT_FORMAT,
               "surfrec_version": __version__, "torch_version": str(torch.__version__), **state}
    payload["buffer"] = {k: v.detach().cpu() for k, v in state["buffer"].items()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    log.info("checkpoint saved to %s (step %d)", path, state["step"])


def _load_checkpoint(path: str | os.PathLike) -> dict:
    from . import __version__

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise InputError(p, "checkpoint not found")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise InputError(p, f"not a readable surfrec checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != "surfrec-checkpoint":
        raise InputError(p, "not a surfrec checkpoint")
    if payload.get("format_version") != CHECKPOINT_FORMAT or payload.get("surfrec_version") != __version__:
        raise InputError(p, f"checkpoint from surfrec {payload.get('surfrec_version')} (format "
                            f"{payload.get('format_version')}) cannot be resumed by surfrec {__version__}; "
                            "start the fit again")
    return payload
