"""x -> x."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from pipeline.tasks.base import Task, images_of
from pipeline.tasks.batch import Batch


class Reconstruct(Task):
    """x -> x."""

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        return images_of(arrays, index)
