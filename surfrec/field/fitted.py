"""A fitted field as numpy functions of points: what the stages after the fit evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .levelset import value_and_grad

#: Points per network pass when evaluating F (or its gradient) on grids and vertices: the
#: layers' activations stay in cache. A row's value may differ in its last bit with its
#: position in the batch (BLAS tiles, vectorized loops); the same points in the same
#: order give the same bits with any thread count.
FIELD_BATCH = 4096

FieldFn = Callable[[np.ndarray], np.ndarray]
"""``(M, 3) float32 points -> (M,) float32 values``."""
GradFn = Callable[[np.ndarray], np.ndarray]
"""``(M, 3) float32 points -> (M, 3) float32 gradients``."""


def _nothing_to_release() -> None:
    """Nothing to release (F evaluated through torch)."""


@dataclass(frozen=True)
class FittedField:
    """F of a fit, in the normalized frame, as numpy functions."""

    values: FieldFn
    """F at points."""
    gradients: GradFn
    """The gradient of F at points."""
    level: float
    """The fitted level c."""
    box: float
    """Half-side of the fitting box."""
    close: Callable[[], None] = _nothing_to_release
    """Release what evaluates F (the fused engine's threads)."""


def fitted_field(model: torch.nn.Module, level: float, box: float, device: str | torch.device = "cpu",
                 threads: int | None = None) -> FittedField:
    """F of a fitted model as numpy functions: on the fused CPU engine when it runs the
    model (both cores, the same bits with any thread count), else through torch."""
    from .engine import FusedMLP, supports

    if torch.device(device).type == "cpu" and supports(model):
        engine = FusedMLP(model.cpu(), threads=threads)
        return FittedField(engine.value, lambda x: engine.value_and_grad(x)[1], level, box, engine.close)
    return FittedField(field_values(model, device), field_gradients(model, device), level, box)


def field_values(model: torch.nn.Module, device: str | torch.device = "cpu") -> FieldFn:
    """F as a numpy function of normalized points: (M, 3) float32 -> (M,) float32."""
    model = model.to(device).eval()
    value = getattr(model, "value", model)  # ImplicitMLP's in-place pass; any module's forward

    def f(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
            return torch.cat([value(c) for c in t.split(FIELD_BATCH)]).float().cpu().numpy()

    return f


def field_gradients(model: torch.nn.Module, device: str | torch.device = "cpu") -> GradFn:
    """The gradient of F as a numpy function of normalized points: (M, 3) float32 -> (M, 3) float32."""
    model = model.to(device).eval()

    def g(x: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
        return torch.cat([value_and_grad(model, c)[1] for c in t.split(FIELD_BATCH)]).float().cpu().numpy()

    return g


__all__ = ["FittedField", "fitted_field", "field_values", "field_gradients", "FIELD_BATCH", "FieldFn", "GradFn"]
