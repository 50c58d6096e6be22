"""The quirks of real point clouds, applied to a clean one: for tests and benchmarks of the
input inspection (:mod:`surfrec.input.inspect`).

Each function takes a clean (N, 3) cloud and its point spacing ``s`` and returns the
cloud as a real file might hold it:

* :func:`twice` — every point stored twice (a merged export);
* :func:`near_duplicates` — every point with a twin ``offset × s`` away;
* :func:`clustered_returns` — 3–5 returns per sample within ``radius × s`` of it (a lidar
  pulse's several returns);
* :func:`utm_float32` — scaled to ``size`` units, offset by 5e6 and stored as float32
  (UTM metres in a float32 PCD: coordinates quantized to 0.5, a few percent of the spacing at the default size);
* :func:`far_strays` — a share of points moved 100 shape sizes away;
* :data:`QUIRKS` — the names above, and ``all`` (every quirk at once).
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def twice(points: np.ndarray, spacing: float, seed: int = 0) -> np.ndarray:
    """Every point stored twice (shuffled)."""
    out = np.concatenate([points, points])
    return out[np.random.default_rng(seed).permutation(len(out))]


def near_duplicates(points: np.ndarray, spacing: float, seed: int = 0, offset: float = 1e-6) -> np.ndarray:
    """Every point with a twin ``offset × spacing`` away in a random direction."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=points.shape)
    d *= offset * spacing / np.linalg.norm(d, axis=1, keepdims=True)
    return np.concatenate([points, points + d])


def clustered_returns(points: np.ndarray, spacing: float, seed: int = 0, radius: float = 0.01,
                      low: int = 3, high: int = 5) -> np.ndarray:
    """``low``–``high`` returns per sample, each within ``radius × spacing`` of it."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(low, high + 1, size=len(points))
    centre = np.repeat(points, counts, axis=0)
    d = rng.normal(size=centre.shape)
    d *= (radius * spacing * rng.random(len(centre)) / np.linalg.norm(d, axis=1))[:, None]
    return centre + d


def utm_float32(points: np.ndarray, spacing: float, seed: int = 0, size: float = 2000.0,
                offset: float = 5e6) -> np.ndarray:
    """Scaled to a largest side of ``size`` units, offset by ``offset`` and stored as float32."""
    return _float32_at(_scaled(points, size), offset)


def _scaled(points: np.ndarray, size: float) -> np.ndarray:
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (points - lo) * (size / float(np.max(hi - lo)))


def _float32_at(points: np.ndarray, offset: float) -> np.ndarray:
    return (points + offset).astype(np.float32).astype(np.float64)


def far_strays(points: np.ndarray, spacing: float, seed: int = 0, share: float = 0.001,
               distance: float = 100.0) -> np.ndarray:
    """``share`` of the points moved ``distance`` shape sizes away from the shape."""
    rng = np.random.default_rng(seed)
    out = points.copy()
    idx = rng.choice(len(out), max(1, int(round(share * len(out)))), replace=False)
    size = float(np.max(out.max(axis=0) - out.min(axis=0)))
    d = rng.normal(size=(len(idx), 3))
    out[idx] += distance * size * d / np.linalg.norm(d, axis=1, keepdims=True)
    return out


def all_quirks(points: np.ndarray, spacing: float, seed: int = 0, size: float = 2000.0) -> np.ndarray:
    """Every quirk at once: 0.1% of the samples far away, 3–5 returns per sample with near
    duplicates, in float32 UTM-like coordinates, every point stored twice."""
    scale = size / float(np.max(points.max(axis=0) - points.min(axis=0)))
    s = spacing * scale
    c = clustered_returns(far_strays(_scaled(points, size), s, seed + 2), s, seed)
    return twice(_float32_at(near_duplicates(c, s, seed + 1), 5e6), s, seed + 3)


#: name -> quirk function (``clean`` leaves the cloud as it is)
QUIRKS: dict[str, Callable[..., np.ndarray]] = {
    "clean": lambda points, spacing, seed=0: points.copy(),
    "twice": twice,
    "near_duplicates": near_duplicates,
    "clustered_returns": clustered_returns,
    "utm_float32": utm_float32,
    "far_strays": far_strays,
    "all": all_quirks,
}

__all__ = ["QUIRKS", "twice", "near_duplicates", "clustered_returns", "utm_float32", "far_strays", "all_quirks"]
