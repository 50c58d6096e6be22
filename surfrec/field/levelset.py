"""Level-set sampling: seeds and generalized Newton projection onto S_c = {x : F(x) = c}.

Seeds follow the paper: Gaussians centred at input points with a per-point σ equal to the
distance to the point's k-th nearest neighbour (dense regions get tight seeds, sparse
regions wide ones), plus a share drawn uniformly in the box so that stray surface far from
the data is found and removed.

Everything works in any dimension D (points of shape (M, D)); surfrec fits D = 3, and the
2-D curve studies use D = 2.

Projection uses the generalized Newton step for an underdetermined equation::

    p ← p − (F(p) − c) ∇F(p) / max(‖∇F(p)‖², ε)

which is the minimum-norm step that zeroes the linearization of F − c. It converges
quadratically near a regular point of the level set and needs no θ-gradients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np
import torch

log = logging.getLogger(__name__)

#: A field: a module with ``value_and_grad`` (fast path) or a plain callable (M,3)->(M,).
Field = Union[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]


def value_and_grad(field: Field, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """F(x) and ∇ₓF(x) without θ-gradients.

    Parameters
    ----------
    field : Field
        A module with ``value_and_grad`` or any differentiable torch callable.
    x : (M, 3) tensor

    Returns
    -------
    f : (M,) tensor
    g : (M, 3) tensor
    """
    vg = getattr(field, "value_and_grad", None)
    if vg is not None:
        return vg(x)
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        f = field(xr)
        (g,) = torch.autograd.grad(f.sum(), xr)
    return f.detach(), g.detach()


def knn_sigma(points: np.ndarray, k: int = 10, tree=None) -> np.ndarray:
    """Distance from every point to its k-th nearest neighbour (the seed σ of the paper).

    Parameters
    ----------
    points : (N, 3) float
    k : int
        Neighbour rank (1 = nearest other point). Clamped to N - 1.
    tree : SpatialIndex, optional
        An index already built on ``points`` (any order).

    Returns
    -------
    (N,) float64
    """
    from ..input.index import SpatialIndex

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 1 or len(pts) < 2:
        raise ValueError(f"points must have shape (N, D) with N >= 2, got {pts.shape}")
    k = int(min(max(k, 1), len(pts) - 1))
    tree = tree if tree is not None else SpatialIndex(pts)
    dist, _ = tree.query(pts, k=k + 1)
    return np.asarray(dist[:, -1], dtype=np.float64)


def seed_sigmas(points: np.ndarray, k: int = 10, *, fixed: float | None = None, tree=None) -> np.ndarray:
    """Per-point σ of the Gaussian seeds, as :func:`surfrec.fit` draws them.

    The distance to the k-th neighbour (:func:`knn_sigma`) clipped to [0.1, 10] × its
    median — duplicates get no zero σ, isolated outliers no huge one — or one fixed σ.

    Parameters
    ----------
    points : (N, D) float
    k : int
        Neighbour rank.
    fixed : float, optional
        Use this σ for every point instead.
    tree : SpatialIndex, optional

    Returns
    -------
    (N,) float64
    """
    n = len(points)
    if fixed is not None:
        if fixed <= 0:
            raise ValueError(f"a fixed seed sigma must be positive, got {fixed}")
        return np.full(n, float(fixed))
    s = knn_sigma(points, k, tree=tree)
    med = float(np.median(s)) if n else 1e-3
    return np.clip(s, max(med * 0.1, 1e-5), med * 10.0)


def draw_seeds(
    points: torch.Tensor,
    sigma: torch.Tensor,
    n: int,
    *,
    uniform_fraction: float = 0.2,
    bounds: tuple[float, float] = (-1.0, 1.0),
    sigma_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` seeds: Gaussians around random input points plus a uniform share.

    Parameters
    ----------
    points : (N, 3) tensor
        Input points (normalized coordinates).
    sigma : (N,) tensor
        Per-point standard deviation (e.g. :func:`knn_sigma`).
    n : int
        Number of seeds.
    uniform_fraction : float
        Share of seeds drawn uniformly in the cube ``bounds``³.
    bounds : (lo, hi)
        The cube for uniform seeds.
    sigma_scale : float
        Multiplier of ``sigma``.
    generator : torch.Generator, optional
        Source of randomness (reproducibility).

    Returns
    -------
    (n, 3) tensor on the device of ``points``
    """
    if not 0.0 <= uniform_fraction <= 1.0:
        raise ValueError(f"uniform_fraction must be in [0, 1], got {uniform_fraction}")
    dev, dt = points.device, points.dtype
    n_uni = int(round(n * uniform_fraction))
    n_gau = n - n_uni
    idx = torch.randint(0, points.shape[0], (n_gau,), generator=generator, device="cpu").to(dev)
    dim = points.shape[1]
    noise = torch.randn(n_gau, dim, generator=generator, dtype=dt, device="cpu").to(dev)
    gau = points[idx] + noise * (sigma[idx] * sigma_scale).unsqueeze(1)
    lo, hi = bounds
    uni = torch.rand(n_uni, dim, generator=generator, dtype=dt, device="cpu").to(dev) * (hi - lo) + lo
    return torch.cat([gau, uni], dim=0)


@dataclass
class Projection:
    """Result of :func:`project_to_level_set`.

    Attributes
    ----------
    points : (M, 3)
        Projected points p*.
    residuals : (M,)
        |F(p*) − c|.
    converged : (M,) bool
        Residual below the tolerance, gradient not vanishing, and inside the box.
    zero_gradient : (M,) bool
        ‖∇F‖² fell below ε at the last step (a flat region: Newton cannot move).
    left_box : (M,) bool
        The point left the box during projection.
    steps : int
        Newton steps performed (the maximum over points).
    evaluations : int
        Point evaluations of F and ∇F (sum over steps of points still active).
    """

    points: np.ndarray | torch.Tensor
    residuals: np.ndarray | torch.Tensor
    converged: np.ndarray | torch.Tensor
    zero_gradient: np.ndarray | torch.Tensor
    left_box: np.ndarray | torch.Tensor
    steps: int
    evaluations: int

    def summary(self) -> dict:
        """Median, 90th percentile and max residual, and the converged fraction."""
        r = torch.as_tensor(self.residuals, dtype=torch.float64)
        conv = torch.as_tensor(self.converged)
        if r.numel() == 0:
            return {"median": float("nan"), "p90": float("nan"), "max": float("nan"), "converged": 0.0}
        finite = r[torch.isfinite(r)]
        return {
            "median": float(finite.median()) if finite.numel() else float("nan"),
            "p90": float(torch.quantile(finite, 0.9)) if finite.numel() else float("nan"),
            "max": float(r.max()),
            "converged": float(conv.float().mean()),
        }


def newton_delta(f: torch.Tensor, g: torch.Tensor, level: float, eps: float) -> torch.Tensor:
    """The generalized Newton step (F − c) ∇F / max(‖∇F‖², ε): the one place it is written.

    Parameters
    ----------
    f : (M,) tensor
        F at the points.
    g : (M, D) tensor
        ∇F at the points.

    Returns
    -------
    (M, D) tensor
        Subtract it from the points.
    """
    return ((f - level) / (g * g).sum(dim=1).clamp_min(eps)).unsqueeze(1) * g


def newton_iterate(
    field: Field, p: torch.Tensor, level: float, steps: int, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``steps`` plain Newton steps of every point (no freezing, no box): the fit's projection.

    Returns
    -------
    p : (M, D) tensor
        The points after ``steps`` steps.
    f : (M,) tensor
        F at the returned points.
    g : (M, D) tensor
        ∇F at the returned points.
    """
    f, g = value_and_grad(field, p)
    for _ in range(steps):
        p = p - newton_delta(f, g, level, eps)
        f, g = value_and_grad(field, p)
    return p, f, g


def newton_step(
    field: Field, p: torch.Tensor, level: float, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One generalized Newton step.

    Returns
    -------
    p_new : (M, 3) tensor
    f : (M,) tensor
        F at the *old* points.
    g2 : (M,) tensor
        ‖∇F‖² at the old points.
    """
    f, g = value_and_grad(field, p)
    return p - newton_delta(f, g, level, eps), f, (g * g).sum(dim=1)


def iterate_active(
    field: Field,
    p: torch.Tensor,
    level: float,
    max_steps: int,
    update: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    tol: float,
    box: float | None,
    nonfinite_leaves: bool = False,
    on_step: Callable[[torch.Tensor, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """The active-set loop of every per-point projection (Newton here, GD in the studies).

    Each step evaluates F and ∇F only at the points still moving, freezes those with
    |F − c| < ``tol``, moves the others to ``update(q, F(q) − c, ∇F(q))`` and freezes and
    flags those that leave the cube [-box, box]ᴰ (and, with ``nonfinite_leaves``, those
    that become non-finite).

    Parameters
    ----------
    p : (M, D) tensor
        Starting points; updated in place and returned.
    on_step : callable, optional
        ``on_step(p, evaluations)`` after every step (traces).

    Returns
    -------
    p : (M, D) tensor
    left : (M,) bool tensor
        Points that left the box.
    steps : int
        Steps performed.
    evaluations : int
        Point evaluations of F and ∇F.
    """
    m = p.shape[0]
    active = torch.ones(m, dtype=torch.bool, device=p.device)
    left = torch.zeros(m, dtype=torch.bool, device=p.device)
    evaluations = steps = 0
    for _ in range(max_steps):
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        q = p[idx]
        f, g = value_and_grad(field, q)
        evaluations += idx.numel()
        r = f - level
        done = r.abs() < tol
        q_new = torch.where(done.unsqueeze(1), q, update(q, r, g))
        if box is not None:
            out = (q_new.abs() > box).any(dim=1)
            if nonfinite_leaves:
                out |= ~torch.isfinite(q_new).all(dim=1)
            left[idx[out]] = True
            done = done | out
        p[idx] = q_new
        active[idx[done]] = False
        steps += 1
        if on_step is not None:
            on_step(p, evaluations)
    return p, left, steps, evaluations


def project_to_level_set(
    field: Field,
    points: np.ndarray | torch.Tensor,
    level: float = 0.0,
    *,
    max_steps: int = 10,
    tol: float = 1e-6,
    eps: float = 1e-8,
    box: float | None = 1.0,
    max_step_length: float | None = None,
) -> Projection:
    """Project points onto the level set F = ``level`` with generalized Newton steps.

    Points stop moving once their residual is below ``tol`` (they are then not
    evaluated again). No gradient with respect to the field's parameters is computed.

    Parameters
    ----------
    field : Field
        The implicit function (torch module or callable) in the points' coordinates.
    points : (M, 3) array or tensor
        Starting points (seeds). Returned arrays have the same type.
    level : float
        The level c.
    max_steps : int
        Maximum number of Newton steps.
    tol : float
        Residual |F − c| under which a point counts as converged.
    eps : float
        Guard of the step denominator max(‖∇F‖², ε).
    box : float or None
        Points leaving the cube [-box, box]³ are frozen and flagged; None disables this.
    max_step_length : float or None
        Clamp the length of a single step (a damping for far seeds); None = pure Newton.

    Returns
    -------
    Projection
    """
    as_numpy = not isinstance(points, torch.Tensor)
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    params = list(field.parameters()) if isinstance(field, torch.nn.Module) else []
    device = params[0].device if params else (points.device if not as_numpy else torch.device("cpu"))
    dtype = params[0].dtype if params else torch.float32
    p = torch.as_tensor(points, dtype=dtype).to(device).clone()
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"points must have shape (M, D), got {tuple(p.shape)}")
    m = p.shape[0]

    def update(q: torch.Tensor, r: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        step = newton_delta(r, g, 0.0, eps)
        if max_step_length is not None:
            length = step.norm(dim=1, keepdim=True)
            step = step * (max_step_length / length.clamp_min(max_step_length))
        return q - step

    p, left, steps, evaluations = iterate_active(field, p, level, max_steps, update, tol=tol, box=box)
    f, g = value_and_grad(field, p)
    evaluations += m
    residuals = (f - level).abs()
    g2 = (g * g).sum(dim=1)
    zero_grad = g2 < eps
    converged = (residuals < tol) & ~zero_grad & ~left
    out = Projection(p, residuals, converged, zero_grad, left, steps, evaluations)
    if as_numpy:
        out.points = p.cpu().numpy()
        out.residuals = residuals.cpu().numpy()
        out.converged = converged.cpu().numpy()
        out.zero_gradient = zero_grad.cpu().numpy()
        out.left_box = left.cpu().numpy()
    log.debug("projected %d points in %d steps: %s", m, steps, out.summary())
    return out
