"""(x, condition) -> x, decoded with another condition to transfer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from pipeline.config import DatasetConfig
from pipeline.errors import DataError
from pipeline.images import to_float
from pipeline.schema import Size
from pipeline.tasks.base import Task
from pipeline.tasks.batch import Batch


class Transfer(Task):
    """(x, condition) -> x, for a model that reads the condition in its encoder and its decoder. Evaluation
    scores the reconstruction with the image's own condition; transferring is decoding with another one.

    `condition: label` hands in the one-hot class (B, classes); `gray` and `edges` hand in that view of the
    image itself (B, 1, H, W).
    """

    def __init__(self, *, condition: Literal["label", "gray", "edges"] = "label", classes: Size = 10) -> None:
        if classes < 2:
            raise ValueError(f"classes must be at least 2, got {classes}")
        self.condition, self.classes = condition, classes
        self.conditioned_on = "label" if condition == "label" else "image"
        self.views = ("images",) if condition == "label" else ("images", condition)

    def model_shape(self, dataset: DatasetConfig) -> dict[str, int]:
        return {**super().model_shape(dataset), "condition_channels": self.classes if self.condition == "label" else 1}

    def check(self, arrays: Mapping[str, Tensor], folder: Path) -> None:
        if self.condition != "label":
            return
        labels = arrays["labels"]
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.classes):
            found = "has no labels" if int(labels.min()) < 0 else f"has labels up to {int(labels.max())}"
            raise DataError(
                f"{folder} {found}; a label condition needs labels 0 to {self.classes - 1} "
                "(set task.classes, or condition gray or edges)"
            )

    def conditions(self, arrays: Mapping[str, Tensor], index: Tensor, labels: Tensor | None = None) -> Tensor:
        """The conditions of images `index`, or, for a label condition, of `labels` instead of their own."""
        if self.condition == "label":
            return nn.functional.one_hot(arrays["labels"][index] if labels is None else labels, self.classes).float()
        return to_float(arrays[self.condition][index])

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        images = to_float(arrays["images"][index])
        condition = self.conditions(arrays, index)
        return Batch(input=images, target=images, label=arrays["labels"][index], condition=condition)

    def given(self, arrays: Mapping[str, Tensor], index: Tensor) -> Batch:
        if self.condition == "label":
            raise DataError("a label-conditioned model needs each image's class, which a file does not carry")
        return super().given(arrays, index)

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        return model(batch.input, batch.condition).image

    def latent(self, model: nn.Module, batch: Batch) -> Tensor:
        return model.encode(batch.input, batch.condition)
