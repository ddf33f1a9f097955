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
from pipeline.evaluation.latent import colour_source, label_probe, transfer_accuracy
from pipeline.evaluation.metrics import summarise
from pipeline.evaluation.search import SEED_BATCH, clock, latent_search
from pipeline.images import to_numpy, to_uint8
from pipeline.tasks import Batch, Reconstruct, build_task, load_tensors
from pipeline.training.loop import resolve_device
from pipeline.training.run import load_trained

EVAL_BATCH = 256
MIN_TIMING = 0.5  # seconds of prediction to time before trusting the fastest pass


class Predictions(NamedTuple):
    task: Reconstruct
    model: torch.nn.Module  # in eval mode
    batches: list[Batch]  # the test batches, in order
    outputs: list[torch.Tensor]  # one (B, C, H, W) prediction per batch
    run: dict  # the training run's summary (run.json): MLflow run id, train time
    test: dict[str, torch.Tensor]  # the test split's views and labels, on the model's device
    seconds: float  # spent in `task.predict` over all batches, after a warm-up on two images; the fastest of
    # as many passes as fill MIN_TIMING seconds (up to 20), so a pass of milliseconds is not read off one tick


@torch.no_grad()
def predict_split(
    params: Params, name: str, *, prepared_dir: Path, model_dir: Path, limit: int | None = None, timed: bool = False
) -> Predictions:
    """Run the trained model over the test split in fixed order, with a fixed seed for any task noise.
    `timed` repeats a pass that took under MIN_TIMING seconds, to read the time per image off the fastest.

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
    batches, predictions, seconds = [], [], 0.0
    for start in range(0, count, EVAL_BATCH):
        batch = task.batch(arrays, torch.arange(start, min(start + EVAL_BATCH, count), device=device), generator)
        if not batches:  # the first call pays for one-time set-up (kernels, allocations), which is not restoring
            task.predict(model, batch.head(2))
        started = clock(device)
        predictions.append(task.predict(model, batch).float())
        seconds += clock(device) - started
        batches.append(batch)
    passes = [seconds]
    while timed and batches and sum(passes) < MIN_TIMING and len(passes) < 20:  # a pass of milliseconds: time it again, keep the fastest
        started = clock(device)
        for batch in batches:
            task.predict(model, batch)
        passes.append(clock(device) - started)
    return Predictions(task, model, batches, predictions, summary, arrays, min(passes))


class Evaluation(NamedTuple):
    summary: dict  # means, stds, FCD, train time
    table: pd.DataFrame  # one row per test image, or per sample for a model that only generates
    preview: dict[str, np.ndarray]  # the first test inputs, outputs, truths, baseline outputs (or samples), uint8 NHWC;
    # and a latent search's (steps + 1, 2) float curve of seconds per image against error


def evaluate_experiment(
    params: Params, name: str, *, prepared_dir: Path, model_dir: Path, classifier_dir: Path
) -> Evaluation:
    """Score a trained model on the test split.

    A model that reconstructs gets per-image scores of prediction against truth (the task's: PSNR/SSIM,
    and the colour error for colourisation), and of the raw input and a non-learned baseline where the
    task has them. A model that samples gets the Fréchet distance between `classifier.samples` samples
    (fixed seed) and the test images in the features of the dataset's classifier (FCD), when the dataset
    is labelled. A model with an encoder on a labelled dataset gets a linear probe of the label on its
    latent; a label-conditioned model also gets its transfer accuracy: the classifier's verdict on every
    test image decoded with every label; an image-conditioned one on colour images gets
    `colour_from_latent`. The summary also goes to the model's MLflow run as `test/<score>`. The preview holds the
    first `render.columns` images, which the study report sets side by side with other models'.
    """
    task, model, batches, predictions, run, test, seconds = predict_split(params, name, prepared_dir=prepared_dir, model_dir=model_dir, timed=True)
    count = params.render.columns
    summary: dict[str, float] = {}
    table = pd.DataFrame()
    preview: dict[str, np.ndarray] = {}
    if task.reconstructs:
        prediction = np.concatenate([to_numpy(p) for p in predictions])
        truth = np.concatenate([to_numpy(task.truth(b)) for b in batches])
        given = np.concatenate([to_numpy(b.input) for b in batches])
        outputs = {"": prediction}
        if task.scores_input:
            outputs["input_"] = given
        summary["seconds_per_image"] = seconds / len(prediction)
        if hasattr(task, "baseline"):  # a non-learned method on the very same inputs
            started = clock(torch.device("cpu"))
            measured = np.concatenate([b.input.float().permute(0, 2, 3, 1).cpu().numpy() for b in batches])  # unclipped
            outputs["baseline_"] = task.baseline(measured)
            summary["baseline_seconds_per_image"] = (clock(torch.device("cpu")) - started) / len(given)
        scores = {f"{prefix}{key}": value for prefix, images in outputs.items() for key, value in task.scores(images, truth).items()}
        if hasattr(task, "tiled_scores"):  # the seed's protocol: one tiled grid of the first 64 images
            summary |= {f"{prefix}{key}": value for prefix, images in outputs.items() for key, value in task.tiled_scores(images, truth).items()}
        summary |= {**summarise(scores), "images": len(prediction)}
        table = pd.DataFrame({"image": np.arange(len(prediction)), **scores})
        preview = {"input": given[:count], "output": prediction[:count], "truth": truth[:count]}
        if "baseline_" in outputs:
            preview["baseline"] = outputs["baseline_"][:count]
        if getattr(task, "searches_latent", False) and not hasattr(model, "encode"):
            preview["search_curve"] = search_curve(task, model, batches[0])
    if hasattr(model, "scores"):  # scores of the fitted model itself, e.g. PCA's explained variance
        summary |= model.scores()
    if not task.reconstructs:
        preview = {"samples": to_numpy(draw_samples(model, count, params.base.seed))}
    transfers = getattr(task, "conditioned_on", None) == "label"
    wants_classifier = hasattr(model, "sample") or transfers
    device = test["labels"].device
    classifier = load_classifier(classifier_dir, device) if wants_classifier else None
    if transfers and classifier is not None:
        reached, per_target = transfer_accuracy(task, model, batches, classifier)
        table["transfer_accuracy"] = reached
        summary |= {**summarise({"transfer_accuracy": reached}), **per_target}
    if getattr(task, "conditioned_on", None) == "image" and batches[0].input.shape[1] == 3:  # colour images only
        table["colour_from_latent"] = colour_source(model, batches)
        summary |= summarise({"colour_from_latent": table["colour_from_latent"].to_numpy()})
    if task.reconstructs and hasattr(model, "encode"):
        summary |= label_probe(task, model, lambda: load_tensors(prepared_dir, "train", task, device), batches, params.base.seed)
    if classifier is not None and hasattr(model, "sample"):
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
    return Evaluation(summary, table, {key: to_uint8(value) if value.ndim == 4 else value for key, value in preview.items()})


def search_curve(task: Reconstruct, model: torch.nn.Module, batch: Batch) -> np.ndarray:
    """The latent search's error as it runs on the first 64 test images (the seed's batch): (steps + 1, 2) rows
    of (seconds per image spent so far, mean squared error against the clean images), for the seed's
    time-versus-error plot. The table's time and error are those of the full run over every test image."""
    rows = []
    target = batch.target[:SEED_BATCH]

    def record(seconds: float, images: torch.Tensor) -> None:
        rows.append((seconds / len(images), float((images.float().clamp(0, 1) - target).pow(2).mean())))

    first = batch.head(SEED_BATCH)
    latent_search(model, first.input, task.search_measure(first), task.search, trace=record)
    return np.array(rows, dtype=np.float32)


@torch.no_grad()
def draw_samples(model: torch.nn.Module, count: int, seed: int) -> torch.Tensor:
    """`count` samples from the model's prior, from a generator seeded with `seed` (so every model with the
    same latent size decodes the very same noise), rounded to 8 bits as the real images are: (count, C, H, W)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    parts = [model.sample(min(EVAL_BATCH, count - start), generator) for start in range(0, count, EVAL_BATCH)]
    return (torch.cat(parts).float().clamp(0, 1) * 255).round() / 255
