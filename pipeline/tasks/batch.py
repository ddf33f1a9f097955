"""The batch contract between tasks, models, update rules and evaluation."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor


class Batch(NamedTuple):
    input: Tensor  # (B, C_in, H, W) float, what the model reads
    target: Tensor | None  # (B, C_out, H, W) float in [0, 1]; None where training must not see it
    label: Tensor  # (B,) int64, -1 when the dataset is unlabelled
    condition: Tensor | None = None  # what a conditional model reads besides the input: (B, classes) or (B, c, H, W)
    # the forward model that made `input`, fresh θ per call (ambient training)
    measure: Callable[[Tensor], Tensor] | None = None

    def head(self, count: int) -> Batch:
        """The first `count` images, every per-image field cut alike."""
        return Batch(*(part[:count] if isinstance(part, Tensor) else part for part in self))
