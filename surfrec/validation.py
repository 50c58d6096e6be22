"""The valid ranges of every numeric parameter, in one place.

The library configs check their fields against these ranges in ``__post_init__``
(:func:`check_fields`), functions check their arguments with :func:`check_range`, and the
CLI builds its argparse types from the same :class:`Range` objects
(:mod:`surfrec.cli.validate`), so a bad value gets the same words everywhere::

    FitConfig(iterations=-1)         ValueError: FitConfig.iterations: got -1, expected an integer >= 0
    surfrec fit scan.xyz --iters -1  surfrec fit: error: --iters: got -1, expected an integer >= 0

Importing this module is cheap (numpy, no torch): the CLI rejects a bad value before it imports torch.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

from .errors import ParameterError
from .normalize import UNIT_HALF_EXTENT



@dataclass(frozen=True)
class Range:
    """A closed, open or half-bounded interval of numbers (or of integers)."""

    lo: float | None = None
    """Lower bound (None: unbounded)."""
    hi: float | None = None
    """Upper bound (None: unbounded)."""
    lo_open: bool = False
    """The lower bound itself is excluded."""
    hi_open: bool = False
    """The upper bound itself is excluded."""
    integer: bool = False
    """Only integers (bool is not one)."""
    optional: bool = False
    """None is accepted too (the field's "not set")."""
    note: str = ""
    """Appended in parentheses to the description, e.g. ``0: no limit``."""

    def describe(self) -> str:
        """``an integer >= 0``, ``a number in (0, 1]``, ``a finite number`` ..."""
        kind = "an integer" if self.integer else "a number"
        lo, hi = _num(self.lo), _num(self.hi)
        if self.lo is not None and self.hi is not None:
            if self.integer and not self.lo_open and not self.hi_open:
                text = f"{kind} in {lo}..{hi}"
            else:
                text = f"{kind} in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            text = f"{kind} {'>' if self.lo_open else '>='} {lo}"
        elif self.hi is not None:
            text = f"{kind} {'<' if self.hi_open else '<='} {hi}"
        else:
            text = "an integer" if self.integer else "a finite number"
        return f"{text} ({self.note})" if self.note else text

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a valid value (type included)."""
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        v = float(value) if not isinstance(value, numbers.Integral) else int(value)
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            return False
        return True

    def problem(self, value: Any) -> str:
        """``got VALUE, expected DESCRIPTION`` (the CLI prefixes the option, the library the name)."""
        return f"got {format_value(value, self.integer)}, expected {self.describe()}"

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` when valid, else raise :class:`ParameterError` (a ValueError):
        ``name: got VALUE, expected DESCRIPTION``."""
        if not self.contains(value):
            raise ParameterError(name, self.problem(value))
        return value


def _num(x: float | None) -> str:
    if x is None:
        return ""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:g}"


def format_value(value: Any, integer: bool = False) -> str:
    """How a bad value is shown: ``-1``, ``0.2``, ``nan``; a float where an integer is
    expected keeps its ``.0``; anything else as its repr."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return repr(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return repr(float(value)) if integer else f"{float(value):g}"


def check_range(name: str, value: Any, rng: Range) -> Any:
    """Check one argument of a function: ``check_range("resolution", resolution, EXTRACT["resolution"])``."""
    return rng.check(name, value)


def check_fields(obj: Any, ranges: Mapping[str, Range]) -> None:
    """Check the fields of a config dataclass that have a range (``Owner.field: got ...``)."""
    owner = type(obj).__name__
    names = {f.name for f in fields(obj)}
    for name, rng in ranges.items():
        if name in names:
            rng.check(f"{owner}.{name}", getattr(obj, name))


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices`` (``name: got 'x', expected one of a, b``)."""
    if value not in choices:
        raise ParameterError(name, f"got {value!r}, expected one of {', '.join(choices)}")
    return value


def check_each(name: str, values: Any, rng: Range, *, nonempty: bool = True) -> list:
    """Check every item of a sequence argument (step counts, thresholds, radii)."""
    try:
        items = list(values)
    except TypeError:
        raise ParameterError(name, f"got {values!r}, expected a list, each {rng.describe()}") from None
    if nonempty and not items:
        raise ParameterError(name, f"got an empty list, expected one or more values, each {rng.describe()}")
    for v in items:
        if not rng.contains(v):
            raise ParameterError(name, f"got {format_value(v, rng.integer)}, expected each to be {rng.describe()}")
    return items


# --------------------------------------------------------------------------------- ranges
#: A seed: what numpy's ``default_rng`` and ``torch.manual_seed`` both take.
SEED = Range(0, 2**32 - 1, integer=True)
#: CPU threads.
THREADS = Range(1, None, integer=True)

#: :class:`surfrec.fitting.FitConfig` (the CLI's ``--iters``, ``--lr`` ... use these).
FIT: dict[str, Range] = {
    "iterations": Range(0, None, integer=True),
    "time_budget": Range(0, None, optional=True, note="0: no limit"),
    "lr": Range(0, None, lo_open=True),
    "grid_lr": Range(0, None, lo_open=True),
    "grid_decay_weight": Range(0, None),
    "coarse_to_fine": Range(0, 1),
    "lr_final_factor": Range(0, 1),
    "warmup_steps": Range(0, None, integer=True),
    "batch_points": Range(1, None, integer=True),
    "n_samples": Range(1, None, integer=True),
    "refresh_fraction": Range(0, 1),
    "keep_far_fraction": Range(0, 1),
    "newton_steps": Range(1, None, integer=True),
    "init_newton_steps": Range(0, None, integer=True),
    "seed_k": Range(1, None, integer=True),
    "seed_sigma_scale": Range(0, None, lo_open=True),
    "seed_sigma": Range(0, None, lo_open=True, optional=True),
    "uniform_fraction": Range(0, 1),
    "sample_tol": Range(0, None, lo_open=True),
    "surface_weight": Range(0, None),
    "data_weight": Range(0, None),
    "distance_weight": Range(0, None),
    "n_distance_samples": Range(1, None, integer=True),
    "distance_near_fraction": Range(0, 1),
    "distance_nn_eps": Range(0, None),
    "eikonal_weight": Range(0, None),
    "slope_weight": Range(0, None),
    "slope_points": Range(1, None, integer=True),
    "slope_near_fraction": Range(0, 1),
    "slope_step": Range(0, None, lo_open=True),
    "normal_weight": Range(0, None),
    "side_weight": Range(0, None),
    "closed_side_weight": Range(0, None),
    "closed_side_max_variation": Range(0, 1),
    "closed_side_min_share": Range(0, 1),
    "side_offset": Range(0, None, lo_open=True),
    "side_margin": Range(0, None),
    "side_points": Range(1, None, integer=True),
    "open_sample_radius": Range(0, None, lo_open=True),
    "sign_weight": Range(0, None),
    "sign_after": Range(0, 1),
    "sign_resolution": Range(4, 256, integer=True),
    "sign_far": Range(0, None),
    "sign_inside": Range(0, None),
    "sign_outside": Range(None, 1),
    "level": Range(),
    "eps": Range(0, None, lo_open=True),
    "box": Range(UNIT_HALF_EXTENT, None, note=f"the scan fills ±{UNIT_HALF_EXTENT}"),
    "seed": SEED,
    "threads": Range(1, None, integer=True, optional=True),
    "log_every": Range(1, None, integer=True),
    "max_seed_points": Range(1, None, integer=True),
    "outlier_percentile": Range(0, 50, hi_open=True),
    "outlier_box_ratio": Range(1, None),
    "outlier_margin": Range(0, None),
    "distance_sigma_scale": Range(0, None, lo_open=True),
    "rollback_every": Range(1, None, integer=True),
    "max_failures": Range(0, None, integer=True),
    "failure_lr_factor": Range(0, 1, lo_open=True),
    "schedule_after": Range(0, None, integer=True),
}

#: :class:`surfrec.model.ModelConfig`.
MODEL: dict[str, Range] = {
    "hidden_dim": Range(1, None, integer=True),
    "n_hidden_layers": Range(1, None, integer=True),
    "softplus_beta": Range(0, None, lo_open=True),
    "init_radius": Range(0, None, lo_open=True),
    "grid_levels": Range(1, None, integer=True),
    "grid_min_res": Range(2, None, integer=True),
    "grid_max_res": Range(2, None, integer=True),
    "grid_channels": Range(1, None, integer=True),
    "grid_bound": Range(0, None, lo_open=True),
    "grid_init_std": Range(0, None),
}

#: :class:`surfrec.refine.RefineConfig`.
REFINE: dict[str, Range] = {
    "neighbors": Range(6, None, integer=True),
    "max_neighbors": Range(6, None, integer=True),
    "noise_neighbors": Range(0, None),
    "noise_k": Range(6, None, integer=True, optional=True),
    "iterations": Range(0, None, integer=True),
    "robust_iterations": Range(0, None, integer=True),
    "normal_agreement": Range(-1, 1),
    "min_support": Range(1, None, integer=True),
    "max_shift": Range(0, None, lo_open=True),
    "ridge": Range(0, None),
    "max_spacing": Range(0, None, lo_open=True),
    "taper_spacing": Range(0, None, lo_open=True),
    "noise_samples": Range(10, None, integer=True),
    "chunk_size": Range(1, None, integer=True),
    "chunk_neighbors": Range(1, None, integer=True),
    "seed": SEED,
}


def max_padding(box: float = 1.0) -> float:
    """Largest extraction padding whose box still fits in the fitting box of half-side ``box``."""
    return (box / UNIT_HALF_EXTENT - 1.0) / 2.0


def check_padding(padding: float, box: float) -> float:
    """The padding of an extraction inside a fitting box of half-side ``box`` (the model's)."""
    return Range(0, max_padding(box), note="the box must stay inside the fitting box").check("padding", padding)


#: :func:`surfrec.extract_mesh` (``surfrec fit`` / ``mesh`` / ``batch`` / ``bench``).
#: Below 16 samples per side the mesh is a coarse blob (100 vertices at 7); above 2048 the
#: narrow band alone needs tens of GB.
EXTRACT: dict[str, Range] = {
    "resolution": Range(16, 2048, integer=True),
    "level": Range(optional=True),
    # the bound for the default fitting box (box = 1); extract_mesh checks the model's own
    "padding": Range(0, max_padding(1.0), note="the box must stay inside the fitting box"),
    "narrowband_above": Range(1, None, integer=True),
    "band_factor": Range(0, None, lo_open=True),
    "near_fraction": Range(0, 1),
    "near_cells": Range(0, None),
    "near_diagonal": Range(0, None),
    "cap_margin": Range(0, None, lo_open=True),
    "crossing_check_resolution": Range(2, None, integer=True),
    "max_data_points": Range(1, None, integer=True),
    "fill": Range(0, None, note="0: off"),
    "trim": Range(0, None, note="0: no trim, a watertight closed surface"),
}

#: A fixed neighbour count of the refinement (``ExtractConfig.neighbors``, ``--neighbors``);
#: 0 means auto (from the scan's noise). A quadric has 6 coefficients; above 1024 one batch
#: of local fits alone needs gigabytes.
NEIGHBORS = Range(6, 1024, integer=True)


def check_neighbors(name: str, value: Any) -> int:
    """``value`` when it is 0 (auto) or inside :data:`NEIGHBORS`, else :class:`ParameterError`."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value == 0:
        return 0
    if not NEIGHBORS.contains(value):
        raise ParameterError(name, f"got {format_value(value, True)}, expected auto (0) or {NEIGHBORS.describe()}")
    return int(value)

#: Surface modes of :func:`surfrec.extract_mesh` (``ExtractConfig.surface``, ``--surface``).
SURFACES = ("auto", "closed", "open")

#: :class:`surfrec.support.SupportConfig` (cover / phantom measurement).
SUPPORT: dict[str, Range] = {
    "cover_radius": Range(0, None, lo_open=True),
    "phantom_radius": Range(0, None, lo_open=True),
    "miss_radius": Range(0, None, lo_open=True),
    "samples_per_area": Range(0, None, lo_open=True),
    "min_samples": Range(1, None, integer=True),
    "max_samples": Range(1, None, integer=True),
}

#: :class:`surfrec.support.SurfaceConfig` (open/closed decision, open extraction, warnings).
SURFACE: dict[str, Range] = {
    "open_closure": Range(0, 1, hi_open=True),
    "closure_area_clip": Range(0, None, lo_open=True),
    "normal_k": Range(3, 1000, integer=True),
    "orient_k": Range(1, 1000, integer=True),
    "open_phantom": Range(0, 1, lo_open=True, hi_open=True),
    "open_missed": Range(0, 1, lo_open=True, hi_open=True),
    "open_cover_gain": Range(0, 1),
    "shell_quantile": Range(0, 1, lo_open=True, hi_open=True),
    "shell_points": Range(1, None, integer=True),
    "trim_radius": Range(0, None, lo_open=True),
    "pretrim_radius": Range(0, None, lo_open=True),
    "warn_phantom": Range(0, 1),
    "warn_missed": Range(0, 1),
    "seed": SEED,
}

#: :func:`surfrec.metrics.evaluate` (``surfrec eval``) and surface sampling (``info``, ``bench``).
SAMPLES = Range(1, 10**8, integer=True)
#: F-score thresholds as fractions of the largest side of the ground truth's box.
THRESHOLD_FRACTION = Range(0, 1, lo_open=True)

#: :func:`surfrec.diagnostics.residual_report` (``surfrec residuals``).
RESIDUALS: dict[str, Range] = {
    "steps": Range(0, 1000, integer=True),
    "n_seeds": Range(1, 10**7, integer=True),
    "tol": Range(0, None, lo_open=True),
    "level": Range(optional=True),
    "seed": SEED,
}

#: :func:`surfrec.baselines.poisson` / ``ball_pivoting`` (``surfrec baseline``, ``bench``).
POISSON: dict[str, Range] = {
    "depth": Range(1, 16, integer=True),
    "density_quantile": Range(0, 1, hi_open=True),
}
#: Ball-pivoting radii, in the scan's units.
RADIUS = Range(0, None, lo_open=True)

#: :func:`surfrec.render.render` (``surfrec render``): views and pixels per view.
RENDER: dict[str, Range] = {
    "views": Range(1, 64, integer=True),
    "size": Range(16, 4096, integer=True),
}

#: ``surfrec batch`` / :func:`surfrec.batch.run_batch`.
BATCH: dict[str, Range] = {
    "workers": Range(1, None, integer=True),
    "threads": THREADS,
}

#: ``surfrec bench``: seconds allowed per case and method.
TIMEOUT = Range(0, None, lo_open=True, optional=True)


# -------------------------------------------------------------------------------- devices
DEVICE_FORMS = "auto, cpu, cuda or cuda:N"
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda)(:(\d+))?$")


def _driver_missing() -> bool:
    """True when no CUDA driver library can be loaded (then torch sees no CUDA device
    either); cheap, so a CUDA request on a CPU machine fails without importing torch."""
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll", "libcuda.dylib"):
        try:
            ctypes.CDLL(name)
            return False
        except OSError:
            continue
    return True


def check_device(device: Any, name: str = "device") -> str:
    """Validate a device name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (N an existing GPU).

    Raises :class:`ParameterError` (a ValueError) with one line naming the value and the
    valid forms; a CUDA request on a machine without CUDA says so.
    """
    text = str(device).strip().lower() if isinstance(device, str) else None
    m = _DEVICE_RE.match(text) if text is not None else None
    if m is None or (m.group(1) != "cuda" and m.group(2)):
        raise ParameterError(name, f"got {device!r}, expected {DEVICE_FORMS}")
    if m.group(1) != "cuda":
        return text
    if _driver_missing():
        available, count = False, 0
    else:
        import torch

        available = torch.cuda.is_available()
        count = torch.cuda.device_count() if available else 0
    if not available:
        raise ParameterError(name, f"got {device!r}, but CUDA is not available on this machine "
                                   "(no CUDA driver or no CUDA build of torch); expected auto or cpu")
    if m.group(3) is not None and int(m.group(3)) >= count:
        raise ParameterError(name, f"got {device!r}, but there {'is' if count == 1 else 'are'} only {count} "
                                   f"CUDA device{'s' if count != 1 else ''}; expected cuda:0..cuda:{count - 1}")
    return text
