"""Fitted models: the :class:`FitResult`, model files, and mesh export in scan coordinates."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from . import __version__
from .device import resolve_device
from .errors import InputError
from .levelset import value_and_grad
from .model import ImplicitMLP, build_model
from .normalize import UNIT_HALF_EXTENT, Normalization
from .validation import EXTRACT, check_padding, check_range

if TYPE_CHECKING:
    from .refine import RefineConfig

    from .fitting import FitConfig

log = logging.getLogger(__name__)

#: Points per network pass when evaluating F on grids (passes of ~16k points are ~1.5x
#: faster on CPU than one huge pass: the activations stay in cache).
FIELD_BATCH = 16_384

#: Version of the model-file layout; files with another layout are refused.
MODEL_FORMAT = 1


@dataclass
class FitResult:
    """What :func:`fit` returns (and :func:`load_model` restores).

    Attributes
    ----------
    model : ImplicitMLP
        The fitted network, in normalized coordinates, on CPU after fitting.
    normalization : Normalization
        Maps normalized coordinates back to the scan's coordinates.
    config : FitConfig
        The resolved configuration.
    history : dict[str, list[float]]
        Per-record values: step, time, lr, loss, surface, data, distance, residual_median,
        residual_p90, converged (share of samples with residual < sample_tol).
    seconds : float
        Wall-clock time of the optimization.
    steps : int
        Steps performed.
    data_points : (K, 3) float32 ndarray or None
        A subsample of the input in normalized coordinates (for near-data cleanup).
    """

    model: ImplicitMLP
    normalization: Normalization
    config: "FitConfig"
    history: dict[str, list[float]]
    seconds: float
    steps: int
    data_points: np.ndarray | None = None

    def field(self, device: str | torch.device = "cpu") -> Callable[[np.ndarray], np.ndarray]:
        """F as a numpy function of normalized points: (M,3) float32 → (M,) float32."""
        model = self.model.to(device).eval()

        def f(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
                return torch.cat([model(c) for c in t.split(FIELD_BATCH)]).float().cpu().numpy()

        return f

    def gradient(self, device: str | torch.device = "cpu") -> Callable[[np.ndarray], np.ndarray]:
        """∇F as a numpy function of normalized points: (M,3) float32 → (M,3) float32."""
        model = self.model.to(device).eval()

        def g(x: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
            return torch.cat([value_and_grad(model, c)[1] for c in t.split(FIELD_BATCH)]).float().cpu().numpy()

        return g


# ----------------------------------------------------------------------- mesh export
def extract_mesh(
    result: "FitResult | str | os.PathLike",
    resolution: int = 256,
    level: float | None = None,
    *,
    padding: float = 0.05,
    method: str = "auto",
    components: str = "near-data",
    device: str = "auto",
    normals_from_gradient: bool = True,
    progress: Callable[[int, int], None] | None = None,
    close_at_box: bool = True,
    refine: bool = True,
    refine_config: "RefineConfig | None" = None,
    report: dict | None = None,
):
    """Marching cubes on a fitted model, returned in the scan's coordinates.

    Parameters
    ----------
    result : FitResult or path of a model file
    resolution : int
        Grid samples along the box's largest side.
    level : float, optional
        Level c (in F's normalized units); default: the level the model was fitted to.
    padding : float
        Extra margin around the data's box, as a fraction of its largest side.
    method : str
        ``dense``, ``narrowband`` or ``auto``.
    components : str
        ``all``, ``largest`` or ``near-data`` (the default: drops stray pieces of level
        set off the scan; ``all`` when the model holds no data points).
    device : str
        Where F is evaluated.
    normals_from_gradient : bool
        Vertex normals from ∇F instead of face averages.
    progress : callable, optional
        ``progress(done, total)`` for progress bars.
    close_at_box : bool
        Treat the faces of the extraction box as outside (F > c there), so that a level
        set reaching the box is capped and the mesh is always closed.
    refine : bool
        Move the vertices along their normals onto the local surface of the input points
        (:mod:`surfrec.refine`): recovers detail the small network rounds off. Only at the
        fitted level (an offset level set stays the level set of F); skipped automatically
        on scans sparser than the grid, and when the model holds no data points.
    refine_config : RefineConfig, optional
        Settings of the refinement (default: the fit's ``config.refine``).
    report : dict, optional
        Filled with what happened: ``refine`` (the refinement's report, or None).

    Returns
    -------
    trimesh.Trimesh
        In input coordinates, faces oriented outward.
    """
    from .mesh import extract_mesh_from_field

    check_range("resolution", resolution, EXTRACT["resolution"])
    check_range("level", level, EXTRACT["level"])
    check_range("padding", padding, EXTRACT["padding"])
    if not isinstance(result, FitResult):
        result = load_model(result)
    check_padding(padding, result.config.box)
    lvl = result.config.level if level is None else float(level)
    dev = resolve_device(device)
    half = UNIT_HALF_EXTENT * (1.0 + 2.0 * padding)
    half = min(half, result.config.box)
    bounds = np.array([[-half] * 3, [half] * 3], dtype=np.float64)
    field = result.field(dev)
    if close_at_box:
        _check_crossing(field, half, lvl)
        field = _capped(field, half, lvl)
    data = result.data_points
    if components == "near-data" and data is None:
        components = "all"
    mesh = extract_mesh_from_field(
        field, bounds, resolution=resolution, level=lvl, method=method,
        gradient=result.gradient(dev) if normals_from_gradient else None,
        components=components, data_points=data, progress=progress,
    )
    info = None
    if refine and len(mesh.vertices) and data is not None and lvl == result.config.level:
        from .mesh import grid_step

        cfg = refine_config if refine_config is not None else result.config.refine
        mesh, info = _refine_onto_data(mesh, result, dev, grid_step(bounds, resolution), cfg,
                                       normals_ready=normals_from_gradient)
    elif refine and lvl != result.config.level:
        log.info("refinement skipped: level %g is not the fitted level %g", lvl, result.config.level)
    if report is not None:
        report["refine"] = info
    normals = mesh.vertex_normals.copy() if normals_from_gradient and len(mesh.vertices) else None
    mesh.vertices = result.normalization.to_input(mesh.vertices)
    if normals is not None:
        mesh.vertex_normals = normals  # a similarity transform keeps directions
    return mesh


def _refine_onto_data(mesh, result: FitResult, dev, cell: float, cfg: "RefineConfig", normals_ready: bool):
    """The mesh (normalized coordinates) refined onto ``result.data_points``, and the report.

    ``normals_ready``: the mesh's vertex normals already are the unit gradients of F (as
    :func:`extract_mesh_from_field` sets them), so they are not computed again.
    """
    import trimesh

    from .mesh import gradient_normals
    from .refine import plan, refine_vertices

    grad = result.gradient(dev)
    data = result.data_points
    decision = plan(data, cell, cfg)
    normals = mesh.vertex_normals if normals_ready else gradient_normals(mesh, grad, FIELD_BATCH)
    # ∇F at the data only when the refinement runs (it orients the points for the local fits)
    point_normals = grad(np.asarray(data, np.float32)) if decision.apply else None
    verts, info = refine_vertices(mesh.vertices, normals, data, cell, cfg, refine_plan=decision,
                                  point_normals=point_normals)
    if not info["applied"]:
        return mesh, info
    refined = trimesh.Trimesh(vertices=verts, faces=mesh.faces, process=False)
    if normals_ready:
        refined.vertex_normals = gradient_normals(refined, grad, FIELD_BATCH)
    return refined, info


#: Samples per axis of the coarse grid that checks that F crosses the level in the box.
CROSSING_CHECK_RESOLUTION = 24


def _check_crossing(field: Callable[[np.ndarray], np.ndarray], half: float, level: float) -> None:
    """Raise EmptyLevelSetError when F does not cross ``level`` inside the box (coarse grid)."""
    from .errors import EmptyLevelSetError

    t = np.linspace(-half, half, CROSSING_CHECK_RESOLUTION, dtype=np.float32)
    grid = np.stack(np.meshgrid(t, t, t, indexing="ij"), axis=-1).reshape(-1, 3)
    v = field(grid)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    if not lo < level < hi:
        raise EmptyLevelSetError(
            f"F never crosses the level {level:g} in the box: it ranges over [{lo:.4g}, {hi:.4g}] "
            f"on a {CROSSING_CHECK_RESOLUTION}^3 grid; choose a level inside that range")


def _capped(field: Callable[[np.ndarray], np.ndarray], half: float, level: float) -> Callable[[np.ndarray], np.ndarray]:
    """F, forced above ``level`` on and beyond the faces of the cube [-half, half]³."""
    edge = half * (1.0 - 1e-6)

    def f(x: np.ndarray) -> np.ndarray:
        v = field(x)
        out = (np.abs(x) >= edge).any(axis=1)
        if out.any():
            v = v.copy()
            v[out] = np.maximum(v[out], np.float32(level) + np.float32(1e-4))
        return v

    return f


# ------------------------------------------------------------------- model files
def save_model(result: FitResult, path: str | os.PathLike) -> Path:
    """Save weights, config, normalization, history and package version (atomically)."""
    from .io import atomic_path

    path = Path(path)
    payload = {
        "format": "surfrec-model",
        "format_version": MODEL_FORMAT,
        "surfrec_version": __version__,
        "config": result.config.to_dict(),
        "normalization": result.normalization.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
        "history": result.history,
        "seconds": float(result.seconds),
        "steps": int(result.steps),
        "data_points": None if result.data_points is None else torch.from_numpy(
            np.asarray(result.data_points, dtype=np.float32)),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_model(path: str | os.PathLike, map_location: str = "cpu") -> FitResult:
    """Load a model file written by :func:`save_model` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file not found" if not path.exists() else "not a file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise InputError(path, f"not a readable surfrec model file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != "surfrec-model":
        raise InputError(path, "not a surfrec model file")
    if payload.get("format_version") != MODEL_FORMAT:
        raise InputError(path, f"model file format {payload.get('format_version')} is not supported "
                               f"by surfrec {__version__} (expects {MODEL_FORMAT}); refit the scan")
    from .fitting import FitConfig

    try:
        cfg = FitConfig.from_dict(payload["config"])
        model = build_model(cfg.model)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise InputError(path, f"model file is inconsistent: {exc}") from None
    model.eval()
    dp = payload.get("data_points")
    return FitResult(
        model=model, normalization=Normalization.from_dict(payload["normalization"]), config=cfg,
        history=payload.get("history", {}), seconds=float(payload.get("seconds", 0.0)),
        steps=int(payload.get("steps", 0)), data_points=None if dp is None else dp.numpy(),
    )
