"""Lazy, checked import of Open3D, the one optional dependency that needs a system library.

Open3D's pip wheel links ``libusb-1.0.so.0``, which pip cannot install; on a machine
without it ``import open3d`` fails with ``ImportError``/``OSError``. Only the classical
baselines (screened Poisson, ball pivoting) and the optional Open3D render backend need
it, so they import it through :func:`import_open3d`, which turns that failure into one
line naming the fix (the CLI prints it and exits 2).
"""

from __future__ import annotations

from types import ModuleType

from .errors import SurfrecError

#: the shell command that installs the system library open3d's wheel needs (Debian/Ubuntu)
LIBUSB_FIX = "apt-get install -y libusb-1.0-0"


class MissingDependencyError(SurfrecError):
    """An optional dependency needed by the requested feature cannot be imported."""


def import_open3d(feature: str) -> ModuleType:
    """Return the ``open3d`` module, or raise :class:`MissingDependencyError` (one line).

    Parameters
    ----------
    feature : str
        What needs open3d, for the message (e.g. ``"the Poisson baseline"``).
    """
    try:
        import open3d
    except (ImportError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if "libusb" in reason:
            fix = f"install the system library it needs: {LIBUSB_FIX} (as root)"
        elif isinstance(exc, ModuleNotFoundError) and exc.name == "open3d":
            fix = "install it: pip install open3d"
        else:
            fix = f"reinstall it (pip install --force-reinstall open3d); on Debian/Ubuntu also {LIBUSB_FIX}"
        raise MissingDependencyError(
            f"{feature} needs open3d, which cannot be imported ({reason}); {fix}"
        ) from None
    return open3d
