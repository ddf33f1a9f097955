"""Training throughput at the seeds' sizes, for a machine with GPUs (it also runs, slowly, on CPU).

    python bench/gpu.py [--images 4096] [--steps 30] [--only conv_ae ambient pix2pix] [--workers 4]
                        [--ranks N]

For the conv AE on MNIST-size images, the Ambient VAE-GAN at 64×64 and pix2pix at 256×256, on random images of
those shapes: images/s of aegan's loop (the training tensor on the device, index batches) in fp32 and in bf16
autocast, the same model trained from a plain PyTorch DataLoader (per-item dataset, batches copied to the
device), their ratio, and the peak GPU memory. With several GPUs (or `--ranks N`) it then runs the loop as
1…N torchrun ranks and prints the scaling efficiency (N-rank throughput over N times one rank's). Every
figure is measured in this run on this machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import DatasetConfig
from pipeline.models import build_model
from pipeline.tasks import build_task
from pipeline.training import distributed
from pipeline.training.loop import autocast, fit
from pipeline.training.updates import update_rule_for

# name: (task and its settings, model and its settings, image side, channels, batch size: the seeds')
CASES = {
    "conv_ae": (("reconstruct", {}), ("conv_ae", {"latent_dim": 32, "width": 32, "depth": 2}), 28, 1, 64),
    "ambient": (("restore", {"forward": "drop_independent"}), ("ambient_vaegan", {}), 64, 3, 64),
    "pix2pix": (("translate", {}), ("pix2pix", {"width": 64, "depth": 8}), 256, 3, 1),
}


def case(name: str, count: int, device: torch.device, data_device: torch.device | None = None):
    """The task, a fresh model on `device` with its update rule, and `count` random images of the case's shape
    (on `data_device`, by default the model's)."""
    (task_name, task_args), (model_name, model_args), side, channels, batch_size = CASES[name]
    task = build_task(task_name, **task_args)
    if task.restores:
        task.bind({"p": 0.9})  # the Ambient seed's drop rate
    torch.manual_seed(0)
    shape = task.model_shape(DatasetConfig(source="celeba", image_size=side, channels=channels))
    model = build_model(model_name, **shape, **model_args).to(device).train()
    update = update_rule_for(type(model))(model)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, side, side, channels), dtype=torch.uint8, generator=generator)
    arrays = {"images": images, "labels": torch.zeros(count, dtype=torch.long)}
    if "edges" in task.views:
        arrays["edges"] = torch.randint(0, 256, (count, side, side, 1), dtype=torch.uint8, generator=generator)
    if task.restores:  # the stored distorted copy, float16 as prepare writes it
        arrays[task.forward] = (images.float() / 255 * (torch.rand(images.shape, generator=generator) > 0.9)).half()
    return task, update, {key: value.to(data_device or device) for key, value in arrays.items()}, batch_size


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def loop_rate(name: str, count: int, steps: int, device: torch.device, precision: str, world=distributed.ALONE):
    """Images/s of `fit` over `steps` global batches after one warm-up epoch, and the peak GPU memory (GiB). The
    global batch is the case's times the ranks, so every rank keeps a full one."""
    task, update, arrays, batch_size = case(name, count, device)
    batch_size *= world.size
    generator = torch.Generator(device).manual_seed(0)
    settings = {"batch_size": batch_size, "generator": generator, "precision": precision, "world": world}
    fit(update, task, {k: v[: batch_size * 2] for k, v in arrays.items()}, epochs=1, **settings)
    used = {key: value[: batch_size * steps] for key, value in arrays.items()}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start = time.perf_counter()
    fit(update, task, used, epochs=1, **settings)
    sync(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return len(used["labels"]) / (time.perf_counter() - start), peak


class Items(Dataset):
    """A plain per-item dataset over CPU tensors: the way a DataLoader loop is usually written."""

    def __init__(self, arrays: dict[str, torch.Tensor]) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays["labels"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[index] for key, value in self.arrays.items()}


def dataloader_rate(name: str, count: int, steps: int, device: torch.device, precision: str, workers: int) -> float:
    """Images/s of the same model and update rule fed by a DataLoader over `steps` batches (after one)."""
    task, update, arrays, batch_size = case(name, count, device, data_device=torch.device("cpu"))
    used = {key: value[: batch_size * (steps + 1)] for key, value in arrays.items()}
    loader = DataLoader(
        Items(used), batch_size=batch_size, shuffle=True, num_workers=workers, pin_memory=device.type == "cuda"
    )
    generator = torch.Generator(device).manual_seed(0)
    seen, start = 0, None
    for batch in loader:
        moved = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        index = torch.arange(len(moved["labels"]), device=device)
        with autocast(device, precision):
            losses = update(task.training_batch(moved, index, generator))
        float(next(iter(losses.values())))  # a read-back per step, as a plain loop logs its loss
        if start is None:  # the first batch is the warm-up
            sync(device)
            start = time.perf_counter()
        else:
            seen += len(index)
    sync(device)
    return seen / (time.perf_counter() - start)


def scaling(name: str, count: int, steps: int, most: int) -> None:
    """The loop as 1…`most` torchrun ranks, each on a GPU of its own (or CPU processes), the global batch the
    case's batch times the ranks."""
    rates = {}
    for ranks in range(1, most + 1):
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
        worker = [__file__, "--rank-of", name, "--images", str(count), "--steps", str(steps)]
        output = subprocess.run([*command, *worker], capture_output=True, text=True, check=True).stdout
        rates[ranks] = json.loads(output.strip().splitlines()[-1])["rate"]
        efficiency = rates[ranks] / (ranks * rates[1])
        print(f"  {name}: {ranks} rank(s) {rates[ranks]:10.1f} img/s, scaling efficiency {efficiency:6.1%}")


def rank_worker(name: str, count: int, steps: int) -> None:
    """One torchrun rank of `scaling`, printing the global rate as JSON on rank 0."""
    world, device = distributed.join(0, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    rate, _ = loop_rate(name, count * world.size, steps, device, "fp32", world)
    if world.leader:
        print(json.dumps({"rate": rate}))
    distributed.leave()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096, help="random images per case (at most)")
    parser.add_argument("--steps", type=int, default=30, help="timed batches per measurement")
    parser.add_argument("--only", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--workers", type=int, default=4, help="DataLoader worker processes")
    parser.add_argument("--ranks", type=int, default=torch.cuda.device_count(), help="scale over 1…N ranks")
    parser.add_argument("--rank-of", choices=list(CASES), help=argparse.SUPPRESS)  # a torchrun rank of `scaling`
    args = parser.parse_args()
    if args.rank_of:
        return rank_worker(args.rank_of, args.images, args.steps)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {where}; torch {torch.__version__}; {args.steps} timed batches per figure")
    columns = ("batch", "fp32 img/s", "bf16 img/s", "DataLoader", "ratio", "peak GiB")
    print(f"{'case':8} " + " ".join(f"{column:>{width}}" for column, width in zip(columns, (5, 11, 11, 11, 6, 9))))
    for name in args.only:
        batch_size = CASES[name][4]
        count = min(args.images, batch_size * (args.steps + 1))
        fp32, peak = loop_rate(name, count, args.steps, device, "fp32")
        bf16 = loop_rate(name, count, args.steps, device, "bf16")[0] if device.type == "cuda" else float("nan")
        plain = dataloader_rate(name, count, args.steps, device, "fp32", args.workers)
        print(f"{name:8} {batch_size:5} {fp32:11.1f} {bf16:11.1f} {plain:11.1f} {fp32 / plain:5.2f}x {peak:9.2f}")
    if device.type == "cpu":
        print("bf16 and peak memory: CUDA only (nan); the CPU loop runs fp32")
    if args.ranks > 1:
        print(f"data-parallel scaling over 1…{args.ranks} ranks (torchrun, gradients averaged by all-reduce):")
        for name in args.only:
            scaling(name, args.images, args.steps, args.ranks)
    else:
        print(f"data-parallel scaling: {torch.cuda.device_count()} GPU(s) here, nothing to scale over (--ranks)")


if __name__ == "__main__":
    main()
