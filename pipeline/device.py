"""The device a stage computes on, from `base.device`."""

from __future__ import annotations

import torch

from pipeline.errors import TrainingError


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without one is an error, not a silent fallback."""
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("base.device is 'cuda' but no CUDA device is visible; set base.device to auto or cpu")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)
