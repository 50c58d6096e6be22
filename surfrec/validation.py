"""Valid ranges and their checks, with one wording everywhere.

:class:`Range` describes the valid numbers of a setting or an argument. The settings
declare theirs with each field (:mod:`surfrec.settings`); the ranges of function
arguments that are not settings (sample counts, thresholds, render sizes ...) are here.
Functions check their arguments with :func:`check_range`, and the CLI builds its argparse
types from the same :class:`Range` objects (:mod:`surfrec.cli.validate`), so a bad value
gets the same words everywhere::

    FitConfig(iterations=-1)         ValueError: FitConfig.iterations: got -1, expected an integer >= 0
    surfrec fit scan.xyz --iters -1  surfrec fit: error: --iters: got -1, expected an integer >= 0

Importing this module is cheap (no numpy, no torch): the CLI rejects a bad value before
it imports torch.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import ParameterError



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

#: :func:`surfrec.evaluation.metrics.evaluate` (``surfrec eval``) and surface sampling (``info``, ``bench``).
SAMPLES = Range(1, 10**8, integer=True)
#: F-score thresholds as fractions of the largest side of the ground truth's box.
THRESHOLD_FRACTION = Range(0, 1, lo_open=True)

#: :func:`surfrec.evaluation.residuals.residual_report` (``surfrec residuals``).
RESIDUALS: dict[str, Range] = {
    "steps": Range(0, 1000, integer=True),
    "n_seeds": Range(1, 10**7, integer=True),
    "tol": Range(0, None, lo_open=True),
    "level": Range(optional=True),
    "seed": SEED,
}

#: :func:`surfrec.evaluation.baselines.poisson` / ``ball_pivoting`` (``surfrec baseline``, ``bench``).
POISSON: dict[str, Range] = {
    "depth": Range(1, 16, integer=True),
    "density_quantile": Range(0, 1, hi_open=True),
}
#: Ball-pivoting radii, in the scan's units.
RADIUS = Range(0, None, lo_open=True)

#: :func:`surfrec.evaluation.render.render` (``surfrec render``): views and pixels per view.
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
