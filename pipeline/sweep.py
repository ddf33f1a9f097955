"""sweep@<experiment>-<percent>: a restore experiment trained and scored again with drop_independent copies at
another drop probability p, for AmbientGAN's figure of PSNR against p.

A point is an ordinary experiment to the library, `<experiment>-p<percent>` on `<dataset>-p<percent>`: the base
experiment's settings, and the base dataset's images and labels with drop_independent copies drawn afresh at p
(train and test, from the seed, so every method of one p restores the very same test inputs; prepare's copies
differ, drawn from one generator with the dataset's other forward models). It trains in its own MLflow run,
evaluate scores it with the non-learned restoration beside it, and the scores go into the run at once, since no
report brings them there.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline import tracking
from pipeline.config import Params, point_name
from pipeline.data.store import PreparedWriter, load_split, read_manifest
from pipeline.evaluation.evaluate import evaluate_experiment
from pipeline.files import staged_dir
from pipeline.forward import build_forward
from pipeline.images import to_float
from pipeline.training.run import train_experiment

CHUNK = 256  # images distorted and written at a time
SCORES = ("psnr_mean", "ssim_mean", "input_psnr_mean", "baseline_psnr_mean", "baseline_ssim_mean")  # in the figure


def variant(params: Params, experiment: str, percent: int) -> Params:
    """`params` with experiment `point_name(experiment, percent)` on `point_name(<its dataset>, percent)` added."""
    base = params.experiment(experiment)
    dataset = point_name(base.dataset, percent)
    forward = {"drop_independent": {"p": percent / 100}}
    settings = dataclasses.replace(params.dataset(base.dataset), forward=forward, views=())
    point = dataclasses.replace(base, dataset=dataset)
    return dataclasses.replace(
        params,
        datasets={**params.datasets, dataset: settings},
        experiments={**params.experiments, point_name(experiment, percent): point},
    )


def redistort(source_dir: Path, out_dir: Path, name: str, p: float, seed: int) -> dict[str, Any]:
    """Write a prepared dataset at `out_dir`: the images and labels of `source_dir`, and drop_independent copies
    at `p`; returns its manifest."""
    operator = build_forward("drop_independent", p=p)
    with staged_dir(out_dir) as staging:
        writer = PreparedWriter(staging)
        for split in ("train", "test"):
            arrays = load_split(source_dir, split)
            images, labels = arrays["images"], arrays["labels"]
            writer.write_whole(split, "labels", labels)
            writer.allocate(split, "images", images.shape, np.uint8)
            writer.allocate(split, "drop_independent", images.shape, np.float16)
            generator = torch.Generator().manual_seed(
                seed + (split == "test")
            )  # a generator per split, as prepare seeds its own
            for start in range(0, len(images), CHUNK):
                chunk = np.array(images[start : start + CHUNK])
                writer.write(split, "images", start, chunk)
                measured = operator(to_float(torch.from_numpy(chunk)), generator).permute(0, 2, 3, 1)  # (B, H, W, C)
                writer.write(split, "drop_independent", start, measured.numpy().astype(np.float16))
        source = read_manifest(source_dir)
        kept = {key: source[key] for key in ("source", "image_size", "channels", "seed", "counts", "class_names")}
        return writer.finish(
            {**kept, "dataset": name, "views": [], "forward": {"drop_independent": {"p": p}}, "skipped": 0}
        )


def run_point(
    params: Params,
    experiment: str,
    percent: int,
    *,
    prepared_dir: Path,
    classifier_dir: Path,
    out_dir: Path,
    checkpoint_path: Path,
) -> dict[str, Any]:
    """Distort, train and evaluate one point into `out_dir` (data/, model/, losses/, figures/), whole or not at
    all; returns its scores with the base experiment, p (a fraction) and the method (ambient, supervised) as
    the study table names it."""
    point = variant(params, experiment, percent)
    name, p = point_name(experiment, percent), percent / 100
    with staged_dir(out_dir) as staging:
        data, model, figures = staging / "data", staging / "model", staging / "figures"
        redistort(prepared_dir, data, point.experiment(name).dataset, p, params.base.seed)
        losses = staging / "losses"
        train_experiment(
            point, name, prepared_dir=data, model_dir=model, plots_dir=losses, checkpoint_path=checkpoint_path
        )
        summary, _, _, record = evaluate_experiment(
            point, name, prepared_dir=data, model_dir=model, classifier_dir=classifier_dir, figures_dir=figures
        )
        store = tracking.Store(tracking.resolve_uri(params.tracking.uri))
        store.log_evaluation(record, summary, {"figures": sorted(figures.iterdir())})
        for lock in staging.glob(".*.lock"):  # the parts' locks; no other process can see this staging folder
            lock.unlink()
    scores = {key: summary[key] for key in SCORES if key in summary}
    return {"experiment": experiment, "p": p, "method": record["method"], **scores}  # no run id: a metrics file
