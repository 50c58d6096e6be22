"""The membrane fill of the vertices no scan point constrains (surfrec.surface.refine.membrane_fill)."""

import numpy as np
import pytest
import trimesh

from surfrec.surface.fill import membrane_fill


def naive_membrane(v: np.ndarray, f: np.ndarray, free: np.ndarray, sweeps: int = 4000) -> np.ndarray:
    """Gauss-Seidel written out: every free vertex to the mean of its edge neighbours, repeated."""
    nbrs = [set() for _ in range(len(v))]
    for a, b, c in f:
        nbrs[a] |= {b, c}
        nbrs[b] |= {a, c}
        nbrs[c] |= {a, b}
    nbrs = [sorted(n) for n in nbrs]
    out = v.astype(np.float64).copy()
    for _ in range(sweeps):
        for i in np.flatnonzero(free):
            out[i] = out[nbrs[i]].mean(axis=0)
    return out


def test_membrane_fill_matches_naive_reference():
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    free = v[:, 2] > 0.15
    got, moved = membrane_fill(v, f, free)
    np.testing.assert_array_equal(moved, free)
    np.testing.assert_allclose(got, naive_membrane(v, f, free), atol=1e-9)
    np.testing.assert_array_equal(got[~free], v[~free])


def test_membrane_fill_spans_the_rim_and_keeps_the_mesh_closed():
    """A bulging cap becomes the membrane of its rim: below the rim's highest point (the
    maximum principle of a harmonic map), smaller, and the mesh stays watertight."""
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    free = v[:, 2] > 0.3
    got, moved = membrane_fill(v, f, free)
    e = mesh.edges_unique
    rim = np.unique(e[free[e[:, 0]] != free[e[:, 1]]])
    rim = rim[~free[rim]]
    assert got[moved, 2].max() <= v[rim, 2].max() + 1e-12 and got[moved, 2].min() >= v[rim, 2].min() - 1e-12
    filled = trimesh.Trimesh(got, f, process=False)
    assert filled.is_watertight and filled.area < mesh.area - 0.05


def test_membrane_fill_leaves_groups_without_a_fixed_neighbour():
    a = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    b = a.copy()
    b.apply_translation([2.0, 0, 0])
    mesh = trimesh.util.concatenate([a, b])
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    free = np.zeros(len(v), dtype=bool)
    free[len(a.vertices):] = True  # all of b: nothing to span
    free[0] = True  # one vertex of a
    got, moved = membrane_fill(v, f, free)
    assert moved.sum() == 1 and moved[0]
    np.testing.assert_array_equal(got[len(a.vertices):], v[len(a.vertices):])
    got, moved = membrane_fill(v, f, np.zeros(len(v), dtype=bool))
    assert not moved.any() and np.array_equal(got, v)


def test_membrane_fill_bad_inputs_are_specific_errors():
    mesh = trimesh.creation.icosphere(subdivisions=1)
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    with pytest.raises(ValueError, match="free must have shape"):
        membrane_fill(v, f, np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="faces must be"):
        membrane_fill(v, f + len(v), np.zeros(len(v), dtype=bool))
    with pytest.raises(ValueError, match="vertices"):
        membrane_fill(v[:, :2], f, np.zeros(len(v), dtype=bool))
