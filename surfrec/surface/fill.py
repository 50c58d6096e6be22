"""Closed surfaces after the surface step: the membrane fill of unconstrained vertices,
and the opt-in trim of unsupported faces.

* :func:`fill_closed` (``MeshConfig.fill``): the vertices farther than ``fill`` scan
  spacings from every scan point (a hole's fill, a gap of a random sample: nothing
  constrains them, the network extrapolates there) move onto the harmonic membrane the
  other vertices span (:func:`membrane_fill`): a hole is closed by the smallest surface
  its rim allows instead of a bulge. Faces and watertightness do not change.
* :func:`trim_closed` (``MeshConfig.trim``): the faces farther than ``trim`` spacings from
  every scan point are dropped, as Poisson's density trim does; the mesh is then not
  watertight.
"""

from __future__ import annotations

import logging

import numpy as np

from .refine import _check
from .support import trim_unsupported, vertex_support

log = logging.getLogger(__name__)


def fill_closed(mesh, data: np.ndarray, radius_s: float, spacing: float, index):
    """A closed mesh whose vertices farther than ``radius_s`` spacings from the (K, 3)
    ``data`` lie on the membrane the others span (:func:`membrane_fill`): (mesh, share of
    the vertices moved). The moved vertices get face normals (the gradient of F is not the
    normal of the membrane); the others keep theirs."""
    import trimesh

    # the search stops at the radius (beyond it a vertex is free whatever its distance)
    free = vertex_support(mesh.vertices, data, spacing, tree=index, upto=radius_s) > radius_s
    if not free.any():
        return mesh, 0.0
    verts, moved = membrane_fill(mesh.vertices, mesh.faces, free)
    normals = np.array(mesh.vertex_normals, dtype=np.float64)
    filled = trimesh.Trimesh(vertices=verts, faces=mesh.faces, process=False)
    normals[moved] = filled.vertex_normals[moved]
    filled.vertex_normals = normals
    share = float(moved.mean())
    log.debug("fill: %d vertices farther than %g spacings from the scan moved onto the membrane of the others",
              int(moved.sum()), radius_s)
    return filled, round(share, 4)


def trim_closed(mesh, data: np.ndarray, radius_s: float, spacing: float, index):
    """A closed mesh without the faces farther than ``radius_s`` spacings from the (K, 3)
    ``data`` (:func:`~surfrec.surface.support.trim_unsupported`): (mesh, share of the area
    removed). Vertex attributes (the gradient normals) follow the kept vertices. When no
    face is that close, the mesh is returned untrimmed (share 0) with a warning."""
    area = mesh.area_faces
    trimmed, keep = trim_unsupported(mesh, data, radius_s, spacing, tree=index)
    if len(trimmed.faces) == 0:  # as the open path: no face survives, the untrimmed mesh is written
        log.warning("--trim %g: no face lies within %g spacings of the scan; the closed surface is kept untrimmed",
                    radius_s, radius_s)
        return mesh, 0.0
    total = float(area.sum())
    removed = float(area[~keep].sum()) / total if total > 0 else 0.0
    log.info("trimmed %.1f%% of the closed surface's area (farther than %g spacings from the scan): "
             "the mesh is no longer watertight", 100 * removed, radius_s)
    return trimmed, round(removed, 4)


def membrane_fill(vertices: np.ndarray, faces: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move the ``free`` vertices onto the membrane the others span.

    Each free vertex ends at the mean of its edge neighbours (the discrete harmonic map
    with uniform weights: a soap film over every hole whose rim is fixed), solved as one
    sparse linear system. Used for the vertices of a closed surface that no scan point
    constrains (:func:`surfrec.run.extract_mesh`, ``ExtractConfig.fill``): the network
    extrapolates there, and a hole's fill then bulges; the membrane is the smallest
    surface its rim allows, with the same faces.

    Parameters
    ----------
    vertices : (V, 3) float
    faces : (F, 3) int
    free : (V,) bool
        Vertices to move. A connected group of free vertices with no fixed neighbour
        (a whole component) has nothing to span and stays where it is.

    Returns
    -------
    (V, 3) float64 vertices, (V,) bool the vertices moved
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import splu

    v = _check("vertices", vertices)
    f = np.asarray(faces, dtype=np.int64)
    free = np.asarray(free, dtype=bool)
    if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or f.max() >= len(v))):
        raise ValueError(f"faces must be (F, 3) indices into {len(v)} vertices, got shape {f.shape}")
    if free.shape != (len(v),):
        raise ValueError(f"free must have shape ({len(v)},), got {free.shape}")
    out = v.copy()
    if not free.any():
        return out, free.copy()
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(v), len(v))).tocsr()
    adj = ((adj + adj.T) > 0).astype(np.float64).tocsr()
    # groups of free vertices with no fixed neighbour stay (the system would be singular)
    idx = np.flatnonzero(free)
    rows = adj[idx]
    n_groups, group = connected_components(rows[:, idx], directed=False)
    anchored = np.zeros(n_groups, dtype=bool)
    anchored[group[np.asarray(rows[:, ~free].sum(axis=1)).ravel() > 0]] = True
    moved = np.zeros(len(v), dtype=bool)
    moved[idx[anchored[group]]] = True
    if not moved.any():
        return out, moved
    mi, fi = np.flatnonzero(moved), np.flatnonzero(~moved)
    deg = np.asarray(adj.sum(axis=1)).ravel()
    lap = (sp.diags(deg) - adj).tocsr()
    out[mi] = splu(lap[mi][:, mi].tocsc()).solve(np.asarray(adj[mi][:, fi] @ v[fi]))
    return out, moved


__all__ = ["fill_closed", "trim_closed", "membrane_fill"]
