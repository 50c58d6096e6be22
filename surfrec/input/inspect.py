"""Inspection of a scan before any fitting: the first stage every entry point runs.

:func:`inspect_scan` takes a :class:`~surfrec.io.PointCloud` and returns a :class:`Scan`:
the points the fit sees (stray points dropped on request, far outliers outside the robust
box ignored) in the fit's normalized frame, the subset kept with the model and its spatial
index, the oriented normals when the surface decision or the fit needs them, and an
:class:`InputReport` of what it found. Every scan statistic the later stages use (the point
spacing s, the closure) comes from that report, computed once. A scan that would make a
later stage fail (all points on a line, too few points left) is refused here, before any
work, with one line.

Also here: :func:`cloud_shape` (is the cloud degenerate?), :func:`find_outliers` (stray
points), :func:`scan_spacing` (the spacing s) and :func:`summarize` (``surfrec info``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..settings import InputConfig
from ..settings.field import UNIT_HALF_EXTENT
from .index import SpatialIndex
from .normalize import Normalization
from .orient import Orientation

log = logging.getLogger(__name__)

#: Relative singular value under which an axis of the cloud counts as flat.
FLAT_TOLERANCE = 1e-6
#: Fewest points a fit accepts (as :data:`surfrec.io.MIN_POINTS`).
MIN_FIT_POINTS = 10


@dataclass(frozen=True)
class InputReport:
    """What :func:`inspect_scan` found (plain values: it is stored with the model)."""

    source: str
    """Where the scan came from (a path, or ``<array>``)."""
    points_read: int
    """Points in the scan as read."""
    normals: bool
    """Whether the scan carries usable normals."""
    duplicates: int
    """Points that repeated an earlier one exactly (merged)."""
    near_duplicates: int
    """Points merged with a neighbour closer than ``merge_tolerance`` (near duplicates,
    clustered returns)."""
    merge_tolerance: float
    """The merge distance, in the scan's units."""
    scan_spacing: float
    """The scan's point spacing after merging, in its own units (all points)."""
    stray: int
    """Stray points found (:func:`find_outliers`: flying pixels, isolated specks)."""
    stray_removed: bool
    """Whether they were dropped before the fit (``InputConfig.remove_stray``)."""
    far_outliers: int
    """Points far outside the robust box, ignored by the fit."""
    points: int
    """Points the fit sees."""
    data_points: int
    """Points kept with the model (a random subset when there are more than
    ``InputConfig.max_data_points``)."""
    planar: bool
    """All points lie in one plane (the fit then gives a thin closed slab around it)."""
    scale: float
    """Scan units per unit of the fit's normalized frame."""
    spacing: float
    """s: median distance from a kept point to its nearest other one, in normalized units
    (every radius of the later stages is a multiple of it; equal to ``scan_spacing`` in
    normalized units unless the scan has more than ``max_data_points`` points)."""
    noise: float | None = None
    """The scan's noise sigma along its normal, in normalized units (None: too few points)."""
    closure: float | None = None
    """Closure of the oriented normals (0 closed ... 1 a plane), when measured."""
    pieces: int | None = None
    """Connected pieces of the neighbour graph, when the normals were oriented."""

    @property
    def spacing_scan(self) -> float:
        """s of the kept points in the scan's own units."""
        return self.spacing * self.scale

    def to_dict(self) -> dict:
        """Plain-Python form (model files, JSON)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "InputReport":
        """Inverse of :meth:`to_dict` (unknown keys are ignored: files of other versions load)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class ScanPoints:
    """The scan points the stages after the fit measure against (normalized frame)."""

    points: np.ndarray
    """(K, 3) float32 points (those kept with the model)."""
    index: SpatialIndex
    """Spatial index over ``points``."""
    spacing: float
    """s of the scan (:attr:`InputReport.spacing`)."""
    noise: float | None = None
    """The scan's noise sigma (:attr:`InputReport.noise`; None: not estimated)."""


@dataclass
class Scan:
    """A scan ready for the fit: :func:`inspect_scan`'s result."""

    points: np.ndarray
    """(N, 3) float32 points in the normalized frame."""
    normals: np.ndarray | None
    """(N, 3) float64 unit normals of the scan, or None."""
    normalization: Normalization
    """Maps the normalized frame back to the scan's coordinates."""
    data_points: np.ndarray
    """(K, 3) float32 random subset of ``points`` kept with the model (a permutation of all
    of them when N <= ``max_data_points``)."""
    keep: np.ndarray
    """(K,) indices of ``data_points`` in ``points``."""
    index: SpatialIndex
    """The one spatial index of the fit: over ``data_points`` when K = N, else over ``points``."""
    data_index: SpatialIndex
    """The index over ``data_points`` (``index`` itself when K = N)."""
    orientation: Orientation | None
    """Oriented normals and closure of ``data_points``, when asked for."""
    report: InputReport
    """What the inspection found."""
    fingerprint: str
    """Hash of the scan as read (a checkpoint is resumed only on the same scan)."""
    timings: dict = dataclasses.field(default_factory=dict)
    """Seconds of ``inspect``, ``index`` and ``orient``."""

    @property
    def kept(self) -> ScanPoints:
        """The points kept with the model, their index and spacing."""
        return ScanPoints(self.data_points, self.data_index, self.report.spacing, self.report.noise)

    @property
    def shared_index(self) -> bool:
        """Whether ``index`` is over ``data_points`` (K = N)."""
        return self.data_index is self.index


def inspect_scan(cloud: Any, config: InputConfig | None = None, *, box: float = 1.0, seed: int = 0,
                 orient: bool = True) -> Scan:
    """Check, clean, normalize and index a scan (see the module docstring).

    Parameters
    ----------
    cloud : PointCloud
        The scan as read (:func:`surfrec.io.load_points` or ``PointCloud.from_arrays``).
    config : InputConfig, optional
    box : float
        Half-side of the fitting box (``FitConfig.box``): far outliers are cut at
        ``min(box, outlier_margin × 0.8)`` of the robust box.
    seed : int
        Seed of the subset kept with the model.
    orient : bool
        Orient the normals of the kept points and measure their closure (the surface
        decision and the fit's side and sign terms need them).

    Raises
    ------
    InputError
        All points coincide or lie on one line, or too few remain after removing outliers.
    """
    cfg = config or InputConfig()
    t0 = time.perf_counter()
    source = cloud.source
    fingerprint = hashlib.sha1(np.ascontiguousarray(cloud.points, dtype=np.float64).tobytes()).hexdigest()
    merged = merge_duplicates(cloud.points, cloud.normals, cfg.merge_tolerance, cfg.spacing_samples)
    pts, nrm = merged.points, merged.normals
    _check_distinct(pts, merged, source)
    stray_mask = find_outliers(pts, cfg.stray_k, cfg.stray_ratio, cfg.stray_reference, tree=merged.tree)
    stray = int(stray_mask.sum())
    removed = cfg.remove_stray and stray > 0 and len(pts) - stray >= MIN_FIT_POINTS
    if removed:
        pts, nrm = pts[~stray_mask], (nrm[~stray_mask] if nrm is not None else None)
        log.info("%d stray points removed before the fit (%.2f%%)", stray, 100.0 * stray / len(stray_mask))
    norm, pts, nrm, far = _robust_normalization(pts, nrm, cfg, box, source,
                                                None if removed else ~stray_mask)
    unit = norm.to_unit(pts).astype(np.float32)
    t1 = time.perf_counter()
    keep = np.random.default_rng(seed).choice(len(unit), size=min(len(unit), cfg.max_data_points), replace=False)
    data_points = unit[keep]
    index = SpatialIndex(data_points if len(keep) == len(unit) else unit)
    data_index = index if len(keep) == len(unit) else SpatialIndex(data_points)
    spacing = scan_spacing(data_points, data_index, max_queries=cfg.spacing_samples)
    noise = _noise(data_points, data_index, cfg)
    t2 = time.perf_counter()
    orientation = _orientation(data_points, data_index, cfg) if orient else None
    report = InputReport(
        source=source, points_read=len(cloud.points), normals=nrm is not None, duplicates=merged.exact,
        near_duplicates=merged.near, merge_tolerance=merged.tolerance, scan_spacing=merged.spacing,
        stray=stray, stray_removed=bool(removed), far_outliers=far, points=len(unit), data_points=len(keep),
        planar=merged.planar, scale=float(norm.scale), spacing=spacing, noise=noise,
        closure=None if orientation is None else round(orientation.closure, 4),
        pieces=None if orientation is None else orientation.pieces)
    _log_merges(report)
    return Scan(points=unit, normals=nrm, normalization=norm, data_points=data_points, keep=keep, index=index,
                data_index=data_index, orientation=orientation, report=report, fingerprint=fingerprint,
                timings={"inspect": t1 - t0, "index": t2 - t1, "orient": time.perf_counter() - t2})


def _check_distinct(pts: np.ndarray, merged: "Merged", source: str) -> None:
    """Refuse, before any work, a cloud that no stage could fit: too few distinct points,
    all on a line; warn about a planar one."""
    dup = (f" ({merged.exact} exact and {merged.near} near duplicates merged)"
           if merged.exact or merged.near else "")
    if len(pts) < MIN_FIT_POINTS:
        raise InputError(source, f"only {len(pts)} distinct points{dup}; a fit needs at least {MIN_FIT_POINTS}")
    if merged.collinear:
        raise InputError(source, f"all points lie on one line (or coincide){dup}: no surface can be fitted")
    if merged.planar:
        log.warning("%s: all points lie in one plane; the result is a thin closed slab around it", source)


def _log_merges(r: InputReport) -> None:
    if r.duplicates or r.near_duplicates:
        log.warning("%s: %d exact and %d near duplicates (closer than %.3g) merged: %d distinct points",
                    r.source, r.duplicates, r.near_duplicates, r.merge_tolerance,
                    r.points_read - r.duplicates - r.near_duplicates)


def _noise(points: np.ndarray, index: SpatialIndex, cfg: InputConfig) -> float | None:
    """The scan's noise sigma along its normal (:func:`~surfrec.input.local.estimate_noise`),
    None when there are too few points for its local fits."""
    from .local import estimate_noise

    if len(points) < cfg.noise_k + 1:
        return None
    return estimate_noise(points, k=cfg.noise_k, n_samples=cfg.noise_samples, seed=0, tree=index)[0]


@dataclass(frozen=True)
class Merged:
    """What :func:`merge_duplicates` returns."""

    points: np.ndarray
    """(M, 3) float64 distinct points, in the order of their first occurrence."""
    normals: np.ndarray | None
    """(M, 3) the first merged point's normal, or None."""
    exact: int
    """Points that repeated an earlier one exactly."""
    near: int
    """Points merged with a neighbour closer than ``tolerance``."""
    tolerance: float
    """The merge distance used last (``tolerance × ŝ``, ŝ the cluster-robust spacing scale)."""
    spacing: float
    """s of the merged points: the median distance to the nearest other point."""
    collinear: bool = False
    planar: bool = False
    tree: "SpatialIndex | None" = dataclasses.field(default=None, repr=False, compare=False)
    """The spatial index over ``points`` (reused by the stray-point test)."""


#: Neighbour rank of the spacing scale that sets the merge distance (clusters of up to a
#: few points per sample do not shrink it much: see :func:`density_spacing`).
MERGE_K = 16
#: Most merge rounds (each on the cloud the last one left).
MERGE_ROUNDS = 4


def merge_duplicates(points: Any, normals: Any = None, tolerance: float = 0.1,
                     max_queries: int = 100_000) -> Merged:
    """Merge exact duplicates, then points closer than ``tolerance`` point spacings.

    Exact duplicates (merged exports, quantized coordinates) keep their first occurrence.
    Near duplicates and clustered returns (the several returns of one lidar pulse) are
    merged into the centroid of each connected group of points closer than ``tolerance ×
    ŝ``, where ŝ (:func:`density_spacing`) is a spacing scale from the 16th neighbour that
    clusters of a few points barely shrink; the rounds repeat on the merged cloud until
    none merges. On a randomly sampled clean scan about 0.4% of the points (pairs closer
    than 10% of the spacing) merge, each moving by at most 5% of the spacing.

    Parameters
    ----------
    points : (N, 3) float
    normals : (N, 3) float, optional
    tolerance : float
        In point spacings; 0 merges exact duplicates only.
    max_queries : int
        Points the spacing statistics query (a random subset of larger clouds).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pts = np.ascontiguousarray(points, dtype=np.float64)
    first = np.sort(np.unique((pts + 0.0).view(np.dtype((np.void, 24))).ravel(), return_index=True)[1])
    exact = len(pts) - len(first)
    pts = pts[first]
    nrm = None if normals is None else np.asarray(normals)[first]
    near, tol = 0, 0.0
    tree = None
    for _ in range(MERGE_ROUNDS if tolerance > 0 else 0):
        if len(pts) <= MERGE_K:
            break
        tree = SpatialIndex(pts)
        tol = tolerance * density_spacing(pts, MERGE_K, max_queries, tree=tree)
        pairs = tree.tree.query_pairs(tol, output_type="ndarray")
        if len(pairs) == 0:
            break
        tree = None
        n = len(pts)
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        count, labels = connected_components(graph, directed=False)
        firsts = np.full(count, n)
        np.minimum.at(firsts, labels, np.arange(n))
        order = np.argsort(firsts, kind="stable")  # groups in the order of their first point
        rank = np.empty(count, np.int64)
        rank[order] = np.arange(count)
        group = rank[labels]
        size = np.bincount(group, minlength=count).astype(np.float64)
        pts = np.stack([np.bincount(group, weights=pts[:, j], minlength=count) / size for j in range(3)], axis=1)
        nrm = None if nrm is None else nrm[firsts[order]]
        near += n - count
    shape = cloud_shape(pts)
    if len(pts) >= 2 and not shape["identical"]:
        tree = tree or SpatialIndex(pts)
        spacing = scan_spacing(pts, tree, max_queries=max_queries)
    else:
        spacing = 0.0
    return Merged(pts, nrm, exact, near, tol, spacing, shape["collinear"], shape["planar"], tree)


def density_spacing(points: np.ndarray, k: int = MERGE_K, max_queries: int = 100_000, tree=None) -> float:
    """A spacing scale from the k-th neighbour distance that clusters of a few points per
    sample barely shrink: median r_k × sqrt(ln 2 / (k − 1/3)), which is the median nearest
    neighbour distance of a uniform random sampling of a surface (r_k² of such a sampling
    is Gamma(k)-distributed, with median ≈ k − 1/3). A regular grid gives about half its
    step; the scale only sets the merge distance."""
    pts = np.asarray(points, dtype=np.float64)
    k = min(k, len(pts) - 1)
    d, _ = (tree or SpatialIndex(pts)).query(_queries(pts, max_queries), k=k + 1)
    return float(np.median(d[:, k]) * math.sqrt(math.log(2.0) / (k - 1.0 / 3.0)))


def _queries(points: np.ndarray, max_queries: int) -> np.ndarray:
    """A fixed random subset of at most ``max_queries`` points (all when fewer)."""
    if len(points) <= max_queries:
        return points
    return points[np.random.default_rng(0).choice(len(points), max_queries, replace=False)]


def _orientation(points: np.ndarray, index: SpatialIndex, cfg: InputConfig) -> Orientation:
    from .orient import scan_orientation

    o = scan_orientation(points, cfg.normal_k, cfg.orient_k, index, cfg.closure_area_clip)
    log.info("scan closure %.3f (%d piece%s)", o.closure, o.pieces, "" if o.pieces == 1 else "s")
    return o


def _robust_normalization(pts: np.ndarray, nrm: np.ndarray | None, cfg: InputConfig, box: float, source: str,
                          inliers: np.ndarray | None = None) -> tuple[Normalization, np.ndarray, np.ndarray | None, int]:
    """The box transform, robust to far outliers (which are then dropped and counted):
    (transform, points, normals, outliers dropped). The robust box is the percentile box of
    the ``inliers`` (the points that are not stray, when given)."""
    exact = Normalization.from_points(pts)
    if cfg.outlier_percentile <= 0:
        return exact, pts, nrm, 0
    robust = Normalization.from_points(pts if inliers is None or not inliers.any() else pts[inliers],
                                       percentile=cfg.outlier_percentile)
    if exact.scale <= cfg.outlier_box_ratio * robust.scale:
        return exact, pts, nrm, 0
    # a margin of the robust box around it stays in; farther points are outliers
    keep = (np.abs(robust.to_unit(pts)) <= min(box, cfg.outlier_margin * UNIT_HALF_EXTENT)).all(axis=1)
    kept = pts[keep]
    far = int((~keep).sum())
    log.warning("%s: %d far outliers (%.2f%% of the points) lie outside the robust box of the scan and are "
                "ignored (the full box is %.1fx larger)", source, far, 100 * (~keep).mean(),
                exact.scale / robust.scale)
    if len(kept) < MIN_FIT_POINTS:
        raise InputError(source, "too few points remain after removing far outliers")
    return Normalization.from_points(kept), kept, (nrm[keep] if nrm is not None else None), far


def scan_spacing(points: Any, tree=None, max_queries: int | None = None) -> float:
    """s: the median distance from a scan point to its nearest other scan point.

    Parameters
    ----------
    points : (N, 3) float, N >= 2
    tree : SpatialIndex or cKDTree over ``points``, optional
    max_queries : int, optional
        Measure from a fixed random subset of at most this many points (each against all
        of them): the median is the same within a fraction of a percent.

    Raises
    ------
    ValueError
        More than half the points are duplicates (no spacing): merge them first
        (:func:`merge_duplicates`).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2:
        raise ValueError(f"points must have shape (N, 3) with N >= 2, got {pts.shape}")
    tree = tree if tree is not None else SpatialIndex(pts)
    d, _ = tree.query(pts if max_queries is None else _queries(pts, max_queries), k=2)
    s = float(np.median(d[:, 1]))
    if not s > 0:
        raise ValueError("the scan's median nearest-neighbour distance is 0 (duplicated points)")
    return s


def find_outliers(points: Any, k: int = 8, ratio: float = 3.0, reference: int = 32, tree=None) -> np.ndarray:
    """Stray points (flying pixels, isolated specks): a boolean mask.

    Parameters
    ----------
    points : (N, 3) float
    k : int
        Neighbour rank whose distance measures how isolated a point is.
    ratio : float
        A point is stray when its k-th neighbour distance exceeds this many times the median
        k-th neighbour distance of its ``reference`` nearest neighbours (local, so density
        may vary; a clump of fewer than ``reference / 2`` stray points is still found).
    reference : int
    tree : SpatialIndex over ``points``, optional

    Returns
    -------
    (N,) bool
        All False for scans of no more than ``max(k, reference)`` points.
    """
    pts = np.asarray(points, dtype=np.float64)
    kk = max(k, reference)
    if len(pts) <= kk + 1:
        return np.zeros(len(pts), dtype=bool)
    d, idx = (tree if tree is not None else SpatialIndex(pts)).query(pts, k=kk + 1)
    dk = d[:, k]
    local = np.median(dk[idx[:, 1: reference + 1]], axis=1)
    return dk > ratio * local


def cloud_shape(points: np.ndarray) -> dict:
    """Principal extents of a cloud and whether it is collinear or planar.

    Parameters
    ----------
    points : (N, 3) float

    Returns
    -------
    dict
        ``singular_values`` (3,) of the centred cloud (descending), ``collinear``,
        ``planar`` (True also when collinear), ``identical``.
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) > 200_000:
        pts = pts[np.random.default_rng(0).choice(len(pts), 200_000, replace=False)]
    c = pts - pts.mean(axis=0)
    s = np.linalg.svd(c, compute_uv=False) if len(c) >= 3 else np.zeros(3)
    s = np.pad(s, (0, 3 - len(s)))
    top = s[0]
    identical = bool(top <= 0)
    rel = s / top if top > 0 else np.zeros(3)
    return {
        "singular_values": s.tolist(),
        "identical": identical,
        "collinear": bool(identical or rel[1] < FLAT_TOLERANCE),
        "planar": bool(identical or rel[2] < FLAT_TOLERANCE),
    }


#: The mean spacing of :func:`summarize` is estimated on at most this many points.
MAX_SPACING_SAMPLES = 100_000


def summarize(points: np.ndarray, *, seed: int = 0, max_samples: int = MAX_SPACING_SAMPLES) -> dict[str, Any]:
    """Statistics of a point cloud (``surfrec info``).

    Parameters
    ----------
    points : (N, 3) float64
        Finite coordinates, N >= 2.
    seed : int
        Seed of the subsample used for the spacing.
    max_samples : int
        The nearest-neighbour distance is averaged over at most this many points, chosen at
        random; each is queried against all distinct points.

    Returns
    -------
    dict
        ``points`` (N), ``bbox_min``/``bbox_max``/``bbox_size`` (3 floats each),
        ``bbox_diagonal``, ``duplicates`` (points that repeat an earlier one exactly),
        ``mean_spacing`` and ``median_spacing`` (distance to the nearest other distinct
        point; None with fewer than 2 distinct points), ``spacing_samples``.
    """
    from scipy.spatial import cKDTree

    lo, hi = points.min(axis=0), points.max(axis=0)
    distinct = distinct_rows(points)
    n_distinct = len(distinct)
    mean = median = None
    n_samples = 0
    if n_distinct >= 2:
        rng = np.random.default_rng(seed)
        n_samples = min(n_distinct, max_samples)
        query = distinct[rng.choice(n_distinct, size=n_samples, replace=False)] if n_samples < n_distinct else distinct
        dist, _ = cKDTree(distinct).query(query, k=2)
        mean, median = float(dist[:, 1].mean()), float(np.median(dist[:, 1]))
    return {
        "points": int(len(points)),
        "bbox_min": lo.tolist(),
        "bbox_max": hi.tolist(),
        "bbox_size": (hi - lo).tolist(),
        "bbox_diagonal": float(np.linalg.norm(hi - lo)),
        "duplicates": int(len(points) - n_distinct),
        "mean_spacing": mean,
        "median_spacing": median,
        "spacing_samples": int(n_samples),
    }


def distinct_rows(points: np.ndarray) -> np.ndarray:
    """The distinct rows (M, 3) of ``points`` (N, 3): exact equality, -0.0 equal to 0.0."""
    rows = np.ascontiguousarray(points, dtype=np.float64) + 0.0  # -0.0 -> 0.0
    as_bytes = rows.view(np.dtype((np.void, rows.itemsize * 3))).ravel()
    return np.unique(as_bytes).view(np.float64).reshape(-1, 3)  # 2x faster than axis=0


__all__ = ["InputReport", "Scan", "ScanPoints", "inspect_scan", "merge_duplicates", "density_spacing", "scan_spacing",
           "find_outliers", "cloud_shape", "summarize", "distinct_rows"]
