"""``surfrec info``: what is in a scan (size, box, normals, spacing, duplicates)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


#: The mean spacing is estimated on at most this many points (queried against all points).
MAX_SPACING_SAMPLES = 100_000


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``surfrec info``."""
    p.add_argument("scan", type=Path,
                   help="point cloud: PLY, XYZ/PTS/TXT/CSV, NPY/NPZ, PCD, or a mesh file")
    p.add_argument("--sample-surface", type=_positive_int, default=None, metavar="N",
                   help="for meshes: describe N points sampled on the surface, not the vertices")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the surface sampling and the spacing subsample (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


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


def _vec(values: list[float]) -> str:
    return "  ".join(f"{v:.6g}" for v in values)


def run(args: argparse.Namespace) -> int:
    """Load the scan (errors are InputError, reported by the dispatcher) and print its summary."""
    from ..io import load_points

    cloud = load_points(args.scan, sample_surface=args.sample_surface, seed=args.seed)
    stats = summarize(cloud.points, seed=args.seed)
    report = {"path": cloud.source, "format": cloud.format, **stats,
              "normals": cloud.normals is not None}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    spacing = ("n/a" if stats["mean_spacing"] is None else
               f"{stats['mean_spacing']:.6g} (median {stats['median_spacing']:.6g}; "
               f"nearest neighbour, over {stats['spacing_samples']:,} points)")
    lines = [
        ("path", report["path"]),
        ("format", report["format"]),
        ("points", f"{stats['points']:,}"),
        ("bbox min", _vec(stats["bbox_min"])),
        ("bbox max", _vec(stats["bbox_max"])),
        ("bbox size", f"{_vec(stats['bbox_size'])}  (diagonal {stats['bbox_diagonal']:.6g})"),
        ("normals", "yes" if report["normals"] else "no"),
        ("mean spacing", spacing),
        ("duplicates", f"{stats['duplicates']:,}"),
    ]
    width = max(len(k) for k, _ in lines) + 1
    for key, value in lines:
        print(f"{key + ':':<{width}} {value}")
    return 0
