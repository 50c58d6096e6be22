"""Numba kernels of :class:`surfrec.input.index.GridNearest`: exact nearest points on a
uniform grid of buckets, and a KD-tree for the queries the grid does not settle.

The points are sorted into the cells of a dense 3-D grid (counting sort: ``start[c]`` to
``start[c + 1]`` in ``order`` are the points of cell ``c``). A query visits the cells of
growing cubic shells around its own cell and stops as soon as its best distance is no
larger than the distance to any cell it has not visited; a query that needs more than
``rings`` shells is left to the caller (answer −2). Distances are sums of squared float64
differences in axis order, as SciPy's KD-tree computes them, so an answer equals the
tree's except between points at exactly the same distance. Both searches are GIL-free
and allocate nothing per query.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_JIT = dict(nogil=True, cache=True, error_model="numpy")


@nb.njit(**_JIT)
def cells_of(points, lo, cell, dims, out):
    """out (N,) int64: the linear cell index (x fastest-varying last) of each point."""
    for i in range(points.shape[0]):
        c0 = min(max(int((points[i, 0] - lo[0]) / cell), 0), dims[0] - 1)
        c1 = min(max(int((points[i, 1] - lo[1]) / cell), 0), dims[1] - 1)
        c2 = min(max(int((points[i, 2] - lo[2]) / cell), 0), dims[2] - 1)
        out[i] = (c0 * dims[1] + c1) * dims[2] + c2


@nb.njit(**_JIT)
def bucket(cells, n_cells, start, order):
    """Counting sort of the points by cell: ``start`` (n_cells + 1,), ``order`` (N,)."""
    for c in range(n_cells + 1):
        start[c] = 0
    for i in range(cells.shape[0]):
        start[cells[i] + 1] += 1
    for c in range(n_cells):
        start[c + 1] += start[c]
    fill = start[:n_cells].copy()
    for i in range(cells.shape[0]):
        c = cells[i]
        order[fill[c]] = i
        fill[c] += 1


@nb.njit(**_JIT)
def nearest(q, points, lo, cell, dims, start, order, rings, upto2, idx, dist2, cand):
    """Nearest point of each query within ``rings`` shells of cells.

    Parameters
    ----------
    q : (M, 3) float64 queries; points : (N, 3) float64, sorted by cell (``points[j]`` is
        input point ``order[j]``)
    upto2 : squared search radius (inf: none); points farther are not answers
    idx : (M,) int64 out: the nearest point, −1 where there is none within ``upto2``
        (answered), −2 where ``rings`` shells did not settle it (not answered)
    dist2 : (M,) float64 out: its squared distance (inf where idx is −1; where it is −2,
        that of ``cand``, the nearest point the shells held, or inf and −1: none)
    """
    n0, n1, n2 = dims[0], dims[1], dims[2]
    for k in range(q.shape[0]):
        x0, x1, x2 = q[k, 0], q[k, 1], q[k, 2]
        c0 = min(max(int(math.floor((x0 - lo[0]) / cell)), 0), n0 - 1)
        c1 = min(max(int(math.floor((x1 - lo[1]) / cell)), 0), n1 - 1)
        c2 = min(max(int(math.floor((x2 - lo[2]) / cell)), 0), n2 - 1)
        best, bi = np.inf, np.int64(-1)
        settled = False
        for r in range(rings + 1):
            a0, b0 = max(c0 - r, 0), min(c0 + r, n0 - 1)
            a1, b1 = max(c1 - r, 0), min(c1 + r, n1 - 1)
            a2, b2 = max(c2 - r, 0), min(c2 + r, n2 - 1)
            for i0 in range(a0, b0 + 1):
                e0 = abs(i0 - c0) == r
                for i1 in range(a1, b1 + 1):
                    e1 = e0 or abs(i1 - c1) == r
                    for i2 in range(a2, b2 + 1):
                        if not (e1 or abs(i2 - c2) == r):
                            continue   # an inner cell: visited in an earlier shell
                        c = (i0 * n1 + i1) * n2 + i2
                        for j in range(start[c], start[c + 1]):
                            d0 = x0 - points[j, 0]
                            d1 = x1 - points[j, 1]
                            d2 = x2 - points[j, 2]
                            d = d0 * d0 + d1 * d1 + d2 * d2
                            if d < best or (d == best and np.int64(order[j]) < bi):
                                best, bi = d, np.int64(order[j])
            # the closest any unvisited cell can be: the nearest face of the visited block
            # that has cells beyond it
            bound = np.inf
            if a0 > 0:
                bound = min(bound, x0 - (lo[0] + a0 * cell))
            if b0 < n0 - 1:
                bound = min(bound, lo[0] + (b0 + 1) * cell - x0)
            if a1 > 0:
                bound = min(bound, x1 - (lo[1] + a1 * cell))
            if b1 < n1 - 1:
                bound = min(bound, lo[1] + (b1 + 1) * cell - x1)
            if a2 > 0:
                bound = min(bound, x2 - (lo[2] + a2 * cell))
            if b2 < n2 - 1:
                bound = min(bound, lo[2] + (b2 + 1) * cell - x2)
            bound = max(bound - 1e-9 * cell, 0.0)   # a point on a face may round into either cell
            if best <= bound * bound or upto2 <= bound * bound:
                settled = True
                break
        if not settled:
            idx[k], dist2[k], cand[k] = -2, best, bi
        elif best <= upto2:
            idx[k], dist2[k] = bi, best
        else:
            idx[k], dist2[k] = -1, np.inf


# ------------------------------------------------------------------ the KD-tree
@nb.njit(**_JIT)
def _select(points, axis, order, a, b, kth):
    """Reorder ``order[a:b]`` so that ``order[kth]`` holds the point of the kth smallest
    coordinate along ``axis``, no larger ones before it and no smaller ones after it
    (quickselect, the median of three as the pivot: deterministic)."""
    lo, hi = a, b - 1
    while hi > lo:
        m = (lo + hi) // 2
        x, y, z = points[order[lo], axis], points[order[m], axis], points[order[hi], axis]
        pivot = max(min(x, y), min(max(x, y), z))
        i, j = lo, hi
        while i <= j:
            while points[order[i], axis] < pivot:
                i += 1
            while points[order[j], axis] > pivot:
                j -= 1
            if i <= j:
                order[i], order[j] = order[j], order[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            return


@nb.njit(**_JIT)
def kd_build(points, leaf, order, node_lo, node_hi, box_lo, box_hi):
    """A complete binary KD-tree over ``points`` (N, 3), built in place.

    Node i (root 0, children 2i+1 and 2i+2) holds points ``order[node_lo[i]:node_hi[i]]``;
    a node splits at the median of its widest axis until it holds at most ``leaf``
    points (then its ``node_lo``/``node_hi`` still mark its range, and its children are
    empty: lo == hi). ``box_lo``/``box_hi`` (nodes, 3) are each node's bounding box.
    """
    n_nodes = node_lo.shape[0]
    for i in range(n_nodes):
        node_lo[i], node_hi[i] = 0, 0
    node_hi[0] = points.shape[0]
    for i in range(n_nodes):
        a, b = node_lo[i], node_hi[i]
        if b <= a:
            for d in range(3):
                box_lo[i, d], box_hi[i, d] = np.inf, -np.inf
            continue
        for d in range(3):
            lo_d, hi_d = np.inf, -np.inf
            for j in range(a, b):
                v = points[order[j], d]
                lo_d, hi_d = min(lo_d, v), max(hi_d, v)
            box_lo[i, d], box_hi[i, d] = lo_d, hi_d
        c = 2 * i + 1
        if b - a <= leaf or c + 1 >= n_nodes:
            continue
        axis = 0
        for d in range(1, 3):
            if box_hi[i, d] - box_lo[i, d] > box_hi[i, axis] - box_lo[i, axis]:
                axis = d
        mid = (a + b) // 2
        _select(points, axis, order, a, b, mid)
        node_lo[c], node_hi[c] = a, mid
        node_lo[c + 1], node_hi[c + 1] = mid, b


@nb.njit(**_JIT)
def _box_d2(x0, x1, x2, box_lo, box_hi, i):
    d = 0.0
    v = max(box_lo[i, 0] - x0, 0.0, x0 - box_hi[i, 0])
    d += v * v
    v = max(box_lo[i, 1] - x1, 0.0, x1 - box_hi[i, 1])
    d += v * v
    v = max(box_lo[i, 2] - x2, 0.0, x2 - box_hi[i, 2])
    d += v * v
    return d


@nb.njit(**_JIT)
def kd_nearest(q, rows, points, order, node_lo, node_hi, box_lo, box_hi, upto2, cand, idx, dist2):
    """Exact nearest point of the queries ``q[rows]`` by the tree of :func:`kd_build`.

    ``cand[r]``/``dist2[r]`` come in as a known candidate and its squared distance (−1 and
    inf: none), which bounds the search; out in ``idx[r]``/``dist2[r]``: the nearest point,
    or −1 where none lies within ``upto2``.
    """
    n_nodes = node_lo.shape[0]
    stack = np.empty(64, np.int64)
    for t in range(rows.shape[0]):
        r = rows[t]
        x0, x1, x2 = q[r, 0], q[r, 1], q[r, 2]
        best, bi = dist2[r], cand[r]
        if bi < 0:
            best, bi = np.inf, np.int64(-1)
        top = 0
        stack[0] = 0
        while top >= 0:
            i = stack[top]
            top -= 1
            bd = _box_d2(x0, x1, x2, box_lo, box_hi, i)
            if bd > best or bd > upto2:
                continue
            c = 2 * i + 1
            if c + 1 >= n_nodes or node_hi[c] <= node_lo[c]:   # a leaf
                for j in range(node_lo[i], node_hi[i]):
                    p = order[j]
                    d0 = x0 - points[p, 0]
                    d1 = x1 - points[p, 1]
                    d2 = x2 - points[p, 2]
                    d = d0 * d0 + d1 * d1 + d2 * d2
                    if d < best or (d == best and p < bi):
                        best, bi = d, np.int64(p)
                continue
            # the nearer child is searched first (pushed last)
            if _box_d2(x0, x1, x2, box_lo, box_hi, c) <= _box_d2(x0, x1, x2, box_lo, box_hi, c + 1):
                stack[top + 1] = c + 1
                stack[top + 2] = c
            else:
                stack[top + 1] = c
                stack[top + 2] = c + 1
            top += 2
        if bi >= 0 and best <= upto2:
            idx[r], dist2[r] = bi, best
        else:
            idx[r], dist2[r] = -1, np.inf
