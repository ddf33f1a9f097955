"""x + σ·n -> x."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from pipeline.evaluation.baselines import total_variation
from pipeline.images import to_float
from pipeline.schema import Positive
from pipeline.tasks.base import Task
from pipeline.tasks.batch import Batch


class Denoise(Task):
    """x + σ·n, clipped to [0, 1] -> x. The noise is drawn afresh for every batch."""

    scores_input = True
    input_name = "noisy input"
    baseline_name = "total-variation denoiser"

    def __init__(self, *, sigma: Positive = 0.2) -> None:
        self.sigma = sigma

    def baseline(self, noisy: np.ndarray) -> np.ndarray:
        """Total-variation denoising (Chambolle), weight σ/2, image by image."""
        return total_variation(noisy, self.sigma)

    def given(self, arrays: Mapping[str, Tensor], index: Tensor) -> Batch:
        images = to_float(arrays["images"][index])  # an image handed in is noisy already
        return Batch(input=images, target=images, label=arrays["labels"][index])

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        clean = to_float(arrays["images"][index])
        noise = torch.randn(clean.shape, generator=generator, device=clean.device)
        return Batch(input=(clean + self.sigma * noise).clamp(0.0, 1.0), target=clean, label=arrays["labels"][index])
