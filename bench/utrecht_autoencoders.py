"""The `autoencoders` study on the seed's own data: the Utrecht faces (122 JPEGs, 128×128), split by person.

    python bench/utrecht_autoencoders.py [--folder ../shared/data/utrecht] [--only seed_1ch ours_1ch ...]

Trains the faithful port of the seed's network (no bottleneck) and our bottlenecked conv AE, one- and
three-channel and denoising, through the same prepare/train/evaluate code as `dvc repro`, and prints
each test MSE (pixels in [0, 1]) beside the seed's published one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import parse_params
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import fetch
from pipeline.evaluation.evaluate import evaluate_experiment
from pipeline.training.run import train_experiment

ROOT = Path(__file__).resolve().parents[1]
SEED_MSE = {"1ch": 0.000923, "3ch": 0.001350, "dae": 0.002301}  # the seed notebook's test MSEs
SEED_NET = {"name": "seed_conv_ae"}
OURS_NET = {"name": "conv_ae", "latent_dim": 256, "width": 32, "depth": 4}  # 128 -> 8×8×256 -> 256 numbers
RUNS = {  # name: (channels, task, model, epochs); batch 10 and Adam 1e-3 throughout, as the seed
    "seed_1ch": (1, {"name": "reconstruct"}, SEED_NET, 30),
    "seed_3ch": (3, {"name": "reconstruct"}, SEED_NET, 30),
    "seed_dae": (1, {"name": "denoise", "sigma": 0.2}, SEED_NET, 100),
    "ours_1ch": (1, {"name": "reconstruct"}, OURS_NET, 100),
    "ours_3ch": (3, {"name": "reconstruct"}, OURS_NET, 100),
    "ours_dae": (1, {"name": "denoise", "sigma": 0.2}, OURS_NET, 100),
}


def params_for(folder: Path, runs: list[str]) -> dict:
    datasets = {
        f"utrecht_{c}ch": {
            "source": "folder",
            "path": str(folder),
            "image_size": 128,
            "channels": c,
            "test_fraction": 0.25,
            "split_group": r"^([fm]\d{4})",  # f4001.jpg and f4001s.jpg (smiling) are one person: never on both sides
        }
        for c in (1, 3)
    }
    experiments = {
        name: {
            "study": "utrecht",
            "dataset": f"utrecht_{channels}ch",
            "task": task,
            "model": model,
            "update": {"lr": 1.0e-3},
            "train": {"epochs": epochs, "batch_size": 10},
        }
        for name, (channels, task, model, epochs) in RUNS.items()
        if name in runs
    }
    return {
        "base": {"seed": 0, "device": "auto"},
        "datasets": datasets,
        "studies": ["utrecht"],
        "experiments": experiments,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=ROOT.parent / "shared" / "data" / "utrecht")
    parser.add_argument("--only", nargs="+", default=list(RUNS), choices=list(RUNS))
    args = parser.parse_args()
    params = parse_params(params_for(args.folder.resolve(), args.only))
    print("run       test MSE   seed MSE   test PSNR  test SSIM  train s  (128×128 faces, split by person)")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for name in params.datasets:
            if any(e.dataset == name for e in params.experiments.values()):
                fetch(name, params.dataset(name), root / "raw" / name, root / "downloads")
                manifest = prepare_dataset(
                    name, params.dataset(name), root / "raw" / name, root / "prepared" / name, params.base.seed
                )
                print(f"{name}: {manifest['counts']['train']} train / {manifest['counts']['test']} test faces")
        for name, experiment in params.experiments.items():
            folders = {"prepared_dir": root / "prepared" / experiment.dataset, "model_dir": root / "models" / name}
            started = time.perf_counter()
            train_experiment(
                params, name, **folders, plots_dir=root / "plots" / name, checkpoint_path=root / "ck" / name
            )
            seconds = time.perf_counter() - started
            summary, per_image, _, _ = evaluate_experiment(
                params, name, **folders, classifier_dir=root / "no-classifier", figures_dir=root / "figures" / name
            )
            mse = float(np.mean(10 ** (-per_image["psnr"] / 10)))  # per-image MSE from PSNR (data range 1)
            print(
                f"{name:9} {mse:9.6f}  {SEED_MSE[name.split('_')[1]]:9.6f}  {summary['psnr_mean']:9.2f}  "
                f"{summary['ssim_mean']:9.4f}  {seconds:7.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
