"""Data-parallel training under torchrun (which `aegan train` starts itself for base.processes > 1): one process
per device (a rank), each taking its shard of every global
batch, the gradients averaged over all ranks before every optimizer step, rank 0 alone writing anything.

The averaging is the same as DistributedDataParallel's, but done where every update rule steps an optimizer
(`updates.base.apply`) rather than by wrapping the model: the rules call their models' parts one by one (a
critic judges real and fake images in separate passes before one backward), and two of them take gradients
with `torch.autograd.grad` (the Ambient VAE-GAN's per-part gradients, WGAN-GP's gradient penalty), which
DistributedDataParallel does not support (its own docstring says so). One all-reduce per optimizer step after
the backward costs the overlap of communication with the backward that DistributedDataParallel buys; on a
GPU machine `bench/gpu.py` measures what is left.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from pipeline.errors import TrainingError


@dataclass(frozen=True)
class World:
    """This process's place among the ranks; `World()` is the single process every result so far came from."""

    rank: int = 0
    size: int = 1
    seed: int = 0  # base.seed: the ranks' own random streams derive from it

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def shard(self, index: Tensor) -> Tensor | None:
        """This rank's contiguous part of a global batch (sizes differ by one at most), or None for every rank
        when the batch has fewer images than there are ranks (an epoch's last batch): it is skipped."""
        if self.size == 1:
            return index
        if len(index) < self.size:
            return None
        return torch.tensor_split(index, self.size)[self.rank]

    def draws(self, shuffle: torch.Generator, epoch: int) -> torch.Generator:
        """The generator an epoch's batches draw their noise and masks from, having reseeded torch's global
        stream (a GAN's latent noise) too. One process keeps the shuffling generator for both, as before. Each
        rank of several gets streams of its own, so ranks do not draw the same noise, seeded from (seed, epoch,
        rank): a resumed epoch draws what it drew before without the other ranks' states in the checkpoint."""
        if self.size == 1:
            return shuffle
        stream = ((self.seed * 100_003 + epoch) * 4096 + self.rank) * 2  # distinct for each (seed, epoch, rank)
        torch.manual_seed(stream)
        return torch.Generator(shuffle.device).manual_seed(stream + 1)


ALONE = World()  # one process, as every run before torchrun


def join(seed: int, device: torch.device) -> tuple[World, torch.device]:
    """Join the torchrun job this process belongs to (gloo on CPU, nccl on CUDA, each rank on GPU LOCAL_RANK),
    or stay the one process; returns the world and the device this rank computes on."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return World(seed=seed), device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise TrainingError(
                f"rank {local} on this machine has no GPU of its own ({torch.cuda.device_count()} visible); "
                "run at most one process per GPU (base.processes or torchrun --nproc-per-node)"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), seed=seed), device


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_initialized() and dist.get_world_size() > 1


def prepare(model: nn.Module, device: torch.device) -> nn.Module:
    """Batch norm over the global batch where the ranks compute on GPUs (SyncBatchNorm). PyTorch's SyncBatchNorm
    runs on GPUs only, so on CPU each rank normalises over its own shard, and rank 0's running statistics are
    the ones saved."""
    if active() and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Replace each gradient by its mean over the ranks, in one all-reduce of them all; a no-op in one process.
    Every rank runs the same code, so the same parameters have gradients (an unused one has none anywhere)."""
    if not active():
        return
    gradients = [parameter.grad for parameter in parameters if parameter.grad is not None]
    if not gradients:
        return
    flat = torch.cat([gradient.reshape(-1) for gradient in gradients])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for gradient, mean in zip(gradients, flat.split([gradient.numel() for gradient in gradients])):
        gradient.copy_(mean.view_as(gradient))


def mean(values: Tensor) -> Tensor:
    """The mean over the ranks of each rank's `values` (the losses the loop reads back), the same on every rank."""
    if not active():
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / dist.get_world_size()


def gather_rows(rows: Tensor) -> Tensor:
    """Every rank's `rows` (B_r, ...) concatenated in rank order on every rank: the global batch, for a fit that
    needs the images themselves (PCA) rather than averaged gradients."""
    if not active():
        return rows
    counts = [torch.zeros((), dtype=torch.long, device=rows.device) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor(len(rows), device=rows.device))
    most = int(max(counts))
    padded = torch.zeros((most, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    padded[: len(rows)] = rows
    pieces = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(pieces, padded)
    return torch.cat([piece[: int(count)] for piece, count in zip(pieces, counts)])


def broadcast(value: object) -> object:
    """Rank 0's `value` on every rank (a checkpoint rank 0 read, so ranks on other machines need no shared disk)."""
    if not active():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def check_replicas(model: nn.Module) -> None:
    """Raise when the ranks' weights have drifted apart, which averaged gradients should never let happen; one
    all-gather of a checksum per rank, after training."""
    if not active():
        return
    with torch.no_grad():
        total = sum((parameter.double().sum() for parameter in model.parameters()), torch.zeros((), dtype=torch.double))
    sums = [torch.zeros_like(total) for _ in range(dist.get_world_size())]
    dist.all_gather(sums, total)
    if any(not torch.isclose(other, sums[0], rtol=1e-9, atol=0.0) for other in sums):
        raise TrainingError(
            "the ranks' weights differ after training (a rank computed on other data or code); "
            "rerun with base.processes: 1 and report it"
        )
