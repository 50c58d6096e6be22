"""The field stage: fitting a neural level set to an inspected scan (the training loop).

The loop (per step):

1. A persistent buffer of level-set samples is warm-started from the previous step: a
   share is replaced by fresh seeds (:func:`surfrec.field.levelset.draw_seeds`) and every sample
   takes ``newton_steps`` generalized Newton steps towards F = c (no θ-gradient). The
   last step is "one pass": F at the moved samples comes from the loss's own forward
   pass, and ∇ₓF from where the step started, so a step evaluates ∇ₓF once.
2. The sample network p(θ) of the samples is pulled towards each sample's nearest input
   point (nearest among *all* points: :class:`surfrec.input.index.NearestPoints`), which
   moves the surface onto the data and removes surface where there is none. In this
   torch loop the query runs in a helper thread while the forward pass runs
   (``parallel_nearest``; the same result either way); the fused step searches its
   grid inside the forward pass.
3. λ·mean|F(x) − c| on a batch of input points pins the surface to the data.
4. Optionally "distance" samples (points near the data and in the box) move their own
   level set S_{F(q)} to distance |F(q)| from the data, which keeps F distance-like and
   free of stray sheets; optional eikonal and normal terms (second derivatives).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import torch

from ..errors import FitDivergedError, FitInterrupted, InputError
from ..settings import FitConfig
from .data import FitData, SignData, prepare_fit
from .levelset import draw_seeds, newton_delta, newton_iterate, value_and_grad
from .losses import (
    HISTORY_KEYS,
    distance_sample_loss,
    eikonal_loss,
    normal_loss,
    sample_network,
    side_loss,
    sign_push_loss,
    slope_loss,
    surface_sample_loss,
)
from .model import build_model
from .optim import Adam, Optimizers, level_weights, lr_at

if TYPE_CHECKING:
    from ..input.inspect import Scan

log = logging.getLogger(__name__)

__all__ = ["train_field", "FieldFit", "FitState", "init_state", "train", "Checkpoint", "load_checkpoint"]


@dataclass
class FitState:
    """Everything a step changes (a checkpoint saves it; ``on_step`` hooks read it)."""

    model: torch.nn.Module
    opt: Optimizers
    gen: torch.Generator
    buf: torch.Tensor = None
    """(n_samples, 3) persistent level-set samples."""
    f_buf: torch.Tensor = None
    """(n_samples,) F(θ) at ``buf`` (detached; set by the step's forward pass)."""
    g_buf: torch.Tensor = None
    """(n_samples, 3) ∇ₓF where each sample's last Newton step started (the direction its
    sample network moves along)."""
    d_buf: torch.Tensor | None = None
    """(n_samples,) each sample's distance to its nearest input point at the last step (0 for
    samples left out of the loss); only kept when ``keep_far_fraction > 0``."""
    history: dict = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    step: int = 0
    lr_scale: float = 1.0
    failures: int = 0
    good_state: dict = None
    good_opt: list = None
    t0: float = 0.0
    stopped_by: str = "iterations"
    """What ended the loop: ``iterations``, ``time_budget`` or ``hook``."""
    loss: torch.Tensor | None = None
    """The last step's total loss (detached)."""
    terms: dict = field(default_factory=dict)
    """The last step's loss terms (with their graphs until the next step)."""
    usable: torch.Tensor | None = None
    """(n_samples,) bool: the samples the last step's sample terms used (residual below
    ``sample_tol``, ∇ₓF not vanishing)."""
    pool: ThreadPoolExecutor | None = None
    """The helper thread of the nearest-point queries while :func:`train` runs
    (``parallel_nearest``), else None."""

    @property
    def n_levels(self) -> int:
        """Number of feature-grid levels of the model (0 without a grid)."""
        return len(self.model.grid_parameters())

    def snapshot(self) -> None:
        """Remember the current weights as the last good state (rollback target)."""
        self.good_state = copy.deepcopy(self.model.state_dict())
        self.good_opt = copy.deepcopy(self.opt.state_dict())


# ------------------------------------------------------------------ the loop state
def _build_optimizer(cfg: FitConfig, model: torch.nn.Module) -> Optimizers:
    """Adam for the MLP; SparseAdam (or the same Adam) for a feature grid."""
    groups = [{"params": model.mlp_parameters(), "base_lr": cfg.lr}]
    grid_group = {"params": model.grid_parameters(), "base_lr": cfg.grid_lr}
    optimizers = [Adam(groups, lr=cfg.lr)]
    if model.grid_parameters():
        if cfg.grid_optimizer == "sparse_adam":
            model.sparse_grid_grad = True
            optimizers.append(torch.optim.SparseAdam([grid_group], lr=cfg.grid_lr))
        else:
            optimizers[0].add_param_group(grid_group)
    return Optimizers(optimizers)


def _seeds(cfg: FitConfig, data: FitData, gen: torch.Generator, k: int) -> torch.Tensor:
    """``k`` fresh seeds (Gaussians around input points plus a uniform share)."""
    return draw_seeds(data.seed_pts, data.sigma, k, uniform_fraction=cfg.uniform_fraction,
                      bounds=(-cfg.box, cfg.box), sigma_scale=cfg.seed_sigma_scale, generator=gen)


def _fresh_buffer(cfg: FitConfig, data: FitData, st: FitState) -> None:
    """A new sample buffer: seeds projected with ``init_newton_steps`` Newton steps."""
    st.buf, st.f_buf, st.g_buf = newton_iterate(st.model, _seeds(cfg, data, st.gen, cfg.n_samples),
                                                float(cfg.level), cfg.init_newton_steps, cfg.eps)
    st.d_buf = None


def init_state(cfg: FitConfig, data: FitData, device: torch.device,
               model: torch.nn.Module | None = None) -> FitState:
    """Seeded network (``model``, or one built from ``cfg.model``), optimizer and initial
    sample buffer."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = (model if model is not None else build_model(cfg.model)).to(device)
    st = FitState(model=model, opt=_build_optimizer(cfg, model), gen=gen)
    _fresh_buffer(cfg, data, st)
    st.snapshot()
    return st


def _restore(st: FitState, saved: dict, device: torch.device, total: int) -> None:
    """Continue from a checkpoint's state."""
    st.model.load_state_dict(saved["model"])
    st.opt.load_state_dict(saved["optimizer"])
    st.buf, st.f_buf, st.g_buf = (saved["buffer"][k].to(device) for k in ("p", "f", "g"))
    st.d_buf = saved["buffer"]["d"].to(device) if "d" in saved["buffer"] else None
    st.gen.set_state(saved["generator"])
    st.history, st.step, st.lr_scale, st.failures = (saved["history"], saved["step"], saved["lr_scale"],
                                                     saved["failures"])
    st.t0 -= saved["elapsed"]
    st.snapshot()
    log.info("resumed at step %d of %d", st.step, total)


# ------------------------------------------------------------------ one step, in parts
def _out_of_time(cfg: FitConfig, st: FitState, elapsed: float) -> bool:
    """The one place the time budget is checked."""
    if cfg.time_budget is not None and elapsed >= cfg.time_budget:
        log.warning("time budget of %.1f s reached after %d of %d steps: the fit was cut short (its "
                    "result depends on the machine's speed and load)", cfg.time_budget, st.step, cfg.iterations)
        return True
    return False


def _schedule_lr(cfg: FitConfig, step: int, lr_scale: float, elapsed: float) -> tuple[float, int]:
    """This step's learning rate and the schedule's length (it follows wall-clock progress
    when a time budget is the binding limit)."""
    total = cfg.iterations
    if cfg.time_budget is not None and step > cfg.schedule_after:
        est = int(step * cfg.time_budget / max(elapsed, 1e-6))
        total = max(step + 1, min(cfg.iterations, est))
    return lr_at(cfg, step, total) * lr_scale, total


def _schedule(cfg: FitConfig, st: FitState, elapsed: float) -> tuple[float, int]:
    """Set this step's learning rates (and grid level weights); returns (lr, schedule length)."""
    lr, total = _schedule_lr(cfg, st.step, st.lr_scale, elapsed)
    for group in st.opt.param_groups:
        group["lr"] = lr * group["base_lr"] / cfg.lr
    if st.n_levels > 1 and cfg.coarse_to_fine > 0:
        st.model.set_level_weights(level_weights(st.n_levels, st.step / max(1, total), cfg.coarse_to_fine))
    return lr, total


def _refresh_indices(cfg: FitConfig, st: FitState, n_refresh: int) -> torch.Tensor:
    """Buffer slots the refresh replaces: uniform, or (``keep_far_fraction`` > 0) uniform
    among all but the samples farthest from the data at the last step, which stay."""
    if cfg.keep_far_fraction > 0 and st.d_buf is not None:
        n_pool = cfg.n_samples - int(round(cfg.n_samples * cfg.keep_far_fraction))
        pool = torch.argsort(st.d_buf)[:max(1, n_pool)]
        return pool[torch.randint(0, pool.numel(), (n_refresh,), generator=st.gen).to(pool.device)]
    return torch.randint(0, cfg.n_samples, (n_refresh,), generator=st.gen).to(st.buf.device)


@torch.no_grad()
def _project_samples(cfg: FitConfig, data: FitData, st: FitState) -> None:
    """Step 1: refresh a share of the buffer, warm-start Newton from the last positions.

    ``newton_steps − 1`` full Newton steps, then one whose ∇ₓF is kept in ``st.g_buf``:
    F at the moved samples comes from the loss's forward pass (:func:`_loss` fills
    ``st.f_buf``), so the step evaluates F and ∇ₓF once less. The sample network then
    moves each sample along the gradient where its step started, a Newton step away
    (the same bench quality at 1.1–1.25× the steps/s: benchmarks/EXPERIMENTS.md).
    """
    lvl = float(cfg.level)
    n_refresh = int(round(cfg.n_samples * cfg.refresh_fraction))
    if n_refresh > 0:
        ridx = _refresh_indices(cfg, st, n_refresh)
        st.buf[ridx] = _seeds(cfg, data, st.gen, n_refresh)
    p, f, g = newton_iterate(st.model, st.buf, lvl, cfg.newton_steps - 1, cfg.eps)
    p = p - newton_delta(f, g, lvl, cfg.eps)
    bad = ~torch.isfinite(p).all(dim=1) | (p.abs() > cfg.box).any(dim=1)
    if bad.any():  # fresh seeds, where they stand (their residual leaves most out this step)
        p[bad] = _seeds(cfg, data, st.gen, int(bad.sum()))
        g[bad] = value_and_grad(st.model, p[bad])[1]
    st.buf, st.g_buf = p, g


@contextlib.contextmanager
def _lookup_thread(cfg: FitConfig, st: FitState) -> Iterator[None]:
    """While the loop runs: the helper thread of the nearest-point queries (``parallel_nearest``).

    With torch on ``threads`` = 1 (the default) the second core is idle during the
    forward pass; the KD-tree query releases the GIL, so it runs there meanwhile.
    """
    if not cfg.parallel_nearest:
        yield
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="surfrec-nearest") as pool:
        st.pool = pool
        try:
            yield
        finally:
            st.pool = None


def _start_lookup(data: FitData, st: FitState, ps: torch.Tensor) -> Callable[[], np.ndarray]:
    """Start the query of the samples' nearest scan points; returns the call that waits for it.

    Parameters
    ----------
    ps : (M, 3) samples (detached)

    Returns
    -------
    callable → (M,) int64 index into the scan points (closed fits: ``data.nearest``) or into
    the side term's points, −1 beyond ``sides.sample_radius`` (open fits).
    """
    qn = ps.detach() if isinstance(ps, torch.Tensor) else ps
    sheet = data.sheet
    if sheet is None:
        job = lambda: data.nearest.indices(qn)  # noqa: E731
    else:
        job = lambda: sheet.nearest.indices(qn, upto=sheet.sample_radius)  # noqa: E731
    if st.pool is None:
        return job
    return st.pool.submit(job).result


def _distance_samples(cfg: FitConfig, data: FitData, gen: torch.Generator,
                      count: int | None = None, near_fraction: float | None = None) -> torch.Tensor:
    """(count, 3) points near the data (wide Gaussians around input points) and uniform in
    the box (``count`` default: ``n_distance_samples``; ``near_fraction`` the share near the
    data, default ``distance_near_fraction``)."""
    dev = data.seed_pts.device
    count = cfg.n_distance_samples if count is None else count
    near_fraction = cfg.distance_near_fraction if near_fraction is None else near_fraction
    n_near = int(count * near_fraction)
    near_idx = torch.randint(0, data.seed_pts.shape[0], (n_near,), generator=gen).to(dev)
    dim = data.seed_pts.shape[1]
    near = data.seed_pts[near_idx] + torch.randn(n_near, dim, generator=gen).to(dev) * (
        cfg.distance_sigma_scale * data.sigma[near_idx]).unsqueeze(1)
    uni = (torch.rand(count - n_near, dim, generator=gen).to(dev) * 2 - 1) * cfg.box
    return torch.cat([near, uni])


def _loss(cfg: FitConfig, data: FitData, st: FitState) -> torch.Tensor:
    """Steps 2-4: the loss terms, from one batched forward pass of every point that needs F(·; θ).

    The pass includes every level-set sample: it gives ``st.f_buf`` and so the samples the
    sample terms use (``st.usable``).
    """
    lvl, model, dev = float(cfg.level), st.model, data.x_all.device
    ps = st.buf
    lookup = _start_lookup(data, st, ps) if cfg.surface_weight > 0 else None
    n = data.x_all.shape[0]
    bidx = torch.randint(0, n, (min(cfg.batch_points, n),), generator=st.gen).to(dev)
    xb = data.x_all[bidx]
    q = _distance_samples(cfg, data, st.gen) if cfg.distance_weight > 0 or cfg.eikonal_weight > 0 else xb[:0]
    use_dist = cfg.distance_weight > 0 and q.shape[0] > 0
    sides = data.sides
    if sides is not None:
        sidx = torch.randint(0, sides.points.shape[0], (min(cfg.side_points, sides.points.shape[0]),),
                             generator=st.gen).to(dev)
        side = torch.randint(0, 2, (sidx.shape[0],), generator=st.gen).to(dev) * 2.0 - 1.0
        xs = sides.points[sidx] + (side * sides.delta[sidx])[:, None] * sides.normals[sidx]
    else:
        xs = xb[:0]
    q_eik, q = q, (q if use_dist else q[:0])  # the eikonal term has its points without the distance term
    xl = _slope_points(cfg, data, st) if cfg.slope_weight > 0 else xb[:0]
    f_all = model(torch.cat([ps, xb, xs, q, xl]))
    f_s, f_x, f_side, f_q, f_l = torch.split(f_all, [ps.shape[0], xb.shape[0], xs.shape[0], q.shape[0],
                                                     xl.shape[0]])
    st.f_buf = f_s.detach()
    st.usable = ((st.f_buf - lvl).abs() < cfg.sample_tol) & ((st.g_buf * st.g_buf).sum(dim=1) > cfg.eps)
    terms: dict[str, tuple[float, torch.Tensor]] = {}
    if lookup is not None:
        nn = torch.from_numpy(lookup()).to(dev)
        if st.usable.any():
            terms.update(_sample_terms(cfg, data, st, f_s, nn))
    terms["data"] = (cfg.data_weight, (f_x - lvl).abs().mean())
    if sides is not None:
        terms["side"] = (sides.weight, side_loss(f_side, side, sides.delta[sidx], lvl, cfg.side_margin))
    if use_dist:
        fq, gq = value_and_grad(model, q)
        p_q = sample_network(model, q, fq, gq, eps=cfg.eps, f=f_q)
        terms["distance"] = (cfg.distance_weight,
                             distance_sample_loss(p_q, data.nearest(q, cfg.distance_nn_eps), fq))
    if cfg.grid_decay_weight > 0 and st.n_levels:
        u = (torch.rand(cfg.batch_points, 3, generator=st.gen).to(dev) * 2 - 1) * cfg.box
        terms["grid_decay"] = (cfg.grid_decay_weight, model._encode(u).pow(2).sum(dim=1).mean())
    if cfg.slope_weight > 0:
        terms["slope"] = (cfg.slope_weight, slope_loss(*f_l.chunk(2), cfg.slope_step))
    if cfg.eikonal_weight > 0:
        terms["eikonal"] = (cfg.eikonal_weight, eikonal_loss(model, q_eik))
    if data.normals is not None:
        terms["normal"] = (cfg.normal_weight, normal_loss(model, xb, data.normals[bidx]))
    loss = torch.zeros((), device=dev)
    for weight, value in terms.values():
        loss = loss + weight * value
    st.terms = {k: v for k, (_, v) in terms.items()}
    return loss


def _slope_points(cfg: FitConfig, data: FitData, st: FitState) -> torch.Tensor:
    """(2B, 3) the slope term's pairs x + hn, then x − hn (B = ``slope_points``; n the unit
    ∇ₓF at x, detached)."""
    x = _distance_samples(cfg, data, st.gen, cfg.slope_points, cfg.slope_near_fraction)
    g = value_and_grad(st.model, x)[1]
    hn = cfg.slope_step * g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.cat([x + hn, x - hn])


def _sample_terms(cfg: FitConfig, data: FitData, st: FitState, f_s: torch.Tensor,
                  nn: torch.Tensor) -> dict[str, tuple[float, torch.Tensor]]:
    """The sample network's terms over the usable samples: the pull to the data, and the
    sign push (closed fits) or the sheet selection (open fits).

    Parameters
    ----------
    f_s : (n_samples,) F(buf; θ) with its θ-graph
    nn : (n_samples,) int64 index of each sample's nearest point (:func:`_start_lookup`)

    Returns
    -------
    dict name -> (weight, scalar tensor)
    """
    ok, dev, sides = st.usable, f_s.device, data.sheet
    ps, f0, g0, nn = st.buf[ok], st.f_buf[ok], st.g_buf[ok], nn[ok]
    f_ok = f_s[ok]
    p_theta = sample_network(st.model, ps, f0, g0, eps=cfg.eps, f=f_ok)
    terms: dict[str, tuple[float, torch.Tensor]] = {}
    if sides is None:
        target = data.nearest.points_at(nn, dev, ps.dtype)
        if cfg.keep_far_fraction > 0:
            st.d_buf = torch.zeros(st.buf.shape[0], device=dev)
            st.d_buf[ok] = (ps - target).norm(dim=1)
        if data.signs is not None and st.step >= cfg.sign_after * cfg.iterations:
            push = sign_push(data.signs, ps, target)
            on = push != 0
            if on.any():
                terms["sign"] = (cfg.surface_weight * cfg.sign_weight, sign_push_loss(
                    f_ok[on], f0[on], push[on], ps.shape[0]))
                p_theta, target = p_theta[~on], target[~on]
    else:  # an open surface: only its sheet is pulled, not the level set closing the inside
        near = nn >= 0
        nn = nn.clamp(min=0)
        target = sides.points[nn]
        sheet = near & ((g0 * sides.normals[nn]).sum(dim=1) > 0)
        p_theta, target = p_theta[sheet], target[sheet]
    if target.shape[0]:
        terms["surface"] = (cfg.surface_weight, surface_sample_loss(p_theta, target))
    return terms


def sign_push(signs: SignData, ps: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Which level-set samples are stray surface on a known side of a closed scan.

    Parameters
    ----------
    ps : (M, 3) samples; target : (M, 3) their nearest data points.

    Returns
    -------
    (M,) float: +1 where the sample is farther than ``signs.far`` from the data inside the
    scan (a bubble: F should drop there), −1 far outside it (a web or sheet: F should rise),
    0 elsewhere (pulled to the data as usual).
    """
    far = (ps - target).norm(dim=1) > signs.far
    push = torch.zeros(ps.shape[0], device=ps.device)
    if far.any():
        w = signs.winding(ps[far])
        push[far] = (w > signs.inside).float() - (w < signs.outside).float()
    return push


def _roll_back(cfg: FitConfig, data: FitData, st: FitState) -> None:
    """A non-finite loss: back to the last good state, lower learning rate, fresh samples."""
    st.failures += 1
    if st.failures > cfg.max_failures:
        raise FitDivergedError(
            f"the loss became non-finite {st.failures} times (step {st.step}); "
            "try a lower learning rate (--lr) or another preset")
    st.lr_scale *= cfg.failure_lr_factor
    log.warning("non-finite loss at step %d: rolled back, learning rate x%.3g", st.step, st.lr_scale)
    st.model.load_state_dict(st.good_state)
    st.opt.load_state_dict(st.good_opt)
    _fresh_buffer(cfg, data, st)


def _optimizer_step(cfg: FitConfig, st: FitState, loss: torch.Tensor) -> None:
    """Backward pass and update; a snapshot of the good state every ``rollback_every`` steps."""
    st.opt.zero_grad(set_to_none=True)
    loss.backward()
    st.opt.step()
    st.step += 1
    st.loss = loss.detach()
    if st.step % cfg.rollback_every == 0:
        st.snapshot()


def _record(cfg: FitConfig, st: FitState, lr: float) -> dict | None:
    """Append the step's metrics to the history every ``log_every`` steps (and the first and last)."""
    if not (st.step % cfg.log_every == 0 or st.step == cfg.iterations or st.step == 1):
        return None
    res, ok = (st.f_buf - float(cfg.level)).abs(), st.usable
    r = res[torch.isfinite(res)]
    nan = torch.tensor(float("nan"))
    rec = {
        "step": st.step, "time": time.perf_counter() - st.t0, "lr": lr, "loss": float(st.loss),
        **{k: float(st.terms.get(k, nan).detach()) for k in ("surface", "sign", "data", "side", "slope", "distance")},
        "residual_median": float(r.median()) if r.numel() else float("nan"),
        "residual_p90": float(torch.quantile(r, 0.9)) if r.numel() else float("nan"),
        "converged": float(ok.float().mean()),
    }
    for k, v in rec.items():
        st.history[k].append(float(v))
    return rec


def _interrupt(cfg: FitConfig, st: FitState, checkpoint: "Checkpoint | None") -> None:
    """Save the state to ``checkpoint`` (when given) and raise FitInterrupted."""
    if checkpoint is not None:
        _save_checkpoint(checkpoint.path, {
            **checkpoint.meta, "model": st.model.state_dict(),
            "optimizer": st.opt.state_dict(), "buffer": {"p": st.buf, "f": st.f_buf, "g": st.g_buf,
                                                            **({} if st.d_buf is None else {"d": st.d_buf})},
            "generator": st.gen.get_state(), "history": st.history, "step": st.step, "lr_scale": st.lr_scale,
            "failures": st.failures, "elapsed": time.perf_counter() - st.t0})
    raise FitInterrupted(st.step, cfg.iterations, None if checkpoint is None else checkpoint.path)


#: ``on_step(state)`` hook: called after every optimizer step; returning True ends the fit.
StepHook = Callable[[FitState], "bool | None"]


def train(cfg: FitConfig, data: FitData, st: FitState, *, callback=None, stop=None,
          checkpoint=None, on_step: StepHook | None = None) -> None:
    """The loop: schedule → project samples → loss → optimizer step → record, until a limit."""
    st.model.train()
    with _lookup_thread(cfg, st):
        _loop(cfg, data, st, callback, stop, checkpoint, on_step)


def _loop(cfg: FitConfig, data: FitData, st: FitState, callback, stop, checkpoint,
          on_step: StepHook | None) -> None:
    """:func:`train`'s steps."""
    while st.step < cfg.iterations:
        if stop is not None and stop():
            _interrupt(cfg, st, checkpoint)
        elapsed = time.perf_counter() - st.t0
        if _out_of_time(cfg, st, elapsed):
            st.stopped_by = "time_budget"
            break
        lr, schedule_total = _schedule(cfg, st, elapsed)
        _project_samples(cfg, data, st)
        loss = _loss(cfg, data, st)
        if not torch.isfinite(loss):
            _roll_back(cfg, data, st)
            continue
        _optimizer_step(cfg, st, loss)
        rec = _record(cfg, st, lr)
        if rec is not None and callback is not None:
            callback(st.step, schedule_total, rec)
        if on_step is not None and on_step(st):
            log.info("stopped by the step hook after %d steps", st.step)
            st.stopped_by = "hook"
            break


@dataclass
class FieldFit:
    """What :func:`train_field` returns: the fitted network and how the fit went."""

    model: torch.nn.Module
    """The fitted network (eval mode, on CPU), in the normalized frame."""
    history: dict
    """Per recorded step (:data:`HISTORY_KEYS`): lists of floats."""
    seconds: float
    """Wall-clock time of the optimization."""
    steps: int
    """Steps performed."""
    stopped_by: str
    """What ended the fit: ``iterations`` (reproducible), ``time_budget`` or ``hook``."""
    closed_side: bool | None = None
    """Closed fits with ``closed_side_weight`` > 0: whether the side term ran."""
    closed_side_share: float | None = None
    """Share of the points whose outward normal was trusted."""
    timings: dict = field(default_factory=dict)
    """Seconds of ``sigma`` and ``sides`` (set-up) and ``fit`` (the optimization)."""


def _finish(cfg: FitConfig, data: FitData, st: FitState) -> FieldFit:
    """All grid levels on, eval mode, on CPU."""
    seconds = time.perf_counter() - st.t0
    model = st.model
    if st.n_levels:
        model.set_level_weights([1.0] * st.n_levels)
        model.sparse_grid_grad = False
    model.eval()
    model = model.to("cpu")
    log.info("fit: %d steps in %.1f s (%.1f steps/s)", st.step, seconds, st.step / max(seconds, 1e-9))
    return FieldFit(model=model, history=st.history, seconds=seconds, steps=st.step, stopped_by=st.stopped_by,
                    closed_side=data.closed_side, closed_side_share=data.closed_side_share,
                    timings={**data.timings, "fit": seconds})


def train_field(scan: "Scan", open_surface: bool, cfg: FitConfig, *,
                callback: Callable[[int, int, dict[str, float]], None] | None = None,
                stop: Callable[[], bool] | None = None, checkpoint: "Checkpoint | None" = None,
                resume: dict | None = None, on_step: StepHook | None = None) -> FieldFit:
    """The field stage: fit F to an inspected scan.

    Parameters
    ----------
    scan : Scan
        :func:`surfrec.input.inspect.inspect_scan`'s result.
    open_surface : bool
        Fit an open surface (a side at the sheet; :func:`surfrec.surface.decide.fit_shape`).
    cfg : FitConfig
    callback : callable, optional
        ``callback(step, total_steps, metrics)`` after each recorded step (progress bars).
    stop : callable, optional
        Polled between steps; when it returns True the state is saved to ``checkpoint``
        and :class:`~surfrec.errors.FitInterrupted` is raised.
    checkpoint : Checkpoint, optional
        Where an interrupted fit saves its state, and what it stores beside it.
    resume : dict, optional
        A checkpoint's payload (:func:`load_checkpoint`) to continue from: the result is
        the uninterrupted fit's when ``iterations`` ends it, on the same device.
    on_step : callable, optional
        ``on_step(state)`` after every optimizer step; True ends the fit there.
    """
    from ..device import resolve_device, torch_threads
    from .step import unsupported

    device = resolve_device(cfg.device)
    with torch_threads(cfg.threads or 1):  # the torch loop's fixed count: the same model on any machine
        data = prepare_fit(scan, open_surface, cfg, device)
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model).to(device)
        why = None if cfg.engine == "torch" else unsupported(cfg, model, device, data)
        if cfg.engine == "fused" and why is not None:
            raise ValueError(f"FitConfig.engine: the fused engine cannot run this fit: {why}")
        if cfg.engine == "torch" or why is not None:
            if cfg.engine == "auto":
                log.info("fit on torch (the fused engine does not apply: %s)", why)
            return _torch_fit(cfg, data, model, device, callback, stop, checkpoint, resume, on_step)
        return _fused_fit(cfg, data, model, callback, stop, checkpoint, resume, on_step)


def _torch_fit(cfg: FitConfig, data: FitData, model, device, callback, stop, checkpoint, resume, on_step) -> FieldFit:
    """The torch loop (the reference; CUDA; what the fused engine does not run)."""
    if resume is not None and resume.get("engine", "torch") != "torch":
        raise InputError(None, "the checkpoint was made by the fused engine; resume it with engine auto or fused")
    t_start = time.perf_counter()
    st = init_state(cfg, data, device, model=model)
    st.t0 = time.perf_counter()
    if resume is not None:
        _restore(st, resume, device, cfg.iterations)
    train(cfg, data, st, callback=callback, stop=stop, checkpoint=checkpoint, on_step=on_step)
    fit = _finish(cfg, data, st)
    fit.timings["start"] = st.t0 - t_start
    return fit


def _fused_fit(cfg: FitConfig, data: FitData, model, callback, stop, checkpoint, resume, on_step) -> FieldFit:
    """The loop on the fused CPU engine (:mod:`surfrec.field.step`): the same steps on both
    cores, bit for bit the same whatever the thread count."""
    from .step import FusedLoop

    if resume is not None and resume.get("engine") != "fused":
        raise InputError(None, "the checkpoint was made by the torch loop; resume it with engine torch")
    t_start = time.perf_counter()
    loop = FusedLoop(cfg, data, model, cfg.threads)
    log.info("fit on the fused CPU engine (%d threads)", loop.st.engine.threads)
    st = loop.st
    st.t0 = time.perf_counter()
    start = st.t0 - t_start
    if resume is not None:
        loop.restore(resume)
    try:
        with _lookup_thread(cfg, st):
            _fused_steps(cfg, data, loop, callback, stop, checkpoint, on_step)
    finally:
        st.engine.close()
    seconds = time.perf_counter() - st.t0
    model = loop.sync_model().eval().to("cpu")
    log.info("fit: %d steps in %.1f s (%.1f steps/s)", st.step, seconds, st.step / max(seconds, 1e-9))
    return FieldFit(model=model, history=st.history, seconds=seconds, steps=st.step, stopped_by=st.stopped_by,
                    closed_side=data.closed_side, closed_side_share=data.closed_side_share,
                    timings={**data.timings, "start": start, "fit": seconds})


def _fused_steps(cfg: FitConfig, data: FitData, loop, callback, stop, checkpoint, on_step) -> None:
    """:func:`_fused_fit`'s steps: schedule, step (or roll back), record, hooks."""
    st = loop.st

    def start_lookup(ps: np.ndarray) -> Callable[[], np.ndarray]:
        return _start_lookup(data, st, ps)

    while st.step < cfg.iterations:
        if stop is not None and stop():
            if checkpoint is not None:
                _save_checkpoint(checkpoint.path, {**checkpoint.meta, **loop.state()})
            raise FitInterrupted(st.step, cfg.iterations, None if checkpoint is None else checkpoint.path)
        elapsed = time.perf_counter() - st.t0
        if _out_of_time(cfg, st, elapsed):
            st.stopped_by = "time_budget"
            break
        lr, total = _schedule_lr(cfg, st.step, st.lr_scale, elapsed)
        if not loop.step(lr, start_lookup):
            loop.roll_back()
            continue
        rec = loop.record(lr)
        if rec is not None and callback is not None:
            callback(st.step, total, rec)
        if on_step is not None:
            loop.sync_model()
            if on_step(st):
                log.info("stopped by the step hook after %d steps", st.step)
                st.stopped_by = "hook"
                break


# ------------------------------------------------------------------- checkpoints
#: Layout version of checkpoints written by an interrupted fit.
CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    """Where an interrupted fit saves its state, and what the caller stores beside it
    (``meta``: the whole configuration and the scan's fingerprint)."""

    path: str | os.PathLike
    meta: dict


def _save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    from .. import __version__
    from ..io import atomic_path

    payload = {"format": "surfrec-checkpoint", "format_version": CHECKPOINT_FORMAT,
               "surfrec_version": __version__, "torch_version": str(torch.__version__), **state}
    payload["buffer"] = {k: v.detach().cpu() for k, v in state["buffer"].items()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    log.info("checkpoint saved to %s (step %d)", path, state["step"])


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint's payload: the field state (for ``train_field(resume=...)``) and the
    ``meta`` it was saved with; refuses files of another format or surfrec version."""
    from .. import __version__

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
