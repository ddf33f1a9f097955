"""Canny edges -> the image."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from pipeline.config import DatasetConfig
from pipeline.images import to_float
from pipeline.tasks.base import Task
from pipeline.tasks.batch import Batch


class Translate(Task):
    """Canny edge map (B, 1, H, W), 1 on an edge -> the image. The edges are the dataset's `edges` view,
    detected at its `edge_sigma`."""

    views = ("images", "edges")

    def model_shape(self, dataset: DatasetConfig) -> dict[str, int]:
        return {"in_channels": 1, "out_channels": dataset.channels, "image_size": dataset.image_size}

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        edges, images = to_float(arrays["edges"][index]), to_float(arrays["images"][index])
        return Batch(input=edges, target=images, label=arrays["labels"][index])

    def scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
        """PSNR and SSIM, and `gradient_ratio`: the prediction's mean gradient magnitude over the truth's, per
        image. Below 1 the output is smoother than the photo (the blur a pixel loss settles for), near 1 it has
        as much edge and texture, whether or not in the right places (which PSNR and SSIM judge)."""
        ratio = edge_energy(prediction) / np.maximum(edge_energy(truth), 1 / 255)
        return {**super().scores(prediction, truth), "gradient_ratio": ratio}


def edge_energy(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) in [0, 1] -> (N,) mean absolute difference between neighbouring pixels of the gray image."""
    gray = images.mean(axis=-1)
    return np.abs(np.diff(gray, axis=1)).mean(axis=(1, 2)) + np.abs(np.diff(gray, axis=2)).mean(axis=(1, 2))
