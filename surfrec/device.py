"""Device selection: a parameter everywhere, ``auto`` picks CUDA when present."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from .validation import check_device


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; explicit CUDA requests are checked.

    Raises
    ------
    ValueError
        A CUDA device was requested but torch sees none.
    """
    if isinstance(device, torch.device):
        return device
    device = check_device(device)  # auto, cpu, cuda, cuda:N (an existing one): one-line ValueError
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with torch's CPU thread count set to ``n`` (None: leave it), then restore it.

    The fit and the extraction use the config's fixed count, so a result does not depend
    on the machine's core count or on how busy it is.
    """
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
