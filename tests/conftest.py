"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Location of the development data (../shared/data beside the checkout), overridable.
SHARED_DATA = Path(
    os.environ.get("SURFREC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when the folder is not there."""
    if not (SHARED_DATA / "bench").is_dir():
        pytest.skip(f"development data not found at {SHARED_DATA} (set SURFREC_SHARED_DATA)")
    return SHARED_DATA
