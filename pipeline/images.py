"""The one place where pixel formats change: uint8 NHWC on disk <-> float NCHW in [0, 1] for models and metrics,
and Lab <-> RGB for colourisation."""

from __future__ import annotations

import warnings

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


def to_uint8(batch: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8, rounded and clipped."""
    return np.clip(np.rint(batch * 255.0), 0, 255).astype(np.uint8)


def rgb_from_lab(lightness: Tensor, chroma: Tensor) -> Tensor:
    """Lab -> sRGB with scikit-image's definition (D65): lightness (B, 1, H, W) as L/100 and chroma (B, 2, H, W)
    as ab/128 in, (B, 3, H, W) float32 in [0, 1] out, on the inputs' device. Out-of-gamut colours are clipped."""
    from skimage import color  # imported here: only the colourisation task needs it

    lab = torch.cat([lightness.float() * 100.0, chroma.float().clamp(-1.0, 1.0) * 128.0], 1)
    with warnings.catch_warnings():  # a predicted colour outside sRGB is clipped, which is what we want; do not warn
        warnings.filterwarnings("ignore", message="Conversion from CIE-LAB", category=UserWarning)
        rgb = color.lab2rgb(lab.permute(0, 2, 3, 1).detach().cpu().numpy(), channel_axis=-1)  # (B, H, W, 3)
    return torch.from_numpy(rgb.astype(np.float32)).permute(0, 3, 1, 2).to(lightness.device)


def ab_from_rgb(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) sRGB floats in [0, 1] -> (N, H, W, 2) Lab chroma a, b in Lab units."""
    from skimage import color

    return color.rgb2lab(images, channel_axis=-1)[..., 1:]
