"""Normals of a scan, oriented consistently, and whether the scan encloses a volume.

Used before a fit to decide between a closed and an open surface from the data
alone, and, for an open surface, to give the signed field a side: a single view is a
sheet, and a field that is negative inside needs an inside.

* :func:`estimate_normals`: unoriented normals, the least-squares plane through each
  point's ``k`` nearest neighbours.
* :func:`orient_normals`: one consistent sign per connected piece, propagated along the
  minimum spanning tree of the k-nearest-neighbour graph weighted by ``1 − |n_i · n_j|``
  (Hoppe et al. 1992; scipy's sparse graph routines). The global sign of each piece is
  arbitrary.
* :func:`closure`: ``|Σ a_i n_i| / Σ a_i`` with ``a_i`` the area a point stands for. For a
  closed surface, ∮ n dA = 0 (the divergence theorem), so a scan all around an object
  measures close to 0 whatever its shape; one view of anything sees roughly a hemisphere of
  directions (a hemisphere: exactly 0.5, a plane: 1). The measure does not depend on the
  orientation's global sign, only on its consistency.

Measured (benchmarks/RESULTS_REAL.md): closed scans 0.001–0.080 (five bench shapes, the
simulated scan of a CAD part, the SRB gargoyle); single views 0.51–0.76 (bun000,
milk_carton and three generated views of bench shapes).
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import numpy as np

from .index import SpatialIndex

log = logging.getLogger(__name__)


def _points(points: Any) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 3:
        raise ValueError(f"points must have shape (N, 3) with N >= 3, got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite")
    return pts


def neighbors(points: np.ndarray, k: int, index: SpatialIndex | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of each point's ``k`` nearest points, itself first: (N, k) each
    (one query that :func:`estimate_normals`, :func:`orient_normals` and :func:`closure`
    can share through their ``knn`` argument)."""
    index = index if index is not None else SpatialIndex(points)
    return index.query(np.asarray(points), k=min(k, len(points)))


def _knn(points: np.ndarray, k: int, index: SpatialIndex | None, knn: tuple | None) -> tuple[np.ndarray, np.ndarray]:
    """``knn`` cut to ``k`` columns when it has them, else a new query."""
    k = min(k, len(points))
    if knn is not None and knn[1].shape[1] >= k:
        return knn[0][:, :k], knn[1][:, :k]
    return neighbors(points, k, index)


def estimate_normals(points: Any, k: int = 16, index: SpatialIndex | None = None, knn: tuple | None = None,
                     return_variation: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """(N, 3) points -> (N, 3) unit normals of the least-squares plane through each point's
    ``k`` nearest points (itself included): the eigenvector of the smallest eigenvalue of
    their covariance; the sign is arbitrary.

    With ``return_variation``, also the (N,) surface variation λ₀ / (λ₀ + λ₁ + λ₂) of each
    neighbourhood (Pauly et al. 2002): 0 on a plane, 1/3 for isotropic scatter; how far
    the normal can be trusted (noise, sharp edges, sparse thin parts).

    Written here on the fit's own index rather than taken from point-cloud-utils: its
    ``estimate_point_cloud_normals_knn`` builds a second tree and differed from the exact
    plane fit by up to 13° on a 600-point ellipsoid (tests/test_orient.py).
    """
    pts = _points(points)
    if k < 3:
        raise ValueError(f"k must be >= 3, got {k}")
    _, idx = _knn(pts, k, index, knn)
    nb = pts[idx]
    nb -= nb.mean(axis=1, keepdims=True)
    val, vec = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb))
    if not return_variation:
        return vec[:, :, 0]
    return vec[:, :, 0], np.clip(val[:, 0], 0.0, None) / np.maximum(val.sum(axis=1), 1e-300)


def knn_graph(points: np.ndarray, k: int, index: SpatialIndex | None = None,
              knn: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` nearest other points of each point: (N·k,) rows, (N·k,) cols, (N,) squared
    distance to the k-th neighbour."""
    k = min(k, len(points) - 1)
    d, idx = _knn(points, k + 1, index, knn)
    rows = np.repeat(np.arange(len(points)), k)
    return rows, idx[:, 1:].ravel(), d[:, -1] ** 2


def orient_normals(points: Any, normals: Any, k: int = 10, index: SpatialIndex | None = None,
                   knn: tuple | None = None) -> tuple[np.ndarray, int]:
    """Flip ``normals`` ((N, 3), unit) to one consistent sign per connected piece of the
    ``k``-nearest-neighbour graph, along its minimum spanning tree under ``1 − |n_i · n_j|``
    (smooth regions first, so a flip never crosses a sharp crease when a smooth path exists).

    ``index``, when given, must be built over ``points``; ``knn``: :func:`neighbors` of them.

    Returns
    -------
    (N, 3) oriented normals and (N,) int the connected piece of each point (0, 1, ...).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

    pts = _points(points)
    n = np.array(normals, dtype=np.float64)
    if n.shape != pts.shape:
        raise ValueError(f"normals must have the points' shape {pts.shape}, got {n.shape}")
    rows, cols, _ = knn_graph(pts, k, index, knn)
    w = 1.0 - np.abs(np.einsum("ij,ij->i", n[rows], n[cols])) + 1e-6  # > 0: zero weights vanish in sparse
    g = coo_matrix((w, (rows, cols)), shape=(len(pts), len(pts))).tocsr()
    mst = minimum_spanning_tree(g.maximum(g.T)).tocoo()
    n_pieces, labels = connected_components(mst, directed=False)
    roots = np.unique(labels, return_index=True)[1]
    # one tree over all pieces: a virtual node N joined to each piece's first point
    m = len(pts)
    tree = coo_matrix((np.ones(len(mst.data) + n_pieces),
                       (np.concatenate([mst.row, np.full(n_pieces, m)]), np.concatenate([mst.col, roots]))),
                      shape=(m + 1, m + 1)).tocsr()
    _, pred = breadth_first_order(tree, m, directed=False)
    parent = pred[:m].copy()
    parent[roots] = roots
    # sign of each point relative to its parent, then pointer jumping to the piece's root
    rel = np.where(np.einsum("ij,ij->i", n, n[parent]) >= 0, 1.0, -1.0)
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            break
        rel *= rel[parent]
        parent = grand
    n *= rel[:, None]
    return n, labels


def closure(points: Any, normals: Any, k: int = 10, index: SpatialIndex | None = None,
            knn: tuple | None = None, pieces: np.ndarray | None = None, area_clip: float = 1.0) -> float:
    """``Σ_p |Σ_{i in p} a_i n_i| / Σ a_i`` for oriented unit ``normals`` ((N, 3)), summed over
    the connected ``pieces`` ((N,) labels; one piece when None) because each piece's sign is
    arbitrary: ≈ 0 for a scan all around a closed object (every piece of it closed), ≈ 0.5
    for one view, 1 for a plane.

    ``a_i`` is the area a point stands for, ∝ the squared distance to its ``k``-th neighbour
    (so dense regions do not weigh more), capped at ``area_clip`` × its median: sparse
    points (silhouettes seen at grazing angles, points leaking from behind, strays) are
    the ones whose normals are estimated and oriented worst, and uncapped they outweighed
    the rest (generated armadillo and fandisk views: 0.14 and 0.09 uncapped, 0.51 and 0.70
    capped at the median; closed scans ≤ 0.08 either way; benchmarks/RESULTS_REAL.md).
    """
    pts = _points(points)
    n = np.asarray(normals, dtype=np.float64)
    if not area_clip > 0:
        raise ValueError(f"area_clip must be positive, got {area_clip!r}")
    area = point_areas(pts, k, index, knn, clip=area_clip)
    total = float(area.sum())
    if total <= 0:
        return 1.0  # every point on top of its neighbours: no area, nothing enclosed
    labels = np.zeros(len(pts), dtype=np.int64) if pieces is None else np.asarray(pieces)
    sums = np.stack([np.bincount(labels, weights=n[:, j] * area) for j in range(3)], axis=1)
    return float(np.linalg.norm(sums, axis=1).sum() / total)


class Orientation(NamedTuple):
    """What :func:`scan_orientation` measures."""

    normals: np.ndarray
    """(N, 3) float32 unit normals, one consistent sign per piece (global sign arbitrary)."""
    closure: float
    """In [0, 1]: ≈ 0 for a closed scan, ≈ 0.5 for one view (see :func:`closure`)."""
    labels: np.ndarray
    """(N,) int connected piece of each point."""
    knn: tuple
    """The shared :func:`neighbors` query (distances, indices), for :func:`point_areas`."""
    variation: np.ndarray
    """(N,) float32 surface variation of each point's neighbourhood (:func:`estimate_normals`)."""
    k: int = 10
    """Neighbours of the orientation graph (``orient_k``; also those of :func:`point_areas`)."""

    @property
    def pieces(self) -> int:
        """Number of connected pieces of the neighbour graph."""
        return int(self.labels.max()) + 1


def scan_orientation(points: Any, normal_k: int = 16, orient_k: int = 10,
                     index: SpatialIndex | None = None, area_clip: float = 1.0) -> Orientation:
    """Oriented normals of a scan and its closure (see the module docstring)."""
    pts = _points(points)
    knn = neighbors(pts, max(normal_k, orient_k + 1), index)
    n, variation = estimate_normals(pts, normal_k, knn=knn, return_variation=True)
    n, labels = orient_normals(pts, n, orient_k, knn=knn)
    return Orientation(n.astype(np.float32), closure(pts, n, orient_k, knn=knn, pieces=labels, area_clip=area_clip),
                       labels, knn, variation.astype(np.float32), orient_k)


def point_areas(points: Any, k: int = 10, index: SpatialIndex | None = None, knn: tuple | None = None,
                clip: float = 4.0) -> np.ndarray:
    """(N,) area each point stands for: π d_k² / k, with d_k the distance to its ``k``-th
    neighbour (the disk holding k points at the local density), capped at ``clip`` × the
    median so isolated points do not dominate."""
    pts = _points(points)
    _, _, d2 = knn_graph(pts, k, index, knn)
    a = np.pi * d2 / max(1, min(k, len(pts) - 1))
    return np.minimum(a, clip * float(np.median(a)))


def outward(points: Any, normals: Any, pieces: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Flip each connected piece's oriented ``normals`` so that they point out of the volume
    the piece encloses: Σ a_i n_i · (p_i − c) = 3 × the enclosed volume > 0 for outward
    normals of a closed surface (c: the piece's centroid; divergence theorem).

    Returns (N, 3) normals (a copy)."""
    pts = _points(points)
    n = np.array(normals, dtype=np.float64)
    labels = np.asarray(pieces)
    for lab in np.unique(labels):
        m = labels == lab
        if (area[m] * np.einsum("ij,ij->i", n[m], pts[m] - pts[m].mean(axis=0))).sum() < 0:
            n[m] *= -1.0
    return n


def winding_numbers(dipoles: np.ndarray, moments: np.ndarray, queries: np.ndarray,
                    min_distance: float = 0.0, chunk: int = 512, dtype: str = "float64") -> np.ndarray:
    """Generalized winding number of oriented area elements at query points:
    ``w(x) = Σ_j m_j · (c_j − x) / (4π |c_j − x|³)`` (Barill et al. 2018), ≈ 1 inside a
    closed surface with outward normals, ≈ 0 outside, in between near holes.

    Parameters
    ----------
    dipoles : (J, 3) float
        Positions c_j.
    moments : (J, 3) float
        Area-weighted normals m_j = Σ a n.
    queries : (Q, 3) float
    min_distance : float
        Distances below it count as it (a dipole's own neighbourhood).
    chunk : int
        Queries per pass (a (chunk, J) block stays in cache: 512 ran 5x faster than 8192
        for J ≈ 2000).
    dtype : str
        ``float64`` or ``float32`` (the grid's: 2x faster, |Δw| < 1e-5).

    Returns
    -------
    (Q,) float64
    """
    import torch

    dt = getattr(torch, dtype)
    c = torch.as_tensor(np.asarray(dipoles)).to(dt)
    m = torch.as_tensor(np.asarray(moments)).to(dt)
    cm = (c * m).sum(dim=1)
    out = []
    with torch.no_grad():
        for x in torch.as_tensor(np.asarray(queries)).to(dt).split(chunk):
            r = torch.cdist(x, c).clamp_min_(min_distance)
            out.append(((cm[None] - x @ m.T) / r.pow_(3)).sum(dim=1) / (4 * np.pi))
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def winding_grid(points: Any, normals: Any, area: np.ndarray, resolution: int = 32,
                 box: float = 1.0) -> np.ndarray:
    """The winding number of a scan with outward ``normals`` on the (R+1)³ nodes of a grid
    over [−box, box]³ (index [i, j, k] is the node at x_i, y_j, z_k).

    The points are lumped into one dipole per grid cell (area-weighted centroid, Σ a n):
    exact far from the data, smoothed within a cell or so of it, where it is not used
    (:class:`surfrec.field.data.SignData`). Cost: (R+1)³ × the occupied cells.
    """
    pts = _points(points)
    n = np.asarray(normals, dtype=np.float64)
    cell = 2.0 * box / resolution
    ijk = np.clip(np.floor((pts + box) / cell).astype(np.int64), 0, resolution - 1)
    _, inv = np.unique((ijk[:, 0] * resolution + ijk[:, 1]) * resolution + ijk[:, 2], return_inverse=True)
    inv = inv.ravel()
    a = np.bincount(inv, weights=area)
    cent = np.stack([np.bincount(inv, weights=area * pts[:, j]) for j in range(3)], axis=1) / a[:, None]
    mom = np.stack([np.bincount(inv, weights=area * n[:, j]) for j in range(3)], axis=1)
    g = np.linspace(-box, box, resolution + 1)
    nodes = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    w = winding_numbers(cent, mom, nodes, min_distance=0.5 * cell, dtype="float32")
    return w.reshape(resolution + 1, resolution + 1, resolution + 1)
