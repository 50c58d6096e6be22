"""The path of a scan: fit → extract → filter → refine → surface → support map → mesh in
scan coordinates.

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
from .errors import EmptyLevelSetError
from .normalize import UNIT_HALF_EXTENT
from .validation import EXTRACT, SURFACES, check_choice, check_neighbors, check_padding, check_range
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
    surface: str | None = None,
    support_map: bool | None = None,
    trim: float | None = None,
    fill: float | None = None,
    neighbors: int | None = None,
    refine_config=None,
    extract_config: ExtractConfig | None = None,
    report: dict | None = None,
):
    """Marching cubes on a fitted model, filtered, refined, closed or opened, in the scan's
    coordinates, with its support map.

    Every setting left at None comes from ``extract_config`` (default: the model's
    ``config.extract``, see :class:`~surfrec.config.ExtractConfig` for their meaning);
    the refinement's from ``refine_config`` (default: ``config.refine``).

    Steps: extract → filter → refine → surface (``auto`` / ``closed`` / ``open``, measured
    against ``result.data_points``) → support map (``vertex_attributes["quality"]``).
    The surface step and the support map need the model's data points and run at the
    fitted level only (another level keeps the closed level set, without support map).

    Parameters
    ----------
    result : FitResult or path of a model file
    resolution, level, padding, method, components, normals_from_gradient, close_at_box, refine, surface,
    support_map, trim, fill, neighbors
        Override the matching :class:`~surfrec.config.ExtractConfig` field. ``level``
        None: the fitted level; refinement runs only at the fitted level, and not when
        the model holds no data points; ``near-data`` becomes ``all`` then too.
    device : str
        Where F is evaluated.
    progress : callable, optional
        ``progress(done, total)`` for progress bars.
    report : dict, optional
        Filled with what happened: ``refine`` (the refinement's report, or None),
        ``surface`` (the decision and its evidence: ``mode`` asked, ``surface`` chosen,
        ``phantom_closed`` and ``open_phantom`` in auto mode, ``source``, ``shell_level``
        and the candidates' cover when open, ``filled`` (share of the vertices moved onto
        the membrane) when ``fill`` > 0, ``trim`` and ``trimmed_area`` (share of the closed
        surface's area removed) when ``trim`` > 0, ``skipped`` when the step did not run),
        ``support`` (:class:`~surfrec.support.SupportReport` of the mesh written, as a dict
        in scan units, or None) and ``timings`` (seconds of ``extract``, ``filter``,
        ``refine`` and ``surface``). Plain Python values (``result.save_model`` stores ``surface``).

    Returns
    -------
    trimesh.Trimesh
        In input coordinates, faces oriented outward.
    """
    _check_overrides(resolution=resolution, level=level, padding=padding, trim=trim, fill=fill, neighbors=neighbors,
                     surface=surface)
    if not isinstance(result, FitResult):
        result = load_model(result)
    ec = mesh_settings(result, extract_config, resolution=resolution, level=level, padding=padding,
                       method=method, components=components, normals_from_gradient=normals_from_gradient,
                       close_at_box=close_at_box, refine=refine, surface=surface, support_map=support_map,
                       trim=trim, fill=fill, neighbors=neighbors)
    check_padding(ec.padding, result.config.box)  # the model's own box (the CLI checks box 1)
    dev = resolve_device(device)
    timings: dict[str, float] = {}
    lvl = result.config.level if ec.level is None else float(ec.level)
    at_fit = lvl == result.config.level
    data = result.data_points
    skipped = ("the model holds no data points" if data is None or len(data) < 2 else
               f"level {lvl:g} is not the fitted level {result.config.level:g}" if not at_fit else None)
    try:
        with torch_threads(result.config.threads):  # the fit's fixed count: same mesh on any machine
            mesh, cell = _extract(result, ec, dev, progress, timings)
    except EmptyLevelSetError:
        if ec.surface == "closed" or skipped is not None:
            raise
        mesh, cell = None, None  # no closed level set: the open surface may still be there
    mesh, info = _onto_data(mesh, result, ec, dev, cell, refine_config, lvl, skipped, timings)
    mesh, decision, support = _surface_step(mesh, result, ec, dev, skipped, timings)
    if report is not None:
        report["refine"] = info
        report["timings"] = timings
        report["surface"] = decision
        report["support"] = support
    return _to_scan(mesh, result, ec.normals_from_gradient)


def _check_overrides(*, surface, neighbors, **numbers) -> None:
    """The overrides given to :func:`extract_mesh`, checked before anything is loaded (the
    CLI's words); None: not given."""
    for name, value in numbers.items():
        if value is not None:
            check_range(name, value, EXTRACT[name])
    if neighbors is not None:
        check_neighbors("neighbors", neighbors)
    if surface is not None:
        check_choice("surface", surface, SURFACES)


def _onto_data(mesh, result: FitResult, ec: ExtractConfig, dev, cell, refine_config, lvl: float,
               skipped: str | None, timings: dict):
    """The steps between marching cubes and the surface step: an open fit's pre-trim, then
    the refinement onto the data (at the fitted level only). Returns (mesh, refine report)."""
    info = None
    at_fit = lvl == result.config.level
    if mesh is not None and skipped is None and _opens(result, ec):
        t0 = time.perf_counter()
        mesh = _pretrim(mesh, result, ec)
        timings["pretrim"] = time.perf_counter() - t0
    if mesh is not None and ec.refine and len(mesh.vertices) and result.data_points is not None and at_fit:
        from .refine import with_neighbors

        cfg = with_neighbors(refine_config if refine_config is not None else result.config.refine, ec.neighbors)
        t0 = time.perf_counter()
        with torch_threads(result.config.threads):
            mesh, info = _refine_onto_data(mesh, result, dev, cell, cfg, normals_ready=ec.normals_from_gradient)
        timings["refine"] = time.perf_counter() - t0
    elif ec.refine and not at_fit:
        log.info("refinement skipped: level %g is not the fitted level %g", lvl, result.config.level)
    return mesh, info


def _surface_step(mesh, result: FitResult, ec: ExtractConfig, dev, skipped: str | None, timings: dict):
    """The surface step and the support map, or why they are skipped: (mesh, decision, support)."""
    if skipped is not None:
        if ec.surface == "open":
            log.warning("surface 'open' not applied (the closed level set is kept): %s", skipped)
        elif ec.surface == "auto" or ec.support_map:
            log.info("surface step and support map skipped: %s", skipped)
        return mesh, {"mode": ec.surface, "surface": "closed", "skipped": skipped}, None
    t0 = time.perf_counter()
    with torch_threads(result.config.threads):
        mesh, decision, support = _surface_and_support(mesh, result, ec, dev)
    timings["surface"] = time.perf_counter() - t0
    return mesh, decision, support


def _opens(result: FitResult, ec: ExtractConfig) -> bool:
    """Whether the surface step will open the mesh of a field fitted as an open surface."""
    return result.fitted_open and ec.surface in ("auto", "open")


def _pretrim(mesh, result: FitResult, ec: ExtractConfig):
    """An open fit's mesh without the faces far from the scan (``pretrim_radius``), before
    the refinement (normalized coordinates)."""
    from .support import trim_unsupported

    sc = ec.surface_config
    trimmed, keep = trim_unsupported(mesh, result.data_points, sc.pretrim_radius, result.data_spacing(),
                                     tree=result.data_index())
    log.debug("open fit: %d of %d faces within %g spacings of the scan kept for the refinement",
              int(keep.sum()), len(keep), sc.pretrim_radius)
    return trimmed if len(trimmed.faces) else mesh


def _surface_and_support(mesh, result: FitResult, ec: ExtractConfig, dev):
    """The surface step and the support map (normalized coordinates; the support numbers
    are returned in scan units).

    Returns
    -------
    (trimesh.Trimesh, dict, dict or None)
        The mesh to write (``vertex_attributes["quality"]`` set when ``ec.support_map``), the
        surface decision with its evidence, and the support report of the mesh written.
    """
    from .support import SUPPORT_ATTRIBUTE, apply_surface_mode, measure_support, vertex_support

    sc = ec.surface_config
    data = np.asarray(result.data_points, dtype=np.float64)
    index = result.data_index()
    s = result.data_spacing()
    shell_ec = dataclasses.replace(ec, components="all")

    def extract_level(q: float):
        return _extract(result, dataclasses.replace(shell_ec, level=q), dev, None)[0]

    shape = result.shape or {}
    mode = "open" if ec.surface == "auto" and result.fitted_open else ec.surface
    shell = None if result.fitted_open and mesh is not None and len(mesh.faces) else extract_level
    mesh, decision, measured = apply_surface_mode(mesh, data, mode, sc, extract_level=shell,
                                                  field=result.field(dev), tree=index, spacing=s)
    decision = {**decision, "mode": ec.surface, **{k: v for k, v in shape.items() if k != "fit_surface"}}
    if ec.fill > 0 and decision["surface"] == "closed" and mesh is not None and len(mesh.faces):
        mesh, decision["filled"] = _fill_closed(mesh, data, ec.fill, s, index)
        decision["fill"] = ec.fill
        if decision["filled"]:
            measured = None  # vertices moved: the closed mesh's distances are measured again
    if ec.trim > 0 and decision["surface"] == "closed" and mesh is not None and len(mesh.faces):
        mesh, decision["trimmed_area"] = _trim_closed(mesh, data, ec.trim, s, index)
        decision["trim"] = ec.trim
        measured = None  # the closed mesh's distances no longer describe the mesh written
    decision = {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in decision.items()}
    log.debug("surface %s (%s%s)", decision["surface"], decision["mode"],
             f": closed-mesh phantom {decision['phantom_closed']:.3f}" if "phantom_closed" in decision else "")
    if not ec.support_map:
        return mesh, decision, None
    support = None
    if len(mesh.faces):
        rep = measure_support(mesh.vertices, mesh.faces, data, sc.support, seed=sc.seed, spacing=s, tree=index,
                              **(measured or {}))
        support = _in_scan_units(rep.as_dict(), result.normalization.scale)
        _warn(support, decision["surface"], sc)
    mesh.vertex_attributes[SUPPORT_ATTRIBUTE] = vertex_support(mesh.vertices, data, s, tree=index)
    return mesh, decision, support


def _fill_closed(mesh, data: np.ndarray, radius_s: float, spacing: float, index):
    """A closed mesh whose vertices farther than ``radius_s`` spacings from the (K, 3)
    ``data`` lie on the membrane the others span (:func:`surfrec.refine.membrane_fill`):
    (mesh, share of the vertices moved). The moved vertices get face normals (∇F is not
    the normal of the membrane); the others keep theirs."""
    import trimesh

    from .refine import membrane_fill
    from .support import vertex_support

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


def _trim_closed(mesh, data: np.ndarray, radius_s: float, spacing: float, index):
    """A closed mesh without the faces farther than ``radius_s`` spacings from the (K, 3)
    ``data`` (:func:`surfrec.support.trim_unsupported`): (mesh, share of the area removed).
    Vertex attributes (the ∇F normals) follow the kept vertices. When no face is that
    close, the mesh is returned untrimmed (share 0) with a warning."""
    from .support import trim_unsupported

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


def _in_scan_units(rep: dict, scale: float) -> dict:
    """A support report measured in normalized coordinates, in scan units (shares and
    ``_s`` values are scale-free)."""
    out = dict(rep)
    for key in ("spacing", "scan_to_mesh_mean", "mesh_to_scan_mean"):
        out[key] = float(rep[key] * scale)
    out["area"] = float(rep["area"] * scale * scale)
    return out


def _warn(support: dict, surface: str, sc) -> None:
    """Warnings of a poorly supported mesh (thresholds: ``SurfaceConfig.warn_*``)."""
    r = sc.support
    if surface == "closed" and support["phantom"] > sc.warn_phantom:
        log.warning("%.0f%% of the surface is farther than %.3g (%g point spacings) from every input point: "
                    "the scan looks open (a single view, or holes); those parts are extrapolated",
                    100 * support["phantom"], r.phantom_radius * support["spacing"], r.phantom_radius)
    if support["missed"] > sc.warn_missed:
        log.warning("%.0f%% of the input points are farther than %.3g (%g point spacings) from the mesh: the "
                    "surface misses part of the scan (open, single-view scans are the usual cause: a closed "
                    "surface fits them poorly); more iterations or a higher data weight may help",
                    100 * support["missed"], r.miss_radius * support["spacing"], r.miss_radius)


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
    """A scan in, a mesh out: normalize → index → fit → extract → filter → refine → surface
    → support map.

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
        Filled with ``result`` (the FitResult) and :func:`extract_mesh`'s report
        (``refine``, ``surface``, ``support``).

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
