"""Restoration time per image: the Ambient VAE-GAN's encoder and decoder against ACSG's latent search, in one
process on the same distorted test images (the trained models of `dvc repro`).

    python bench/ambient_speed.py                                   # both forward models of the default study
    python bench/ambient_speed.py --pair ambient_drop_digits acsg_drop_digits --batch 64

For each pair it prints milliseconds per image for both (the fastest of `--repeats` passes each, over the
same first `--batch` test images, after a warm-up), their ratio, each one's mean squared error on those images, and
how long the search takes to get as close as the encoder does, if it ever does within its steps; then
the error of the seed's own search settings and of a random sample from the same generator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pipeline.config import load_params
from pipeline.data.tensors import load_tensors
from pipeline.device import resolve_device
from pipeline.evaluation.search import LatentSearch, clock, latent_search
from pipeline.experiment import load_trained, resolve

ROOT = Path(__file__).resolve().parents[1]


def timed(restore, repeats: int, device: torch.device) -> tuple[list[float], torch.Tensor]:
    """Seconds of each of `repeats` passes after a warm-up, fastest first, and the last output."""
    restore()  # warm-up
    seconds, output = [], None
    for _ in range(repeats):
        started = clock(device)
        output = restore()
        seconds.append(clock(device) - started)
    return sorted(seconds), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", nargs=2, action="append", metavar=("AMBIENT", "ACSG"), help="experiment names")
    parser.add_argument("--batch", type=int, default=256, help="test images restored at once")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pairs = args.pair or [("ambient_drop_digits", "acsg_drop_digits"), ("ambient_noise_digits", "acsg_noise_digits")]
    params = load_params(ROOT / "params.yaml")
    device = resolve_device(params.base.device)
    torch.set_grad_enabled(False)
    for ambient_name, search_name in pairs:
        task = resolve(params, search_name).task
        test = load_tensors(ROOT / "data" / "prepared" / params.experiment(search_name).dataset, "test", task, device)
        count = min(args.batch, len(test["labels"]))
        batch = task.batch(
            test, torch.arange(count, device=device), torch.Generator(device).manual_seed(params.base.seed)
        )
        encoder_model, _ = load_trained(ROOT / "models" / ambient_name, device)
        search_model, _ = load_trained(ROOT / "models" / search_name, device)
        encoder_passes, encoded = timed(lambda: encoder_model(batch.input).image, args.repeats, device)
        curve: list[tuple[float, float]] = []

        def record(seconds: float, images: torch.Tensor) -> None:
            curve.append((seconds, float((images.clamp(0, 1) - batch.target).pow(2).mean())))

        search_passes, searched = timed(
            lambda: latent_search(search_model, batch.input, task.search_measure(batch), task.search),
            args.repeats,
            device,
        )
        encoder_seconds, search_seconds = encoder_passes[0], search_passes[0]
        latent_search(search_model, batch.input, task.search_measure(batch), task.search, trace=record)
        encoder_error = float((encoded.clamp(0, 1) - batch.target).pow(2).mean())
        search_error = float((searched.clamp(0, 1) - batch.target).pow(2).mean())
        reached = next((seconds for seconds, error in curve if error <= encoder_error), None)
        print(f"{ambient_name} vs {search_name} ({task.forward}, {count} images, {device}):")
        print(
            f"  ambient encoder+decoder {1000 * encoder_seconds / count:.4f} ms/image (slowest pass "
            f"{1000 * encoder_passes[-1] / count:.4f}), "
            f"MSE {encoder_error:.4f}"
        )
        print(
            f"  ACSG, {task.search.steps} steps  {1000 * search_seconds / count:.3f} ms/image (slowest pass "
            f"{1000 * search_passes[-1] / count:.3f}), "
            f"MSE {search_error:.4f}"
        )
        print(
            f"  ratio of the fastest passes {search_seconds / encoder_seconds:.0f}x per image "
            f"(of the slowest {search_passes[-1] / encoder_passes[-1]:.0f}x)"
        )
        print(
            "  ACSG reaches the encoder's MSE "
            + (f"after {1000 * reached / count:.3f} ms/image" if reached else "never within its steps")
        )
        seed_search = LatentSearch()  # the seed's: discriminator features, a fresh θ every step
        seeded = latent_search(search_model, batch.input, batch.measure, seed_search)
        random = search_model.sample(count, torch.Generator(device).manual_seed(params.base.seed))
        print(
            "  the seed's search (features, fresh θ) MSE "
            f"{float((seeded.clamp(0, 1) - batch.target).pow(2).mean()):.4f}; "
            f"a random sample's {float((random - batch.target).pow(2).mean()):.4f}"
        )


if __name__ == "__main__":
    main()
