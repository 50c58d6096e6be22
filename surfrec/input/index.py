"""One spatial index of the input points, shared by every step of a reconstruction.

A fit queries the input points for the seeds' σ (k-th neighbour), the loss (nearest
input point of each level-set sample), the component filter (vertices near the data) and
the refinement (k nearest points of each vertex, and the noise estimate). All of them go
through one :class:`SpatialIndex` built once per point set, and all honour the thread
count torch is set to (``--threads``).

Why scipy's ``cKDTree`` and not pykdtree: measured on 50k points on a sphere (2 loaded
CPU cores, process time, same indices and distances from both): 1k queries k=1 1.8 ms vs
6.6 ms; 4k k=1 3.7 vs 7.7 ms; 4k k=10 8.7 vs 11.1 ms; 2k k=21 7.3 vs 9.4 ms; 8k k=20
24.2 vs 24.4 ms; 8k k=128 123 vs 167 ms. cKDTree is never slower at the query sizes
of a step or of the refinement, and takes a per-call thread count (pykdtree reads
OMP_NUM_THREADS once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

#: Queries per call from which a search uses several threads (scipy starts and joins
#: threads on every call: for a step's ~1k queries that costs more than the search).
PARALLEL_QUERIES = 8192
#: Clouds with more points get the two-stage nearest-neighbour search.
COARSE_NN_ABOVE = 200_000
#: Size of the coarse subset.
COARSE_NN_POINTS = 100_000
#: Queries within this many subset spacings of the data get the exact full-tree answer.
COARSE_NN_NEAR = 20.0
#: Points used to measure the coarse subset's spacing.
COARSE_SPACING_SAMPLES = 2000


def cores() -> int:
    """The CPU cores this process may run on."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads(n_queries: int) -> int:
    """Workers for a search of ``n_queries`` points: every core for big batches (the
    answers are the same with any number)."""
    return cores() if n_queries >= PARALLEL_QUERIES else 1


class SpatialIndex:
    """k-nearest-neighbour queries into a fixed point set (a KD-tree built once).

    Parameters
    ----------
    points : (N, D) float
        Stored as given (``points`` attribute); the tree works in float64.
    """

    def __init__(self, points: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        pts = np.asarray(points)
        if pts.ndim != 2 or len(pts) == 0:
            raise ValueError(f"points must have shape (N, D) with N >= 1, got {pts.shape}")
        self.points = pts
        self.tree = cKDTree(pts)

    def __len__(self) -> int:
        return len(self.points)

    def query(self, q: np.ndarray, k: int = 1, *, eps: float = 0.0, distance_upper_bound: float = np.inf,
              workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices of the ``k`` nearest points, (M,) or (M, k) each.

        On every core for batches of at least :data:`PARALLEL_QUERIES` queries or ``k > 1``
        (``workers`` overrides it; the answers do not depend on it).
        """
        workers = workers or (threads(len(q)) if k == 1 else cores())
        return self.tree.query(q, k=k, eps=eps, distance_upper_bound=distance_upper_bound, workers=workers)


class NearestPoints:
    """Nearest input point of query points (a torch-facing view of a :class:`SpatialIndex`).

    For big clouds (more than ``COARSE_NN_ABOVE`` points) a coarse tree on a random
    subset answers first: queries within ``COARSE_NN_NEAR`` subset spacings of the data get
    the exact nearest point of the full tree, farther ones keep the subset's nearest point
    (exact search from far away visits much of a dense cloud: 14x slower at 1M points;
    the subset's answer is within a subset spacing, under 1% of the distance there).

    Parameters
    ----------
    index : SpatialIndex
        Over the input points (float32 coordinates are returned).
    seed : int
        Seed of the coarse subset.
    """

    def __init__(self, index: SpatialIndex, seed: int = 0) -> None:
        self.index = index
        self.points = np.ascontiguousarray(index.points, dtype=np.float32)
        self.coarse = None
        if len(self.points) > COARSE_NN_ABOVE:
            rng = np.random.default_rng(seed)
            self.coarse_idx = rng.choice(len(self.points), COARSE_NN_POINTS, replace=False)
            self.coarse = SpatialIndex(self.points[self.coarse_idx])
            probe = self.points[self.coarse_idx[:COARSE_SPACING_SAMPLES]]
            spacing = float(self.coarse.query(probe, k=2)[0][:, 1].mean())
            self.near = COARSE_NN_NEAR * spacing

    def indices(self, q: "torch.Tensor | np.ndarray", eps: float = 0.0, upto: float = np.inf) -> np.ndarray:
        """(M, D) tensor or array → (M,) int64 index of the nearest input point of each row;
        −1 where none lies within ``upto`` (the search stops there: far queries are the slow
        ones)."""
        qn = q if isinstance(q, np.ndarray) else q.detach().float().cpu().numpy()
        qn = np.asarray(qn, dtype=np.float64)  # the tree's own precision: 30% faster queries, the same answers
        if self.coarse is None:
            _, idx = self.index.query(qn, k=1, eps=eps, distance_upper_bound=upto)
            idx = np.where(idx >= len(self.points), -1, idx)
        else:
            dc, ic = self.coarse.query(qn, k=1)
            idx = self.coarse_idx[ic]
            near = dc < self.near
            if near.any():
                idx[near] = self.index.query(qn[near], k=1, eps=eps)[1]
            if np.isfinite(upto):
                idx = np.where(np.linalg.norm(self.points[idx] - qn, axis=1) <= upto, idx, -1)
        return np.asarray(idx, dtype=np.int64)

    def points_at(self, idx: "torch.Tensor | np.ndarray", device: "torch.device | str" = "cpu",
                  dtype: "torch.dtype | None" = None) -> "torch.Tensor":
        """(M,) indices from :meth:`indices` (all ≥ 0) → (M, D) input points on ``device``."""
        import torch

        idx = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        return torch.from_numpy(self.points[idx]).to(device, dtype or torch.float32)

    def __call__(self, q: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
        """(M, D) tensor → the nearest input point of each row, same device and dtype."""
        return self.points_at(self.indices(q, eps), q.device, q.dtype)
