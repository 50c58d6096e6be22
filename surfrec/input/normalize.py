"""The box transform between a scan's own coordinates and the fitting box.

Fitting happens in a normalized frame: the scan's (robust) bounding box is centered at
the origin and its largest half-side becomes :data:`UNIT_HALF_EXTENT`, which leaves room
inside the fitting box ``[-1, 1]^3`` for the surface to close. All arithmetic of the
transform is float64, so scans with large offsets (UTM-like coordinates) keep precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..settings.field import UNIT_HALF_EXTENT


@dataclass(frozen=True)
class Normalization:
    """Similarity transform ``x_unit = (x_input - center) / scale``.

    Attributes
    ----------
    center : (3,) float64
        Center of the scan's box, in input coordinates.
    scale : float
        Input units per normalized unit.
    """

    center: np.ndarray
    scale: float

    @classmethod
    def from_points(
        cls,
        points: np.ndarray,
        *,
        half_extent: float = UNIT_HALF_EXTENT,
        percentile: float = 0.0,
    ) -> "Normalization":
        """Fit the transform to a cloud.

        Parameters
        ----------
        points : (N, 3) float
            Input points, in input coordinates.
        half_extent : float
            Largest half-side of the box in normalized units.
        percentile : float
            Use the ``[p, 100 - p]`` percentile box instead of min/max (robust to a few
            far outliers). 0 uses the exact box.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
            raise InputError(None, f"expected points of shape (N, 3), got {pts.shape}")
        if percentile > 0:
            lo = np.percentile(pts, percentile, axis=0)
            hi = np.percentile(pts, 100.0 - percentile, axis=0)
        else:
            lo, hi = pts.min(axis=0), pts.max(axis=0)
        center = 0.5 * (lo + hi)
        side = float(np.max(hi - lo))
        if not np.isfinite(side) or side <= 0:
            raise InputError(None, "all points are identical: the cloud has no extent")
        return cls(center=center, scale=side / (2.0 * half_extent))

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` input coordinates to normalized coordinates (float64)."""
        return (np.asarray(x, dtype=np.float64) - self.center) / self.scale

    def to_input(self, x: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` normalized coordinates back to input coordinates (float64)."""
        return np.asarray(x, dtype=np.float64) * self.scale + self.center

    def to_dict(self) -> dict:
        """Plain-Python form, for model files and JSON reports."""
        return {"center": [float(v) for v in self.center], "scale": float(self.scale)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        """Inverse of :meth:`to_dict`."""
        return cls(center=np.asarray(d["center"], dtype=np.float64), scale=float(d["scale"]))

    @classmethod
    def identity(cls) -> "Normalization":
        """The transform that leaves coordinates unchanged."""
        return cls(center=np.zeros(3), scale=1.0)
