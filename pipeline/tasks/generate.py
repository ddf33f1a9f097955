"""z -> x."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from pipeline.tasks.base import Task, images_of
from pipeline.tasks.batch import Batch


class Generate(Task):
    """z -> x: a generator learns the training images' distribution; there is no per-image output, so
    evaluation scores its samples (Fréchet distance in a classifier's feature space), not reconstructions."""

    reconstructs: ClassVar[bool] = False

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        return images_of(arrays, index)  # the real images a critic compares samples with

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        raise TypeError("a generate task has no per-image prediction; sample from the model instead")
