"""Data support of a surface: how well a mesh is backed by the scan it was built from.

Measures that need no ground truth (issue 14), all relative to the scan's own spacing:

* ``s`` (:func:`scan_spacing`): median distance from a scan point to its nearest *other*
  scan point;
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
point in units of s, written as the PLY vertex property ``quality``), a report of stray
points (:func:`find_outliers`), and trimming of unsupported faces (:func:`trim_unsupported`).

The **surface step** of :func:`surfrec.extract_mesh` (:func:`apply_surface_mode`, settings
in :class:`SurfaceConfig`): keep the closed mesh, or open it (:func:`extract_open`), by
its phantom share. This module does not import the pipeline: the pipeline hands it the
meshes, F and a function extracting a level set.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

#: name of the per-vertex support attribute (MeshLab shows a ``quality`` property)
SUPPORT_ATTRIBUTE = "quality"


@dataclass(frozen=True)
class SupportConfig:
    """Radii and sampling of :func:`measure_support` (ranges: ``surfrec.validation.SUPPORT``)."""

    cover_radius: float = 2.0
    """A scan point is covered when the mesh passes within this many spacings ``s`` of it."""
    phantom_radius: float = 4.0
    """Surface farther than this many spacings from every scan point is phantom (invented)."""
    miss_radius: float = 5.0
    """A scan point farther than this many spacings from the mesh is missed (``missed``:
    the surface does not reach that part of the scan)."""
    samples_per_area: float = 4.0
    """Surface samples per ``s * s`` of mesh area for the phantom share and mesh -> scan."""
    min_samples: int = 50_000
    """Fewest surface samples (small meshes, coarse scans)."""
    max_samples: int = 2_000_000
    """Most surface samples (bounds the time on huge meshes / dense scans)."""

    def __post_init__(self) -> None:
        from .validation import SUPPORT, check_fields

        check_fields(self, SUPPORT)
        if not self.min_samples <= self.max_samples:
            raise ValueError(
                f"need min_samples <= max_samples, got {self.min_samples}, {self.max_samples}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


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
        return asdict(self)


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


def scan_spacing(points: Any, tree=None) -> float:
    """s: the median distance from a scan point to its nearest other scan point.

    Parameters
    ----------
    points : (N, 3) float, N >= 2

    Returns
    -------
    float
        Duplicated points count with distance 0; a scan where more than half the points are
        duplicates raises ValueError (no spacing).
    """
    pts = _check_points(points)
    tree = tree if tree is not None else _tree(pts)
    d, _ = tree.query(pts, k=2)
    s = float(np.median(d[:, 1]))
    if not s > 0:
        raise ValueError("the scan's median nearest-neighbour distance is 0 (duplicated points)")
    return s


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


# ----------------------------------------------------------------------------- outliers


@dataclass(frozen=True)
class OutlierConfig:
    """Stray-point test of :func:`find_outliers`."""

    k: int = 8
    """Neighbour rank whose distance measures how isolated a point is."""
    ratio: float = 3.0
    """A point is stray when its k-th neighbour distance exceeds this many times the median
    k-th neighbour distance of its ``reference`` nearest neighbours (local, so density may
    vary; a clump of fewer than ``reference / 2`` stray points is still found)."""
    reference: int = 32
    """Neighbours whose median k-th neighbour distance is the local reference."""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.reference < 1:
            raise ValueError(f"reference must be >= 1, got {self.reference}")
        if not self.ratio > 1:
            raise ValueError(f"ratio must be > 1, got {self.ratio}")


def find_outliers(points: Any, config: OutlierConfig | None = None) -> np.ndarray:
    """Stray points (flying pixels, isolated specks): a boolean mask.

    Parameters
    ----------
    points : (N, 3) float

    Returns
    -------
    (N,) bool
        True where the point's k-th neighbour distance is more than ``ratio`` times the
        median k-th neighbour distance of its ``reference`` nearest neighbours. Scans with
        no more than ``max(k, reference)`` points return all False.
    """
    cfg = config or OutlierConfig()
    pts = _check_points(points)
    kk = max(cfg.k, cfg.reference)
    if len(pts) <= kk + 1:
        return np.zeros(len(pts), dtype=bool)
    d, idx = _tree(pts).query(pts, k=kk + 1)
    dk = d[:, cfg.k]
    local = np.median(dk[idx[:, 1 : cfg.reference + 1]], axis=1)
    return dk > cfg.ratio * local


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


# ----------------------------------------------------------------------------- surface type


def _decision_support() -> SupportConfig:
    # the open/closed decision needs a share, not a picture: 200k samples give a standard
    # error below 0.0012 and cost ~0.4 s on 2 cores
    return SupportConfig(max_samples=200_000)


@dataclass(frozen=True)
class SurfaceConfig:
    """The surface step of :func:`surfrec.extract_mesh` (``ExtractConfig.surface_config``):
    the open/closed decision, the open-surface extraction, the support measurement of the
    mesh written and its warnings (ranges: ``surfrec.validation.SURFACE``)."""

    open_closure: float = 0.2
    """Auto mode, before the fit: the scan is open when the closure of its oriented normals
    (:func:`surfrec.orient.closure`, |Σ a n| / Σ a: 0 for any closed surface, 0.5 for a
    hemisphere, 1 for a plane) exceeds this; the fit then gives F a side at the sheet
    (``side_weight``). Measured: closed scans ≤ 0.080, single views ≥ 0.51
    (benchmarks/RESULTS_REAL.md); 0.2 is their geometric mean. A closed object with an
    unscanned base stays closed while its hole's projected area is under ~20% of its
    surface."""
    closure_area_clip: float = 1.0
    """The area weight of a point in the closure is capped at this many times the median
    (:func:`surfrec.orient.closure`)."""
    normal_k: int = 16
    """Neighbours of the plane fit of each point's normal (:func:`surfrec.orient.estimate_normals`)."""
    orient_k: int = 10
    """Neighbours of the graph along which normals are oriented, and of the area weights
    of the closure."""
    open_phantom: float = 0.25
    """Auto mode: the scan is open when more than this share of the closed surface's area is
    phantom (farther than ``support.phantom_radius`` spacings from every scan point). A closed
    object scanned from all sides leaves only occlusion holes unsupported; a single view
    leaves at least the back half of any closed surface around it unsupported."""
    open_missed: float = 0.5
    """Auto mode: when more than this share of the scan points lies farther than
    ``support.miss_radius`` spacings from the closed surface, the open surface is tried
    too (on a single view F may have no inside, and the closed level set is then a small
    blob with little phantom: milk_carton at 6000 steps misses 96% of its points)."""
    open_cover_gain: float = 0.25
    """Auto mode, after such a try: the open surface is kept only when it covers at least
    this much larger a share of the scan than the closed one (a noisy closed scan that the
    fit matches poorly, abc00994122_simscan, gains nothing from opening: 0.164 vs ~0.15)."""
    shell_quantile: float = 0.9
    """Open mode: extract the level set F = q, q this quantile of F at the scan points (a
    field fitted to a sheet keeps F > c on both sides of it, so F = q wraps the sheet as a
    thin shell)."""
    shell_points: int = 20_000
    """Open mode: scan points (random subset) at which F is evaluated for q."""
    trim_radius: float = 2.0
    """Open mode: drop faces whose vertices all lie farther than this many spacings from
    every scan point."""
    pretrim_radius: float = 6.0
    """Open fit: before the refinement, drop faces whose vertices all lie farther than this
    many spacings from the scan (the level set closing the sheet's inside away from the
    data would be refined and measured only to be trimmed; the refinement moves vertices by
    a few grid cells at most, so the final trim at ``trim_radius`` sees the same faces)."""
    warn_phantom: float = 0.05
    """Log a warning when more than this share of a closed mesh's area is phantom (the scan
    looks open: those parts are extrapolated)."""
    warn_missed: float = 0.05
    """Log a warning when more than this share of the scan points is missed (farther than
    ``support.miss_radius`` spacings from the mesh written)."""
    seed: int = 0
    """Seed of the surface samples and of the shell's point subset."""
    support: SupportConfig = dataclass_field(default_factory=_decision_support)
    """Radii and sampling of the measurements (decision and the mesh written)."""

    def __post_init__(self) -> None:
        from .validation import SURFACE, check_fields

        if isinstance(self.support, dict):
            object.__setattr__(self, "support", SupportConfig(**self.support))
        check_fields(self, SURFACE)

    def to_dict(self) -> dict:
        return asdict(self)


def decide_surface(phantom: float, config: SurfaceConfig | None = None, missed: float = 0.0) -> str:
    """``"open"`` or ``"closed"`` from the phantom share of a closed reconstruction (share
    of its area far from the scan) and its missed share (share of the scan far from it)."""
    cfg = config or SurfaceConfig()
    for name, v in (("phantom", phantom), ("missed", missed)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a share in [0, 1], got {v!r}")
    return "open" if phantom > cfg.open_phantom or missed > cfg.open_missed else "closed"


def shell_level(field: Callable[[np.ndarray], np.ndarray], points: Any, quantile: float,
                max_points: int = 20_000, seed: int = 0) -> float:
    """The ``quantile`` of ``field`` ((M, 3) float32 -> (M,)) at up to ``max_points`` of ``points``
    (in the field's coordinates)."""
    pts = _check_points(points)
    if len(pts) > max_points:
        pts = pts[np.random.default_rng(seed).choice(len(pts), max_points, replace=False)]
    return float(np.quantile(field(pts.astype(np.float32)), quantile))


def extract_open(extract_level: Callable[[float], Any] | None, field: Callable[[np.ndarray], np.ndarray] | None,
                 points: Any, config: SurfaceConfig | None = None, *, tree=None, spacing: float | None = None,
                 closed_mesh=None):
    """The open surface of a fitted field.

    Candidates: the shell F = q around the data (:func:`shell_level`; extracted by
    ``extract_level(q)``; skipped when ``extract_level`` is None: a field fitted as an open
    surface crosses its level at the sheet) and, when given, ``closed_mesh`` (the level set
    meshed as usual); each is trimmed to the faces with a vertex within ``trim_radius``
    spacings of the scan, and the one that covers more scan points is returned (the choice
    is measured, not a threshold). Meshes, points and ``field`` share one coordinate frame.

    Returns
    -------
    (trimesh.Trimesh, dict)
        The trimmed mesh and what was chosen: ``source`` ("shell", "closed" or "none":
        nothing survived trimming, the untrimmed shell is returned), ``shell_level`` q and
        the cover of each candidate (``cover_shell``, ``cover_closed``).
    """
    cfg = config or SurfaceConfig()
    pts = _check_points(points)
    tree = tree if tree is not None else _tree(pts)
    s = scan_spacing(pts, tree) if spacing is None else float(spacing)
    candidates, info = {}, {}
    if closed_mesh is not None:
        candidates["closed"] = closed_mesh
    if extract_level is not None:
        info["shell_level"] = q = shell_level(field, pts, cfg.shell_quantile, cfg.shell_points, cfg.seed)
        candidates["shell"] = shell = extract_level(q)
    if not candidates:
        raise ValueError("extract_open needs a closed mesh or a level-set extractor")
    best = None
    for name, mesh in candidates.items():
        if len(mesh.faces) == 0:
            continue
        trimmed, _ = trim_unsupported(mesh, pts, cfg.trim_radius, s, tree=tree)
        if len(trimmed.faces) == 0:
            continue
        d = point_mesh_distance(pts, trimmed.vertices, trimmed.faces)
        cover = float(np.mean(d <= cfg.support.cover_radius * s))
        info[f"cover_{name}"] = cover
        if best is None or cover > best[1]:
            best = (trimmed, cover, name)
    if best is None:  # nothing survived trimming: the untrimmed candidate (shell first)
        return candidates.get("shell", closed_mesh), {**info, "source": "none"}
    info["source"] = best[2]
    return best[0], info


def apply_surface_mode(mesh, points: Any, mode: str, config: SurfaceConfig | None = None, *,
                       extract_level: Callable[[float], Any] | None, field: Callable[[np.ndarray], np.ndarray],
                       tree=None, spacing: float | None = None):
    """The surface step: keep the closed ``mesh``, or replace it by :func:`extract_open`'s
    open surface; ``auto`` decides with :func:`decide_surface` on the closed mesh's phantom
    and missed shares. ``mesh=None`` (F never crosses its level, so there is no closed surface) means open.
    ``extract_level=None``: no shell candidate (the field was fitted as an open surface, so
    ``mesh`` already is its level set at the sheet).

    Returns
    -------
    (trimesh.Trimesh, dict, dict or None)
        The mesh to write; the evidence: ``mode`` asked, ``surface`` chosen, ``phantom_closed``
        (phantom share of the closed mesh, auto only), ``missed_closed`` (share of the scan
        far from it) and the thresholds ``open_phantom`` / ``open_missed``,
        and :func:`extract_open`'s info when open; and the measurements of the closed mesh
        when it is kept in auto mode (``surface_distances``
        and ``scan_distances``: keyword arguments of :func:`measure_support`, which then
        measures nothing again), else None.
    """
    from .validation import SURFACES, check_choice

    check_choice("surface", mode, SURFACES)
    cfg = config or SurfaceConfig()
    info: dict[str, Any] = {"mode": mode}
    if mesh is None:  # F never crosses its level: no closed surface at all (a sheet)
        if mode == "closed":
            raise ValueError("no closed surface to keep (F never crosses its level)")
        out, extra = extract_open(extract_level, field, points, cfg, tree=tree, spacing=spacing)
        info.update(surface="open", phantom_closed=1.0, **extra)
        return out, info, None
    if mode == "closed" or len(mesh.faces) == 0:
        info["surface"] = "closed"
        return mesh, info, None
    pts = _check_points(points)
    tree = tree if tree is not None else _tree(pts)
    s = scan_spacing(pts, tree) if spacing is None else float(spacing)
    measured = None
    if mode == "auto":
        m2s = surface_to_scan(mesh.vertices, mesh.faces, tree, s, cfg.support, cfg.seed)
        phantom = float(np.mean(m2s[0] > cfg.support.phantom_radius * s))
        d = point_mesh_distance(pts, mesh.vertices, mesh.faces)
        measured = {"surface_distances": m2s, "scan_distances": d}  # reused by the support report
        missed = float(np.mean(d > cfg.support.miss_radius * s))
        info.update(phantom_closed=phantom, open_phantom=cfg.open_phantom, missed_closed=missed,
                    open_missed=cfg.open_missed, surface=decide_surface(phantom, cfg, missed))
        if info["surface"] == "closed":
            return mesh, info, measured
        if phantom <= cfg.open_phantom:  # opened only for the missed share: keep what covers more
            out, extra = extract_open(extract_level, field, pts, cfg, tree=tree, spacing=s, closed_mesh=mesh)
            cover_closed = float(np.mean(d <= cfg.support.cover_radius * s))
            gain = max(extra.get("cover_shell", 0.0), extra.get("cover_closed", 0.0)) - cover_closed
            info.update(cover_closed_untrimmed=cover_closed, open_cover_gain=cfg.open_cover_gain, **extra)
            if gain < cfg.open_cover_gain:
                info["surface"] = "closed"
                return mesh, info, measured
            return out, info, None
    info["surface"] = "open"
    out, extra = extract_open(extract_level, field, pts, cfg, tree=tree, spacing=s, closed_mesh=mesh)
    info.update(extra)
    return out, info, None


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


def _share_vs(what: str, value: float, threshold: float | None) -> str:
    """``closed-mesh phantom 0.012 <= 0.25``: a measured share and its threshold."""
    return f"{what} {value:.3f}" + ("" if threshold is None else f" {'>' if value > threshold else '<='} {threshold:g}")


def summary_line(surface: dict | None, support: dict | None, stray: int | None = None,
                 n_points: int | None = None, removed: bool = False) -> str:
    """One line from :func:`surfrec.extract_mesh`'s report: the surface decision and its
    evidence, cover and phantom of the mesh written, and the stray points (when counted)."""
    parts = []
    if surface:
        evidence = []
        if surface.get("closure") is not None:
            evidence.append(f"{_share_vs('closure of the scan normals', surface['closure'], surface.get('open_closure'))}"
                            + (f", {surface['pieces']} pieces" if surface.get("pieces", 1) > 1 else ""))
        if surface.get("phantom_closed") is not None:
            evidence.append(_share_vs("closed-mesh phantom", surface["phantom_closed"], surface.get("open_phantom")))
        if surface.get("missed_closed") is not None:
            evidence.append(_share_vs("scan missed by it", surface["missed_closed"], surface.get("open_missed")))
        if surface.get("cover_closed_untrimmed") is not None:
            best = max(surface.get("cover_shell", 0.0), surface.get("cover_closed", 0.0))
            evidence.append(f"open surface tried: cover {best:.3f} vs closed {surface['cover_closed_untrimmed']:.3f}"
                            + (" (gain below " if surface["surface"] == "closed" else " (gain at least ")
                            + f"{surface['open_cover_gain']:g})")
        if surface.get("source") and surface["surface"] == "open":
            evidence.append({"closed": "the level set trimmed to the scan",
                             "shell": "a shell level set around the scan, trimmed"}.get(
                                 surface["source"], f"the {surface['source']} candidate"))
        if surface.get("filled"):
            evidence.append(f"{surface['filled']:.3f} of the vertices beyond {surface['fill']:g} s on the membrane fill")
        if surface.get("trimmed_area") is not None:
            evidence.append(f"trimmed beyond {surface['trim']:g} s: {surface['trimmed_area']:.3f} of the area removed, "
                            "not watertight")
        if surface.get("closed_side") is not None:
            evidence.append(f"side term {'on' if surface['closed_side'] else 'off'} (trusted normals "
                            f"{surface['closed_side_share']:.3f})")
        if surface.get("skipped"):
            evidence.append(surface["skipped"])
        parts.append(f"surface {surface['surface']} ({surface['mode']}" + (": " + "; ".join(evidence) if evidence else "")
                     + ")")
    if support:
        parts.append(f"cover {support['cover']:.3f}, phantom {support['phantom']:.3f} "
                     f"(scan spacing s {support['spacing']:.4g})")
    if stray is not None:
        kept = "removed" if removed else "kept"
        share = f" ({100 * stray / n_points:.2f}%, {kept})" if n_points else f" ({kept})"
        parts.append(f"{stray} stray points{share}")
    if support:
        parts.append(f"per-vertex distance to the scan in s is the PLY property '{SUPPORT_ATTRIBUTE}'")
    return "; ".join(parts)
