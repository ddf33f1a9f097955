"""The vae_gan study's generative models at k times their default epochs: FCD against training length.

    python bench/vae_gan_schedule.py --factor 4  # after `dvc repro` (needs data/prepared/digits and the classifier)

Trains each named experiment of params.yaml with its epochs multiplied by `factor`, into a temporary
folder (nothing in the project changes; MLflow runs go to a throw-away store unless MLFLOW_TRACKING_URI
is set), scores it exactly as evaluate@<experiment> does, and writes samples_<factor>x.png beside the
figures in docs/figures when --figure is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = [
    "linear_gan_digits",
    "linear_wgan_digits",
    "conv_vae_digits",
    "dcgan_digits",
    "wgan_gp_digits",
    "vae_wgan_digits",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--figure", type=Path, help="write the first 12 samples of every model, one row each, here")
    parser.add_argument("experiments", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{scratch}/mlflow.db")
        run(args.factor, args.experiments, Path(scratch), args.figure)


def run(factor: int, names: list[str], scratch: Path, figure: Path | None) -> None:
    import torch

    from pipeline.config import parse_params
    from pipeline.evaluation.evaluate import draw_samples, evaluate_experiment
    from pipeline.experiment import load_trained
    from pipeline.figures import grid, save_png
    from pipeline.images import to_numpy
    from pipeline.training.run import train_experiment

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name in names:
        raw["experiments"][name]["train"]["epochs"] *= factor
    params = parse_params(raw)
    rows = []
    print(f"{'experiment':<22} {'epochs':>6} {'train s':>8} {'FCD':>7}")
    for name in names:
        dataset = params.experiment(name).dataset
        folders = {"prepared_dir": ROOT / "data/prepared" / dataset, "model_dir": scratch / name}
        summary = train_experiment(
            params,
            name,
            **folders,
            plots_dir=scratch / "plots" / name,
            checkpoint_path=scratch / "checkpoints" / name / "last.pt",
        )
        scores, _, _, _ = evaluate_experiment(
            params,
            name,
            **folders,
            classifier_dir=ROOT / "models/classifiers" / dataset,
            figures_dir=scratch / "figures" / name,
        )
        print(
            f"{name:<22} {params.experiment(name).train.epochs:>6} {summary['train_seconds']:>8.1f} "
            f"{scores.get('fcd', np.nan):>7.1f}"
        )
        model, _ = load_trained(scratch / name, torch.device("cpu"))
        rows.append(to_numpy(draw_samples(model, 12, params.base.seed)))
    if figure:
        save_png(grid(rows), figure)


if __name__ == "__main__":
    main()
