"""Training throughput of the conv AE on `digits`: aegan's loop (device-resident uint8 tensor, index batches)
against a plain PyTorch DataLoader loop over the same images, model, update rule and batch size.

    python bench/train_throughput.py [--epochs 5] [--device cpu|cuda] [--precision fp32|bf16]

Prints images/s for both and their ratio; both are measured in this run on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import load_params
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import fetch
from pipeline.data.store import load_split
from pipeline.data.tensors import load_tensors
from pipeline.models import build_model
from pipeline.tasks import Batch, build_task
from pipeline.training.loop import autocast, fit
from pipeline.training.updates import ReconstructionUpdate

ROOT = Path(__file__).resolve().parents[1]


class ItemDataset(Dataset):
    """The leanest per-item dataset: one uint8 HWC image -> one float CHW tensor in [0, 1]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(np.array(self.images[index])).permute(2, 0, 1).float() / 255.0
        return image, int(self.labels[index])


class PilItemDataset(ItemDataset):
    """The seeds' data path (torchvision's MNIST + ToTensor, without torchvision): a PIL image per item."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(np.asarray(self.images[index])[:, :, 0], mode="L")
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True))  # what ToTensor does to a PIL image
        return pixels[None].float().div(255.0), int(self.labels[index])


def build(params, device, width: int | None):
    experiment = params.experiment("ae_digits")
    torch.manual_seed(0)
    shape = build_task("reconstruct").model_shape(params.dataset("digits"))
    model_args = {**experiment.model.args, **({"width": width} if width else {})}
    model = build_model(experiment.model.name, **shape, **model_args).to(device).train()
    return model, ReconstructionUpdate(model, **experiment.update)


def time_aegan(params, prepared: Path, device, epochs: int, batch_size: int, precision: str, width) -> float:
    _model, update = build(params, device, width)
    task = build_task("reconstruct")
    arrays = load_tensors(prepared, "train", task, device)
    generator = torch.Generator(device).manual_seed(0)
    fit(update, task, arrays, epochs=1, batch_size=batch_size, generator=generator, precision=precision)  # warm-up
    sync(device)
    start = time.perf_counter()
    fit(update, task, arrays, epochs=epochs, batch_size=batch_size, generator=generator, precision=precision)
    sync(device)
    images = epochs * len(arrays["labels"])
    return images / (time.perf_counter() - start)


def time_dataloader(params, prepared: Path, device, epochs, batch_size, precision, width, dataset=ItemDataset) -> float:
    _model, update = build(params, device, width)
    train = load_split(prepared, "train")
    loader = DataLoader(dataset(train["images"], train["labels"]), batch_size=batch_size, shuffle=True)

    def one_epoch() -> int:
        seen = 0
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            with autocast(device, precision):
                losses = update(Batch(input=images, target=images, label=labels))
            float(losses["loss"])  # the same per-step sync the aegan loop does for its NaN check
            seen += len(images)
        return seen

    one_epoch()  # warm-up
    sync(device)
    start = time.perf_counter()
    images = sum(one_epoch() for _ in range(epochs))
    sync(device)
    return images / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--width", type=int, help="override the model's width (default: params.yaml's ae_digits)")
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    batch_size = params.experiment("ae_digits").train.batch_size
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        fetch("digits", params.dataset("digits"), root / "raw", root / "downloads")
        prepare_dataset("digits", params.dataset("digits"), root / "raw", root / "prepared", params.base.seed)
        setting = (root / "prepared", device, args.epochs, batch_size, args.precision, args.width)
        ours, plain, seed_style = [], [], []
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits all alike
            ours.append(time_aegan(params, *setting))
            plain.append(time_dataloader(params, *setting))
            seed_style.append(time_dataloader(params, *setting, dataset=PilItemDataset))
    ours_median, plain_median, seed_median = (statistics.median(v) for v in (ours, plain, seed_style))
    width = args.width or params.experiment("ae_digits").model.args["width"]
    print(
        f"device {device} ({torch.get_num_threads()} threads), precision {args.precision}, batch {batch_size}, "
        f"{args.epochs} epochs x {args.repeats} repeats, conv_ae width {width} on digits 28x28"
    )
    print(
        f"aegan loop (device tensor, index batches): {ours_median:10.0f} images/s  (runs: {[round(v) for v in ours]})"
    )
    print(
        f"plain DataLoader loop (per-item dataset):  {plain_median:10.0f} images/s  (runs: {[round(v) for v in plain]})"
    )
    print(
        f"DataLoader, PIL image per item (seeds):    {seed_median:10.0f} images/s  (runs: "
        f"{[round(v) for v in seed_style]})"
    )
    print(
        f"ratio vs lean DataLoader: {ours_median / plain_median:.2f}x; vs seed-style DataLoader: "
        f"{ours_median / seed_median:.2f}x"
    )


if __name__ == "__main__":
    main()
