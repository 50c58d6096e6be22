"""A fitted model: the :class:`FitResult` and model files (save / load, format versions).

A ``FitResult`` holds what the stages after the fit need to mesh a scan again: the network,
the normalization, every setting, the scan points kept with the model, and the typed
reports of the stages before (the input inspection, the surface decided before the fit);
after meshing, the surface step's decision too. ``surfrec mesh model.pt`` replays those
stages from a model file (:func:`surfrec.run.mesh_stages`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import __version__
from .errors import InputError
from .field.fitted import FIELD_BATCH, FittedField, field_gradients, field_values, fitted_field  # noqa: F401
from .field.model import ImplicitMLP, build_model
from .input.index import SpatialIndex
from .input.inspect import InputReport, ScanPoints, scan_spacing
from .input.normalize import Normalization
from .settings import ReconstructionConfig
from .surface.decide import ShapeDecision, SurfaceDecision

log = logging.getLogger(__name__)

#: Version of the model-file layout written; files of :data:`READ_FORMATS` load.
MODEL_FORMAT = 2
#: Layouts :func:`load_model` reads (1: one flat config, decisions as dicts).
READ_FORMATS = (1, 2)


@dataclass
class FitResult:
    """What :func:`surfrec.fit` returns (and :func:`load_model` restores).

    Attributes
    ----------
    model : ImplicitMLP
        The fitted network, in the normalized frame, on CPU.
    normalization : Normalization
        Maps normalized coordinates back to the scan's.
    config : ReconstructionConfig
        Every setting (the fit's, and the mesh settings the stages after it replay).
    history : dict[str, list[float]]
        Per recorded step: step, time, lr, loss, surface, data, distance, residual_median,
        residual_p90, converged.
    seconds : float
        Wall-clock time of the optimization.
    steps : int
        Steps performed.
    data_points : (K, 3) float32 ndarray or None
        The scan points kept with the model, normalized.
    index : SpatialIndex or None
        A spatial index over ``data_points`` (not saved; :meth:`data_index` builds one).
    stopped_by : str
        What ended the fit: ``iterations`` (reproducible), ``time_budget`` or ``hook``.
    timings : dict[str, float]
        Seconds of the stages up to the fit.
    input : InputReport or None
        The input inspection's report (None for files of format 1).
    shape : ShapeDecision or None
        The surface decided before the fit.
    closed_side, closed_side_share : bool or None, float or None
        Closed fits: whether the side term ran, and the share of trusted normals.
    surface : SurfaceDecision or None
        The surface step's decision of the last meshing (kept in the model file).
    command : str
        The command line that made the model (empty from the Python API).
    """

    model: ImplicitMLP
    normalization: Normalization
    config: ReconstructionConfig
    history: dict[str, list[float]]
    seconds: float
    steps: int
    data_points: np.ndarray | None = None
    index: SpatialIndex | None = dataclasses.field(default=None, repr=False, compare=False)
    stopped_by: str = "iterations"
    timings: dict = dataclasses.field(default_factory=dict)
    input: InputReport | None = dataclasses.field(default=None, compare=False)
    shape: ShapeDecision | None = dataclasses.field(default=None, compare=False)
    closed_side: bool | None = dataclasses.field(default=None, compare=False)
    closed_side_share: float | None = dataclasses.field(default=None, compare=False)
    surface: SurfaceDecision | None = dataclasses.field(default=None, compare=False)
    command: str = dataclasses.field(default="", compare=False)
    _spacing: float | None = dataclasses.field(default=None, repr=False, compare=False)
    _noise: float | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def fitted_open(self) -> bool:
        """Whether the field was fitted as an open surface."""
        return self.shape is not None and self.shape.open

    def data_index(self) -> SpatialIndex | None:
        """The spatial index over ``data_points`` (the fit's, or built once here)."""
        if self.index is None and self.data_points is not None:
            self.index = SpatialIndex(self.data_points)
        return self.index

    def data_spacing(self) -> float:
        """s of the scan: the input report's, or measured once on ``data_points`` (files of format 1)."""
        if self.input is not None:
            return self.input.spacing
        if self._spacing is None:
            self._spacing = scan_spacing(self.data_points, self.data_index())
        return self._spacing

    def data_noise(self) -> float | None:
        """The scan's noise sigma: the input report's, or estimated once on ``data_points``
        (files of format 1; None with too few points)."""
        if self.input is not None:
            return self.input.noise
        if self._noise is None and self.data_points is not None and len(self.data_points) > 21:
            from .input.local import estimate_noise

            self._noise = estimate_noise(self.data_points, tree=self.data_index())[0]
        return self._noise

    def scan_points(self) -> ScanPoints | None:
        """The scan points the stages after the fit measure against (None: the model holds none)."""
        if self.data_points is None or len(self.data_points) < 2:
            return None
        return ScanPoints(self.data_points, self.data_index(), self.data_spacing(), self.data_noise())

    def fitted(self, device: str | torch.device = "cpu") -> FittedField:
        """F, its gradient, the fitted level and the box, as numpy functions on ``device``
        (the fused CPU engine where it runs the model; call ``close()`` when done)."""
        return fitted_field(self.model, float(self.config.fit.level), float(self.config.fit.box), device,
                            self.config.fit.threads)

    def field(self, device: str | torch.device = "cpu") -> Callable[[np.ndarray], np.ndarray]:
        """F as a numpy function of normalized points: (M, 3) float32 -> (M,) float32."""
        return field_values(self.model, device)

    def gradient(self, device: str | torch.device = "cpu") -> Callable[[np.ndarray], np.ndarray]:
        """The gradient of F as a numpy function of normalized points: (M, 3) -> (M, 3) float32."""
        return field_gradients(self.model, device)


# ------------------------------------------------------------------- model files
def save_model(result: FitResult, path: str | os.PathLike) -> Path:
    """Save the network, settings, normalization, history, kept scan points, the stages'
    reports and the package version (atomically; read with ``weights_only=True``)."""
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
        "stopped_by": str(result.stopped_by),
        "data_points": None if result.data_points is None else torch.from_numpy(
            np.asarray(result.data_points, dtype=np.float32)),
        "input": None if result.input is None else result.input.to_dict(),
        "shape": None if result.shape is None else result.shape.to_dict(),
        "fit": {"closed_side": result.closed_side, "closed_side_share": result.closed_side_share},
        "surface": None if result.surface is None else result.surface.to_dict(),
        "timings": {str(k): float(v) for k, v in (result.timings or {}).items()},
        "command": str(result.command or ""),
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
    if payload.get("format_version") not in READ_FORMATS:
        raise InputError(path, f"model file format {payload.get('format_version')} is not supported "
                               f"by surfrec {__version__} (reads {', '.join(map(str, READ_FORMATS))}); refit the scan")
    try:
        cfg = ReconstructionConfig.from_dict(payload["config"])
        model = build_model(cfg.fit.model)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise InputError(path, f"model file is inconsistent: {exc}") from None
    model.eval()
    dp = payload.get("data_points")
    shape = payload.get("shape") or None
    fit = payload.get("fit") or shape or {}  # format 1 kept the side term's evidence in the shape
    return FitResult(
        model=model, normalization=Normalization.from_dict(payload["normalization"]), config=cfg,
        history=payload.get("history", {}), seconds=float(payload.get("seconds", 0.0)),
        steps=int(payload.get("steps", 0)), data_points=None if dp is None else dp.numpy(),
        stopped_by=str(payload.get("stopped_by", "iterations")),
        input=None if payload.get("input") is None else InputReport.from_dict(payload["input"]),
        shape=ShapeDecision.from_dict(shape) if shape and "fit_surface" in shape else None,
        closed_side=fit.get("closed_side"), closed_side_share=fit.get("closed_side_share"),
        surface=SurfaceDecision.from_dict(payload.get("surface")) if payload.get("surface") else None,
        timings=dict(payload.get("timings") or {}), command=str(payload.get("command") or ""),
    )


__all__ = ["FitResult", "save_model", "load_model", "MODEL_FORMAT", "READ_FORMATS"]
