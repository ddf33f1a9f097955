"""The one training loop: epochs of shuffled index batches over device-resident tensors, callbacks for side effects."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import torch
from torch import Tensor

from pipeline.errors import TrainingError
from pipeline.tasks.base import Task
from pipeline.tasks.batch import Batch
from pipeline.training import distributed
from pipeline.training.distributed import ALONE, World


class Callback(Protocol):
    def on_step(self, step: int, metrics: dict[str, float], images: int) -> None: ...

    def on_epoch_end(self, epoch: int, step: int) -> None: ...


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked for; CPU always runs fp32 so its results stay reproducible."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_batch_size(count: int, batch_size: int) -> None:
    if count < batch_size:
        raise TrainingError(
            f"the train split has {count} images, fewer than batch_size {batch_size}; lower train.batch_size"
        )


def fit(
    update: Callable[[Batch], dict[str, Tensor]],
    task: Task,
    arrays: Mapping[str, Tensor],
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    start_epoch: int = 0,
    step: int = 0,
    precision: str = "fp32",
    sync_every: int = 20,
    callbacks: Sequence[Callback] = (),
    world: World = ALONE,
) -> int:
    """Train from `start_epoch` to `epochs`; returns the number of optimizer steps taken in all.

    An epoch's last batch is smaller when the batch size does not divide the data. Losses stay on the
    device and are read back every `sync_every` steps and at each epoch's end, so a GPU is not stalled
    after every step; the callbacks then see every step in order, and a NaN is reported at its own step.

    Under torchrun (`world`) every rank shuffles alike and takes its shard of each global batch of
    `batch_size`; the losses read back are the ranks' means, so every rank stops at the same NaN.
    """
    count = len(arrays["labels"])
    check_batch_size(count, batch_size)
    device = arrays["labels"].device
    for epoch in range(start_epoch, epochs):
        order = torch.randperm(count, generator=generator, device=device)
        draws = world.draws(generator, epoch)
        pending: list[tuple[int, dict[str, Tensor], int]] = []  # (step, losses, images) not yet read back
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            shard = world.shard(index)
            if shard is None:
                continue
            batch = task.training_batch(arrays, shard, draws)
            with autocast(device, precision):
                losses = update(batch)
            step += 1
            pending.append((step, losses, len(index)))
            if len(pending) >= sync_every:
                _report(pending, epoch, callbacks)
        _report(pending, epoch, callbacks)
        for callback in callbacks:
            callback.on_epoch_end(epoch + 1, step)
    return step


def _report(pending: list[tuple[int, dict[str, Tensor], int]], epoch: int, callbacks: Sequence[Callback]) -> None:
    """Read the pending losses back in one transfer, stop on the first non-finite one, else tell the callbacks."""
    if not pending:
        return
    names = list(pending[0][1])
    values = distributed.mean(
        torch.stack([torch.stack([losses[n].float() for n in names]) for _, losses, _ in pending])
    )
    values = values.tolist()
    for (step, _, images), row in zip(pending, values):
        metrics = dict(zip(names, row))
        for name, value in metrics.items():
            if not math.isfinite(value):
                raise TrainingError(
                    f"{name} became {value} at epoch {epoch + 1}, step {step}: training diverged; "
                    "lower the learning rate or check the data"
                )
        for callback in callbacks:
            callback.on_step(step, metrics, images)
    pending.clear()
