"""Device selection: a parameter everywhere, ``auto`` picks CUDA when present."""

from __future__ import annotations

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
