"""Optional dependencies that some tests need, without silent skips in CI.

``pytest.importorskip("open3d")`` would turn a broken open3d install (e.g. the system
library libusb missing) into a green run with skipped tests. :func:`require_open3d`
fails with the import error instead, unless ``SURFREC_ALLOW_NO_OPEN3D=1`` is set (for a
machine that deliberately runs without open3d: the core of surfrec does not need it).
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

ALLOW_ENV = "SURFREC_ALLOW_NO_OPEN3D"


def require_open3d() -> ModuleType:
    """Return ``open3d``; skip only when $SURFREC_ALLOW_NO_OPEN3D is 1, else fail."""
    try:
        import open3d
    except (ImportError, OSError) as exc:
        reason = f"open3d cannot be imported ({exc}); on Debian/Ubuntu: apt-get install -y libusb-1.0-0"
        if os.environ.get(ALLOW_ENV) == "1":
            pytest.skip(f"{reason} [{ALLOW_ENV}=1]")
        pytest.fail(f"{reason}; set {ALLOW_ENV}=1 to skip the tests that need it", pytrace=False)
    return open3d
