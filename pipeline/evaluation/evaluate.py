"""evaluate@<experiment>: score the trained model on the test split, image by image."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from pipeline import tracking
from pipeline.config import Params
from pipeline.evaluation.classifier import classify, load_classifier
from pipeline.evaluation.frechet import frechet_distance
from pipeline.evaluation.metrics import psnr, ssim, summarise
from pipeline.images import to_numpy
from pipeline.tasks import Batch, Reconstruct, build_task, load_tensors
from pipeline.training.loop import resolve_device
from pipeline.training.run import load_trained

EVAL_BATCH = 256


class Predictions(NamedTuple):
    task: Reconstruct
    model: torch.nn.Module  # in eval mode
    batches: list[Batch]  # the test batches, in order
    outputs: list[torch.Tensor]  # one (B, C, H, W) prediction per batch
    run: dict  # the training run's summary (run.json): MLflow run id, train time
    test: dict[str, torch.Tensor]  # the test split's views and labels, on the model's device


@torch.no_grad()
def predict_split(params: Params, name: str, *, prepared_dir: Path, model_dir: Path, limit: int | None = None) -> Predictions:
    """Run the trained model over the test split in fixed order, with a fixed seed for any task noise.

    A generate task has no per-image output: its batches and outputs are empty lists.
    """
    experiment = params.experiment(name)
    device = resolve_device(params.base.device)
    task = build_task(experiment.task.name, **experiment.task.args)
    arrays = load_tensors(prepared_dir, "test", task, device)
    model, summary = load_trained(model_dir, device)
    generator = torch.Generator(device).manual_seed(params.base.seed)
    count = len(arrays["labels"]) if limit is None else min(limit, len(arrays["labels"]))
    count = count if task.reconstructs else 0
    batches, predictions = [], []
    for start in range(0, count, EVAL_BATCH):
        batch = task.batch(arrays, torch.arange(start, min(start + EVAL_BATCH, count), device=device), generator)
        batches.append(batch)
        predictions.append(task.predict(model, batch).float())
    return Predictions(task, model, batches, predictions, summary, arrays)


def evaluate_experiment(
    params: Params, name: str, *, prepared_dir: Path, model_dir: Path, classifier_dir: Path
) -> tuple[dict, pd.DataFrame]:
    """Score a trained model on the test split.

    A model that reconstructs gets per-image PSNR/SSIM of prediction against target (and of the raw input
    and a non-learned baseline, where the task asks for them). A model that samples gets the Fréchet
    distance between `classifier.samples` samples (fixed seed) and the test images in the features of the
    dataset's classifier (FCD), when the dataset is labelled. The summary also goes to the model's MLflow
    run as `test/<score>`.

    Returns the summary (means, stds, FCD, train time) and one row per test image, or per sample for a
    model that only generates.
    """
    task, model, batches, predictions, run, test = predict_split(params, name, prepared_dir=prepared_dir, model_dir=model_dir)
    summary: dict[str, float] = {}
    table = pd.DataFrame()
    if task.reconstructs:
        prediction = np.concatenate([to_numpy(p) for p in predictions])
        target = np.concatenate([to_numpy(b.target) for b in batches])
        scores = {"psnr": psnr(prediction, target), "ssim": ssim(prediction, target)}
        if task.scores_input:
            given = np.concatenate([to_numpy(b.input) for b in batches])
            scores |= {"input_psnr": psnr(given, target), "input_ssim": ssim(given, target)}
            if hasattr(task, "baseline"):  # a non-learned method on the very same inputs
                restored = task.baseline(given)
                scores |= {"baseline_psnr": psnr(restored, target), "baseline_ssim": ssim(restored, target)}
        summary |= {**summarise(scores), "images": len(prediction)}
        table = pd.DataFrame({"image": np.arange(len(prediction)), **scores})
    if hasattr(model, "scores"):  # scores of the fitted model itself, e.g. PCA's explained variance
        summary |= model.scores()
    classifier = load_classifier(classifier_dir, next(model.parameters()).device) if hasattr(model, "sample") else None
    if classifier is not None:
        _, real = classify(classifier, test["images"])
        logits, generated = classify(classifier, draw_samples(model, params.classifier.samples, params.base.seed))
        summary |= {"fcd": frechet_distance(generated, real), "fcd_samples": len(generated)}
        if not task.reconstructs:
            probabilities = torch.from_numpy(logits).softmax(1)
            table = pd.DataFrame({"sample": np.arange(len(logits)), "predicted_class": probabilities.argmax(1).numpy(),
                                  "confidence": probabilities.max(1).values.numpy()})  # fmt: skip
    summary["train_seconds"] = run["train_seconds"]
    tracked = tracking.reopen(tracking.resolve_uri(params.tracking.uri), run["run_id"], tags={"dvc.evaluate": f"evaluate@{name}"})
    tracked.log_metrics([(0, {f"test/{key}": value for key, value in summary.items() if key != "train_seconds"})])
    return summary, table


@torch.no_grad()
def draw_samples(model: torch.nn.Module, count: int, seed: int) -> torch.Tensor:
    """`count` samples from the model's prior, from a generator seeded with `seed` (so every model with the
    same latent size decodes the very same noise), rounded to 8 bits as the real images are: (count, C, H, W)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    parts = [model.sample(min(EVAL_BATCH, count - start), generator) for start in range(0, count, EVAL_BATCH)]
    return (torch.cat(parts).float().clamp(0, 1) * 255).round() / 255
