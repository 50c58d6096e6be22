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

The level-set samples' nearest points, queried every step of a fit, go through
:class:`GridNearest` instead (numba kernels: no Python call per query, no GIL; the same
answers). Its kernels compile the first time a machine runs them (~6 s) and load from
numba's on-disk cache afterwards (~0.6 s a process).
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Queries per call from which a search uses several threads (scipy starts and joins
#: threads on every call: for a step's ~1k queries that costs more than the search).
PARALLEL_QUERIES = 8192
#: Clouds with more points get the two-stage nearest-neighbour search.
COARSE_NN_ABOVE = 200_000
#: Size of the coarse subset.
COARSE_NN_POINTS = 100_000
#: Queries within this many subset spacings of the data get the exact full-tree answer.
COARSE_NN_NEAR = 20.0
#: Most points in a leaf of :class:`GridNearest`'s KD-tree.
KD_LEAF = 8
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
    Smaller 3-D clouds answer through a :class:`GridNearest` (exact; several times faster
    than the tree for queries near the data, which a fit's samples are).

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
        self.grid = None
        if len(self.points) > COARSE_NN_ABOVE:
            rng = np.random.default_rng(seed)
            self.coarse_idx = rng.choice(len(self.points), COARSE_NN_POINTS, replace=False)
            self.coarse = SpatialIndex(self.points[self.coarse_idx])
            probe = self.points[self.coarse_idx[:COARSE_SPACING_SAMPLES]]
            spacing = float(self.coarse.query(probe, k=2)[0][:, 1].mean())
            self.near = COARSE_NN_NEAR * spacing
        elif self.points.shape[1] == 3:
            self.grid = GridNearest(index)

    def indices(self, q: "torch.Tensor | np.ndarray", eps: float = 0.0, upto: float = np.inf) -> np.ndarray:
        """(M, D) tensor or array → (M,) int64 index of the nearest input point of each row;
        −1 where none lies within ``upto`` (the search stops there: far queries are the slow
        ones)."""
        qn = q if isinstance(q, np.ndarray) else q.detach().float().cpu().numpy()
        qn = np.asarray(qn, dtype=np.float64)  # the tree's own precision: 30% faster queries, the same answers
        if self.grid is not None and eps == 0.0:
            return self.grid.indices(qn, upto)
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


class GridNearest:
    """Exact nearest point of query points close to a 3-D point set, from a grid of buckets.

    A step's nearest-point queries are mostly level-set samples within a few point
    spacings of the data, where a walk over the neighbouring cells of a uniform grid is
    several times cheaper than a KD-tree descent; queries that several shells of cells
    do not settle (far from the data) go to a KD-tree of its own, which starts from the
    best point the shells held. Both are numba kernels that release the GIL and cost no
    Python call per query (SciPy's ``cKDTree.query`` costs ~50 µs a call before it
    searches). The answers equal ``cKDTree``'s but for points at exactly the same
    distance (see :mod:`surfrec.input._grid`).

    Parameters
    ----------
    index : SpatialIndex
        Over (N, 3) points; answers index into its points.
    cell_spacings : float
        Cell edge in median nearest-neighbour spacings of the points.
    rings : int
        Shells of cells a query visits before it goes to the tree.
    max_cells : int
        The grid's cell count is capped here (the cells grow instead).
    """

    def __init__(self, index: SpatialIndex, cell_spacings: float = 4.0, rings: int = 2,
                 max_cells: int = 1 << 22) -> None:
        t0 = time.perf_counter()
        from . import _grid

        pts = np.ascontiguousarray(index.points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"GridNearest needs (N, 3) points, got {pts.shape}")
        self.index, self.points, self.rings, self._k = index, pts, int(rings), _grid
        probe = pts[np.linspace(0, len(pts) - 1, min(len(pts), COARSE_SPACING_SAMPLES)).astype(np.int64)]
        spacing = float(np.median(index.query(probe, k=2)[0][:, 1])) if len(pts) > 1 else 0.0
        self.lo = pts.min(axis=0)
        extent = np.maximum(pts.max(axis=0) - self.lo, 1e-12)
        cell = max(cell_spacings * spacing, float(extent.max()) / 1024, 1e-12)
        while np.prod(np.ceil(extent / cell) + 1) > max_cells:
            cell *= 1.25
        self.cell = cell
        self.dims = (np.floor(extent / cell).astype(np.int64) + 1)
        n_cells = int(np.prod(self.dims))
        cells = np.empty(len(pts), np.int64)
        _grid.cells_of(pts, self.lo, cell, self.dims, cells)
        self.start = np.empty(n_cells + 1, np.int32 if len(pts) < 2**31 else np.int64)
        self.order = np.empty(len(pts), self.start.dtype)
        _grid.bucket(cells, n_cells, self.start, self.order)
        self.sorted = np.ascontiguousarray(pts[self.order])   # each cell's points side by side
        # the KD-tree for the queries the grid does not settle: order, node ranges, node boxes
        depth = max(0, math.ceil(math.log2(max(len(pts), 1) / KD_LEAF)))
        n_nodes = 2 ** (depth + 1) - 1
        self.kd = (np.arange(len(pts), dtype=np.int64), np.empty(n_nodes, np.int64), np.empty(n_nodes, np.int64),
                   np.empty((n_nodes, 3)), np.empty((n_nodes, 3)))
        _grid.kd_build(pts, KD_LEAF, *self.kd)   # 0.04 s at 50k points, 0.16 s at 200k
        none = np.zeros(0, np.int64)   # empty searches: every kernel is loaded (or compiled) here
        _grid.kd_nearest(pts[:1], none, pts, *self.kd, 0.0, none, none, np.zeros(0))
        _grid.nearest(pts[:0], self.sorted, self.lo, self.cell, self.dims, self.start, self.order, self.rings, 0.0,
                      none, np.zeros(0), none)
        seconds = time.perf_counter() - t0
        log.debug("nearest-point grid: %s cells of %.3g over %d points (%.2f s)", "x".join(map(str, self.dims)),
                  cell, len(pts), seconds)
        if seconds > 1.0:   # numba compiled the kernels (the first run on a machine) or a very large cloud
            log.info("nearest-point grid ready in %.1f s", seconds)

    def indices(self, q: np.ndarray, upto: float = np.inf) -> np.ndarray:
        """(M, 3) queries → (M,) int64 index of each one's nearest point; −1 where none lies
        within ``upto``."""
        tasks, finish = self.tasks(q, upto, 1)
        for task in tasks:
            task()
        return finish()

    def tasks(self, q: np.ndarray, upto: float = np.inf,
              n_tasks: int = 2) -> tuple[list[Callable[[], None]], Callable[..., np.ndarray]]:
        """:meth:`indices` in two phases, the first cut in shares for a caller's thread pool.

        Returns
        -------
        tasks : ``n_tasks`` calls, each the grid search of a fixed share of the queries
            (GIL-free); any order, any thread
        finish : ``finish(need=None)``, called after every task: searches the KD-tree for
            the queries the grid did not settle and returns the (M,) indices. With
            ``need`` ((M,) bool), only for the needed queries: the others get index 0.
        """
        q = np.ascontiguousarray(q, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != 3:
            raise ValueError(f"queries must have shape (M, 3), got {q.shape}")
        m = len(q)
        idx, d2, cand = np.empty(m, np.int64), np.empty(m, np.float64), np.empty(m, np.int64)
        bounds = (np.arange(n_tasks + 1) * m) // n_tasks
        upto2 = float(upto) * float(upto)

        def task(a: int, b: int) -> Callable[[], None]:
            return lambda: self._k.nearest(q[a:b], self.sorted, self.lo, self.cell, self.dims, self.start,
                                           self.order, self.rings, upto2, idx[a:b], d2[a:b], cand[a:b])

        def finish(need: np.ndarray | None = None) -> np.ndarray:
            open_ = idx == -2
            if need is not None:
                idx[open_ & ~need] = 0
                open_ &= need
            rows = np.flatnonzero(open_)
            if len(rows):
                self._k.kd_nearest(q, rows, self.points, *self.kd, upto2, cand, idx, d2)
            return idx

        return [task(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])], finish
