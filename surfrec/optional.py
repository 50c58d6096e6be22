"""Optional dependencies: one helper that imports them and names the extra that installs them.

The core install (``pip install surfrec``) has what fit, mesh, eval and render need. The
rest comes with extras: ``[baselines]`` (open3d: screened Poisson and ball pivoting),
``[viz]`` (plotly and matplotlib: the HTML report, plots, studies), ``[ray]`` (``surfrec
batch --ray``), ``[dev]`` (tests and docs). A feature that needs one calls :func:`require`,
which raises :class:`MissingDependencyError` with one line naming the feature, the
package and the command that installs it; the CLI prints that line and exits with code 2.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import SurfrecError

#: the shell command that installs the system library open3d's wheel needs (Debian/Ubuntu)
LIBUSB_FIX = "apt-get install -y libusb-1.0-0"

#: import name -> the extra that installs it
EXTRAS = {"open3d": "baselines", "plotly": "viz", "jinja2": "viz", "matplotlib": "viz", "ray": "ray"}


class MissingDependencyError(SurfrecError):
    """An optional dependency needed by the requested feature cannot be imported."""


def require(module: str, feature: str) -> ModuleType:
    """Import an optional dependency, or raise :class:`MissingDependencyError` (one line).

    Parameters
    ----------
    module : str
        The import name (``"open3d"``, ``"plotly"``, ``"matplotlib.pyplot"``).
    feature : str
        What needs it, for the message (``"the Poisson baseline"``).
    """
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        missing = isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == top
        if "libusb" in reason:
            fix = f"install the system library it needs: {LIBUSB_FIX} (as root)"
        elif missing:
            fix = f"install it: pip install 'surfrec[{extra}]'" if extra else f"install it: pip install {top}"
        else:
            fix = f"reinstall it (pip install --force-reinstall {top})"
            if top == "open3d":
                fix += f"; on Debian/Ubuntu also {LIBUSB_FIX}"
        raise MissingDependencyError(f"{feature} needs {top}, which cannot be imported ({reason}); {fix}") from None


def import_open3d(feature: str) -> ModuleType:
    """The ``open3d`` module (:func:`require` with open3d's hints)."""
    return require("open3d", feature)


__all__ = ["require", "import_open3d", "MissingDependencyError", "EXTRAS", "LIBUSB_FIX"]
