"""The one place where pixel formats change: uint8 NHWC on disk <-> float NCHW in [0, 1] for models and metrics."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_float(images: Tensor) -> Tensor:
    """(B, H, W, C) uint8 or float16 -> (B, C, H, W) float32; uint8 is scaled to [0, 1]."""
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    return images.permute(0, 3, 1, 2).float() / scale


def to_numpy(images: Tensor) -> np.ndarray:
    """(B, C, H, W) float -> (B, H, W, C) float32 numpy clipped to [0, 1], as the metrics expect."""
    return images.detach().float().clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()
