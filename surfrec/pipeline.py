"""The path of a scan: fit → extract → filter → refine → mesh in scan coordinates.

:func:`reconstruct` runs the whole path on a scan; :func:`extract_mesh` the steps after
the fit, from a :class:`~surfrec.result.FitResult` or a model file, with the settings
stored in its :class:`~surfrec.config.ReconstructionConfig` (``config.extract`` and
``config.refine``), so ``surfrec mesh model.pt`` writes what ``surfrec fit`` wrote.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Callable

import numpy as np

from .config import ExtractConfig
from .device import resolve_device, torch_threads
from .normalize import UNIT_HALF_EXTENT
from .validation import EXTRACT, check_padding, check_range
from .result import FIELD_BATCH, FitResult, load_model

log = logging.getLogger(__name__)

__all__ = ["extract_mesh", "reconstruct", "mesh_settings"]


def mesh_settings(result: FitResult, extract_config: ExtractConfig | None = None, **overrides: Any) -> ExtractConfig:
    """The extraction settings: ``extract_config`` (default: the model's), with the
    non-None ``overrides`` (ExtractConfig fields) replaced."""
    base = extract_config if extract_config is not None else result.config.extract
    given = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **given) if given else base


def _box(result: FitResult, ec: ExtractConfig) -> tuple[float, np.ndarray]:
    """Half side and (2, 3) bounds of the extraction box (normalized coordinates)."""
    half = min(UNIT_HALF_EXTENT * (1.0 + 2.0 * ec.padding), result.config.box)
    return half, np.array([[-half] * 3, [half] * 3], dtype=np.float64)


def extract_mesh(
    result: "FitResult | str | os.PathLike",
    resolution: int | None = None,
    level: float | None = None,
    *,
    padding: float | None = None,
    method: str | None = None,
    components: str | None = None,
    device: str = "auto",
    normals_from_gradient: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    close_at_box: bool | None = None,
    refine: bool | None = None,
    refine_config=None,
    extract_config: ExtractConfig | None = None,
    report: dict | None = None,
):
    """Marching cubes on a fitted model, filtered and refined, in the scan's coordinates.

    Every setting left at None comes from ``extract_config`` (default: the model's
    ``config.extract``, see :class:`~surfrec.config.ExtractConfig` for their meaning);
    the refinement's from ``refine_config`` (default: ``config.refine``).

    Parameters
    ----------
    result : FitResult or path of a model file
    resolution, level, padding, method, components, normals_from_gradient, close_at_box, refine
        Override the matching :class:`~surfrec.config.ExtractConfig` field. ``level``
        None: the fitted level; refinement runs only at the fitted level, and not when
        the model holds no data points; ``near-data`` becomes ``all`` then too.
    device : str
        Where F is evaluated.
    progress : callable, optional
        ``progress(done, total)`` for progress bars.
    report : dict, optional
        Filled with what happened: ``refine`` (the refinement's report, or None) and
        ``timings`` (seconds of ``extract``, ``filter`` and ``refine``).

    Returns
    -------
    trimesh.Trimesh
        In input coordinates, faces oriented outward.
    """
    for name, value in (("resolution", resolution), ("level", level), ("padding", padding)):
        if value is not None:  # before loading anything (the CLI's words)
            check_range(name, value, EXTRACT[name])
    if not isinstance(result, FitResult):
        result = load_model(result)
    ec = mesh_settings(result, extract_config, resolution=resolution, level=level, padding=padding,
                       method=method, components=components, normals_from_gradient=normals_from_gradient,
                       close_at_box=close_at_box, refine=refine)
    check_padding(ec.padding, result.config.box)  # the model's own box (the CLI checks box 1)
    dev = resolve_device(device)
    timings: dict[str, float] = {}
    with torch_threads(result.config.threads):  # the fit's fixed count: same mesh on any machine
        mesh, cell = _extract(result, ec, dev, progress, timings)
    lvl = result.config.level if ec.level is None else float(ec.level)
    info = None
    if ec.refine and len(mesh.vertices) and result.data_points is not None and lvl == result.config.level:
        cfg = refine_config if refine_config is not None else result.config.refine
        t0 = time.perf_counter()
        with torch_threads(result.config.threads):
            mesh, info = _refine_onto_data(mesh, result, dev, cell, cfg, normals_ready=ec.normals_from_gradient)
        timings["refine"] = time.perf_counter() - t0
    elif ec.refine and lvl != result.config.level:
        log.info("refinement skipped: level %g is not the fitted level %g", lvl, result.config.level)
    if report is not None:
        report["refine"] = info
        report["timings"] = timings
    return _to_scan(mesh, result, ec.normals_from_gradient)


def _extract(result: FitResult, ec: ExtractConfig, dev, progress, timings: dict | None = None):
    """Marching cubes and the component filter, in normalized coordinates; and the cell size."""
    from .mesh import extract_mesh_from_field, grid_step

    lvl = result.config.level if ec.level is None else float(ec.level)
    half, bounds = _box(result, ec)
    field = result.field(dev)
    if ec.close_at_box:
        _check_crossing(field, half, lvl, ec.crossing_check_resolution)
        field = _capped(field, half, lvl, ec.cap_margin)
    components = "all" if ec.components == "near-data" and result.data_points is None else ec.components
    mesh = extract_mesh_from_field(
        field, bounds, resolution=ec.resolution, level=lvl, method=ec.method,
        gradient=result.gradient(dev) if ec.normals_from_gradient else None,
        components=components, data_points=result.data_points, progress=progress,
        near_fraction=ec.near_fraction, band_factor=ec.band_factor, near_cells=ec.near_cells,
        near_diagonal=ec.near_diagonal, narrowband_above=ec.narrowband_above,
        data_index=result.data_index() if components == "near-data" else None, timings=timings,
    )
    return mesh, grid_step(bounds, ec.resolution)


def _to_scan(mesh, result: FitResult, keep_normals: bool):
    """The mesh mapped to the scan's coordinates (gradient normals kept: a similarity)."""
    normals = mesh.vertex_normals.copy() if keep_normals and len(mesh.vertices) else None
    mesh.vertices = result.normalization.to_input(mesh.vertices)
    if normals is not None:
        mesh.vertex_normals = normals
    return mesh


def _refine_onto_data(mesh, result: FitResult, dev, cell: float, cfg, normals_ready: bool):
    """The mesh (normalized coordinates) refined onto ``result.data_points``, and the report.

    ``normals_ready``: the mesh's vertex normals already are the unit gradients of F (as
    :func:`extract_mesh_from_field` sets them), so they are not computed again.
    """
    import trimesh

    from .mesh import gradient_normals
    from .refine import plan, refine_vertices

    grad = result.gradient(dev)
    data = result.data_points
    index = result.data_index()
    decision = plan(data, cell, cfg, tree=index)
    normals = mesh.vertex_normals if normals_ready else gradient_normals(mesh, grad, FIELD_BATCH)
    # ∇F at the data only when the refinement runs (it orients the points for the local fits)
    point_normals = grad(np.asarray(data, np.float32)) if decision.apply else None
    verts, info = refine_vertices(mesh.vertices, normals, data, cell, cfg, refine_plan=decision,
                                  point_normals=point_normals, tree=index)
    if not info["applied"]:
        return mesh, info
    refined = trimesh.Trimesh(vertices=verts, faces=mesh.faces, process=False)
    if normals_ready:
        refined.vertex_normals = gradient_normals(refined, grad, FIELD_BATCH)
    return refined, info


def _check_crossing(field: Callable[[np.ndarray], np.ndarray], half: float, level: float, resolution: int) -> None:
    """Raise EmptyLevelSetError when F does not cross ``level`` inside the box (coarse grid)."""
    from .errors import EmptyLevelSetError

    t = np.linspace(-half, half, resolution, dtype=np.float32)
    grid = np.stack(np.meshgrid(t, t, t, indexing="ij"), axis=-1).reshape(-1, 3)
    v = field(grid)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    if not lo < level < hi:
        raise EmptyLevelSetError(
            f"F never crosses the level {level:g} in the box: it ranges over [{lo:.4g}, {hi:.4g}] "
            f"on a {resolution}^3 grid; choose a level inside that range")


def _capped(field: Callable[[np.ndarray], np.ndarray], half: float, level: float,
            margin: float) -> Callable[[np.ndarray], np.ndarray]:
    """F, forced to at least ``level + margin`` on and beyond the faces of the cube [-half, half]³."""
    edge = half * (1.0 - 1e-6)

    def f(x: np.ndarray) -> np.ndarray:
        v = field(x)
        out = (np.abs(x) >= edge).any(axis=1)
        if out.any():
            v = v.copy()
            v[out] = np.maximum(v[out], np.float32(level) + np.float32(margin))
        return v

    return f


def reconstruct(points: Any, config=None, *, preset: str | None = "default", device: str = "auto",
                fit_kwargs: dict | None = None, report: dict | None = None):
    """A scan in, a mesh out: normalize → index → fit → extract → filter → refine.

    Parameters
    ----------
    points : path, PointCloud or (N, 3) array
    config : ReconstructionConfig, optional
        Every setting (default: ``preset``).
    device : str
        Where F is evaluated for meshing (the fit uses ``config.device``).
    fit_kwargs : dict, optional
        Passed to :func:`surfrec.fit` (callback, stop, checkpoint, overrides...).
    report : dict, optional
        Filled with ``result`` (the FitResult) and ``refine`` (the refinement's report).

    Returns
    -------
    trimesh.Trimesh
        In the scan's coordinates.
    """
    from .fitting import fit

    result = fit(points, preset=preset, config=config, **(fit_kwargs or {}))
    if report is not None:
        report["result"] = result
    return extract_mesh(result, device=device, report=report)
