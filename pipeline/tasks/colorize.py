"""Lab lightness -> chroma."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.config import DatasetConfig
from pipeline.images import ab_from_rgb, rgb_from_lab, to_float, to_numpy
from pipeline.tasks.base import Task
from pipeline.tasks.batch import Batch


class Colorize(Task):
    """Lab lightness -> chroma. The model reads L/100 (B, 1, H, W) and is trained towards ab/128 (B, 2, H, W)
    in [-1, 1]; evaluation converts (L, predicted ab) to RGB and scores it against the RGB of the true Lab,
    so every error it measures is a colour error. The non-learned baseline is the gray image (ab = 0)."""

    views = ("lab",)
    target_range = (-1.0, 1.0)
    baseline_name = "gray image"

    def model_shape(self, dataset: DatasetConfig) -> dict[str, int]:
        return {"in_channels": 1, "out_channels": 2, "image_size": dataset.image_size}

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        code = to_float(arrays["lab"][index])  # (B, 3, H, W): L·2.55/255 = L/100, (a + 128)/255, (b + 128)/255
        chroma = (code[:, 1:] * 255.0 - 128.0) / 128.0
        return Batch(input=code[:, :1], target=chroma, label=arrays["labels"][index])

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        return rgb_from_lab(batch.input, model(batch.input).image)

    def truth(self, batch: Batch) -> Tensor:
        return rgb_from_lab(batch.input, batch.target)

    def baseline(self, lightness: np.ndarray) -> np.ndarray:
        """The gray image of the same lightness: (N, H, W, 1) L/100 -> (N, H, W, 3) RGB in [0, 1]."""
        gray = torch.from_numpy(lightness).permute(0, 3, 1, 2)
        return to_numpy(rgb_from_lab(gray, torch.zeros(len(gray), 2, *gray.shape[2:])))

    def scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
        """PSNR and SSIM in RGB, and `ab_error`: the mean distance in the ab plane (Lab units) per image."""
        error = np.linalg.norm(ab_from_rgb(prediction) - ab_from_rgb(truth), axis=-1).mean(axis=(1, 2))
        return {**super().scores(prediction, truth), "ab_error": error}
