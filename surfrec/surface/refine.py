"""Refinement of an extracted mesh onto the input points (local least-squares fits).

The fitted level set is smooth and closed, and has the right topology, but a small
network trained for a minute on a CPU rounds off detail the scan does resolve: on clean
dense scans most of the remaining error is a displacement of the surface along its
normal by a fraction of a grid cell to a few cells. This module moves every mesh vertex
along its normal onto the surface the *data* describes near it:

1. the ``k`` input points nearest to the vertex are expressed in the vertex's frame
   (normal n, tangents t₁, t₂): heights ``s = (p − v)·n`` over tangential coordinates
   ``(u, w)``;
2. a weighted least-squares quadric ``s ≈ a + b u + c w + d u² + e u w + f w²``
   (Gaussian weights in the tangential distance, then ``robust_iterations`` rounds of
   reweighting by the residual); when the points carry normals (∇F of the fitted field
   at the points, which orients the raw scan for free), neighbours whose normal turns
   away from the vertex's by more than ``normal_agreement`` are left out: the far side
   of a thin part, the other face at a sharp edge;
3. the vertex moves by ``a`` along n (the fitted surface's height at the vertex); moves
   longer than ``max_shift`` cells are shortened to it.

Topology and connectivity are those of the level set; only vertex positions change. The
number of neighbours adapts to the scan: on a noisy scan a quadric through 20 points
would follow the noise, so ``k`` grows with the noise the input inspection estimated from
the scan itself (:func:`surfrec.input.local.estimate_noise`); on a scan sparser than the mesh grid (median spacing above
``max_spacing`` cells) the fitted field is the smoother interpolant between points, so the
moves shrink, to none at ``taper_spacing`` cells (:func:`plan`).

Vertices of a closed surface that no scan point constrains (farther than
``MeshConfig.fill`` spacings from every point: a hole's fill, a gap of a random
sample) are placed on the harmonic membrane of the others instead, after the surface
step (:mod:`surfrec.surface.fill`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..input.local import _check, estimate_noise, local_heights
from ..settings import RefineConfig

if TYPE_CHECKING:
    from ..field.fitted import FittedField
    from ..input.inspect import ScanPoints

log = logging.getLogger(__name__)


def with_neighbors(config: RefineConfig, neighbors: int) -> RefineConfig:
    """``config`` with a fixed k of ``neighbors`` (``MeshConfig.neighbors``); 0: ``config``
    unchanged (k from the scan's noise)."""
    if neighbors == 0:
        return config
    return replace(config, k_rule="fixed", neighbors=neighbors, max_neighbors=max(config.max_neighbors, neighbors))


@dataclass
class RefinePlan:
    """What :func:`plan` decided for a scan and a grid cell size."""

    apply: bool
    """Whether the refinement runs."""
    neighbors: int
    """k of the local fits."""
    noise: float
    """Estimated noise σ (units of the points)."""
    spacing: float
    """Median point spacing."""
    cell: float
    """Grid cell size of the extraction."""
    reason: str
    """One line for logs and reports."""
    weight: float = 1.0
    """Share of each vertex's move applied (below 1 on scans sparser than
    ``RefineConfig.max_spacing`` grid cells)."""


def plan(noise: float | None, spacing: float, n_points: int, cell: float,
         config: RefineConfig | None = None) -> RefinePlan:
    """Decide whether and with how many neighbours to refine, from the scan's noise and
    spacing (:class:`~surfrec.input.inspect.InputReport`, in the points' units) and the
    extraction's grid cell.

    k grows with the noise (``k_rule``); on a scan sparser than ``max_spacing`` cells the
    moves shrink, to none at ``taper_spacing`` cells; a scan of fewer than
    ``max_neighbors + 1`` points (or without a noise estimate) is not refined.
    """
    cfg = config or RefineConfig()
    if not cell > 0:
        raise ValueError(f"cell must be positive, got {cell}")
    if n_points < cfg.max_neighbors + 1 or noise is None:
        return RefinePlan(False, 0, float("nan"), float("nan"), cell, f"too few points ({n_points}) for local fits")
    rel = noise / max(spacing, 1e-30)
    for_noise = cfg.noise_neighbors * rel * rel
    if cfg.k_rule == "fixed":
        want = cfg.neighbors
    elif cfg.k_rule == "max":
        want = max(cfg.neighbors, for_noise)
    else:
        want = cfg.neighbors + for_noise
    k = int(min(cfg.max_neighbors, math.ceil(want)))
    cells = spacing / cell
    if cells >= cfg.taper_spacing:
        return RefinePlan(False, k, noise, spacing, cell,
                          f"skipped: the scan is sparser than the mesh grid (spacing {cells:.2f} cells "
                          f">= {cfg.taper_spacing:g})", weight=0.0)
    weight = 1.0 if cells <= cfg.max_spacing else (cfg.taper_spacing - cells) / (cfg.taper_spacing - cfg.max_spacing)
    part = "" if weight == 1.0 else f"; {weight:.2f} of each move: spacing {cells:.2f} cells > {cfg.max_spacing:g}"
    return RefinePlan(True, k, noise, spacing, cell,
                      f"k={k}{' fixed' if cfg.k_rule == 'fixed' else ''} (noise {noise:.3g} = {rel:.2f} x spacing "
                      f"{spacing:.3g}; cell {cell:.3g}{part})", weight=weight)


def plan_for(points: np.ndarray, cell: float, config: RefineConfig | None = None, tree=None) -> RefinePlan:
    """:func:`plan` for a point set whose noise and spacing are not known yet: both are
    measured here (:func:`~surfrec.input.local.estimate_noise`, defaults of
    :class:`~surfrec.settings.InputConfig`)."""
    points = _check("points", points)
    cfg = config or RefineConfig()
    if len(points) < cfg.max_neighbors + 1:
        return plan(None, float("nan"), len(points), cell, cfg)
    noise, spacing = estimate_noise(points, tree=tree)
    return plan(noise, spacing, len(points), cell, cfg)


@dataclass
class RefineReport:
    """What :func:`refine_vertices` did (distances in the vertices' units)."""

    applied: bool
    """Whether the vertices moved."""
    reason: str
    """The plan's line: k, noise, spacing and cell, or why the refinement was skipped."""
    neighbors: int
    """k of the local fits."""
    weight: float
    """Share of each move applied (below 1 on scans sparser than ``max_spacing`` cells)."""
    noise: float
    """Estimated noise sigma of the scan."""
    spacing: float
    """Median point spacing the plan used."""
    mean_shift: float = 0.0
    """Mean length of the moves, over all rounds."""
    max_shift: float = 0.0
    """Longest move."""
    clipped: float = 0.0
    """Share of vertices with a move shortened to ``max_shift`` cells."""
    mean_shift_cells: float = 0.0
    """``mean_shift`` in grid cells."""

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return asdict(self)


def _chunk(cfg: RefineConfig, neighbors: int) -> int:
    """Vertices per batch: ``chunk_size``, fewer when k neighbours each would pass
    ``chunk_neighbors`` rows."""
    return max(1, min(cfg.chunk_size, cfg.chunk_neighbors // neighbors))


def refine_vertices(
    vertices: np.ndarray,
    normals: np.ndarray,
    points: np.ndarray,
    cell: float,
    config: RefineConfig | None = None,
    refine_plan: RefinePlan | None = None,
    point_normals: np.ndarray | None = None,
    tree=None,
) -> tuple[np.ndarray, dict]:
    """Move mesh vertices along their normals onto the local surface of the input points.

    Parameters
    ----------
    vertices : (V, 3) float
    normals : (V, 3) float
        Vertex normals (e.g. ∇F at the vertices); the direction of every move.
    points : (N, 3) float
        Input points, in the vertices' coordinates.
    cell : float
        Grid cell size of the extraction (``max_shift`` is in cells).
    config : RefineConfig, optional
    refine_plan : RefinePlan, optional
        A decision from :func:`plan` (from the points' measured noise when not given).
    point_normals : (N, 3) float, optional
        Oriented normals of the points (e.g. ∇F there), oriented like ``normals``:
        neighbours facing another way are left out of each fit (thin parts, sharp edges).
    tree : SpatialIndex, optional
        An index over ``points`` (built when not given).

    Returns
    -------
    vertices : (V, 3) float64
        Refined positions (the input positions when the plan skips the refinement).
    report : RefineReport
    """
    from ..input.index import SpatialIndex

    cfg = config or RefineConfig()
    vertices = _check("vertices", vertices)
    normals = _check("normals", normals)
    points = _check("points", points)
    if len(normals) != len(vertices):
        raise ValueError(f"normals must match vertices: {len(normals)} vs {len(vertices)}")
    tree = tree if tree is not None else SpatialIndex(points)
    decision = refine_plan or plan_for(points, cell, cfg, tree=tree)
    report = RefineReport(applied=decision.apply, reason=decision.reason, neighbors=decision.neighbors,
                          weight=decision.weight, noise=decision.noise, spacing=decision.spacing)
    if not decision.apply or len(vertices) == 0:
        log.info("refinement %s", decision.reason)
        return vertices.copy(), report
    out, total, clipped = _rounds(vertices, normals, points, decision.neighbors, cfg, cfg.max_shift * cell, tree,
                                  point_normals)
    if decision.weight < 1.0:  # a sparse scan: part of the move (after all rounds, so the share is exact)
        out = vertices + decision.weight * (out - vertices)
        total *= decision.weight
    report.mean_shift, report.max_shift = float(np.abs(total).mean()), float(np.abs(total).max())
    report.clipped, report.mean_shift_cells = float(clipped.mean()), float(np.abs(total).mean()) / cell
    log.info("refined %d vertices onto the data: %s; mean move %.3g (%.2f cells), %.2f%% clipped",
             len(vertices), decision.reason, report.mean_shift, report.mean_shift / cell, 100 * report.clipped)
    return out, report


def _rounds(vertices, normals, points, k: int, cfg: RefineConfig, limit: float, tree, point_normals):
    """``cfg.iterations`` rounds of fit-and-move along the unit normals (moves clipped to
    ``limit``): moved vertices (V, 3), total signed move (V,), clipped (V,) bool. Vertices
    with a zero normal stay."""
    nlen = np.linalg.norm(normals, axis=1, keepdims=True)
    unit = np.where(nlen > 0, normals / np.maximum(nlen, 1e-30), 0.0)
    movable = nlen[:, 0] > 0
    out = vertices.copy()
    total = np.zeros(len(vertices))
    clipped = np.zeros(len(vertices), bool)
    for _ in range(cfg.iterations):
        a = np.zeros(len(vertices))
        a[movable], _ = local_heights(out[movable], unit[movable], points, k, robust_iterations=cfg.robust_iterations,
                                      ridge=cfg.ridge, tree=tree, chunk_size=_chunk(cfg, k), point_normals=point_normals,
                                      normal_agreement=cfg.normal_agreement, min_support=cfg.min_support)
        clipped |= np.abs(a) > limit
        a = np.clip(a, -limit, limit)
        out += a[:, None] * unit
        total += a
    return out, total, clipped


def refine_mesh(mesh, field: "FittedField", data: "ScanPoints", cell: float, config: RefineConfig,
                normals_ready: bool):
    """The refinement stage: ``mesh`` (normalized frame) moved onto the scan points, and
    the :class:`RefineReport`.

    The moves follow the unit gradient of F at the vertices; the scan points are oriented by
    the gradient of F at them, so neighbours on the far side of a thin part are left out.
    ``normals_ready``: the mesh's vertex normals already are the unit gradients of F (as
    :func:`~surfrec.surface.extract.extract_level_set` sets them), and the refined mesh
    gets them anew.
    """
    import trimesh

    from ..field.fitted import FIELD_BATCH
    from .extract import gradient_normals

    decision = plan(data.noise, data.spacing, len(data.points), cell, config)
    normals = mesh.vertex_normals if normals_ready else gradient_normals(mesh, field.gradients, FIELD_BATCH)
    # the gradient at the scan points only when the refinement runs (it orients them)
    point_normals = field.gradients(np.asarray(data.points, np.float32)) if decision.apply else None
    verts, report = refine_vertices(mesh.vertices, normals, data.points, cell, config, refine_plan=decision,
                                    point_normals=point_normals, tree=data.index)
    if not report.applied:
        return mesh, report
    refined = trimesh.Trimesh(vertices=verts, faces=mesh.faces, process=False)
    if normals_ready:
        refined.vertex_normals = gradient_normals(refined, field.gradients, FIELD_BATCH)
    return refined, report


__all__ = ["RefinePlan", "RefineReport", "refine_mesh", "plan", "plan_for", "refine_vertices", "with_neighbors"]
