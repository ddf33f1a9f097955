"""Why the ambient study's supervised network restores digits at only about 17 dB: variants of
`supervised_drop_digits`, each trained and scored exactly as its train and evaluate stages do.

    python bench/ambient_supervised.py [--only longer seed ...]   # after `dvc repro`: its digits and classifier

Every variant sees the same prepared digits (half the pixels dropped, p = 0.5) and clean targets; it
changes one thing of params.yaml's experiment: the schedule, a loss weight, the network's size, the seed's
own settings, or the network itself (the autoencoder study's conv AE trained on the same task). Runs go to a
throw-away folder and MLflow store; nothing in the project changes. Prints test PSNR and SSIM per variant.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE = "supervised_drop_digits"
VARIANTS = {  # name: (what it changes, the changes to the experiment's params)
    "default": ("params.yaml as it is (10 epochs)", {}),
    "longer": ("40 epochs instead of 10", {"train": {"epochs": 40}}),
    "decoder": (
        "decoder_weight 10: the decoder leans on the pixel term, not the critic",
        {"update": {"decoder_weight": 10.0}},
    ),
    "no_kl": ("kl_weight 0: no posterior noise, an AE-GAN", {"update": {"kl_weight": 0.0}}),
    "pixels": (
        "pixel_weight 100, feature_weight 0: the similarity in pixels alone",
        {"update": {"pixel_weight": 100.0, "feature_weight": 0.0}},
    ),
    "wider": (
        "width 32 and latent 32 (the seed's MNIST network: 16 and 20)",
        {"model": {"latent_dim": 32, "width": 32}},
    ),
    "seed": ("the seed's own settings: lr 3e-4, decoder_weight 1e-6, kl_weight 1", {"update": {}}),
    "conv_ae": (
        "the autoencoder study's conv AE (latent 32) on the same task and data",
        {"model": {"name": "conv_ae", "latent_dim": 32, "width": 32, "depth": 2}, "update": {"lr": 2.0e-3}},
    ),
}


def variant(raw: dict, changes: dict) -> dict:
    experiment = copy.deepcopy(raw["experiments"][BASE])
    for section, values in changes.items():
        other_network = "name" in changes.get("model", {})  # its own update rule: none of the old settings
        if other_network or (section == "update" and not values):
            experiment[section] = dict(values)  # another network, or every setting at the rule's defaults
        else:
            experiment[section] = {**experiment[section], **values}
    return experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--prepared", type=Path, default=ROOT / "data" / "prepared" / "digits")
    parser.add_argument("--classifier", type=Path, default=ROOT / "models" / "classifiers" / "digits")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        from pipeline.config import parse_params
        from pipeline.evaluation.evaluate import evaluate_experiment
        from pipeline.training.run import train_experiment

        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        raw["experiments"] = {name: variant(raw, VARIANTS[name][1]) for name in args.only}
        raw["studies"] = ["ambient"]
        params = parse_params(raw)
        print(f"{'variant':9} {'PSNR':>6} {'SSIM':>6} {'train s':>7}  what changes (test digits, p = 0.5 dropped)")
        for name in args.only:
            folders = {"prepared_dir": args.prepared, "model_dir": root / "models" / name}
            started = time.perf_counter()
            train_experiment(params, name, **folders, plots_dir=root / "plots" / name, checkpoint_path=root / "ck")
            seconds = time.perf_counter() - started
            summary, _, _, _ = evaluate_experiment(
                params, name, **folders, classifier_dir=args.classifier, figures_dir=root / "figures" / name
            )
            print(
                f"{name:9} {summary['psnr_mean']:6.2f} {summary['ssim_mean']:6.3f} {seconds:7.0f}  {VARIANTS[name][0]}",
                flush=True,
            )


if __name__ == "__main__":
    main()
