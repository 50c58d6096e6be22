"""Sanity checks of scans and results that users should hear about.

* :func:`cloud_shape`: is the cloud degenerate (all points on a line or a plane)?
* :func:`summarize`: point count, box, duplicates, point spacing (``surfrec info``).

How much of a reconstructed surface has no input point nearby (phantom) and how much of the
scan a surface misses are measured by :func:`surfrec.support.measure_support`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Relative singular value under which an axis of the cloud counts as flat.
FLAT_TOLERANCE = 1e-6


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


#: The mean spacing is estimated on at most this many points (queried against all points).
MAX_SPACING_SAMPLES = 100_000


def summarize(points: np.ndarray, *, seed: int = 0,
              max_samples: int = MAX_SPACING_SAMPLES) -> dict[str, Any]:
    """Statistics of a point cloud.

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
    distinct = _distinct_rows(points)
    n_distinct = len(distinct)
    mean = median = None
    n_samples = 0
    if n_distinct >= 2:
        rng = np.random.default_rng(seed)
        n_samples = min(n_distinct, max_samples)
        if n_samples < n_distinct:
            query = distinct[rng.choice(n_distinct, size=n_samples, replace=False)]
        else:
            query = distinct
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


def _distinct_rows(points: np.ndarray) -> np.ndarray:
    """The distinct rows (M, 3) of ``points`` (N, 3): exact equality, -0.0 equal to 0.0."""
    rows = np.ascontiguousarray(points, dtype=np.float64) + 0.0  # -0.0 -> 0.0
    as_bytes = rows.view(np.dtype((np.void, rows.itemsize * 3))).ravel()
    return np.unique(as_bytes).view(np.float64).reshape(-1, 3)  # 2x faster than axis=0
