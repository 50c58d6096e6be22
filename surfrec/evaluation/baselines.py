"""Classical reconstruction baselines through Open3D: screened Poisson and ball pivoting.

Called with its defaults, :func:`poisson` follows the reference protocol of the
development data (``../shared/data/README.md``): normals estimated from 30 nearest
neighbours, oriented with ``orient_normals_consistent_tangent_plane(15)``, screened
Poisson at octree depth 9, mesh cropped to the points' bounding box scaled by 1.1 about
its center.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal, Sequence

import numpy as np

from ..optional import import_open3d
from ..errors import InputError
from ..validation import POISSON, check_range

log = logging.getLogger(__name__)

NormalsMode = Literal["estimate", "given"]

#: fewest points the baselines accept
MIN_POINTS = 4


def _check_inputs(points: Any, normals: Any) -> tuple[np.ndarray, np.ndarray | None]:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(None, f"points must have shape (N, 3), got {pts.shape}")
    if len(pts) < MIN_POINTS:
        raise InputError(None, f"need at least {MIN_POINTS} points, got {len(pts)}")
    bad = int((~np.isfinite(pts)).any(axis=1).sum())
    if bad:
        raise InputError(None, f"points contain {bad} rows with NaN/inf values")
    if normals is None:
        return pts, None
    nrm = np.asarray(normals, dtype=np.float64)
    if nrm.shape != pts.shape:
        raise InputError(None, f"normals must have the points' shape {pts.shape}, got {nrm.shape}")
    bad = int((~np.isfinite(nrm)).any(axis=1).sum())
    if bad:
        raise InputError(None, f"normals contain {bad} rows with NaN/inf values")
    return pts, nrm


def _point_cloud(
    points: np.ndarray,
    normals: np.ndarray | None,
    normals_mode: str,
    n_neighbors: int,
    orient_k: int,
) -> Any:
    """An Open3D point cloud with oriented normals, given or estimated."""
    o3d = import_open3d("the Poisson and ball-pivoting baselines")

    if normals_mode not in ("estimate", "given"):
        raise InputError(None, f"normals_mode must be 'estimate' or 'given', got {normals_mode!r}")
    if normals_mode == "given" and normals is None:
        raise InputError(None, "normals_mode='given' but the points have no normals")
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    if normals_mode == "given":
        pcd.normals = o3d.utility.Vector3dVector(normals)
        return pcd
    if n_neighbors < 3:
        raise InputError(None, f"n_neighbors must be at least 3, got {n_neighbors}")
    if orient_k < 1:
        raise InputError(None, f"orient_k must be at least 1, got {orient_k}")
    if normals is not None:
        log.debug("normals_mode='estimate': ignoring the %d given normals", len(normals))
    t0 = time.perf_counter()
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=int(n_neighbors)))
    t1 = time.perf_counter()
    pcd.orient_normals_consistent_tangent_plane(int(orient_k))
    t2 = time.perf_counter()
    log.info(
        "normals: estimated from %d neighbours in %.2fs, oriented (k=%d) in %.2fs",
        n_neighbors, t1 - t0, orient_k, t2 - t1,
    )
    return pcd


def _to_trimesh(mesh: Any) -> Any:
    import trimesh

    return trimesh.Trimesh(
        vertices=np.asarray(mesh.vertices, dtype=np.float64),
        faces=np.asarray(mesh.triangles, dtype=np.int64),
        process=False,
    )


def poisson(
    points: np.ndarray,
    normals: np.ndarray | None = None,
    *,
    depth: int = 9,
    normals_mode: NormalsMode = "estimate",
    n_neighbors: int = 30,
    orient_k: int = 15,
    density_quantile: float = 0.0,
    crop_factor: float = 1.1,
    n_threads: int = 1,
) -> Any:
    """Screened Poisson surface reconstruction (Kazhdan & Hoppe 2013) through Open3D.

    Parameters
    ----------
    points : (N, 3) float
        The scan.
    normals : (N, 3) float, optional
        Normals of the points; used only with ``normals_mode="given"``.
    depth : int
        Octree depth of the reconstruction.
    normals_mode : {"estimate", "given"}
        ``"estimate"``: PCA normals from ``n_neighbors`` nearest neighbours, oriented with
        ``orient_normals_consistent_tangent_plane(orient_k)`` (any given normals are
        ignored). ``"given"``: use ``normals`` as they are (their orientation matters).
    n_neighbors : int
        Neighbours for normal estimation (KNN search).
    orient_k : int
        Neighbours of the Riemannian graph that propagates the normal orientation.
    density_quantile : float in [0, 1)
        Remove vertices whose Poisson density (the octree depth of the samples that
        support them) is below this quantile of all densities; 0 keeps everything.
    crop_factor : float
        Crop the mesh to the points' axis-aligned box scaled by this factor about its
        center; 0 or less disables cropping.
    n_threads : int
        Threads of the Poisson solver (-1: all cores). The default, 1, makes the result
        reproducible bit for bit; with several threads Open3D's solver gives slightly
        different meshes from run to run (face counts differ by a few), and on two
        cores it was no faster.

    Returns
    -------
    trimesh.Trimesh
        The reconstructed mesh, in the units of ``points``.

    Raises
    ------
    InputError
        Bad shapes, NaN/inf values, too few points, ``normals_mode="given"`` without
        normals, or parameters out of range.
    """
    pts, nrm = _check_inputs(points, normals)
    check_range("depth", depth, POISSON["depth"])
    check_range("density_quantile", density_quantile, POISSON["density_quantile"])
    o3d = import_open3d("the Poisson baseline")
    t0 = time.perf_counter()
    pcd = _point_cloud(pts, nrm, normals_mode, n_neighbors, orient_k)
    t1 = time.perf_counter()
    mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
        pcd, depth=int(depth), n_threads=int(n_threads)
    )
    t2 = time.perf_counter()
    n_raw = len(mesh.triangles)
    if density_quantile > 0.0:
        dens = np.asarray(densities)
        cut = float(np.quantile(dens, density_quantile))
        mesh.remove_vertices_by_mask(dens < cut)
        log.info(
            "density trimming at quantile %.3g (density < %.4g): %d -> %d faces",
            density_quantile, cut, n_raw, len(mesh.triangles),
        )
    if crop_factor > 0:
        box = pcd.get_axis_aligned_bounding_box()
        box = box.scale(float(crop_factor), box.get_center())
        mesh = mesh.crop(box)
    t3 = time.perf_counter()
    out = _to_trimesh(mesh)
    if len(out.faces) == 0:
        log.warning("poisson produced no faces (points: %d, depth: %d)", len(pts), depth)
    log.info(
        "poisson depth %d on %d points: %d faces; normals %.2fs, solve %.2fs, "
        "trim/crop %.2fs, total %.2fs",
        depth, len(pts), len(out.faces), t1 - t0, t2 - t1, t3 - t2, t3 - t0,
    )
    return out


def mean_spacing(points: np.ndarray) -> float:
    """Mean distance from each point to its nearest other point.

    Parameters
    ----------
    points : (N, 3) float

    Returns
    -------
    float
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    dist, _ = cKDTree(pts).query(pts, k=2, workers=-1)
    return float(dist[:, 1].mean())


def ball_pivoting(
    points: np.ndarray,
    normals: np.ndarray | None = None,
    *,
    radii: Sequence[float] | None = None,
    normals_mode: NormalsMode | None = None,
    n_neighbors: int = 30,
    orient_k: int = 15,
) -> Any:
    """Ball-pivoting surface reconstruction (Bernardini et al. 1999) through Open3D.

    Parameters
    ----------
    points : (N, 3) float
        The scan.
    normals : (N, 3) float, optional
        Normals of the points.
    radii : sequence of float, optional
        Ball radii, in the units of the points. Default: the mean nearest-neighbour
        spacing times 1, 2 and 4.
    normals_mode : {"estimate", "given"}, optional
        Default: ``"given"`` when ``normals`` is passed, else ``"estimate"`` (the same
        estimation and orientation as :func:`poisson`).
    n_neighbors, orient_k : int
        Normal estimation parameters, as in :func:`poisson`.

    Returns
    -------
    trimesh.Trimesh
        The reconstructed mesh (usually open, with holes where the sampling is sparse).

    Raises
    ------
    InputError
        Bad shapes, NaN/inf values, too few points, non-positive radii, or
        ``normals_mode="given"`` without normals.
    """
    pts, nrm = _check_inputs(points, normals)
    o3d = import_open3d("the ball-pivoting baseline")
    if normals_mode is None:
        normals_mode = "given" if nrm is not None else "estimate"
    t0 = time.perf_counter()
    if radii is None:
        spacing = mean_spacing(pts)
        radii = [spacing, 2 * spacing, 4 * spacing]
    radii = [float(r) for r in radii]
    if not radii or not all(np.isfinite(r) and r > 0 for r in radii):
        raise InputError(None, f"radii must be positive numbers, got {radii}")
    pcd = _point_cloud(pts, nrm, normals_mode, n_neighbors, orient_k)
    t1 = time.perf_counter()
    mesh = o3d.geometry.TriangleMesh.create_from_point_cloud_ball_pivoting(
        pcd, o3d.utility.DoubleVector(radii)
    )
    t2 = time.perf_counter()
    out = _to_trimesh(mesh)
    log.info(
        "ball pivoting on %d points, radii %s: %d faces; normals %.2fs, pivoting %.2fs",
        len(pts), ", ".join(f"{r:.4g}" for r in radii), len(out.faces), t1 - t0, t2 - t1,
    )
    return out
