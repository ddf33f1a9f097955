"""Tasks: what a model reads and what it must produce. A task picks the prepared views, builds batches
by index from tensors that already sit on the device, and tells evaluation what to compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.config import DatasetConfig
from pipeline.data.store import load_split
from pipeline.errors import DataError
from pipeline.images import to_float


class Batch(NamedTuple):
    input: Tensor  # (B, C_in, H, W) float, what the model reads
    target: Tensor | None  # (B, C_out, H, W) float in [0, 1]; None where training must not see it
    label: Tensor  # (B,) int64, -1 when the dataset is unlabelled


class Reconstruct:
    """x -> x."""

    views: ClassVar[tuple[str, ...]] = ("images",)
    reconstructs: ClassVar[bool] = True  # whether the model maps each input to an output that evaluation scores
    scores_input: ClassVar[bool] = False  # whether evaluation also scores the raw input against the target

    def model_shape(self, dataset: DatasetConfig) -> dict[str, int]:
        """The shape arguments a model needs for this task on this dataset."""
        return {"in_channels": dataset.channels, "out_channels": dataset.channels, "image_size": dataset.image_size}

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        images = to_float(arrays["images"][index])
        return Batch(input=images, target=images, label=arrays["labels"][index])

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        return model(batch.input).image


class Denoise(Reconstruct):
    """x + σ·n, clipped to [0, 1] -> x. The noise is drawn afresh for every batch."""

    scores_input = True

    def __init__(self, *, sigma: float = 0.2) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = sigma

    def baseline(self, noisy: np.ndarray) -> np.ndarray:
        """The non-learned denoiser compared against: total variation (Chambolle), weight σ/2, image by image.

        (N, H, W, C) floats in [0, 1] in and out.
        """
        from skimage.restoration import denoise_tv_chambolle  # imported here: it costs every stage 0.4 s of scipy.stats

        return np.stack([denoise_tv_chambolle(image, weight=self.sigma / 2, channel_axis=-1) for image in noisy])

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        clean = to_float(arrays["images"][index])
        noise = torch.randn(clean.shape, generator=generator, device=clean.device)
        return Batch(input=(clean + self.sigma * noise).clamp(0.0, 1.0), target=clean, label=arrays["labels"][index])


class Generate(Reconstruct):
    """z -> x: a generator learns the training images' distribution; there is no per-image output, so
    evaluation scores its samples (Fréchet distance in a classifier's feature space), not reconstructions."""

    reconstructs = False

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        raise TypeError("a generate task has no per-image prediction; sample from the model instead")


TASKS: dict[str, type] = {
    "reconstruct": Reconstruct,
    "denoise": Denoise,
    "generate": Generate,
}


def build_task(name: str, **kwargs: Any) -> Reconstruct:
    """Instantiate a registered task; an unknown name lists the valid ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    return TASKS[name](**kwargs)


def load_tensors(folder: Path, split: str, task: Reconstruct, device: torch.device) -> dict[str, Tensor]:
    """The views a task reads plus labels, as whole tensors on `device` (uint8 stays uint8 to save memory)."""
    arrays = load_split(folder, split)
    missing = [view for view in task.views if view not in arrays]
    if missing:
        raise DataError(f"{folder} has no {', '.join(missing)} view; add it to the dataset's `views` or `forward`")
    return {name: torch.from_numpy(np.array(arrays[name])).to(device) for name in (*task.views, "labels")}
