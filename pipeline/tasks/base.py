"""What every task is: which prepared views it reads, how it builds batches by index from tensors that already
sit on the device, what a prediction is and what it is scored against. `Task` is the contract and its
defaults; it is no task itself (`batch` is each task's own).

What a task declares here is all evaluation asks of it: whether it maps each input to a scored output
(`reconstructs`), whether the raw input is scored too (`scores_input`), what a conditional model reads beside
the image (`conditioned_on`), whether its input is a forward model's measurement (`restores`) and whether a
decoder-only model may take it by searching its latent (`searches_latent`), and the non-learned method it is
compared with (`baseline`, None where there is none), and what the study table calls the raw input's and the
baseline's rows (`input_name`, `baseline_name`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.config import DatasetConfig
from pipeline.evaluation.metrics import psnr, ssim
from pipeline.images import to_float
from pipeline.tasks.batch import Batch


class Task(ABC):
    views: tuple[str, ...] = ("images",)  # the prepared views it reads, besides labels
    reconstructs: ClassVar[bool] = True  # whether the model maps each input to an output that evaluation scores
    scores_input: ClassVar[bool] = False  # whether evaluation also scores the raw input against the target
    target_range: ClassVar[tuple[float, float]] = (0.0, 1.0)  # what the model's output must be able to reach
    conditioned_on: str | None = None  # "label" or "image": what a conditional model reads beside the input
    restores: ClassVar[bool] = False  # the input is a forward model's measurement of the target (`Restore`)
    searches_latent: ClassVar[bool] = False  # a decoder-only model may take it, restoring by latent search
    input_name: ClassVar[str] = "input"  # the table row of the raw input's scores, where `scores_input`
    baseline_name: ClassVar[str | None] = None  # the table row of `baseline`'s scores, where it has one

    def model_shape(self, dataset: DatasetConfig) -> dict[str, int]:
        """The shape arguments a model needs for this task on this dataset."""
        return {"in_channels": dataset.channels, "out_channels": dataset.channels, "image_size": dataset.image_size}

    @abstractmethod
    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        """Images `index` as evaluation reads them: input, target (the truth) and label."""

    def training_batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        """What training may see of images `index`; evaluation reads `batch`, which may hold more (the truth)."""
        return self.batch(arrays, index, generator)

    def given(self, arrays: Mapping[str, Tensor], index: Tensor) -> Batch:
        """The batch for images someone hands in (`aegan apply`), the views derived from them as prepare does."""
        return self.batch(arrays, index, torch.Generator(index.device).manual_seed(0))

    def from_file(self, images: np.ndarray, forward: Mapping[str, Mapping]) -> np.ndarray:
        """What a file handed to `aegan apply` becomes before `given`: (1, S, S, C) uint8, as it is by default.
        `forward` is the dataset's forward models' settings."""
        return images

    def check(self, arrays: Mapping[str, Tensor], folder: Path) -> None:  # noqa: B027 -- most tasks need no check
        """Raise DataError when the loaded split cannot serve this task."""

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        """The image evaluation scores: (B, C, H, W) in [0, 1]."""
        return model(batch.input).image

    def latent(self, model: nn.Module, batch: Batch) -> Tensor:
        """The model's code for each input: (B, …) as its `encode` gives it."""
        return model.encode(batch.input)

    def truth(self, batch: Batch) -> Tensor:
        """The image a prediction is scored against: (B, C, H, W) in [0, 1]."""
        return batch.target

    def scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
        """Per-image scores of (N, H, W, C) predictions in [0, 1] against the truth."""
        return {"psnr": psnr(prediction, truth), "ssim": ssim(prediction, truth)}

    def tiled_scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        """Scores of a seed's own protocol over the whole split, where it had one."""
        return {}

    def baseline(self, measured: np.ndarray) -> np.ndarray | None:
        """The non-learned method's output on the very same (N, H, W, C) inputs (unclipped, as the batches hold
        them), or None when the task has none."""
        return None


def images_of(arrays: Mapping[str, Tensor], index: Tensor) -> Batch:
    """Images `index` as both input and target: what reconstructing and generating train on."""
    images = to_float(arrays["images"][index])
    return Batch(input=images, target=images, label=arrays["labels"][index])
