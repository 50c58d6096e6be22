"""A reconstruction's story, gathered for its HTML report (:mod:`surfrec.evaluation.report`).

:func:`fit_report_data` collects, from a fitted model and its mesh, what the report page
shows: the mesh with its support map, the scan, level-set samples with their residuals
after Newton projection (the method's own objects), the raw level set of F, the loss
terms over the steps, the residual after k = 1…20 Newton steps, the stage times, the
surface decision and its evidence, cover / phantom, and the ground-truth scores when a
ground truth is given. :func:`report` writes the page (the Python API's
``surfrec.report``); :func:`bench_report_data` does the same for a bench folder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import InputError
from ..result import FitResult

log = logging.getLogger(__name__)

#: Seeds projected for the samples and the residual curve.
REPORT_SEEDS = 5000
#: Newton step counts of the residual curve; the samples shown are those after SAMPLE_STEPS.
CURVE_STEPS = tuple(range(1, 21))
SAMPLE_STEPS = 10
#: The mesh of another model: its vertices' median |F − c| above this (normalized units;
#: a refined mesh of the model lies within a few grid cells of its level set).
FOREIGN_MESH_RESIDUAL = 0.05


def _decision_rows(result: FitResult, surface, fit_side: tuple | None) -> list[tuple[str, str]]:
    """The surface decision and its evidence, in words."""
    rows: list[tuple[str, str]] = []
    inp, shape = result.input, result.shape
    if inp is not None:
        rows.append(("points read", f"{inp.points_read:,}"))
        if inp.duplicates or inp.near_duplicates:
            rows.append(("duplicates merged", f"{inp.duplicates:,} exact, {inp.near_duplicates:,} within "
                                              f"{inp.merge_tolerance:.3g}"))
        rows.append(("stray points", f"{inp.stray:,} ({'removed' if inp.stray_removed else 'kept'})"))
        if inp.far_outliers:
            rows.append(("far outliers ignored", f"{inp.far_outliers:,}"))
        rows.append(("point spacing s", f"{inp.scan_spacing:.4g} (scan units)"))
    if shape is not None and shape.closure is not None:
        verdict = ">" if shape.closure > (shape.open_closure or 0) else "<="
        rows.append(("closure of the scan's normals", f"{shape.closure:.3f} {verdict} {shape.open_closure:g}: "
                                                       f"fitted {shape.fit_surface}"))
    elif shape is not None:
        rows.append(("fitted as", f"{shape.fit_surface} ({shape.mode})"))
    if fit_side is not None and fit_side[0] is not None:
        rows.append(("side term", f"{'on' if fit_side[0] else 'off'} (trusted normals {fit_side[1]:.3f})"))
    if surface is not None:
        rows.append(("surface written", f"{surface.surface} (asked: {surface.mode})"))
        if surface.phantom_closed is not None:
            rows.append(("closed mesh's phantom share", f"{surface.phantom_closed:.3f} (opens above "
                                                        f"{surface.open_phantom:g})"))
        if surface.missed_closed is not None:
            rows.append(("scan missed by the closed mesh", f"{surface.missed_closed:.3f} (tries open above "
                                                           f"{surface.open_missed:g})"))
        if surface.filled:
            rows.append(("membrane fill", f"{surface.filled:.3f} of the vertices (beyond {surface.fill:g} s)"))
        if surface.trimmed_area is not None:
            rows.append(("trimmed share", f"{surface.trimmed_area:.3f} of the area (beyond {surface.trim:g} s)"))
        if surface.skipped:
            rows.append(("surface step skipped", surface.skipped))
    return rows


def _gt_metrics(mesh, gt) -> dict | None:
    if gt is None:
        return None
    from .metrics import evaluate

    scores = evaluate(mesh, gt, n_samples=100_000)
    keep = ("chamfer_l1", "chamfer_l2", "hausdorff", "normal_consistency")
    return {k: v for k, v in scores.items() if k in keep or k.startswith("fscore")}


def check_mesh_belongs(result: FitResult, mesh, source: Any = "mesh") -> None:
    """Refuse a mesh that is not a mesh of this model: its vertices far from the model's
    level set (median |F − c| above :data:`FOREIGN_MESH_RESIDUAL`) or outside its box."""
    v = np.asarray(mesh.vertices, dtype=np.float64)
    if len(v) == 0:
        raise InputError(source, "the mesh has no vertices")
    unit = result.normalization.to_unit(v)
    box = float(result.config.fit.box)
    inside = np.abs(unit).max(axis=1) <= box
    if inside.mean() < 0.9:
        raise InputError(source, "the mesh does not belong to the model: it lies outside the model's fitting box")
    sample = unit[inside][:: max(1, int(inside.sum()) // 20_000)]
    residual = np.abs(result.field()(sample.astype(np.float32)) - result.config.fit.level)
    if float(np.median(residual)) > FOREIGN_MESH_RESIDUAL:
        raise InputError(source, f"the mesh does not belong to the model: its vertices lie {np.median(residual):.3g} "
                                 f"from the model's level set (median, normalized units; a mesh of it lies within a "
                                 f"few grid cells)")


def fit_report_data(result: FitResult, mesh, *, raw=None, support=None, timings: dict | None = None,
                    gt: Any = None, command: str | None = None, title: str | None = None,
                    device: str = "cpu"):
    """Everything the report page of one reconstruction shows (:class:`FitReportData`).

    Parameters
    ----------
    result : FitResult
        The fitted model.
    mesh : trimesh.Trimesh
        Its mesh in scan coordinates (the support map as the vertex attribute ``quality``).
    raw : trimesh.Trimesh, optional
        The raw level set of F (before the refinement), in scan coordinates.
    support : SupportReport, optional
        Cover / phantom of the mesh (default: the model file's, else measured here).
    timings : dict, optional
        Stage -> seconds (default: the model's).
    gt : path or mesh, optional
        A ground truth: Chamfer, NC and F-score rows.
    command : str, optional
        The command line that made the result (default: the one stored with the model).
    """
    from ..surface.support import SUPPORT_ATTRIBUTE, measure_support
    from .report import FitReportData
    from .residuals import residual_report

    notes = []
    scan = None if result.data_points is None else result.normalization.to_input(result.data_points)
    rr = None
    if scan is not None:
        rr = residual_report(result, steps=CURVE_STEPS, n_seeds=REPORT_SEEDS, tol=1e-5, device=device,
                             keep_points=True)
    if support is None and scan is not None and len(mesh.faces):
        unit = result.normalization.to_unit(np.asarray(mesh.vertices, dtype=np.float64))
        support = measure_support(unit, mesh.faces, result.data_points, result.config.mesh.surface_config.support,
                                  seed=0, spacing=result.data_spacing(), tree=result.data_index()
                                  ).in_scan_units(result.normalization.scale)
        notes.append("cover and phantom measured against the points kept with the model")
    q = getattr(mesh, "vertex_attributes", {}).get(SUPPORT_ATTRIBUTE)
    if (q is None or len(q) != len(mesh.vertices)) and result.data_points is not None and len(mesh.vertices):
        from ..surface.support import vertex_support

        q = vertex_support(result.normalization.to_unit(np.asarray(mesh.vertices, dtype=np.float64)),
                           result.data_points, result.data_spacing(), tree=result.data_index())
        notes.append("support map measured against the points kept with the model")
    return FitReportData(
        title=title or os.path.basename(result.input.source if result.input else "reconstruction"),
        mesh_vertices=np.asarray(mesh.vertices), mesh_faces=np.asarray(mesh.faces),
        support=None if q is None else np.asarray(q, dtype=np.float64),
        scan_points=scan,
        samples=None if rr is None else rr.points[SAMPLE_STEPS],
        sample_residuals=None if rr is None else rr.residuals[SAMPLE_STEPS],
        raw_vertices=None if raw is None else np.asarray(raw.vertices),
        raw_faces=None if raw is None else np.asarray(raw.faces),
        history={k: list(v) for k, v in (result.history or {}).items()},
        residual_curve=[] if rr is None else [{"k": r["steps"], "median": r["median"], "p90": r["p90"],
                                               "converged": r["converged"]} for r in rr.rows],
        timings=dict(timings if timings is not None else result.timings or {}),
        decision=_decision_rows(result, result.surface, (result.closed_side, result.closed_side_share)),
        support_metrics=None if support is None else {k: getattr(support, k) for k in (
            "cover", "phantom", "missed", "scan_to_mesh_mean", "mesh_to_scan_mean", "scan_to_mesh_mean_s",
            "mesh_to_scan_mean_s", "spacing")},
        gt_metrics=_gt_metrics(mesh, gt), command=command or result.command or "", version=__version__,
        notes=notes + [f"samples: {REPORT_SEEDS} seeds drawn as the fit draws them, after {SAMPLE_STEPS} Newton "
                       f"steps; the curve starts them again for each k"])


def report(result, mesh=None, path: str | os.PathLike | None = None, *, gt: Any = None,
           command: str | None = None, device: str = "cpu"):
    """The report page of a reconstruction: written to ``path`` when given, and returned
    (in a notebook it shows inline).

    Parameters
    ----------
    result : Reconstruction or FitResult
        What :func:`surfrec.reconstruct` or :func:`surfrec.fit` returned (or
        :func:`surfrec.load_model`).
    mesh : trimesh.Trimesh, optional
        Its mesh (default: the Reconstruction's, or meshed here with the model's settings).
    path : path, optional
        Where to write the page (one offline HTML file, written atomically).
    gt : path or mesh, optional
        A ground truth: Chamfer, NC and F-score rows.

    Returns
    -------
    HtmlReport
    """
    from ..device import resolve_device
    from ..io import check_output
    from ..run import Reconstruction, mesh_stages
    from .report import fit_report

    device = str(resolve_device(device))

    if path is not None:
        check_output(path, suffixes=(".html", ".htm"))
    raw = support = timings = None
    if isinstance(result, Reconstruction):
        mesh = result.mesh if mesh is None else mesh
        raw, support, timings = result.report.raw, result.report.support, result.report.timings.as_dict()
        result = result.result
    if mesh is None:
        mesh, rep = mesh_stages(result, device=device, keep_raw=True)
        raw, support = rep.raw, rep.support
        timings = {**(result.timings or {}), **rep.timings}
    else:
        check_mesh_belongs(result, mesh)
    page = fit_report(fit_report_data(result, mesh, raw=raw, support=support, timings=timings, gt=gt,
                                      command=command, device=device))
    if path is not None:
        page.write(path)
    return page


def bench_report_data(out: str | os.PathLike, rows: list[dict]) -> dict:
    """The meshes of a bench run (``OUT/meshes/CASE__METHOD.ply``), per case and method,
    for :func:`surfrec.evaluation.report.bench_report`."""
    import trimesh

    from ..surface.support import read_support
    from .report import BenchMesh

    cases: dict[str, dict] = {}
    for r in rows:
        path = Path(out) / "meshes" / f"{r['case']}__{r['method']}.ply"
        if r.get("status") != "ok" or not path.is_file():
            continue
        m = trimesh.load(path, process=False, force="mesh")
        cases.setdefault(r["case"], {})[r["method"]] = BenchMesh(np.asarray(m.vertices), np.asarray(m.faces),
                                                                 read_support(path))
    return cases


__all__ = ["fit_report_data", "report", "bench_report_data", "check_mesh_belongs"]
