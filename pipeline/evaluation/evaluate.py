"""evaluate@<experiment>: score the trained model on the test split, image by image, and draw its figures
from the same predictions."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from pipeline import capabilities
from pipeline.config import Params
from pipeline.data.tensors import load_tensors
from pipeline.device import resolve_device
from pipeline.evaluation.classifier import classify, load_classifier
from pipeline.evaluation.figures import draw_figures
from pipeline.evaluation.frechet import frechet_distance
from pipeline.evaluation.latent import colour_source, label_probe, transfer_accuracy
from pipeline.evaluation.metrics import summarise
from pipeline.evaluation.search import clock, latent_search
from pipeline.experiment import Experiment, load_trained, resolve
from pipeline.images import to_numpy, to_uint8
from pipeline.tasks import Batch, Task

EVAL_BATCH = 256
MIN_TIMING = 0.5  # seconds of prediction to time before trusting the fastest pass


class Predictions(NamedTuple):
    task: Task
    model: torch.nn.Module  # in eval mode
    batches: list[Batch]  # the test batches, in order
    outputs: list[torch.Tensor]  # one (B, C, H, W) prediction per batch
    run: dict  # the training run's summary (run.json): MLflow run id, train time
    test: dict[str, torch.Tensor]  # the test split's views and labels, on the model's device
    seconds: float  # spent in `task.predict` over all batches, after a warm-up on two images; the fastest of
    # as many passes as fill MIN_TIMING seconds (up to 20), so a pass of milliseconds is not read off one tick
    search_curve: np.ndarray | None  # a latent search's (steps + 1, 2) rows on the first batch: seconds per
    # image spent so far, mean squared error against the clean images (None for every other model)
    race: dict[str, float]  # an encoder's seconds per image against a search's, on the first batch (`search_race`)


@torch.no_grad()
def predict_split(
    params: Params, experiment: Experiment, *, prepared_dir: Path, model_dir: Path, timed: bool = False
) -> Predictions:
    """Run the trained model over the test split in fixed order, with a fixed seed for any task noise.
    `timed` repeats a pass that took under MIN_TIMING seconds, to read the time per image off the fastest.

    A generate task has no per-image output: its batches and outputs are empty lists. A model that restores
    by latent search records the search's error as it goes on the first batch (the seed's time-against-error
    curve), from the search the scores come from.
    """
    device = resolve_device(params.base.device)
    task = experiment.task
    arrays = load_tensors(prepared_dir, "test", task, device)
    model, summary = load_trained(model_dir, device)
    generator = torch.Generator(device).manual_seed(params.base.seed)
    count = len(arrays["labels"]) if task.reconstructs else 0
    searching = task.searches_latent and not capabilities.encodes(model)
    trace: list[tuple[float, torch.Tensor]] = []  # (seconds per image, error) while the first batch is searched
    batches, predictions, seconds = [], [], 0.0
    for start in range(0, count, EVAL_BATCH):
        batch = task.batch(arrays, torch.arange(start, min(start + EVAL_BATCH, count), device=device), generator)
        options = {}
        if not batches:  # the first call pays for one-time set-up (kernels, allocations), which is not restoring
            task.predict(model, batch.head(2))
            if searching:

                def record(spent: float, images: torch.Tensor, target: torch.Tensor = batch.target) -> None:
                    # the error stays on the device until the pass is over: reading it back would stall a GPU
                    trace.append((spent / len(images), (images.float().clamp(0, 1) - target).pow(2).mean()))

                options["trace"] = record
        started = clock(device)
        predictions.append(task.predict(model, batch, **options).float())
        seconds += clock(device) - started
        batches.append(batch)
    passes = [seconds]
    while (
        timed and batches and sum(passes) < MIN_TIMING and len(passes) < 20
    ):  # a pass of milliseconds: time it again, keep the fastest
        started = clock(device)
        for batch in batches:
            task.predict(model, batch)
        passes.append(clock(device) - started)
    curve = np.array([(spent, float(error)) for spent, error in trace], dtype=np.float32) if trace else None
    race = search_race(task, model, batches[0], device) if timed and batches and not searching else {}
    return Predictions(task, model, batches, predictions, summary, arrays, min(passes), curve, race)


def search_race(task: Task, model: torch.nn.Module, batch: Batch, device: torch.device) -> dict[str, float]:
    """An encoder's restoration against a latent search through the same model's decoder (`task.search`, the
    seed's ACSG unless set), on the same batch in this process: the seed's claim that its encoder restores
    about 200× faster than ACSG, with no clock of another stage in the ratio. Empty unless the model has an
    encoder, a decoder and a critic and the task restores by search where a model has no encoder."""
    if not (task.searches_latent and capabilities.encodes(model) and capabilities.searchable(model)):
        return {}
    few = batch.head(2)  # a warm-up of both, so neither side pays for first-call set-up
    latent_search(model, few.input, task.search_measure(few), dataclasses.replace(task.search, steps=2))
    task.predict(model, few)
    started = clock(device)
    latent_search(model, batch.input, task.search_measure(batch), task.search, seed=0)
    searched = clock(device) - started  # one pass: about 100 encoder passes' worth, long enough to read
    passes: list[float] = []
    while sum(passes) < MIN_TIMING and len(passes) < 20:  # milliseconds: the fastest of several passes
        started = clock(device)
        task.predict(model, batch)
        passes.append(clock(device) - started)
    count = len(batch.input)
    return {"race_search_seconds_per_image": searched / count, "race_encoder_seconds_per_image": min(passes) / count}


class Evaluation(NamedTuple):
    summary: dict  # means, stds, FCD, train time
    table: pd.DataFrame  # one row per test image, or per sample for a model that only generates
    preview: dict[str, np.ndarray]  # the first test inputs, outputs, truths, baseline outputs (or samples), uint8 NHWC;
    # and a latent search's (steps + 1, 2) float curve of seconds per image against error
    record: dict[str, Any]  # what report@<study> brings into the experiment's MLflow run (see `tracking_record`)


def evaluate_experiment(
    params: Params, name: str, *, prepared_dir: Path, model_dir: Path, classifier_dir: Path, figures_dir: Path
) -> Evaluation:
    """Score a trained model on the test split and draw its figures into figures_dir, from one prediction pass.

    A model that reconstructs gets per-image scores of prediction against truth (the task's: PSNR/SSIM,
    and the colour error for colourisation), and of the raw input and a non-learned baseline where the
    task has them. A model that samples gets the Fréchet distance between `classifier.samples` samples
    (fixed seed) and the test images in the features of the dataset's classifier (FCD), when the dataset
    is labelled. A model with an encoder on a labelled dataset gets a linear probe of the label on its
    latent; a label-conditioned model also gets its transfer accuracy: the classifier's verdict on every
    test image decoded with every label; an image-conditioned one on colour images gets
    `colour_from_latent`. The preview holds the first `figures.columns` images, which the study report sets
    side by side with other models'. Nothing here opens MLflow: the report brings the summary and the
    figures into the training run.
    """
    experiment = resolve(params, name)
    predicted = predict_split(params, experiment, prepared_dir=prepared_dir, model_dir=model_dir, timed=True)
    task, model, batches, predictions, run, test, seconds, curve, race = predicted
    count = params.figures.columns
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
        summary |= {"seconds_per_image": seconds / len(prediction), **race}
        started = clock(torch.device("cpu"))
        measured = np.concatenate([b.input.float().permute(0, 2, 3, 1).cpu().numpy() for b in batches])  # unclipped
        baseline = task.baseline(measured)  # a non-learned method on the very same inputs, where the task has one
        if baseline is not None:
            outputs["baseline_"] = baseline
            summary["baseline_seconds_per_image"] = (clock(torch.device("cpu")) - started) / len(given)
        scores = {
            f"{prefix}{key}": value
            for prefix, images in outputs.items()
            for key, value in task.scores(images, truth).items()
        }
        # a seed's own protocol over the whole split, where it had one (the ambient seed's tiled grid)
        summary |= {
            f"{prefix}{key}": value
            for prefix, images in outputs.items()
            for key, value in task.tiled_scores(images, truth).items()
        }
        summary |= {**summarise(scores), "images": len(prediction)}
        table = pd.DataFrame({"image": np.arange(len(prediction)), **scores})
        preview = {"input": given[:count], "output": prediction[:count], "truth": truth[:count]}
        if "baseline_" in outputs:
            preview["baseline"] = outputs["baseline_"][:count]
        if curve is not None:
            preview["search_curve"] = curve
    if capabilities.scores_itself(model):  # scores of the fitted model itself, e.g. PCA's explained variance
        summary |= model.scores()
    transfers = task.conditioned_on == "label"
    wants_classifier = capabilities.samples(model) or transfers
    device = test["labels"].device
    classifier = load_classifier(classifier_dir, device) if wants_classifier else None
    samples = None
    if capabilities.samples(model):  # one draw from the fixed noise serves the FCD, the figure and the preview
        wanted = max(count * count, params.classifier.samples if classifier is not None else 0)
        samples = draw_samples(model, wanted, params.base.seed)
    if not task.reconstructs:
        preview = {"samples": to_numpy(samples[:count])}
    if transfers and classifier is not None:
        reached, per_target = transfer_accuracy(task, model, batches, classifier)
        table["transfer_accuracy"] = reached
        summary |= {**summarise({"transfer_accuracy": reached}), **per_target}
    if task.conditioned_on == "image" and batches[0].input.shape[1] == 3:  # colour images only
        table["colour_from_latent"] = colour_source(model, batches)
        summary |= summarise({"colour_from_latent": table["colour_from_latent"].to_numpy()})
    if task.reconstructs and capabilities.encodes(model):
        summary |= label_probe(
            task, model, lambda: load_tensors(prepared_dir, "train", task, device), batches, params.base.seed
        )
    if classifier is not None and samples is not None:
        _, real = classify(classifier, test.get("reference", test["images"]))  # a derived dataset's real images
        logits, generated = classify(classifier, samples[: params.classifier.samples])
        summary |= {"fcd": frechet_distance(generated, real), "fcd_samples": len(generated)}
        if not task.reconstructs:
            probabilities = torch.from_numpy(logits).softmax(1)
            table = pd.DataFrame(
                {
                    "sample": np.arange(len(logits)),
                    "predicted_class": probabilities.argmax(1).numpy(),
                    "confidence": probabilities.max(1).values.numpy(),
                }
            )
    summary["train_seconds"] = run["train_seconds"]
    figures = draw_figures(predicted, samples, params.figures, name, figures_dir)
    preview = {key: to_uint8(value) if value.ndim == 4 else value for key, value in preview.items()}
    return Evaluation(summary, table, preview, tracking_record(experiment, run, figures))


def tracking_record(experiment: Experiment, run: dict[str, Any], figures: list[Path]) -> dict[str, Any]:
    """What the study's report needs of this evaluation beside its scores: the MLflow run the model was trained
    in, the experiment's role in the table (a restore experiment's forward model and method: supervised,
    ambient (an encoder) or ACSG (a latent search)), the names of its reference rows, and each figure with its
    sha256. A retrained model or a redrawn figure therefore changes this record, and the report brings it into
    the run."""
    record: dict[str, Any] = {"run_id": run["run_id"], "experiment": experiment.name}
    task = experiment.task
    if task.restores:
        method = (
            "supervised" if task.supervised else "ambient" if capabilities.encodes(experiment.model_class) else "ACSG"
        )
        record |= {"forward": task.forward, "method": method}
    # what the table calls the rows of this evaluation's `input_` and `baseline_` scores
    references = {"input_": task.input_name if task.scores_input else None, "baseline_": task.baseline_name}
    record["references"] = {prefix: name for prefix, name in references.items() if name}
    record["figures"] = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in figures}
    return record


@torch.no_grad()
def draw_samples(model: torch.nn.Module, count: int, seed: int) -> torch.Tensor:
    """`count` samples from the model's prior, from a generator seeded with `seed` (so every model with the
    same latent size decodes the very same noise), rounded to 8 bits as the real images are: (count, C, H, W)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    parts = [model.sample(min(EVAL_BATCH, count - start), generator) for start in range(0, count, EVAL_BATCH)]
    return (torch.cat(parts).float().clamp(0, 1) * 255).round() / 255
