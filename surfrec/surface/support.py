"""Data support of a surface: how well a mesh is backed by the scan it was built from.

Measures that need no ground truth, all relative to the scan's own spacing ``s``
(:func:`surfrec.input.inspect.scan_spacing`, measured once by the input stage):

* **cover**: share of scan points within ``cover_radius * s`` of the mesh (exact
  point-to-triangle distances, ``point_cloud_utils.closest_points_on_mesh``): the surface
  goes through the data;
* **phantom**: share of the mesh *area* farther than ``phantom_radius * s`` from every scan
  point (invented surface: caps, blobs, bubbles). Estimated from area-weighted random
  surface samples, about ``samples_per_area`` per ``s * s`` of area (clipped to
  ``[min_samples, max_samples]``), so its standard error is at most
  ``sqrt(p (1 - p) / min_samples)`` (< 0.0023 with the default 50k);
* the two one-sided mean distances, scan -> mesh and mesh -> scan, in s and in scan units.

Also the per-vertex **support map** (:func:`vertex_support`: distance to the nearest scan
point in units of s, written as the PLY vertex property ``quality``), its colours, and
trimming of unsupported faces (:func:`trim_unsupported`). The open/closed decision that
uses these measures is :mod:`surfrec.surface.decide`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..input.inspect import scan_spacing
from ..settings import SupportConfig, SurfaceConfig

log = logging.getLogger(__name__)

#: name of the per-vertex support attribute (MeshLab shows a ``quality`` property)
SUPPORT_ATTRIBUTE = "quality"


@dataclass(frozen=True)
class SupportReport:
    """What :func:`measure_support` measured (distances in scan units unless ``_s``)."""

    spacing: float
    """s: median nearest-other-point distance of the scan."""
    cover: float
    """Share of scan points within ``cover_radius * s`` of the mesh."""
    phantom: float
    """Share of mesh area farther than ``phantom_radius * s`` from every scan point."""
    missed: float
    """Share of scan points farther than ``miss_radius * s`` from the mesh."""
    scan_to_mesh_mean: float
    """Mean exact distance from a scan point to the mesh."""
    mesh_to_scan_mean: float
    """Mean distance from an area-weighted surface sample to its nearest scan point."""
    scan_to_mesh_mean_s: float
    """``scan_to_mesh_mean / s``."""
    mesh_to_scan_mean_s: float
    """``mesh_to_scan_mean / s``."""
    cover_radius: float
    phantom_radius: float
    miss_radius: float
    n_points: int
    n_samples: int
    area: float

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python form (JSON)."""
        return asdict(self)

    def in_scan_units(self, scale: float) -> "SupportReport":
        """The report of a mesh measured in the normalized frame, in the scan's units
        (shares and ``_s`` values are scale-free)."""
        return replace(self, spacing=float(self.spacing * scale), scan_to_mesh_mean=float(self.scan_to_mesh_mean * scale),
                       mesh_to_scan_mean=float(self.mesh_to_scan_mean * scale), area=float(self.area * scale * scale))


def _check_points(points: Any, what: str = "points") -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{what} must have shape (N, 3), got {arr.shape}")
    if len(arr) < 2:
        raise ValueError(f"{what}: need at least 2 points, got {len(arr)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN/inf values")
    return arr


def _check_mesh(vertices: Any, faces: Any) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"faces must have shape (F, 3) with F >= 1, got {f.shape}")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError("faces index vertices out of range")
    return v, f.astype(np.int64)


def _tree(points: np.ndarray):
    from scipy.spatial import cKDTree

    return cKDTree(points)


def point_mesh_distance(points: Any, vertices: Any, faces: Any) -> np.ndarray:
    """Exact distance from each point to a triangle mesh.

    Parameters
    ----------
    points : (N, 3) float
    vertices : (V, 3) float
    faces : (F, 3) int

    Returns
    -------
    (N,) float64
    """
    import point_cloud_utils as pcu

    p = np.ascontiguousarray(np.asarray(points, dtype=np.float64))
    v, f = _check_mesh(vertices, faces)
    d, _, _ = pcu.closest_points_on_mesh(p, np.ascontiguousarray(v), np.ascontiguousarray(f))
    return np.asarray(d, dtype=np.float64)


def sample_area(
    vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` area-weighted uniform samples on a triangle mesh.

    Returns
    -------
    points : (n, 3) float64
    face_index : (n,) int64
    """
    rng = np.random.default_rng(seed)
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    total = float(area.sum())
    if not total > 0:
        raise ValueError("mesh has zero surface area")
    fi = rng.choice(len(faces), size=n, p=area / total)
    r1, r2 = rng.random(n), rng.random(n)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    pts = a[fi] + r1[:, None] * (b[fi] - a[fi]) + r2[:, None] * (c[fi] - a[fi])
    return pts, fi


def vertex_support(vertices: Any, points: Any, spacing: float | None = None, tree=None,
                   upto: float = np.inf) -> np.ndarray:
    """The support map: distance from each vertex to its nearest scan point, in units of s.

    Parameters
    ----------
    vertices : (V, 3) float
    points : (N, 3) float
        The scan.
    spacing : float, optional
        s; computed with :func:`scan_spacing` when None.
    upto : float
        Distances beyond this many s come back as inf (the search stops there: exact
        nearest-point queries far from a dense scan visit much of its tree; 18x faster on a
        281k-vertex mesh closing a single view).

    Returns
    -------
    (V,) float32
    """
    pts = _check_points(points)
    tree = tree if tree is not None else _tree(pts)
    s = scan_spacing(pts, tree) if spacing is None else float(spacing)
    if not s > 0:
        raise ValueError(f"spacing must be positive, got {spacing!r}")
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if len(v) == 0:
        return np.zeros(0, dtype=np.float32)
    d, _ = tree.query(v, k=1, distance_upper_bound=upto * s)
    return (d / s).astype(np.float32)


def attach_support(mesh, points: Any, spacing: float | None = None) -> np.ndarray:
    """Store :func:`vertex_support` in ``mesh.vertex_attributes["quality"]`` (written as a PLY
    vertex property by :func:`surfrec.io.save_mesh`); returns it."""
    q = vertex_support(mesh.vertices, points, spacing)
    mesh.vertex_attributes[SUPPORT_ATTRIBUTE] = q
    return q


def surface_to_scan(vertices: Any, faces: Any, tree, spacing: float, config: SupportConfig | None = None,
                    seed: int = 0) -> tuple[np.ndarray, float]:
    """Distances from area-weighted surface samples to the nearest scan point.

    Parameters
    ----------
    vertices : (V, 3) float
    faces : (F, 3) int, F >= 1
    tree : SpatialIndex or cKDTree over the scan points
    spacing : float
        s.

    Returns
    -------
    ((n,) float64, float)
        The distances (``samples_per_area`` per ``s * s``, clipped to the config's
        ``[min_samples, max_samples]``) and the mesh's area.
    """
    cfg = config or SupportConfig()
    v, f = _check_mesh(vertices, faces)
    a, b, c = (v[f[:, i]] for i in range(3))
    area = float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())
    n = int(np.clip(np.ceil(cfg.samples_per_area * area / (spacing * spacing)), cfg.min_samples, cfg.max_samples))
    samples, _ = sample_area(v, f, n, seed)
    d, _ = tree.query(samples, k=1)
    return np.asarray(d, dtype=np.float64), area


def measure_support(
    vertices: Any,
    faces: Any,
    points: Any,
    config: SupportConfig | None = None,
    *,
    seed: int = 0,
    spacing: float | None = None,
    tree=None,
    surface_distances: tuple[np.ndarray, float] | None = None,
    scan_distances: np.ndarray | None = None,
) -> SupportReport:
    """Cover, phantom and one-sided distances of a mesh against its scan (module docstring).

    Parameters
    ----------
    vertices : (V, 3) float
    faces : (F, 3) int, F >= 1
    points : (N, 3) float, N >= 2
        The scan.
    config : SupportConfig, optional
    seed : int
        Seed of the surface samples.
    spacing : float, optional
        s, when already known.
    tree : SpatialIndex or cKDTree over ``points``, optional
        Built here when None.
    surface_distances : optional
        :func:`surface_to_scan`'s answer for this mesh, when already measured (then the
        surface is not sampled again).
    scan_distances : (N,) float, optional
        :func:`point_mesh_distance` of ``points`` to this mesh, when already measured.
    """
    cfg = config or SupportConfig()
    pts = _check_points(points, "scan points")
    v, f = _check_mesh(vertices, faces)
    tree = tree if tree is not None else _tree(pts)
    s = scan_spacing(pts, tree) if spacing is None else float(spacing)
    d_s2m = point_mesh_distance(pts, v, f) if scan_distances is None else np.asarray(scan_distances, np.float64)
    d_m2s, area = surface_distances if surface_distances is not None else surface_to_scan(v, f, tree, s, cfg, seed)
    return SupportReport(
        spacing=s,
        cover=float(np.mean(d_s2m <= cfg.cover_radius * s)),
        phantom=float(np.mean(d_m2s > cfg.phantom_radius * s)),
        missed=float(np.mean(d_s2m > cfg.miss_radius * s)),
        scan_to_mesh_mean=float(d_s2m.mean()),
        mesh_to_scan_mean=float(d_m2s.mean()),
        scan_to_mesh_mean_s=float(d_s2m.mean() / s),
        mesh_to_scan_mean_s=float(d_m2s.mean() / s),
        cover_radius=cfg.cover_radius,
        phantom_radius=cfg.phantom_radius,
        miss_radius=cfg.miss_radius,
        n_points=len(pts),
        n_samples=len(d_m2s),
        area=area,
    )


def format_support(rep: SupportReport) -> str:
    """One line: cover, phantom and the one-sided means."""
    return (
        f"support: s {rep.spacing:.4g}; cover {rep.cover:.3f} (points within "
        f"{rep.cover_radius:g} s); phantom {rep.phantom:.3f} (area beyond {rep.phantom_radius:g} s); "
        f"scan->mesh {rep.scan_to_mesh_mean:.4g} ({rep.scan_to_mesh_mean_s:.2f} s); "
        f"mesh->scan {rep.mesh_to_scan_mean:.4g} ({rep.mesh_to_scan_mean_s:.2f} s)"
    )


def warn_unsupported(rep: SupportReport, surface: str, config: SurfaceConfig) -> None:
    """Log warnings of a poorly supported mesh (thresholds: ``SurfaceConfig.warn_*``)."""
    r = config.support
    if surface == "closed" and rep.phantom > config.warn_phantom:
        log.warning("%.0f%% of the surface is farther than %.3g (%g point spacings) from every input point: "
                    "the scan looks open (a single view, or holes); those parts are extrapolated",
                    100 * rep.phantom, r.phantom_radius * rep.spacing, r.phantom_radius)
    if rep.missed > config.warn_missed:
        log.warning("%.0f%% of the input points are farther than %.3g (%g point spacings) from the mesh: the "
                    "surface misses part of the scan (open, single-view scans are the usual cause: a closed "
                    "surface fits them poorly); more iterations or a higher data weight may help",
                    100 * rep.missed, r.miss_radius * rep.spacing, r.miss_radius)


# ----------------------------------------------------------------------------- trimming


def trim_unsupported(mesh, points: Any, radius_s: float, spacing: float | None = None, tree=None):
    """Drop the faces whose three vertices all lie farther than ``radius_s * s`` from every
    scan point, then unreferenced vertices; vertex attributes follow.

    Returns
    -------
    (trimesh.Trimesh, (F,) bool)
        The trimmed mesh and the mask of kept faces of the input.
    """
    if not radius_s > 0:
        raise ValueError(f"radius_s must be positive, got {radius_s!r}")
    q = vertex_support(mesh.vertices, points, spacing, tree=tree, upto=radius_s)
    faces = np.asarray(mesh.faces)
    keep = (q[faces] <= radius_s).any(axis=1)
    out = mesh.copy()
    out.update_faces(keep)
    out.remove_unreferenced_vertices()
    return out, keep


# ----------------------------------------------------------------------------- rendering

#: support colour ramp: 0 s green, ``SUPPORT_COLOR_MAX / 2`` yellow, >= SUPPORT_COLOR_MAX red
SUPPORT_COLOR_MAX = 4.0


def support_colors(values: Any, vmax: float = SUPPORT_COLOR_MAX) -> np.ndarray:
    """Green (supported) -> yellow -> red (``>= vmax`` spacings: phantom). (N,) -> (N, 3)."""
    t = np.clip(np.asarray(values, dtype=np.float64) / vmax, 0.0, 1.0)
    r = np.clip(2 * t, 0, 1)
    g = np.clip(2 - 2 * t, 0, 1)
    return np.stack([0.15 + 0.8 * r, 0.15 + 0.7 * g, np.full_like(t, 0.2)], axis=1)


def read_support(path) -> np.ndarray | None:
    """The per-vertex ``quality`` property of a PLY file, or None when it has none."""
    import os

    if os.path.splitext(os.fspath(path))[1].lower() != ".ply":
        return None
    from plyfile import PlyData

    vertex = PlyData.read(os.fspath(path))["vertex"]
    names = {p.name for p in vertex.properties}
    return np.asarray(vertex[SUPPORT_ATTRIBUTE], dtype=np.float64) if SUPPORT_ATTRIBUTE in names else None


def support_samples(mesh, values: Any, n: int, seed: int = 0):
    """Surface samples of a mesh coloured by the support map (interpolated per face).

    Returns
    -------
    points (n, 3), normals (n, 3), colors (n, 3)
    """
    import trimesh

    q = np.asarray(values, dtype=np.float64)
    if q.shape != (len(mesh.vertices),):
        raise ValueError(f"support values: expected shape ({len(mesh.vertices)},), got {q.shape}")
    pts, fi = trimesh.sample.sample_surface(mesh, n, seed=seed)
    tri = np.asarray(mesh.vertices)[np.asarray(mesh.faces)[fi]]
    bary = trimesh.triangles.points_to_barycentric(tri, pts)
    vals = (bary * q[np.asarray(mesh.faces)[fi]]).sum(axis=1)
    return pts, np.asarray(mesh.face_normals)[fi], support_colors(vals)
