"""Accuracy metrics of a reconstructed surface against a ground truth or an input scan.

:func:`evaluate` scores a reconstruction with the usual surface-reconstruction metrics
(Chamfer distances, Hausdorff distance, normal consistency, F-score) and, given the input
scan, the one-sided distances of the Surface Reconstruction Benchmark (Berger et al. 2013).

Protocol
--------
* Each mesh is sampled with ``n_samples`` points drawn uniformly on its surface (area
  weighted, fixed seeds: ``seed`` for the reconstruction, ``seed + 1`` for the ground
  truth), each sample carrying the normal of the face it lies on.
* A sample is scored by its distance to the *other mesh* (exact point-to-triangle
  distance in float64, point-cloud-utils' ``closest_points_on_mesh``), or, when the
  other side is given as points,
  by its distance to the nearest of those points (``scipy.spatial.cKDTree``).
* A point set given instead of a mesh is used as it is (no resampling).
* All distances are in the input units of the ground truth; nothing is rescaled.

Values are kept raw; the bench and the CLI print ``CD x 1000`` in labeled columns.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..validation import SAMPLES, THRESHOLD_FRACTION, check_each, check_range

log = logging.getLogger(__name__)

#: default F-score thresholds, as fractions of the ground truth's largest box side
DEFAULT_THRESHOLD_FRACTIONS: tuple[float, ...] = (0.005, 0.01)

#: file extensions that only ever hold points (read with :func:`surfrec.io.load_points`)
_POINT_EXTENSIONS = frozenset({".xyz", ".pts", ".pcd", ".npy", ".npz", ".txt", ".csv"})


@dataclass
class _Geometry:
    """A mesh or a point set, validated, with the name of its source."""

    source: str
    mesh: Any = None  # trimesh.Trimesh when this is a mesh
    points: np.ndarray | None = None  # (N, 3) float64 when this is a point set
    normals: np.ndarray | None = None  # (N, 3) float64 unit normals of the point set, or None

    @property
    def is_mesh(self) -> bool:
        return self.mesh is not None

    def bounds(self) -> np.ndarray:
        """(2, 3) float64 axis-aligned box (min, max)."""
        pts = np.asarray(self.mesh.vertices, dtype=np.float64) if self.is_mesh else self.points
        return np.stack([pts.min(axis=0), pts.max(axis=0)])


@dataclass
class _Samples:
    """Points at which one direction of a two-sided metric is evaluated."""

    points: np.ndarray  # (N, 3) float64
    normals: np.ndarray | None  # (N, 3) float64 unit normals, or None


# ----------------------------------------------------------------------------- inputs


def _check_points(points: Any, source: str, what: str = "points") -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(source, f"{what} must have shape (N, 3), got {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(source, f"{what} are empty")
    bad = int((~np.isfinite(arr)).any(axis=1).sum())
    if bad:
        raise InputError(source, f"{what} contain {bad} rows with NaN/inf values")
    return arr


def _unit_normals(normals: Any, n: int, source: str) -> np.ndarray:
    arr = _check_points(normals, source, what="normals")
    if arr.shape[0] != n:
        raise InputError(source, f"{arr.shape[0]} normals for {n} points")
    length = np.linalg.norm(arr, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = np.where(length > 0, arr / length, 0.0)
    return unit


def _from_mesh(mesh: Any, source: str) -> _Geometry:
    import trimesh

    if not isinstance(mesh, trimesh.Trimesh):
        raise InputError(source, f"expected a triangle mesh, got {type(mesh).__name__}")
    faces = np.asarray(mesh.faces)
    if faces.ndim != 2 or len(faces) == 0:
        raise InputError(source, "mesh has no faces")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if not np.isfinite(vertices).all():
        raise InputError(source, "mesh has NaN/inf vertex coordinates")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(source, "mesh has face indices out of range")
    if not float(mesh.area) > 0.0:
        raise InputError(source, "mesh has zero surface area")
    return _Geometry(source=source, mesh=mesh)


def _from_points(points: Any, normals: Any, source: str) -> _Geometry:
    pts = _check_points(points, source)
    nrm = None if normals is None else _unit_normals(normals, len(pts), source)
    return _Geometry(source=source, points=pts, normals=nrm)


def _load_path(path: str | os.PathLike) -> _Geometry:
    import trimesh

    source = os.fspath(path)
    if not os.path.isfile(source):
        raise InputError(source, "file not found")
    ext = os.path.splitext(source)[1].lower()
    if ext in _POINT_EXTENSIONS:
        return _load_point_file(source)
    try:
        loaded = trimesh.load(source, process=False)
    except Exception as exc:  # trimesh raises many types for unreadable files
        raise InputError(source, f"cannot read as a mesh: {exc}") from exc
    if isinstance(loaded, trimesh.Scene):
        if len(loaded.geometry) == 0:
            raise InputError(source, "mesh has no faces")
        loaded = loaded.to_mesh()
    if isinstance(loaded, trimesh.PointCloud):
        log.info("%s holds points only: scoring it as a point set", source)
        return _load_point_file(source)
    return _from_mesh(loaded, source)


def _load_point_file(source: str) -> _Geometry:
    from ..io import load_points  # lazy: io is optional for in-memory use

    cloud = load_points(source)
    return _from_points(cloud.points, cloud.normals, source)


def _as_geometry(obj: Any, role: str) -> _Geometry:
    """Turn any accepted input (mesh, path, array, (points, normals), PointCloud) into a
    validated :class:`_Geometry`; ``role`` names it in errors of in-memory inputs."""
    import trimesh

    if isinstance(obj, (str, os.PathLike)):
        return _load_path(obj)
    source = f"<{role}>"
    if isinstance(obj, trimesh.Trimesh):
        return _from_mesh(obj, source)
    if isinstance(obj, trimesh.PointCloud):
        return _from_points(obj.vertices, None, source)
    if hasattr(obj, "points") and hasattr(obj, "normals"):  # surfrec.io.PointCloud
        return _from_points(obj.points, obj.normals, str(getattr(obj, "source", source)))
    if isinstance(obj, tuple) and len(obj) == 2:
        return _from_points(obj[0], obj[1], source)
    if isinstance(obj, (np.ndarray, list)):
        return _from_points(obj, None, source)
    raise InputError(
        source,
        f"cannot evaluate a {type(obj).__name__}: give a trimesh.Trimesh, a path, "
        "an (N, 3) array or a (points, normals) tuple",
    )


def check_reference(obj: Any, role: str = "gt") -> None:
    """Read and check a reference (ground truth or scan) as :func:`evaluate` will, before
    any work: :class:`~surfrec.errors.InputError` (one line) when it cannot be scored against."""
    _as_geometry(obj, role)


# ----------------------------------------------------------------------------- geometry


def _sample(geom: _Geometry, n_samples: int, seed: int) -> _Samples:
    """Uniform surface samples of a mesh (with face normals), or the points as given."""
    if not geom.is_mesh:
        return _Samples(geom.points, geom.normals)
    import trimesh

    points, face_index = trimesh.sample.sample_surface(geom.mesh, n_samples, seed=seed)
    normals = np.asarray(geom.mesh.face_normals, dtype=np.float64)[face_index]
    return _Samples(np.asarray(points, dtype=np.float64), normals)


def _to_mesh(
    query: np.ndarray, mesh: Any, origin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances from points to a triangle mesh and the normals of the closest faces.

    point-cloud-utils (``closest_points_on_mesh``: an exact float64 point-triangle
    search over an AABB tree, in a self-contained wheel) replaced Open3D's
    ``RaycastingScene`` (float32 choice of triangle) plus a float64 recomputation: the
    metrics agree within sampling noise, the distances are exact where Open3D's choice was
    off (by up to 3e-4 of the box), and no system library is needed (open3d's wheel needs
    libusb). It is 1.1-1.8x slower on 250k-face meshes; see benchmarks/RESULTS_EVAL.md.

    Parameters
    ----------
    query : (N, 3) float64
    mesh : trimesh.Trimesh
    origin : (3,) float64
        Unused: kept for the callers' signature. The search runs in float64, so inputs far
        from the origin need no shift (tested to 1e-6 relative at 1e6 units off-centre),
        and the distances do not depend on a box that changes with the inputs.

    Returns
    -------
    dist : (N,) float64
    normals : (N, 3) float64
        Unit normal of the closest triangle (zero for degenerate triangles).
    """
    import point_cloud_utils as pcu

    del origin
    vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.int64)
    dist, tri, _ = pcu.closest_points_on_mesh(
        np.ascontiguousarray(query, dtype=np.float64), vertices, faces
    )
    tri = np.asarray(tri, dtype=np.int64)
    normals = np.asarray(mesh.face_normals, dtype=np.float64)[tri]
    return np.asarray(dist, dtype=np.float64), normals


def _to_points(
    query: np.ndarray, points: np.ndarray, normals: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Distances from ``query`` (N, 3) to the nearest of ``points`` (M, 3), and that
    point's normal ((N, 3), or None when ``normals`` is None)."""
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(points).query(query, k=1, workers=-1)
    return np.asarray(dist, dtype=np.float64), None if normals is None else normals[idx]


def _distances(
    samples: _Samples, target: _Geometry, origin: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    if target.is_mesh:
        return _to_mesh(samples.points, target.mesh, origin)
    return _to_points(samples.points, target.points, target.normals)


def _abs_cosine(n1: np.ndarray | None, n2: np.ndarray | None) -> float | None:
    """Mean |n1 . n2| over rows where both normals are non-zero; None without normals."""
    if n1 is None or n2 is None:
        return None
    dots = np.abs(np.einsum("ij,ij->i", n1, n2))
    valid = (np.linalg.norm(n1, axis=1) > 0) & (np.linalg.norm(n2, axis=1) > 0)
    if not valid.any():
        return None
    return float(dots[valid].mean())


# ----------------------------------------------------------------------------- API


def threshold_key(name: str, t: float) -> str:
    """Result key of a thresholded metric: ``threshold_key("fscore", 0.005) == "fscore@0.005"``."""
    return f"{name}@{t:g}"


def evaluate(
    rec: Any,
    gt: Any,
    *,
    scan: Any = None,
    n_samples: int = 100_000,
    thresholds: Sequence[float] | None = None,
    threshold_fractions: Sequence[float] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score a reconstruction against a ground truth and, optionally, the input scan.

    Parameters
    ----------
    rec : trimesh.Trimesh, path, (N, 3) array or (points (N, 3), normals (N, 3)) tuple
        The reconstruction. Paths are read with trimesh (meshes) or
        :func:`surfrec.io.load_points` (point files, and PLY files without faces).
    gt : same kinds as ``rec``, or None
        The ground truth. Given as points, distances *to* it are nearest-neighbour
        distances instead of point-to-mesh distances. ``None`` is allowed when ``scan`` is
        given: only the scan metrics are computed (for data without ground truth).
    scan : path, (N, 3) array, (points, normals) tuple or PointCloud, optional
        The input scan, for the one-sided SRB distances ``scan -> rec`` (each scan point
        to the reconstruction) and ``rec -> scan`` (each reconstruction sample to its
        nearest scan point).
    n_samples : int
        Points sampled uniformly on each mesh surface (point sets are used as given).
    thresholds : sequence of float, optional
        Absolute F-score distance thresholds, in the units of ``gt``. Default: 0.5% and 1%
        of the largest side of the ground truth's bounding box (of the scan's without gt).
    threshold_fractions : sequence of float, optional
        The same thresholds given as fractions of that largest box side instead
        (what ``surfrec eval --thresholds`` takes); not together with ``thresholds``.
    seed : int
        Seed of the reconstruction's samples; the ground truth's use ``seed + 1``.

    Returns
    -------
    dict
        With a ground truth: ``chamfer_l1`` (mean of the two one-sided mean distances),
        ``chamfer_l2`` (mean of the two one-sided mean squared distances), ``acc``
        (mean rec -> gt distance), ``comp`` (mean gt -> rec distance), ``acc_l2``,
        ``comp_l2``, ``hausdorff`` (largest of the two one-sided maxima),
        ``normal_consistency`` (mean over both directions of ``|n_sample . n_closest|``:
        the absolute value makes it independent of the orientation of either surface;
        None when one side is a point set without normals), and for every threshold
        ``t``: ``precision@t``, ``recall@t``, ``fscore@t`` (keys formatted with
        :func:`threshold_key`). With a scan: ``scan_to_rec_mean``, ``scan_to_rec_max``,
        ``rec_to_scan_mean``, ``rec_to_scan_max``, and for a mesh ``support`` (cover, phantom,
        one-sided means in units of the scan spacing s: :func:`surfrec.surface.support.measure_support`). Always: ``protocol``, a dict
        describing units, box size, sample counts, seeds and distance kinds.

    Raises
    ------
    InputError
        An input cannot be read, is empty, has no faces, or holds NaN/inf values; or
        ``n_samples``/``thresholds`` are not positive.
    """
    check_range("n_samples", n_samples, SAMPLES)
    if gt is None and scan is None:
        raise InputError(None, "nothing to evaluate against: give gt, scan, or both")
    if thresholds is not None and threshold_fractions is not None:
        raise InputError(None, "give thresholds or threshold_fractions, not both")
    thresholds = _check_thresholds(thresholds, "thresholds")
    fractions = None if threshold_fractions is None else check_each(
        "threshold_fractions", threshold_fractions, THRESHOLD_FRACTION)

    t0 = time.perf_counter()
    rec_g = _as_geometry(rec, "rec")
    gt_g = None if gt is None else _as_geometry(gt, "gt")
    scan_g = None if scan is None else _as_geometry(scan, "scan")
    if scan_g is not None and scan_g.is_mesh:
        raise InputError(scan_g.source, "the scan must be a point set, got a mesh")
    ref = gt_g if gt_g is not None else scan_g
    box = ref.bounds()
    box_side = float((box[1] - box[0]).max())
    origin = box.mean(axis=0)
    if thresholds is None:
        if box_side <= 0:
            raise InputError(ref.source, "bounding box has zero size: give thresholds")
        fractions = list(DEFAULT_THRESHOLD_FRACTIONS) if fractions is None else fractions
        thresholds = [f * box_side for f in fractions]

    rec_s = _sample(rec_g, n_samples, seed)
    result: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    n_gt = 0
    if gt_g is not None:
        n_gt = _score_against_gt(rec_g, rec_s, gt_g, n_samples, seed, origin, thresholds, result, kinds)
    if scan_g is not None:
        _score_against_scan(rec_g, rec_s, scan_g, origin, seed, result, kinds)
    elapsed = time.perf_counter() - t0
    result["protocol"] = _protocol(rec_g, gt_g, scan_g, rec_s, n_gt, n_samples, seed, box_side, thresholds,
                                   fractions, kinds, elapsed)
    log.info("evaluated %s (%d samples) in %.2fs", rec_g.source, len(rec_s.points), elapsed)
    return result


def _score_against_gt(rec_g: _Geometry, rec_s: _Samples, gt_g: _Geometry, n_samples: int, seed: int,
                      origin: np.ndarray, thresholds: list[float], result: dict, kinds: dict) -> int:
    """Chamfer, Hausdorff, normal consistency and F-scores into ``result``; the gt sample count."""
    gt_s = _sample(gt_g, n_samples, seed + 1)
    d_acc, n_acc = _distances(rec_s, gt_g, origin)
    d_comp, n_comp = _distances(gt_s, rec_g, origin)
    kinds["rec_to_gt"] = _kind(gt_g)
    kinds["gt_to_rec"] = _kind(rec_g)
    acc, comp = float(d_acc.mean()), float(d_comp.mean())
    acc_l2, comp_l2 = float(np.mean(d_acc**2)), float(np.mean(d_comp**2))
    nc_acc = _abs_cosine(rec_s.normals, n_acc)
    nc_comp = _abs_cosine(gt_s.normals, n_comp)
    result.update(
        chamfer_l1=0.5 * (acc + comp), chamfer_l2=0.5 * (acc_l2 + comp_l2), acc=acc, comp=comp,
        acc_l2=acc_l2, comp_l2=comp_l2, hausdorff=float(max(d_acc.max(), d_comp.max())),
        normal_consistency=None if nc_acc is None or nc_comp is None else 0.5 * (nc_acc + nc_comp),
    )
    for t in thresholds:
        precision = float(np.mean(d_acc < t))
        recall = float(np.mean(d_comp < t))
        f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        result[threshold_key("precision", t)] = precision
        result[threshold_key("recall", t)] = recall
        result[threshold_key("fscore", t)] = f
    return len(gt_s.points)


def _score_against_scan(rec_g: _Geometry, rec_s: _Samples, scan_g: _Geometry, origin: np.ndarray, seed: int,
                        result: dict, kinds: dict) -> None:
    """The one-sided SRB distances and, for a mesh, the support report into ``result``."""
    scan_s = _Samples(scan_g.points, scan_g.normals)
    d_s2r, _ = _distances(scan_s, rec_g, origin)
    d_r2s, _ = _to_points(rec_s.points, scan_g.points, None)
    kinds["scan_to_rec"] = _kind(rec_g)
    kinds["rec_to_scan"] = "nearest scan point (cKDTree)"
    result.update(
        scan_to_rec_mean=float(d_s2r.mean()), scan_to_rec_max=float(d_s2r.max()),
        rec_to_scan_mean=float(d_r2s.mean()), rec_to_scan_max=float(d_r2s.max()),
    )
    if rec_g.is_mesh:  # cover / phantom relative to the scan's spacing
        from ..surface.support import measure_support

        result["support"] = measure_support(rec_g.mesh.vertices, rec_g.mesh.faces, scan_g.points,
                                            seed=seed).as_dict()


def _protocol(rec_g: _Geometry, gt_g: _Geometry | None, scan_g: _Geometry | None, rec_s: _Samples, n_gt: int,
              n_samples: int, seed: int, box_side: float, thresholds: list[float], fractions, kinds: dict,
              elapsed: float) -> dict:
    """What was measured, how: units, box, sample counts, seeds, distance kinds, sources."""
    return {
        "description": (
            f"{'uniform surface samples' if rec_g.is_mesh else 'points'} of rec vs "
            f"{'gt' if gt_g is not None else 'scan'}; exact point-to-triangle distances to "
            "meshes, nearest-neighbour distances to point sets; NC uses |dot| "
            "(orientation-agnostic); F-score counts distances < t"
        ),
        "units": "input units of gt" if gt_g is not None else "input units of scan",
        "box_side": box_side,
        "box_source": "gt" if gt_g is not None else "scan",
        "n_samples": int(n_samples),
        "n_rec": int(len(rec_s.points)),
        "n_gt": int(n_gt),
        "n_scan": 0 if scan_g is None else int(len(scan_g.points)),
        "seeds": {"rec": int(seed), "gt": int(seed) + 1},
        "thresholds": [float(t) for t in thresholds],
        "threshold_fractions": fractions,
        "distances": kinds,
        "sources": {
            "rec": rec_g.source,
            "gt": None if gt_g is None else gt_g.source,
            "scan": None if scan_g is None else scan_g.source,
        },
        "seconds": round(elapsed, 3),
    }


def _check_thresholds(values: Sequence[float] | None, name: str) -> list[float] | None:
    if values is None:
        return None
    out = [float(t) for t in values]
    if not out or not all(math.isfinite(t) and t > 0 for t in out):
        raise InputError(None, f"{name} must be positive numbers, got {list(values)}")
    return out


def _kind(target: _Geometry) -> str:
    return "exact point-to-triangle" if target.is_mesh else "nearest point (cKDTree)"


def _fmt(value: float | None, digits: int = 6) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def format_report(result: dict[str, Any]) -> str:
    """A multi-line, human-readable summary of an :func:`evaluate` result.

    Parameters
    ----------
    result : dict
        What :func:`evaluate` returned.

    Returns
    -------
    str
        Lines naming the units and sample counts, then one metric per line; Chamfer
        distances are also shown multiplied by 1000 (labeled so).
    """
    p = result["protocol"]
    units = p["units"]
    lines = [
        f"rec:  {p['sources']['rec']}",
    ]
    if p["sources"]["gt"] is not None:
        lines.append(f"gt:   {p['sources']['gt']}")
    if p["sources"]["scan"] is not None:
        lines.append(f"scan: {p['sources']['scan']}")
    lines.append(
        f"units: {units} (box largest side {p['box_side']:.6g}); "
        f"samples: rec {p['n_rec']:,}, gt {p['n_gt']:,}"
        + (f", scan {p['n_scan']:,}" if p["n_scan"] else "")
        + f"; seeds rec {p['seeds']['rec']}, gt {p['seeds']['gt']}"
    )
    if "chamfer_l1" in result:
        lines += [
            f"  chamfer_l1          {_fmt(result['chamfer_l1'])}   "
            f"(CD x1000 = {result['chamfer_l1'] * 1000:.3f})",
            f"    acc (rec->gt)     {_fmt(result['acc'])}",
            f"    comp (gt->rec)    {_fmt(result['comp'])}",
            f"  chamfer_l2          {_fmt(result['chamfer_l2'])}   (mean squared distances)",
            f"  hausdorff           {_fmt(result['hausdorff'])}",
            f"  normal_consistency  {_fmt(result['normal_consistency'], 4)}   "
            "(|cos|, orientation-agnostic)",
        ]
        fractions = p.get("threshold_fractions") or [None] * len(p["thresholds"])
        for t, frac in zip(p["thresholds"], fractions):
            label = f"t={t:.4g}" + (f" ({frac:.3g} of box side)" if frac is not None else "")
            lines.append(
                f"  fscore {label}: F {result[threshold_key('fscore', t)]:.4f}  "
                f"P {result[threshold_key('precision', t)]:.4f}  "
                f"R {result[threshold_key('recall', t)]:.4f}"
            )
    if "scan_to_rec_mean" in result:
        lines += [
            f"  scan->rec  mean {_fmt(result['scan_to_rec_mean'])}  "
            f"max {_fmt(result['scan_to_rec_max'])}",
            f"  rec->scan  mean {_fmt(result['rec_to_scan_mean'])}  "
            f"max {_fmt(result['rec_to_scan_max'])}",
        ]
    if result.get("support") is not None:
        from ..surface.support import SupportReport, format_support

        lines.append("  " + format_support(SupportReport(**result["support"])))
    return "\n".join(lines)
