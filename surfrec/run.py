"""The path of a scan, in one place: read → inspect → fit → extract → refine → surface →
support → write.

Every entry point calls this module: ``surfrec fit`` and the Python API
(:func:`reconstruct`, :func:`fit`), ``surfrec mesh`` and :func:`extract_mesh` (the stages
after the fit, replayed from a model: :func:`mesh_stages`), ``surfrec batch`` and
``surfrec bench``. Each stage is a module of its own and takes the typed result of the one
before it:

==========  ===========================================  ====================================
stage       module                                       result
==========  ===========================================  ====================================
read        :func:`surfrec.io.load_points`               :class:`~surfrec.io.PointCloud`
inspect     :func:`surfrec.input.inspect.inspect_scan`   :class:`~surfrec.input.inspect.Scan`
decide      :func:`surfrec.surface.decide.fit_shape`     :class:`~surfrec.surface.decide.ShapeDecision`
fit         :func:`surfrec.field.train.train_field`      :class:`~surfrec.field.train.FieldFit`
extract     :func:`surfrec.surface.extract.extract_level_set`  mesh, cell size
refine      :func:`surfrec.surface.refine.refine_mesh`   :class:`~surfrec.surface.refine.RefineReport`
surface     :func:`surfrec.surface.decide.surface_step`  :class:`~surfrec.surface.decide.SurfaceDecision`
fill, trim  :mod:`surfrec.surface.fill`                  the closed mesh
support     :mod:`surfrec.surface.support`               :class:`~surfrec.surface.support.SupportReport`
write       :func:`surfrec.io.save_mesh`, :func:`surfrec.result.save_model`
==========  ===========================================  ====================================

Settings are applied once, here (:func:`surfrec.settings.get_config`). A fit is never lost:
when a stage after it fails, :func:`reconstruct` saves the model first and raises
:class:`~surfrec.errors.StageError`, whose one line names the stage and the command that
meshes the saved model again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import EmptyLevelSetError, InputError, StageError
from .input.inspect import InputReport, inspect_scan
from .io import PointCloud, check_output, load_points
from .result import FitResult, load_model, save_model
from .settings import MeshConfig, ReconstructionConfig, get_config, with_overrides
from .settings.mesh import max_padding
from .surface.decide import ShapeDecision, SurfaceDecision, fit_shape
from .surface.refine import RefineReport
from .surface.support import SupportReport
from .validation import Range

log = logging.getLogger(__name__)

__all__ = ["reconstruct", "fit", "extract_mesh", "mesh_stages", "read_scan", "Reconstruction", "RunReport",
           "MeshReport", "StageTimings", "summary_line"]

#: Model files written by the runner.
MODEL_SUFFIXES = (".pt",)


# ----------------------------------------------------------------------------- reports
@dataclass
class StageTimings:
    """Seconds of each stage of a reconstruction (None: the stage did not run)."""

    read: float | None = None
    inspect: float | None = None
    index: float | None = None
    orient: float | None = None
    sigma: float | None = None
    sides: float | None = None
    start: float | None = None
    """The fit's start: the network built, the engine started (compiled kernels loaded), the
    first level-set samples projected."""
    fit: float | None = None
    extract: float | None = None
    filter: float | None = None
    pretrim: float | None = None
    refine: float | None = None
    surface: float | None = None
    fill: float | None = None
    trim: float | None = None
    support: float | None = None
    write: float | None = None

    def update(self, seconds: dict[str, float]) -> None:
        """Take the stages' own timings (unknown names are ignored)."""
        for k, v in seconds.items():
            if hasattr(self, k):
                setattr(self, k, float(v))

    def as_dict(self) -> dict[str, float]:
        """The stages that ran, in the order a scan passes them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    def line(self) -> str:
        """The stages that ran, one ``name seconds`` item each, on one line."""
        return ", ".join(f"{k} {v:.2f} s" for k, v in self.as_dict().items())


@dataclass
class MeshReport:
    """What the stages after the fit did (:func:`mesh_stages`)."""

    refine: RefineReport | None
    """The refinement's report (None: it did not run)."""
    surface: SurfaceDecision
    """The surface step's decision and its evidence."""
    support: SupportReport | None
    """Cover, phantom and the one-sided distances of the mesh written, in scan units
    (None: no support map)."""
    timings: dict
    """Seconds of ``extract``, ``filter``, ``pretrim``, ``refine``, ``surface``, ``fill``,
    ``trim`` and ``support``."""
    raw: Any = None
    """The raw level set of F (marching cubes, before refinement), in the scan's
    coordinates (trimesh.Trimesh); kept only when asked (``keep_raw``)."""


@dataclass
class FitSummary:
    """How the fit went."""

    steps: int
    iterations: int
    seconds: float
    stopped_by: str
    closed_side: bool | None = None
    closed_side_share: float | None = None


@dataclass
class RunReport:
    """Every stage's report of one reconstruction."""

    input: InputReport | None
    shape: ShapeDecision | None
    fit: FitSummary
    refine: RefineReport | None
    surface: SurfaceDecision
    support: SupportReport | None
    timings: StageTimings
    raw: Any = None
    """The raw level set of F in the scan's coordinates (``reconstruct(keep_raw=True)``)."""

    def summary(self, stray: bool = True) -> str:
        """One line: the surface decision and its evidence, cover and phantom, stray points."""
        inp = self.input if stray else None
        return summary_line(self.surface, self.support, shape=self.shape, closed_side=self.fit.closed_side,
                            closed_side_share=self.fit.closed_side_share,
                            stray=None if inp is None else inp.stray,
                            n_points=None if inp is None else inp.points_read,
                            removed=bool(inp and inp.stray_removed),
                            merged=0 if inp is None else inp.duplicates + inp.near_duplicates)


@dataclass
class Reconstruction:
    """What :func:`reconstruct` returns."""

    mesh: Any
    """The mesh (trimesh.Trimesh), in the scan's coordinates, with its support map."""
    result: FitResult
    """The fitted model (save it with :func:`surfrec.save_model`)."""
    report: RunReport
    """Every stage's report."""


class StageTracker:
    """The stage a reconstruction is in (what a failure's message names)."""

    def __init__(self) -> None:
        self.name = "reading"


# ------------------------------------------------------------------------------- read
def read_scan(source: Any, normals: Any = None) -> PointCloud:
    """A scan from a path, a :class:`~surfrec.io.PointCloud` or an (N, 3) array (checked as
    the file readers check); given ``normals`` replace the file's."""
    if not isinstance(source, (str, os.PathLike, PointCloud)):
        return PointCloud.from_arrays(source, normals)
    cloud = load_points(source) if not isinstance(source, PointCloud) else source
    if normals is not None:
        cloud = PointCloud.from_arrays(cloud.points, normals, source=cloud.source)
    return cloud


# -------------------------------------------------------------------------------- fit
def _settings(preset, config, overrides: dict, saved: dict | None) -> ReconstructionConfig:
    """The settings, applied once: a checkpoint's (its mesh stage overridable), or the
    preset / config with ``overrides``."""
    if saved is not None:
        cfg = ReconstructionConfig.from_dict(saved["config"])
        mesh_names = {f.name for f in dataclasses.fields(MeshConfig)}
        given = {k: v for k, v in overrides.items() if k in mesh_names or k.startswith("mesh.")}
        return with_overrides(cfg, stages=("mesh",), **given)
    return get_config(config if config is not None else preset, **overrides)


def _needs_orientation(cfg: ReconstructionConfig) -> bool:
    """The surface decision (auto, open) and the closed fit's side and sign terms need the
    scan's oriented normals."""
    return cfg.mesh.surface != "closed" or cfg.fit.sign_weight > 0 or cfg.fit.closed_side_weight > 0


def _fit(cloud: PointCloud, cfg: ReconstructionConfig, *, callback=None, stop=None, checkpoint=None,
         saved: dict | None = None, resume: Any = None, on_step=None, read_seconds: float = 0.0) -> FitResult:
    """inspect → decide → fit, on a read scan."""
    from .device import torch_threads
    from .field.train import Checkpoint, train_field

    with torch_threads(cfg.fit.threads):
        scan = inspect_scan(cloud, cfg.input, box=cfg.fit.box, seed=cfg.fit.seed, orient=_needs_orientation(cfg))
    if saved is not None and saved.get("fingerprint") != scan.fingerprint:
        raise InputError(resume, f"checkpoint was made from another scan than {cloud.source}")
    shape = fit_shape(scan.orientation, cfg.mesh.surface, cfg.mesh.surface_config)
    ckpt = None if checkpoint is None else Checkpoint(checkpoint, {"config": cfg.to_dict(),
                                                                   "fingerprint": scan.fingerprint})
    field = train_field(scan, shape.open, cfg.fit, callback=callback, stop=stop, checkpoint=ckpt, resume=saved,
                        on_step=on_step)
    return FitResult(model=field.model, normalization=scan.normalization, config=cfg, history=field.history,
                     seconds=field.seconds, steps=field.steps, data_points=scan.data_points, index=scan.data_index,
                     stopped_by=field.stopped_by, timings={"read": read_seconds, **scan.timings, **field.timings},
                     input=scan.report, shape=shape, closed_side=field.closed_side,
                     closed_side_share=field.closed_side_share)


def fit(points: Any, normals: Any = None, *, preset: str | ReconstructionConfig | None = "default",
        config: ReconstructionConfig | None = None, callback: Callable[[int, int, dict], None] | None = None,
        stop: Callable[[], bool] | None = None, checkpoint: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None, on_step: Callable | None = None, **overrides: Any) -> FitResult:
    """Fit a neural level set to a scan: read → inspect → decide → fit.

    Parameters
    ----------
    points : str, PathLike, PointCloud or (N, 3) array
        The scan (a file is read with :func:`surfrec.io.load_points`).
    normals : (N, 3) array, optional
        Normals (used only when ``normal_weight > 0``).
    preset : str or ReconstructionConfig
        ``fast``, ``default`` or ``quality`` (ignored when ``config`` is given).
    config : ReconstructionConfig, optional
        Every setting.
    callback : callable, optional
        ``callback(step, total_steps, metrics)`` after each recorded step (progress bars).
    stop : callable, optional
        Polled between steps; when it returns True the state is saved to ``checkpoint``
        and :class:`~surfrec.errors.FitInterrupted` is raised.
    checkpoint : path, optional
        Where an interrupted fit saves its state.
    resume : path, optional
        A checkpoint to continue from: its settings are used (mesh settings may still be
        overridden) and the scan must be the one it was made from. The result is the
        uninterrupted fit's when ``iterations`` ends it, on the same device.
    on_step : callable, optional
        ``on_step(state)`` after every optimizer step; returning True ends the fit.
    **overrides
        Settings to replace, by name (``iterations=200``, ``fill=0``; see
        :func:`surfrec.settings.with_overrides`).

    Returns
    -------
    FitResult
    """
    from .field.train import load_checkpoint

    t0 = time.perf_counter()
    cloud = read_scan(points, normals)
    read_seconds = time.perf_counter() - t0
    saved = load_checkpoint(resume) if resume is not None else None
    cfg = _settings(preset, config, overrides, saved)
    return _fit(cloud, cfg, callback=callback, stop=stop, checkpoint=checkpoint, saved=saved, resume=resume,
                on_step=on_step, read_seconds=read_seconds)


# ------------------------------------------------------------------ the stages after it
def mesh_stages(result: FitResult, config: MeshConfig | None = None, *, device: str = "auto",
                progress: Callable[[int, int], None] | None = None,
                tracker: StageTracker | None = None, keep_raw: bool = False) -> tuple[Any, MeshReport]:
    """extract → pretrim (open fits) → refine → surface → fill / trim → support map, from a
    fitted model, with the mesh settings ``config`` (default: the model's).

    The surface step and the support map need the model's scan points and run at the
    fitted level only (another level keeps the closed level set, without support map).
    With ``keep_raw`` the report keeps a copy of the raw level set (for the HTML report).

    Returns
    -------
    (trimesh.Trimesh, MeshReport)
        The mesh in the scan's coordinates (faces oriented outward), and what each stage did.
    """
    from .device import resolve_device, torch_threads

    ec = config if config is not None else result.config.mesh
    Range(0, max_padding(result.config.fit.box), note="the box must stay inside the fitting box").check(
        "padding", ec.padding)
    tracker = tracker or StageTracker()
    dev = resolve_device(device)
    timings: dict[str, float] = {}
    fit_level = result.config.fit.level
    lvl = fit_level if ec.level is None else float(ec.level)
    data = result.scan_points()
    skipped = ("the model holds no data points" if data is None else
               f"level {lvl:g} is not the fitted level {fit_level:g}" if lvl != fit_level else None)
    field = result.fitted(dev)
    try:
        with torch_threads(1):  # torch's own threads would change the bits with the machine
            tracker.name = "meshing"
            mesh, cell = _extract(field, ec, lvl, data, skipped, progress, timings)
            raw = None if mesh is None or not keep_raw else _to_scan(mesh.copy(), result, False)
            mesh, refined = _onto_data(mesh, field, data, ec, cell, skipped, result.fitted_open, timings, tracker)
            mesh, decision, support = _surface(mesh, field, data, ec, skipped, result, timings, tracker)
    finally:
        field.close()
    report = MeshReport(refine=refined, surface=decision, support=support, timings=timings, raw=raw)
    return _to_scan(mesh, result, ec.normals_from_gradient), report


def _extract(field, ec: MeshConfig, level: float, data, skipped: str | None, progress, timings: dict):
    """Marching cubes; (None, None) when F never crosses the level but an open surface may still be there."""
    from .surface.extract import extract_level_set

    try:
        return extract_level_set(field, ec, level, data, progress, timings)
    except EmptyLevelSetError:
        if ec.surface == "closed" or skipped is not None:
            raise
        return None, None


def _onto_data(mesh, field, data, ec: MeshConfig, cell, skipped: str | None, fitted_open: bool, timings: dict,
               tracker: StageTracker):
    """An open fit's pre-trim, then the refinement onto the scan (at the fitted level only)."""
    from .surface.refine import refine_mesh, with_neighbors
    from .surface.support import trim_unsupported

    if mesh is not None and skipped is None and fitted_open and ec.surface in ("auto", "open"):
        t0 = time.perf_counter()
        sc = ec.surface_config
        trimmed, keep = trim_unsupported(mesh, data.points, sc.pretrim_radius, data.spacing, tree=data.index)
        log.debug("open fit: %d of %d faces within %g spacings of the scan kept for the refinement",
                  int(keep.sum()), len(keep), sc.pretrim_radius)
        mesh = trimmed if len(trimmed.faces) else mesh
        timings["pretrim"] = time.perf_counter() - t0
    if mesh is not None and ec.refine and len(mesh.vertices) and skipped is None:
        tracker.name = "refinement"
        t0 = time.perf_counter()
        mesh, report = refine_mesh(mesh, field, data, cell, with_neighbors(ec.refine_config, ec.neighbors),
                                   normals_ready=ec.normals_from_gradient)
        timings["refine"] = time.perf_counter() - t0
        return mesh, report
    if ec.refine and skipped is not None and data is not None:
        log.info("refinement skipped: %s", skipped)
    return mesh, None


def _surface(mesh, field, data, ec: MeshConfig, skipped: str | None, result: FitResult, timings: dict,
             tracker: StageTracker):
    """The surface step, the fill or trim of a closed surface, and the support map:
    (mesh, decision, support report in scan units)."""
    from .surface.decide import surface_step
    from .surface.fill import fill_closed, trim_closed
    from .surface.support import SUPPORT_ATTRIBUTE, measure_support, vertex_support, warn_unsupported

    if skipped is not None:
        if ec.surface == "open":
            log.warning("surface 'open' not applied (the closed level set is kept): %s", skipped)
        elif ec.surface == "auto" or ec.support_map:
            log.info("surface step and support map skipped: %s", skipped)
        return mesh, SurfaceDecision(mode=ec.surface, surface="closed", skipped=skipped), None
    tracker.name = "surface step"
    t0 = time.perf_counter()
    mesh, decision, measured = surface_step(mesh, field, data, ec, result.fitted_open)
    closed = decision.surface == "closed" and mesh is not None and len(mesh.faces)
    t1 = time.perf_counter()
    timings["surface"] = t1 - t0
    if ec.fill > 0 and closed:
        mesh, decision.filled = fill_closed(mesh, data.points, ec.fill, data.spacing, data.index)
        decision.fill = ec.fill
        if decision.filled:
            measured = None  # vertices moved: the closed mesh's distances are measured again
        timings["fill"] = time.perf_counter() - t1
    if ec.trim > 0 and closed:
        t2 = time.perf_counter()
        mesh, decision.trimmed_area = trim_closed(mesh, data.points, ec.trim, data.spacing, data.index)
        decision.trim = ec.trim
        measured = None  # the closed mesh's distances no longer describe the mesh written
        timings["trim"] = time.perf_counter() - t2
    log.debug("surface %s (%s%s)", decision.surface, decision.mode,
              f": closed-mesh phantom {decision.phantom_closed:.3f}" if decision.phantom_closed is not None else "")
    if not ec.support_map:
        return mesh, decision, None
    tracker.name = "support map"
    t3 = time.perf_counter()
    sc = ec.surface_config
    support = None
    pts = np.asarray(data.points, dtype=np.float64)
    if len(mesh.faces):
        rep = measure_support(mesh.vertices, mesh.faces, pts, sc.support, seed=sc.seed, spacing=data.spacing,
                              tree=data.index, **(measured or {}))
        support = rep.in_scan_units(result.normalization.scale)
        warn_unsupported(support, decision.surface, sc)
    mesh.vertex_attributes[SUPPORT_ATTRIBUTE] = vertex_support(mesh.vertices, pts, data.spacing, tree=data.index)
    timings["support"] = time.perf_counter() - t3
    return mesh, decision, support


def _to_scan(mesh, result: FitResult, keep_normals: bool):
    """The mesh mapped to the scan's coordinates (gradient normals kept: a similarity)."""
    normals = mesh.vertex_normals.copy() if keep_normals and len(mesh.vertices) else None
    mesh.vertices = result.normalization.to_input(mesh.vertices)
    if normals is not None:
        mesh.vertex_normals = normals
    return mesh


def extract_mesh(result: FitResult | str | os.PathLike, resolution: int | None = None, level: float | None = None,
                 *, device: str = "auto", progress: Callable[[int, int], None] | None = None,
                 config: MeshConfig | None = None, **overrides: Any):
    """The mesh of a fitted model: :func:`mesh_stages` with the model's mesh settings
    (or ``config``), fields replaced by the non-None ``resolution``, ``level`` and
    ``overrides`` (:class:`~surfrec.settings.MeshConfig` names: ``refine=False``,
    ``surface="open"``, ``fill=0`` ...).

    Returns
    -------
    trimesh.Trimesh
        In the scan's coordinates, faces oriented outward, with the support map as the
        vertex attribute ``quality``.
    """
    if not isinstance(result, FitResult):
        mesh_config(None, config, resolution=resolution, level=level, **overrides)  # bad values: before loading
        result = load_model(result)
    ec = mesh_config(result, config, resolution=resolution, level=level, **overrides)
    return mesh_stages(result, ec, device=device, progress=progress)[0]


def mesh_config(result: FitResult | None, config: MeshConfig | None = None, **overrides: Any) -> MeshConfig:
    """The mesh settings: ``config`` (default: the model's, or the defaults without a model)
    with the non-None ``overrides`` replaced (checked: one line for a bad value)."""
    base = config if config is not None else result.config.mesh if result is not None else MeshConfig()
    given = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **given) if given else base


# --------------------------------------------------------------------- the whole path
def reconstruct(source: Any, *, preset: str | ReconstructionConfig | None = "default",
                config: ReconstructionConfig | None = None, output: str | os.PathLike | None = None,
                model_path: str | os.PathLike | None = None, normals: Any = None,
                callback: Callable[[int, int, dict], None] | None = None,
                progress: Callable[[int, int], None] | None = None, stop: Callable[[], bool] | None = None,
                checkpoint: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
                keep_raw: bool = False, command: str = "", **overrides: Any) -> Reconstruction:
    """A scan in, a mesh out: read → inspect → fit → extract → refine → surface → support → write.

    Parameters
    ----------
    source : str, PathLike, PointCloud or (N, 3) array
        The scan.
    preset, config, **overrides
        The settings (as :func:`fit`); overrides by name, e.g. ``iterations=300, fill=0``.
    output : path, optional
        Where the mesh is written (PLY, OBJ, STL, OFF, GLB); None: not written.
    model_path : path, optional
        Where the fitted model is written (after meshing, with the surface decision).
    normals : (N, 3) array, optional
        Scan normals replacing the file's.
    callback, stop, checkpoint, resume
        As :func:`fit`.
    progress : callable, optional
        ``progress(done, total)`` of the meshing.
    keep_raw : bool
        Keep the raw level set of F in the report (``report.raw``; the HTML report shows it).
    command : str
        The command line that asked for the reconstruction (saved with the model).

    Returns
    -------
    Reconstruction
        The mesh (scan coordinates), the fitted model and every stage's report.

    Raises
    ------
    StageError
        A stage after the fit failed; the model was saved first (to ``model_path``, else
        beside ``output`` as ``<output>.model.pt``) and the message says how to mesh it again.
    """
    from .field.train import load_checkpoint

    protect = (source,) if isinstance(source, (str, os.PathLike)) else ()
    if output is not None:
        from .io import SUPPORTED_MESH_EXTENSIONS

        check_output(output, suffixes=SUPPORTED_MESH_EXTENSIONS, protect=protect)
    if model_path is not None:
        check_output(model_path, protect=(*protect, *([output] if output is not None else [])))
    t0 = time.perf_counter()
    cloud = read_scan(source, normals)
    read_seconds = time.perf_counter() - t0
    saved = load_checkpoint(resume) if resume is not None else None
    cfg = _settings(preset, config, overrides, saved)
    result = _fit(cloud, cfg, callback=callback, stop=stop, checkpoint=checkpoint, saved=saved, resume=resume,
                  read_seconds=read_seconds)
    result.command = command
    tracker = StageTracker()
    try:
        mesh, mesh_report = mesh_stages(result, device=cfg.fit.device, progress=progress, tracker=tracker,
                                        keep_raw=keep_raw)
        result.surface = mesh_report.surface
        tracker.name = "writing"
        t_write = _write(mesh, result, output, model_path, protect)
    except Exception as exc:  # noqa: BLE001 - whatever failed, the fit is saved first
        raise _rescue(exc, tracker.name, result, output, model_path) from exc
    timings = StageTimings()
    timings.update({**result.timings, **mesh_report.timings, "write": t_write})
    fit_summary = FitSummary(steps=result.steps, iterations=cfg.fit.iterations, seconds=result.seconds,
                             stopped_by=result.stopped_by, closed_side=result.closed_side,
                             closed_side_share=result.closed_side_share)
    report = RunReport(input=result.input, shape=result.shape, fit=fit_summary, refine=mesh_report.refine,
                       surface=mesh_report.surface, support=mesh_report.support, timings=timings,
                       raw=mesh_report.raw)
    log.debug("time: %s", timings.line())
    return Reconstruction(mesh=mesh, result=result, report=report)


def _write(mesh, result: FitResult, output, model_path, protect) -> float:
    """The model (with the surface decision), then the mesh; seconds of the mesh's write."""
    from .io import save_mesh

    if model_path is not None:
        save_model(result, model_path)
    t0 = time.perf_counter()
    if output is not None:
        save_mesh(mesh, output, protect=protect)
    return time.perf_counter() - t0


def _rescue(exc: Exception, stage: str, result: FitResult, output, model_path) -> StageError:
    """After a failure past the fit: the model saved (where the run would have put it, or
    beside the mesh), and the one-line error that says how to mesh it again."""
    path = model_path if model_path is not None else (None if output is None else f"{os.fspath(output)}.model.pt")
    saved = None
    if path is not None:
        try:
            save_model(result, path)
            saved = os.fspath(path)
        except Exception as save_exc:  # noqa: BLE001 - report the first failure
            log.error("could not save the model to %s: %s", path, save_exc)
    command = None if saved is None else f"surfrec mesh {saved} -o {os.fspath(output or Path(saved).with_suffix('.ply'))}"
    err = StageError(stage, exc, saved, command)
    err.result = result
    return err


# ------------------------------------------------------------------------ the summary
def _share_vs(what: str, value: float, threshold: float | None) -> str:
    """``closed-mesh phantom 0.012 <= 0.25``: a measured share and its threshold."""
    return f"{what} {value:.3f}" + ("" if threshold is None else f" {'>' if value > threshold else '<='} {threshold:g}")


def _evidence(d: SurfaceDecision, shape: ShapeDecision | None, closed_side: bool | None,
              closed_side_share: float | None) -> list[str]:
    """The decision's evidence, in words."""
    ev = []
    if shape is not None and d.skipped is None and shape.closure is not None:
        ev.append(_share_vs("closure of the scan normals", shape.closure, shape.open_closure)
                  + (f", {shape.pieces} pieces" if (shape.pieces or 1) > 1 else ""))
    if d.phantom_closed is not None:
        ev.append(_share_vs("closed-mesh phantom", d.phantom_closed, d.open_phantom))
    if d.missed_closed is not None:
        ev.append(_share_vs("scan missed by it", d.missed_closed, d.open_missed))
    if d.cover_closed_untrimmed is not None:
        best = max(d.cover_shell or 0.0, d.cover_closed or 0.0)
        ev.append(f"open surface tried: cover {best:.3f} vs closed {d.cover_closed_untrimmed:.3f}"
                  + (" (gain below " if d.surface == "closed" else " (gain at least ") + f"{d.open_cover_gain:g})")
    if d.source and d.surface == "open":
        ev.append({"closed": "the level set trimmed to the scan",
                   "shell": "a shell level set around the scan, trimmed"}.get(d.source, f"the {d.source} candidate"))
    if d.filled:
        ev.append(f"{d.filled:.3f} of the vertices beyond {d.fill:g} s on the membrane fill")
    if d.trimmed_area is not None:
        ev.append(f"trimmed beyond {d.trim:g} s: {d.trimmed_area:.3f} of the area removed, not watertight")
    if closed_side is not None and d.skipped is None:
        ev.append(f"side term {'on' if closed_side else 'off'} (trusted normals {closed_side_share:.3f})")
    if d.skipped:
        ev.append(d.skipped)
    return ev


def summary_line(surface: SurfaceDecision | None, support: SupportReport | None, *,
                 shape: ShapeDecision | None = None, closed_side: bool | None = None,
                 closed_side_share: float | None = None, stray: int | None = None, n_points: int | None = None,
                 removed: bool = False, merged: int = 0) -> str:
    """One line: the surface decision and its evidence, cover and phantom of the mesh
    written, the duplicates merged and the stray points (when counted)."""
    from .surface.support import SUPPORT_ATTRIBUTE

    parts = []
    if surface is not None:
        ev = _evidence(surface, shape, closed_side, closed_side_share)
        parts.append(f"surface {surface.surface} ({surface.mode}" + (": " + "; ".join(ev) if ev else "") + ")")
    if support is not None:
        parts.append(f"cover {support.cover:.3f}, phantom {support.phantom:.3f} (scan spacing s {support.spacing:.4g})")
    if merged:
        parts.append(f"{merged} duplicate points merged" + (f" ({100 * merged / n_points:.1f}%)" if n_points else ""))
    if stray is not None:
        kept = "removed" if removed else "kept"
        share = f" ({100 * stray / n_points:.2f}%, {kept})" if n_points else f" ({kept})"
        parts.append(f"{stray} stray points{share}")
    if support is not None:
        parts.append(f"per-vertex distance to the scan in s is the PLY property '{SUPPORT_ATTRIBUTE}'")
    return "; ".join(parts)
