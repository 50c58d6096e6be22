"""The training step on the fused CPU engine (:mod:`surfrec.field.engine`).

The same step as the torch loop of :mod:`surfrec.field.train`, written for the engine:
one value-and-gradient pass (the samples' Newton step and the slope term's directions),
one forward pass over every point that needs F(·; θ) (the samples' nearest scan points
are searched in the same pass, on whichever core is free:
:class:`surfrec.input.index.GridNearest`), the loss terms' per-point weights dL/dF in
closed form (:func:`loss_weights`), one backward pass and the Adam update. The
engine splits each pass into a fixed partition of chunks on both cores and sums them in
order, so a fit gives the same bits with one thread or two, and a busy core only slows it.

Supported: the plain softplus MLP on the CPU, in 3-D, with the default loss terms — the
sample network's pull (closed fits: with the sign push; open fits: the sheet only), the
data term, the side term (open, and closed with trusted normals) and the slope term.
Anything else (a feature grid, skip layers, ReLU, CUDA, the distance, eikonal or normal
terms, 2-D fields) runs the torch loop, and :func:`unsupported` says why.

The random draws come from a numpy generator (the torch loop's from torch's): the two
engines give different fits of the same quality; each is reproducible on its own.
:func:`loss_weights` is tested against torch autograd on the same batch
(``tests/test_step.py``).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..errors import FitDivergedError
from ..settings import FitConfig

if TYPE_CHECKING:
    from .data import FitData

log = logging.getLogger(__name__)

#: History keys of both loops (recorded every ``log_every`` steps).
TERMS = ("surface", "sign", "data", "side", "slope", "distance")


def unsupported(cfg: FitConfig, model: torch.nn.Module, device: torch.device, data: "FitData") -> str | None:
    """Why the fused step cannot run this fit (None: it can)."""
    from .engine import supports

    if device.type != "cpu":
        return f"the device is {device.type}"
    if data.points.shape[1] != 3:
        return "the field is not 3-D"
    if not supports(model):
        return "the network is not a plain softplus MLP (skip layers, a feature grid or ReLU)"
    for name in ("distance_weight", "eikonal_weight", "grid_decay_weight"):
        if getattr(cfg, name) > 0:
            return f"{name} > 0"
    if data.normals is not None:
        return "the normal term needs second derivatives"
    return None


# ------------------------------------------------------------------- one batch
@dataclass
class Batch:
    """Everything one step's loss needs besides θ (numpy, normalized frame)."""

    ps: np.ndarray
    """(M, 3) level-set samples after their Newton step."""
    g0: np.ndarray
    """(M, 3) the gradient of F where each sample's step started."""
    target: np.ndarray
    """(M, 3) each sample's nearest scan point (open fits: nearest sheet point)."""
    near: np.ndarray
    """(M,) bool: a target was found (open fits: within the sheet's sample radius)."""
    xb: np.ndarray
    """(B, 3) scan points of the data term."""
    xs: np.ndarray
    """(S, 3) the side term's points x ± δn."""
    side: np.ndarray
    """(S,) ±1: which side each was moved to."""
    delta: np.ndarray
    """(S,) their offsets δ."""
    xl: np.ndarray
    """(2L, 3) the slope term's pairs x + hn, then x − hn."""
    sheet_normals: np.ndarray | None = None
    """(M, 3) open fits: the oriented normal of each sample's target."""
    winding: np.ndarray | None = None
    """(M,) closed fits after ``sign_after``: the scan's winding number at each sample."""
    far: float = math.inf
    """The sign push acts on samples farther than this from their target."""
    inside: float = 0.75
    """Winding number above which a sample is inside."""
    outside: float = 0.25
    """Winding number below which a sample is outside."""

    def points(self) -> np.ndarray:
        """Every point of the forward pass, in its order: samples, data, side, slope."""
        return np.concatenate([self.ps, self.xb, self.xs, self.xl]).astype(np.float32, copy=False)


@dataclass
class Weights:
    """:func:`loss_weights`' answer."""

    loss: float
    """The weighted total."""
    terms: dict
    """Each term's value (unweighted), e.g. ``{"surface": 0.01, "data": 0.003}``."""
    w: np.ndarray
    """(P,) dL/dF of every point of :meth:`Batch.points`."""
    usable: np.ndarray
    """(M,) bool: the samples the sample terms used."""
    d: np.ndarray | None = None
    """(M,) each sample's distance to its target (0 where unused), for ``keep_far_fraction``."""


def loss_weights(cfg: FitConfig, b: Batch, f: np.ndarray, sign_on: bool, open_surface: bool) -> Weights:
    """The loss of one step and its gradient with respect to F at each point of the batch.

    The terms are the torch loop's (:func:`surfrec.field.train._loss`): the pull of the
    usable samples' sample network to their targets (open fits: only the sheet's; closed
    fits after ``sign_after``: samples far inside or outside the scan are pushed instead),
    the data term, the side term and the slope term. The sample network
    p(θ) = p* − (F − F₀) g / max(‖g‖², ε) equals p* in value (F₀ is this pass's F), so a term
    on it contributes dL/dFᵢ = −(∂L/∂pᵢ · gᵢ) / max(‖gᵢ‖², ε).

    Parameters
    ----------
    f : (P,) F(θ) at :meth:`Batch.points` (this step's forward pass)
    sign_on : bool
        The sign push is on (closed fits with winding numbers, after ``sign_after``).
    open_surface : bool
        Only the sheet is pulled (samples with a target whose normal faces ∇F).
    """
    from . import _step_kernels as k

    m, nb, ns = len(b.ps), len(b.xb), len(b.xs)
    w = np.empty(len(f), np.float32)
    usable = np.empty(m, np.bool_)
    dist = np.empty(m, np.float32)
    no3 = np.zeros((0, 3), np.float32)
    surface, n_pull, n_push, data, side, slope = k.weights(
        np.asarray(f, np.float32), m, nb, ns, b.ps, b.g0, b.target, b.near,
        b.sheet_normals if open_surface else no3, open_surface,
        b.winding if sign_on else np.zeros(0, np.float32), sign_on, b.far, b.inside, b.outside,
        b.side, b.delta, cfg.level, cfg.sample_tol, cfg.eps, cfg.surface_weight, cfg.sign_weight, cfg.data_weight,
        cfg.side_weight if open_surface else cfg.closed_side_weight, cfg.side_margin, cfg.slope_weight,
        cfg.slope_step, w, usable, dist)
    side_weight = cfg.side_weight if open_surface else cfg.closed_side_weight
    terms = {"data": data}
    loss = cfg.data_weight * data
    if n_pull:
        terms["surface"] = surface
        loss += cfg.surface_weight * surface
    if n_push:
        terms["sign"] = 0.0  # linear in F − F₀: zero in value, it acts through its gradient
    if ns:
        terms["side"] = side
        loss += side_weight * side
    if len(b.xl) and cfg.slope_weight > 0:
        terms["slope"] = slope
        loss += cfg.slope_weight * slope
    if not np.isfinite(w).all():
        loss = float("nan")
    return Weights(loss=float(loss), terms=terms, w=w, usable=usable,
                   d=dist if cfg.keep_far_fraction > 0 and not open_surface else None)


# ------------------------------------------------------------------- the loop
@dataclass
class FusedState:
    """Everything a fused step changes (checkpoints save it; ``on_step`` hooks read
    ``step``, ``loss``, ``terms`` and ``model``, whose weights follow the engine's)."""

    engine: Any
    model: torch.nn.Module
    rng: np.random.Generator
    buf: np.ndarray = None
    f_buf: np.ndarray = None
    g_buf: np.ndarray = None
    d_buf: np.ndarray | None = None
    history: dict = field(default_factory=dict)
    step: int = 0
    lr_scale: float = 1.0
    failures: int = 0
    good: tuple | None = None
    t0: float = 0.0
    stopped_by: str = "iterations"
    loss: float | None = None
    terms: dict = field(default_factory=dict)
    usable: np.ndarray | None = None
    pool: ThreadPoolExecutor | None = None


class FusedLoop:
    """The training loop on the fused engine (see the module docstring)."""

    def __init__(self, cfg: FitConfig, data: "FitData", model: torch.nn.Module, threads: int | None) -> None:
        from .engine import FusedMLP
        from .losses import HISTORY_KEYS

        self.cfg, self.data = cfg, data
        self.points = data.points
        self.seed_pts = data.seed_pts.cpu().numpy()
        self.sigma = data.sigma.cpu().numpy()
        sides = data.sides
        self.open = data.sheet is not None
        self.side_pts = None if sides is None else sides.points.cpu().numpy()
        self.side_nrm = None if sides is None else sides.normals.cpu().numpy()
        self.side_delta = None if sides is None else sides.delta.cpu().numpy()
        signs = data.signs
        self.winding = None if signs is None else signs.grid[0, 0].cpu().numpy()
        from . import _step_kernels

        self._k = _step_kernels
        nearest = data.nearest if data.sheet is None else data.sheet.nearest
        self._grid = nearest.grid
        self._upto = np.inf if data.sheet is None else float(data.sheet.sample_radius)
        engine = FusedMLP(model, threads=threads)
        self.st = FusedState(engine=engine, model=model, rng=np.random.default_rng(cfg.seed),
                             history={k: [] for k in HISTORY_KEYS})
        self._plan_draws()
        self._no3, self._no_bool = np.zeros((0, 3), np.float32), np.zeros(0, np.bool_)
        self._all_near = np.ones(cfg.n_samples, np.bool_)
        self._fresh_buffer()
        self._snapshot()

    # -------------------------------------------------------------- draws
    def _seeds(self, k: int) -> np.ndarray:
        """``k`` fresh seeds: Gaussians around scan points (σ each) and a uniform share."""
        cfg, rng = self.cfg, self.st.rng
        n_uni = int(round(k * cfg.uniform_fraction))
        out = np.empty((k, 3), np.float32)
        self._k.seeds(self.seed_pts, self.sigma, np.float32(cfg.seed_sigma_scale), float(cfg.box),
                      rng.random(k - n_uni), rng.standard_normal((k - n_uni, 3), np.float32),
                      rng.random((n_uni, 3)), out)
        return out

    def _newton(self, p: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``steps`` Newton steps (no box, as the torch loop's ``newton_iterate``); (points,
        F, ∇F) at the returned points."""
        lvl, eps = np.float32(self.cfg.level), np.float32(self.cfg.eps)
        f, g = self.st.engine.value_and_grad(p)
        for _ in range(steps):
            p = p - ((f - lvl) / np.maximum((g * g).sum(axis=1), eps))[:, None] * g
            f, g = self.st.engine.value_and_grad(p)
        return np.ascontiguousarray(p, np.float32), f, g

    def _fresh_buffer(self) -> None:
        st = self.st
        st.buf, st.f_buf, st.g_buf = self._newton(self._seeds(self.cfg.n_samples), self.cfg.init_newton_steps)
        st.d_buf = None

    def _refresh_slots(self, u: np.ndarray) -> np.ndarray:
        """The buffer slots the refresh replaces, from uniforms ``u``: uniform, or (with
        ``keep_far_fraction``) among all but the samples farthest from the data."""
        cfg, st = self.cfg, self.st
        if cfg.keep_far_fraction > 0 and st.d_buf is not None:
            n_pool = cfg.n_samples - int(round(cfg.n_samples * cfg.keep_far_fraction))
            pool = np.argsort(st.d_buf, kind="stable")[:max(1, n_pool)]
            return pool[np.minimum((u * len(pool)).astype(np.int64), len(pool) - 1)]
        return np.minimum((u * cfg.n_samples).astype(np.int64), cfg.n_samples - 1)

    # -------------------------------------------------------------- a step
    def _draw(self) -> dict:
        """This step's random numbers, drawn in bulk: uniforms and normals by use."""
        cfg, rng, d = self.cfg, self.st.rng, self._sizes
        u = rng.random(d["uniforms"])
        z = rng.standard_normal(d["normals"], np.float32)
        out = {name: u[a:b].reshape(shape) for name, shape, a, b in d["u_at"]}
        out.update((name, z[a:b].reshape(shape)) for name, shape, a, b in d["z_at"])
        return out

    def _plan_draws(self) -> None:
        cfg = self.cfg
        k = int(round(cfg.n_samples * cfg.refresh_fraction))
        k_uni = int(round(k * cfg.uniform_fraction))
        n_near = int(cfg.slope_points * cfg.slope_near_fraction) if cfg.slope_weight > 0 else 0
        n_far = cfg.slope_points - n_near if cfg.slope_weight > 0 else 0
        n_side = 0 if self.side_pts is None else min(cfg.side_points, len(self.side_pts))
        us = [("slots", (k,)), ("seed_idx", (k - k_uni,)), ("seed_uni", (k_uni, 3)), ("near_idx", (n_near,)),
              ("far", (n_far, 3)), ("batch", (min(cfg.batch_points, len(self.points)),)), ("side_idx", (n_side,)),
              ("side_sign", (n_side,))]
        zs = [("seed_z", (k - k_uni, 3)), ("near_z", (n_near, 3))]
        def at(parts: list) -> list:
            """(name, shape, start, stop) of each part in one flat draw, in order."""
            out, o = [], 0
            for name, shape in parts:
                n = math.prod(shape)
                out.append((name, shape, o, o + n))
                o += n
            return out

        self._sizes = {"u_at": at(us), "z_at": at(zs), "uniforms": sum(math.prod(s) for _, s in us),
                       "normals": sum(math.prod(s) for _, s in zs)}
        self._k_refresh, self._n_slope = k, n_near + n_far

    def _project(self, r: dict, slope_x: np.ndarray) -> np.ndarray:
        """Refresh a share of the buffer, then one Newton step of every sample from where it
        is; returns ∇F at ``slope_x`` (the slope term's points, evaluated in the same pass)."""
        cfg, st, k = self.cfg, self.st, self._k
        if self._k_refresh:
            fresh = np.empty((self._k_refresh, 3), np.float32)
            k.seeds(self.seed_pts, self.sigma, np.float32(cfg.seed_sigma_scale), float(cfg.box), r["seed_idx"],
                    r["seed_z"], r["seed_uni"], fresh)
            st.buf[self._refresh_slots(r["slots"])] = fresh
        p = st.buf
        for _ in range(cfg.newton_steps - 1):
            p, _, _ = self._newton(p, 1)
        m = len(p)
        if len(slope_x):   # one pass for the samples and the slope term's points
            f, g = st.engine.value_and_grad(np.concatenate([p, slope_x]))
            f, g, slope_g = f[:m], g[:m], g[m:]
        else:
            f, g = st.engine.value_and_grad(p)
            slope_g = g[:0]
        new, bad = np.empty((m, 3), np.float32), np.empty(m, np.bool_)
        if k.newton(p, f, g, np.float32(cfg.level), np.float32(cfg.eps), float(cfg.box), new, bad):
            new[bad] = self._seeds(int(bad.sum()))  # fresh seeds, where they stand (their residual leaves most out)
            g[bad] = st.engine.value_and_grad(new[bad])[1]
        st.buf, st.g_buf = new, np.ascontiguousarray(g)
        return slope_g

    def _slope_points(self, r: dict) -> np.ndarray:
        """The slope term's points x: (L, 3), Gaussians around scan points, then uniform."""
        cfg, k, nl = self.cfg, self._k, self._n_slope
        x = np.empty((nl, 3), np.float32)
        if not nl:
            return x
        n_near = len(r["near_idx"])
        k.gather(self.seed_pts, r["near_idx"], x[:n_near])
        j = np.minimum((r["near_idx"] * len(self.seed_pts)).astype(np.int64), len(self.seed_pts) - 1)
        x[:n_near] += r["near_z"] * (np.float32(cfg.distance_sigma_scale) * self.sigma[j])[:, None]
        x[n_near:] = r["far"] * (2.0 * cfg.box) - cfg.box
        return x

    def _slope(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The slope term's pairs x ± h n (n the unit gradient ``g`` at x): (2L, 3)."""
        pairs = np.empty((2 * len(x), 3), np.float32)
        if len(x):
            self._k.slope_pairs(x, np.ascontiguousarray(g), np.float32(self.cfg.slope_step), pairs)
        return pairs

    def _batch(self, r: dict, pairs: np.ndarray) -> Batch:
        """The step's points of the forward pass: data points, side points, slope pairs
        (targets come with the lookup)."""
        k = self._k
        xb = np.empty((len(r["batch"]), 3), np.float32)
        k.gather(self.points, r["batch"], xb)
        n_side = len(r["side_idx"])
        xs, side, delta = np.empty((n_side, 3), np.float32), np.empty(n_side, np.float32), np.empty(n_side, np.float32)
        if n_side:
            k.side_points(self.side_pts, self.side_nrm, self.side_delta, r["side_idx"], r["side_sign"], xs, side,
                          delta)
        return Batch(ps=self.st.buf, g0=self.st.g_buf, target=self._no3, near=self._no_bool, xb=xb, xs=xs,
                     side=side, delta=delta, xl=pairs)

    def _targets(self, b: Batch, nn: np.ndarray) -> None:
        """Each sample's target (nearest scan point, or sheet point) and the sign push's data."""
        cfg, st, signs = self.cfg, self.st, self.data.signs
        if self.open:
            b.near = nn >= 0
            nn = np.maximum(nn, 0)
            b.target, b.sheet_normals = self.side_pts[nn], self.side_nrm[nn]
        else:
            b.near, b.target = self._all_near, self.data.nearest.points[nn]
        if signs is not None and not self.open and st.step >= cfg.sign_after * cfg.iterations:
            b.winding = np.empty(len(b.ps), np.float32)
            self._k.trilinear(self.winding, float(signs.box), b.ps, b.winding)
            b.far, b.inside, b.outside = signs.far, signs.inside, signs.outside

    def step(self, lr: float, lookup_start: Callable[[np.ndarray], Callable[[], np.ndarray]]) -> bool:
        """One step; False when the loss was not finite (the caller rolls back)."""
        cfg, st = self.cfg, self.st
        r = self._draw()
        x = self._slope_points(r)
        b = self._batch(r, self._slope(x, self._project(r, x)))
        if self._grid is not None:   # the samples' nearest points: shares of the forward pass
            tasks, finish = self._grid.tasks(st.buf, self._upto, 2)
            f = st.engine.forward_train(b.points(), also=tasks)
            # the loss reads the targets of the samples on the level set only (|F - c| <
            # sample_tol): the others' far queries are skipped (a margin of 2x)
            nn = finish(np.abs(f[:len(b.ps)] - np.float32(cfg.level)) < np.float32(2 * cfg.sample_tol))
        else:   # in a helper thread meanwhile
            lookup = lookup_start(st.buf)
            f = st.engine.forward_train(b.points())
            nn = lookup()
        st.f_buf = f[:len(b.ps)].copy()
        self._targets(b, nn)
        out = loss_weights(cfg, b, f, b.winding is not None, self.open)
        if not math.isfinite(out.loss):
            return False
        st.engine.backward(out.w)
        st.engine.adam_step(lr)
        st.step += 1
        st.loss, st.terms, st.usable = out.loss, out.terms, out.usable
        if out.d is not None:
            st.d_buf = out.d
        if st.step % cfg.rollback_every == 0:
            self._snapshot()
        return True

    # -------------------------------------------------------------- failures
    def _snapshot(self) -> None:
        e = self.st.engine
        self.st.good = (e.theta.copy(), e.adam_state())

    def roll_back(self) -> None:
        """A non-finite loss: back to the last good state, lower learning rate, fresh samples."""
        cfg, st = self.cfg, self.st
        st.failures += 1
        if st.failures > cfg.max_failures:
            raise FitDivergedError(f"the loss became non-finite {st.failures} times (step {st.step}); "
                                   "try a lower learning rate (--lr) or another preset")
        st.lr_scale *= cfg.failure_lr_factor
        log.warning("non-finite loss at step %d: rolled back, learning rate x%.3g", st.step, st.lr_scale)
        theta, adam = st.good
        st.engine.theta[:] = theta
        st.engine.load_adam_state(copy.deepcopy(adam))
        self._fresh_buffer()

    # -------------------------------------------------------------- records
    def record(self, lr: float) -> dict | None:
        """The step's metrics, every ``log_every`` steps (and the first and last)."""
        cfg, st = self.cfg, self.st
        if not (st.step % cfg.log_every == 0 or st.step == cfg.iterations or st.step == 1):
            return None
        r = np.abs(st.f_buf - np.float32(cfg.level))
        r = r[np.isfinite(r)]
        rec = {"step": st.step, "time": time.perf_counter() - st.t0, "lr": lr, "loss": st.loss,
               **{k: st.terms.get(k, float("nan")) for k in TERMS},
               "residual_median": float(np.partition(r, (len(r) - 1) // 2)[(len(r) - 1) // 2]) if len(r) else math.nan,
               "residual_p90": float(np.quantile(r, 0.9)) if len(r) else math.nan,
               "converged": float(st.usable.mean())}
        for k, v in rec.items():
            st.history[k].append(float(v))
        return rec

    def sync_model(self) -> torch.nn.Module:
        """The torch module with the engine's current weights."""
        return self.st.engine.to_module(self.st.model)

    # -------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        """What a checkpoint stores of the loop (weights-only loadable)."""
        st = self.st
        e = st.engine
        return {"engine": "fused", "model": self.sync_model().state_dict(),
                "optimizer": [{"param_groups": [{"lr": 0.0}], "state": [e.adam_state()]}],
                "buffer": {"p": torch.from_numpy(st.buf.copy()), "f": torch.from_numpy(st.f_buf.copy()),
                           "g": torch.from_numpy(st.g_buf.copy()),
                           **({} if st.d_buf is None else {"d": torch.from_numpy(st.d_buf.copy())})},
                "generator": _rng_state(st.rng), "history": st.history, "step": st.step,
                "lr_scale": st.lr_scale, "failures": st.failures, "elapsed": time.perf_counter() - st.t0}

    def restore(self, saved: dict) -> None:
        """Continue from :meth:`state`'s checkpoint."""
        st = self.st
        st.model.load_state_dict(saved["model"])
        st.engine.load_module(st.model)
        st.engine.load_adam_state(saved["optimizer"][0]["state"][0])
        st.buf, st.f_buf, st.g_buf = (saved["buffer"][k].numpy().copy() for k in ("p", "f", "g"))
        st.d_buf = saved["buffer"]["d"].numpy().copy() if "d" in saved["buffer"] else None
        st.rng.bit_generator.state = _rng_from(saved["generator"])
        st.history, st.step, st.lr_scale, st.failures = (saved["history"], saved["step"], saved["lr_scale"],
                                                         saved["failures"])
        st.t0 -= saved["elapsed"]
        self._snapshot()


def _rng_state(rng: np.random.Generator) -> dict:
    """The generator's state with its 128-bit integers as strings (weights-only loadable)."""
    s = rng.bit_generator.state
    return {"bit_generator": s["bit_generator"], "state": str(s["state"]["state"]), "inc": str(s["state"]["inc"]),
            "has_uint32": int(s["has_uint32"]), "uinteger": int(s["uinteger"])}


def _rng_from(d: dict) -> dict:
    return {"bit_generator": d["bit_generator"], "state": {"state": int(d["state"]), "inc": int(d["inc"])},
            "has_uint32": d["has_uint32"], "uinteger": d["uinteger"]}


__all__ = ["FusedLoop", "FusedState", "Batch", "Weights", "loss_weights", "unsupported", "TERMS"]
