"""The scan as the training loop sees it: :func:`prepare_fit` turns an inspected scan into
:class:`FitData` (points on the device, the nearest-point index, the seeds and their σ, the
side term's oriented points and the sign push's winding grid). Both loops (the torch loop
of :mod:`surfrec.field.train`, the fused step of :mod:`surfrec.field.step`) read it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..input.index import NearestPoints
from ..settings import FitConfig
from .levelset import seed_sigmas

if TYPE_CHECKING:
    from ..input.inspect import Scan

log = logging.getLogger(__name__)

__all__ = ["FitData", "SideData", "SignData", "prepare_fit"]


@dataclass
class FitData:
    """The scan as the loop sees it: normalized, indexed once, on the device."""

    points: np.ndarray
    """(N, D) float32 scan points in the normalized frame."""
    nearest: NearestPoints
    """Nearest scan point of query points (the loss's targets)."""
    x_all: torch.Tensor
    """(N, D) scan points on the device."""
    seed_pts: torch.Tensor
    """(S, D) points the Gaussian seeds are centred on."""
    sigma: torch.Tensor
    """(S,) seed sigma of each of them."""
    normals: torch.Tensor | None = None
    """(N, 3) scan normals on the device, when the normal term uses them."""
    sides: "SideData | None" = None
    """Oriented scan points of the side term (an open surface, or a closed one's trusted
    points), else None."""
    signs: "SignData | None" = None
    """The winding number of a closed scan (``sign_weight`` > 0), else None."""
    closed_side: bool | None = None
    """Closed fits with ``closed_side_weight`` > 0: whether the side term runs."""
    closed_side_share: float | None = None
    """Share of the points whose outward normal is trusted (closed fits)."""
    timings: dict = field(default_factory=dict)
    """Seconds of the set-up (``sigma``, ``sides``)."""

    @property
    def sheet(self) -> "SideData | None":
        """The side term's points when the fit is open (only the sheet is pulled), else None."""
        return self.sides if self.sides is not None and self.sides.nearest is not None else None


@dataclass
class SideData:
    """Scan points with oriented normals for the side term: an open surface's sheet, or a
    closed surface's points with a trusted outward normal (``nearest`` None)."""

    points: torch.Tensor
    """(K, 3) scan points (normalized)."""
    normals: torch.Tensor
    """(K, 3) their oriented unit normals."""
    delta: torch.Tensor
    """(K,) offset δ of each point (``side_offset`` × its k-th neighbour distance)."""
    sample_radius: float
    """Level-set samples farther than this from the scan are left out of the sample term."""
    nearest: NearestPoints | None
    """Index of the nearest of ``points`` (the targets of the sample term, and their normals);
    None on a closed fit, whose sample term pulls the whole level set as usual."""
    weight: float
    """Weight of the side term (``side_weight`` open, ``closed_side_weight`` closed)."""


@dataclass
class SignData:
    """Inside/outside of a closed scan far from it: the winding number of its oriented points.

    Level-set samples farther than ``far`` from the data are stray surface (a bubble inside
    the object, a web across a hole). The sample term's pull towards the nearest data point
    moves such a surface towards the data, which grows a bubble instead of closing it; where
    the winding number is sure of the side, the sample is pushed the other way, so that
    the region takes the sign the scan says (:func:`sign_push`).
    """

    grid: torch.Tensor
    """(1, 1, R+1, R+1, R+1) winding number at the grid nodes over [−box, box]³, laid out
    for ``grid_sample`` (index [z, y, x])."""
    box: float
    """Half-side of the grid."""
    far: float
    """Samples farther than this from the data (normalized units) are candidates."""
    inside: float
    """Winding number above which a point is inside."""
    outside: float
    """Winding number below which a point is outside."""

    def winding(self, p: torch.Tensor) -> torch.Tensor:
        """(M, 3) points -> (M,) trilinear winding number."""
        g = (p / self.box).reshape(1, -1, 1, 1, 3)
        return torch.nn.functional.grid_sample(self.grid, g, mode="bilinear", padding_mode="border",
                                               align_corners=True).reshape(-1)



# --------------------------------------------------------------------- the scan
def prepare_fit(scan: "Scan", open_surface: bool, cfg: FitConfig, device: torch.device) -> FitData:
    """The loop's view of an inspected scan: its points on the device, the seeds and their
    sigma, and the side and sign terms' data (from the scan's oriented normals).

    Parameters
    ----------
    scan : Scan
        :func:`surfrec.input.inspect.inspect_scan`'s result (its ``orientation`` is needed
        when ``open_surface`` or the closed side / sign terms are on).
    open_surface : bool
        Fit an open surface (:func:`surfrec.surface.decide.fit_shape`).
    """
    t0 = time.perf_counter()
    # a scan above ``input.max_data_points`` is fitted on the inspection's random subset of
    # that many points (the one kept with the model); below it, on every point, in order
    subset = len(scan.keep) < len(scan.points)
    unit, index = (scan.data_points, scan.data_index) if subset else (scan.points, scan.index)
    n = len(unit)
    rng = np.random.default_rng(cfg.seed)
    seed_idx = rng.choice(n, size=min(n, cfg.max_seed_points), replace=False) if n > cfg.max_seed_points else None
    seed_np = unit if seed_idx is None else unit[seed_idx]
    sigma_np = seed_sigmas(seed_np, cfg.seed_k, fixed=cfg.seed_sigma,
                           tree=index if seed_idx is None else None).astype(np.float32)
    use_normals = cfg.normal_weight > 0 and scan.normals is not None
    if cfg.normal_weight > 0 and scan.normals is None:
        log.info("normal_weight > 0 but the scan has no normals: the normal term is off")
    data = FitData(points=unit, nearest=NearestPoints(index), x_all=torch.from_numpy(unit).to(device),
                   seed_pts=torch.from_numpy(seed_np).to(device), sigma=torch.from_numpy(sigma_np).to(device),
                   normals=torch.from_numpy(scan.normals.astype(np.float32)).to(device) if use_normals else None)
    t1 = time.perf_counter()
    kth = None if seed_idx is not None else (sigma_np if subset else sigma_np[scan.keep])
    _oriented_terms(data, scan, open_surface, cfg, device, kth)
    data.timings = {"sigma": t1 - t0, "sides": time.perf_counter() - t1}
    return data


def _oriented_terms(data: FitData, scan: "Scan", open_surface: bool, cfg: FitConfig, device: torch.device,
                    kth: np.ndarray | None) -> None:
    """The side term's points and the sign push's winding grid (``data.sides``,
    ``data.signs``) from the oriented normals of the kept points; ``kth`` their seed sigma
    when known (else measured here)."""
    points, o = scan.data_points, scan.orientation
    if open_surface and cfg.side_weight == 0 or not open_surface and cfg.sign_weight == 0 and cfg.closed_side_weight == 0:
        return
    if o is None:
        raise ValueError("the side and sign terms need the scan's orientation (inspect_scan(..., orient=True))")
    kth = kth if kth is not None else seed_sigmas(points, cfg.seed_k, fixed=cfg.seed_sigma,
                                                   tree=scan.data_index).astype(np.float32)
    if open_surface:
        data.sides = _side_data(points, o.normals, kth, cfg, device, cfg.side_weight,
                                float(cfg.open_sample_radius * np.median(kth)), NearestPoints(scan.data_index))
        return
    from ..input.orient import outward, point_areas

    area = point_areas(points, o.k, knn=o.knn)
    normals = outward(points, o.normals, o.labels, area)
    data.sides = _closed_sides(points, normals, o.variation, kth, cfg, device, data)
    data.signs = _sign_data(points, normals, area, cfg, kth, device) if cfg.sign_weight > 0 else None


def _side_data(points: np.ndarray, normals: np.ndarray, kth: np.ndarray, cfg: FitConfig,
               device: torch.device, weight: float, sample_radius: float,
               nearest: NearestPoints | None) -> SideData:
    """:class:`SideData` of (K, 3) points with their (K, 3) oriented normals and (K,) k-th
    neighbour distances (δ = ``side_offset`` × it)."""
    return SideData(points=torch.from_numpy(np.ascontiguousarray(points)).to(device),
                    normals=torch.from_numpy(np.asarray(normals, dtype=np.float32)).to(device),
                    delta=torch.from_numpy(cfg.side_offset * kth).to(device),
                    sample_radius=sample_radius, nearest=nearest, weight=weight)


def _closed_sides(points: np.ndarray, normals: np.ndarray, variation: np.ndarray, kth: np.ndarray,
                  cfg: FitConfig, device: torch.device, data: FitData) -> SideData | None:
    """The side term's points of a closed fit: the scan points whose outward normal can be
    trusted (surface variation below ``closed_side_max_variation``), or None when the term
    is off or too few points pass (a noisy scan). Records the share in ``data``.

    Parameters
    ----------
    points : (K, 3) float32 normalized; normals : (K, 3) outward; variation, kth : (K,)
    """
    if cfg.closed_side_weight == 0:
        return None
    trusted = variation < cfg.closed_side_max_variation
    share = float(trusted.mean())
    on = share >= cfg.closed_side_min_share
    data.closed_side, data.closed_side_share = bool(on), round(share, 4)
    if not on:
        log.info("side term off: only %.1f%% of the points have a trustworthy normal (need %.0f%%)",
                 100 * share, 100 * cfg.closed_side_min_share)
        return None
    return _side_data(points[trusted], normals[trusted], kth[trusted], cfg, device, cfg.closed_side_weight,
                      float("inf"), None)


def _sign_data(points: np.ndarray, normals: np.ndarray, area: np.ndarray, cfg: FitConfig,
               kth: np.ndarray, device: torch.device) -> SignData:
    """The winding-number grid of a closed scan's (K, 3) outward ``normals`` with the (K,)
    ``area`` each point stands for (:func:`surfrec.input.orient.outward`, :func:`~surfrec.input.orient.point_areas`)."""
    from ..input.orient import winding_grid

    w = winding_grid(points, normals, area, cfg.sign_resolution, cfg.box)
    cell = 2.0 * cfg.box / cfg.sign_resolution
    grid = torch.from_numpy(np.ascontiguousarray(w.transpose(2, 1, 0)).astype(np.float32))[None, None]
    return SignData(grid=grid.to(device), box=cfg.box, far=float(max(cfg.sign_far * np.median(kth), cell)),
                    inside=cfg.sign_inside, outside=cfg.sign_outside)
