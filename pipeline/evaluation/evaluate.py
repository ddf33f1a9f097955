"""evaluate@<experiment>: score the trained model on the test split, image by image."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from pipeline import tracking
from pipeline.config import Params
from pipeline.evaluation.metrics import psnr, ssim, summarise
from pipeline.images import to_numpy
from pipeline.tasks import Batch, Reconstruct, build_task, load_tensors
from pipeline.training.run import load_trained, resolve_device

EVAL_BATCH = 256


class Predictions(NamedTuple):
    task: Reconstruct
    model: torch.nn.Module  # in eval mode
    batches: list[Batch]  # the test batches, in order
    outputs: list[torch.Tensor]  # one (B, C, H, W) prediction per batch
    run: dict  # the training run's summary (run.json): MLflow run id, train time


@torch.no_grad()
def predict_split(params: Params, name: str, *, prepared_dir: Path, model_dir: Path, limit: int | None = None) -> Predictions:
    """Run the trained model over the test split in fixed order, with a fixed seed for any task noise."""
    experiment = params.experiment(name)
    device = resolve_device(params.base.device)
    task = build_task(experiment.task.name, **experiment.task.args)
    arrays = load_tensors(prepared_dir, "test", task, device)
    model, summary = load_trained(model_dir, device)
    generator = torch.Generator(device).manual_seed(params.base.seed)
    count = len(arrays["labels"]) if limit is None else min(limit, len(arrays["labels"]))
    batches, predictions = [], []
    for start in range(0, count, EVAL_BATCH):
        batch = task.batch(arrays, torch.arange(start, min(start + EVAL_BATCH, count), device=device), generator)
        batches.append(batch)
        predictions.append(task.predict(model, batch).float())
    return Predictions(task, model, batches, predictions, summary)


def evaluate_experiment(params: Params, name: str, *, prepared_dir: Path, model_dir: Path) -> tuple[dict, pd.DataFrame]:
    """Per-image PSNR/SSIM of prediction against target (and of the raw input, where the task scores it).

    The summary also goes to the model's MLflow run as `test/<score>_mean` etc.

    Returns the summary (means, stds, image count) and one row per test image.
    """
    task, model, batches, predictions, run = predict_split(params, name, prepared_dir=prepared_dir, model_dir=model_dir)
    prediction = np.concatenate([to_numpy(p) for p in predictions])
    target = np.concatenate([to_numpy(b.target) for b in batches])
    scores = {"psnr": psnr(prediction, target), "ssim": ssim(prediction, target)}
    if task.scores_input:
        given = np.concatenate([to_numpy(b.input) for b in batches])
        scores |= {"input_psnr": psnr(given, target), "input_ssim": ssim(given, target)}
        if hasattr(task, "baseline"):  # a non-learned method on the very same inputs
            restored = task.baseline(given)
            scores |= {"baseline_psnr": psnr(restored, target), "baseline_ssim": ssim(restored, target)}
    summary = {**summarise(scores), "images": len(prediction)}
    if hasattr(model, "scores"):  # scores of the fitted model itself, e.g. PCA's explained variance
        summary |= model.scores()
    tracked = tracking.reopen(tracking.resolve_uri(params.tracking.uri), run["run_id"], tags={"dvc.evaluate": f"evaluate@{name}"})
    tracked.log_metrics([(0, {f"test/{key}": value for key, value in summary.items()})])
    return summary, pd.DataFrame({"image": np.arange(len(prediction)), **scores})
