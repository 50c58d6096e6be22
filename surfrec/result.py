"""Fitted models: the :class:`FitResult` and model files (save/load, format version).

Mesh extraction from a result lives in :mod:`surfrec.pipeline`.
"""

from __future__ import annotations

import logging
import os
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from . import __version__
from .errors import InputError
from .levelset import value_and_grad
from .model import ImplicitMLP, build_model
from .normalize import Normalization

if TYPE_CHECKING:
    from .config import ReconstructionConfig
    from .index import SpatialIndex

log = logging.getLogger(__name__)

#: Points per network pass when evaluating F (or ∇F) on grids and vertices: the layers'
#: activations stay in cache. 3x64 MLP, 1 thread, CPU ms for 131k points: F 135 at 16384
#: vs 79 at 4096 (77 at 2048, 91 at 8192); ∇F 138 vs 104. Every row's value is the same
#: bit for bit at any batch size (benchmarks/EXPERIMENTS.md, session 5).
FIELD_BATCH = 4096

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
    index : SpatialIndex or None
        The fit's spatial index over ``data_points`` (not saved; :meth:`data_index`
        builds one when missing).
    stopped_by : str
        What ended the fit: ``iterations`` (the step count: reproducible), ``time_budget``
        (the opt-in wall-clock cap cut it short) or ``hook`` (an ``on_step`` criterion).
    timings : dict[str, float]
        Seconds of the fit's stages: ``normalize`` (load checks and the box), ``index``
        (the spatial index and seed σ), ``fit`` (the optimization).
    surface : dict or None
        The surface decision of a meshing and its evidence (``report["surface"]`` of
        :func:`surfrec.extract_mesh`: ``mode``, ``surface``, ``phantom_closed`` ...), kept
        in the model file; None when the model was saved before meshing (or by an older
        surfrec).
    shape : dict or None
        The surface decided before the fit and its evidence (``fit_surface`` "open" or
        "closed", ``closure`` of the scan's oriented normals, ``open_closure`` threshold,
        ``pieces``; closed fits with ``closed_side_weight`` > 0: ``closed_side`` whether the
        side term ran, ``closed_side_share`` the share of points with a trusted normal;
        :func:`surfrec.fitting.decide_shape`), kept in the model file; None for
        files of an older surfrec.
    removed : int
        Stray points dropped before the fit (``config.remove_stray``; not saved).
    """

    model: ImplicitMLP
    normalization: Normalization
    config: "ReconstructionConfig"
    history: dict[str, list[float]]
    seconds: float
    steps: int
    data_points: np.ndarray | None = None
    index: "SpatialIndex | None" = dataclasses.field(default=None, repr=False, compare=False)
    stopped_by: str = "iterations"
    timings: dict = dataclasses.field(default_factory=dict)
    surface: dict | None = dataclasses.field(default=None, compare=False)
    shape: dict | None = dataclasses.field(default=None, compare=False)
    removed: int = dataclasses.field(default=0, compare=False)
    _spacing: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def fitted_open(self) -> bool:
        """Whether the field was fitted as an open surface (``shape["fit_surface"]``)."""
        return (self.shape or {}).get("fit_surface") == "open"

    def data_spacing(self) -> float:
        """s of ``data_points`` (:func:`surfrec.support.scan_spacing`), measured once per
        spatial index (a new index, e.g. after ``data_points`` changed, measures again)."""
        from .support import scan_spacing

        index = self.data_index()
        if self._spacing is None or self._spacing[0] is not index:
            self._spacing = (index, scan_spacing(self.data_points, index))
        return self._spacing[1]

    def data_index(self) -> "SpatialIndex | None":
        """The spatial index over ``data_points`` (the fit's, or built once here)."""
        from .index import SpatialIndex

        if self.index is None and self.data_points is not None:
            self.index = SpatialIndex(self.data_points)
        return self.index

    def field(self, device: str | torch.device = "cpu") -> Callable[[np.ndarray], np.ndarray]:
        """F as a numpy function of normalized points: (M,3) float32 → (M,) float32."""
        model = self.model.to(device).eval()
        value = getattr(model, "value", model)  # ImplicitMLP's in-place pass; any module's forward

        def f(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
                return torch.cat([value(c) for c in t.split(FIELD_BATCH)]).float().cpu().numpy()

        return f

    def gradient(self, device: str | torch.device = "cpu") -> Callable[[np.ndarray], np.ndarray]:
        """∇F as a numpy function of normalized points: (M,3) float32 → (M,3) float32."""
        model = self.model.to(device).eval()

        def g(x: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
            return torch.cat([value_and_grad(model, c)[1] for c in t.split(FIELD_BATCH)]).float().cpu().numpy()

        return g


# ------------------------------------------------------------------- model files
def save_model(result: FitResult, path: str | os.PathLike, *, surface: dict | None = None) -> Path:
    """Save weights, config, normalization, history, package version and the surface
    decision (atomically).

    Parameters
    ----------
    surface : dict, optional
        The surface decision and its evidence (``report["surface"]`` of
        :func:`surfrec.extract_mesh`; plain str / number / bool / None values); default:
        ``result.surface``. Files without it (saved before meshing, or by an older
        surfrec) load with ``surface`` None.
    """
    from .io import atomic_path

    path = Path(path)
    surface = _plain("surface", result.surface if surface is None else surface)
    shape = _plain("shape", result.shape)
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
        "stopped_by": str(result.stopped_by),
        "data_points": None if result.data_points is None else torch.from_numpy(
            np.asarray(result.data_points, dtype=np.float32)),
        "surface": surface,
        "shape": shape,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def _plain(name: str, d: dict | None) -> dict | None:
    """``d`` with plain str / number / bool / None values (what a model file may hold)."""
    if d is None:
        return None
    bad = {k: v for k, v in d.items()
           if not isinstance(k, str) or not (v is None or isinstance(v, (str, bool, int, float)))}
    if bad:
        raise ValueError(f"{name}: values must be plain str / number / bool / None, got {bad!r}")
    return {k: (float(v) if isinstance(v, float) else v) for k, v in d.items()}


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
    from .config import ReconstructionConfig

    try:
        cfg = ReconstructionConfig.from_dict(payload["config"])
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
        surface=payload.get("surface"), shape=payload.get("shape"),
    )
