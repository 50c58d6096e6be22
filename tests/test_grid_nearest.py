"""GridNearest (the fit's nearest-point search: a grid of buckets, then its own KD-tree)
against SciPy's cKDTree on random inputs: the same indices, with and without a search
radius, whichever share of the queries each search answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from surfrec.input.index import GridNearest, NearestPoints, SpatialIndex


def _cloud(rng: np.random.Generator, n: int) -> np.ndarray:
    """Points on a noisy sphere and a plane patch, plus a tight cluster (float32, like scans)."""
    a = rng.normal(size=(n // 2, 3))
    a = 0.6 * a / np.linalg.norm(a, axis=1, keepdims=True) + 0.003 * rng.normal(size=a.shape)
    b = np.c_[rng.uniform(-0.9, 0.9, (n // 3, 2)), np.full(n // 3, -0.7)]
    c = 0.01 * rng.normal(size=(n - len(a) - len(b), 3)) + 0.3
    return np.concatenate([a, b, c]).astype(np.float32)


def _queries(rng: np.random.Generator, pts: np.ndarray, m: int) -> np.ndarray:
    """Near the data (the fit's samples), far from it and outside the points' box."""
    near = pts[rng.integers(0, len(pts), m)] + 0.01 * rng.normal(size=(m, 3))
    far = rng.uniform(-1.5, 1.5, (m // 2, 3))
    return np.concatenate([near, far]).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rings", [0, 1, 2, 4])
def test_the_same_nearest_points_as_ckdtree(seed, rings):
    rng = np.random.default_rng(seed)
    pts = _cloud(rng, 4000 + 1000 * seed)
    q = _queries(rng, pts, 1500)
    grid = GridNearest(SpatialIndex(pts), rings=rings)
    tree = cKDTree(np.asarray(pts, np.float64))
    d, want = tree.query(np.asarray(q, np.float64), k=1)
    got = grid.indices(q)
    assert np.array_equal(got, want)
    for upto in (0.005, 0.05, 0.3):
        _, w = tree.query(np.asarray(q, np.float64), k=1, distance_upper_bound=upto)
        w = np.where(w >= len(pts), -1, w)
        assert np.array_equal(grid.indices(q, upto=upto), w), upto


def test_tasks_in_any_order_and_only_the_needed_far_queries():
    rng = np.random.default_rng(5)
    pts = _cloud(rng, 3000)
    q = _queries(rng, pts, 800)
    grid = GridNearest(SpatialIndex(pts), rings=1)
    want = cKDTree(np.asarray(pts, np.float64)).query(np.asarray(q, np.float64))[1]
    tasks, finish = grid.tasks(q, n_tasks=3)
    for task in reversed(tasks):
        task()
    assert np.array_equal(finish(), want)
    need = rng.random(len(q)) < 0.5
    tasks, finish = grid.tasks(q, n_tasks=2)
    for task in tasks:
        task()
    got = finish(need)
    assert np.array_equal(got[need], want[need])
    assert (got >= 0).all()   # the queries not needed still hold a valid index


def test_nearest_points_uses_the_grid_up_to_the_coarse_size():
    rng = np.random.default_rng(3)
    pts = _cloud(rng, 2000)
    near = NearestPoints(SpatialIndex(pts))
    assert near.grid is not None
    q = _queries(rng, pts, 300)
    assert np.array_equal(near.indices(q), cKDTree(np.asarray(pts, np.float64)).query(np.asarray(q, np.float64))[1])
    assert NearestPoints(SpatialIndex(rng.normal(size=(50, 2)))).grid is None   # 2-D: the tree alone


def test_a_single_point_and_duplicates():
    pts = np.array([[0.1, 0.2, 0.3]] * 3 + [[0.5, 0.5, 0.5]], np.float32)
    grid = GridNearest(SpatialIndex(pts))
    q = np.array([[0.0, 0.0, 0.0], [0.6, 0.6, 0.6], [5.0, 5.0, 5.0]], np.float32)
    got = grid.indices(q)
    assert got[1] == 3 and got[2] == 3 and got[0] in (0, 1, 2)
    one = GridNearest(SpatialIndex(np.array([[1.0, 2.0, 3.0]])))
    assert list(one.indices(q)) == [0, 0, 0]
    assert list(one.indices(q, upto=0.5)) == [-1, -1, -1]
