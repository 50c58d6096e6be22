"""Connected components of a mesh: the near-data filter and the topology report."""

from __future__ import annotations

import logging

import numpy as np
import trimesh

log = logging.getLogger(__name__)


def mesh_report(mesh: trimesh.Trimesh) -> dict:
    """Topological and geometric summary of a mesh.

    Computed from the face array with sorting only (no adjacency graphs), so it stays
    cheap for meshes of millions of faces.

    Parameters
    ----------
    mesh : trimesh.Trimesh

    Returns
    -------
    dict
        ``n_vertices``, ``n_faces`` (int); ``n_components`` (int, faces connected
        through shared vertices); ``watertight`` (bool, every edge shared by exactly two
        faces); ``winding_consistent`` (bool, no directed edge used twice, i.e. neighbors
        agree on orientation); ``euler`` (int, ``V - E + F`` over referenced vertices);
        ``genus`` (int, the sum of the genera of the components when the mesh is
        watertight and consistently oriented, else ``None``); ``area`` (float);
        ``volume`` (float, signed, when watertight and consistently oriented, else
        ``None``).
    """
    faces = np.asarray(mesh.faces, dtype=np.int64)
    n_faces = len(faces)
    report: dict = {
        "n_vertices": len(mesh.vertices),
        "n_faces": int(n_faces),
        "n_components": 0,
        "watertight": False,
        "winding_consistent": False,
        "euler": 0,
        "genus": None,
        "area": 0.0,
        "volume": None,
    }
    if n_faces == 0:
        return report
    n_vertices = len(mesh.vertices)
    # Edges as int64 keys a * V + b: directed (a -> b as the faces list them) and
    # undirected (min, max); sorted in place so equal edges are adjacent.
    start = faces.reshape(-1)
    end = faces[:, [1, 2, 0]].reshape(-1)
    directed = start * n_vertices + end
    directed.sort()
    consistent = not bool((directed[1:] == directed[:-1]).any())
    del directed
    undirected = np.minimum(start, end) * n_vertices + np.maximum(start, end)
    del end
    undirected.sort()
    new_edge = np.flatnonzero(np.diff(undirected)) + 1
    counts = np.diff(np.concatenate([[0], new_edge, [len(undirected)]]))
    del undirected, new_edge
    used = np.zeros(n_vertices, bool)
    used[start] = True
    watertight = bool((counts == 2).all())
    n_components = _face_labels(faces, n_vertices)[0]
    euler = int(used.sum()) - len(counts) + n_faces
    closed = watertight and consistent
    report.update(
        n_components=int(n_components),
        watertight=watertight,
        winding_consistent=consistent,
        euler=int(euler),
        genus=(2 * n_components - euler) // 2 if closed else None,
    )
    area, volume = _area_and_volume(np.asarray(mesh.vertices, dtype=np.float64), faces)
    report["area"] = area
    report["volume"] = volume if closed else None
    return report


def _area_and_volume(vertices: np.ndarray, faces: np.ndarray, chunk: int = 1 << 20) -> tuple[float, float]:
    """Total area and signed enclosed volume (divergence theorem), in bounded memory."""
    area = volume = 0.0
    for start in range(0, len(faces), chunk):
        f = faces[start : start + chunk]
        a, b, c = vertices[f[:, 0]], vertices[f[:, 1]], vertices[f[:, 2]]
        area += 0.5 * float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())
        volume += float(np.einsum("ij,ij->", a, np.cross(b, c))) / 6.0
    return area, volume


# ---------------------------------------------------------------------------- input checks


def _face_labels(faces: np.ndarray, n_vertices: int) -> tuple[int, np.ndarray]:
    """Connected components of faces sharing a vertex.

    Returns
    -------
    n_components : int
    labels : (F,) int
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_vertices, n_vertices))
    _, vertex_labels = connected_components(graph, directed=False)
    labels = vertex_labels[faces[:, 0]]
    # Count only components that own faces (isolated vertices are their own components).
    used, labels = np.unique(labels, return_inverse=True)
    return len(used), labels


def component_filter(
    vertices: np.ndarray,
    faces: np.ndarray,
    components: str,
    data_points: np.ndarray | None,
    near_distance: float,
    near_fraction: float = 0.0,
    *,
    index=None,
) -> np.ndarray | None:
    """Faces to keep, ``(F,) bool``, or ``None`` to keep all.

    ``components``: ``all``, ``largest`` (by faces) or ``near-data`` (components with at
    least ``near_fraction`` of their vertices within ``near_distance`` of ``data_points``;
    the best-supported one always stays). ``index``: a :class:`~surfrec.input.index.SpatialIndex`
    over ``data_points`` (built when not given).
    """
    if components == "all":
        return None
    n, labels = _face_labels(faces, len(vertices))
    if components == "largest":
        sizes = np.bincount(labels, minlength=n)
        keep = labels == int(np.argmax(sizes))
        log.info("kept the largest of %d components (%d of %d faces)", n, int(keep.sum()), len(faces))
        return keep
    from ..input.index import SpatialIndex

    if data_points is None and index is None:
        raise ValueError('components="near-data" needs data_points')
    index = index if index is not None else SpatialIndex(data_points)
    dist, _ = index.query(vertices, k=1, distance_upper_bound=near_distance)
    near_vertex = np.isfinite(dist)
    # share of each component's vertices near the data (vertices labelled through their faces)
    vlabel = np.full(len(vertices), -1, np.int64)
    vlabel[faces.ravel()] = np.repeat(labels, 3)
    used = vlabel >= 0
    n_near = np.bincount(vlabel[used], weights=near_vertex[used].astype(float), minlength=n)
    n_all = np.bincount(vlabel[used], minlength=n)
    share = n_near / np.maximum(n_all, 1)
    near_component = (n_near > 0) & (share >= near_fraction)
    if n_near.max() > 0:
        near_component[int(np.argmax(n_near))] = True  # the best-supported piece always stays
    keep = near_component[labels]
    if not keep.any():
        log.warning("no component comes within %.4g of the data: all %d are kept (the fit has not reached the "
                    "data; more iterations may help)", near_distance, n)
        return None
    log.info(
        "kept %d of %d components within %.4g of the data (%d of %d faces)",
        int(near_component.sum()),
        n,
        near_distance,
        int(keep.sum()),
        len(faces),
    )
    return keep
