"""classify@<dataset>: train the judging classifier on a labelled dataset, and the features it judges with.

Its test accuracy shows it tells the classes apart; the Fréchet distance between halves of the real test
split, and between as many training images as a generator is asked for and the test split, are the
floors a generator's FCD is read against.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pipeline.config import Params, flatten
from pipeline.data.store import read_manifest
from pipeline.errors import TrainingError
from pipeline.evaluation.frechet import frechet_distance
from pipeline.files import staged_dir, write_text
from pipeline.images import to_float
from pipeline.models.classifier import Classifier
from pipeline.tasks import Reconstruct, load_tensors
from pipeline.training.callbacks import History, MetricLogger, ProgressBar
from pipeline.training.loop import fit, resolve_device
from pipeline.training.steps import ClassificationUpdate

MODEL_FILE = "classifier.pt"
SUMMARY_FILE = "classifier.json"
BATCH = 256


def train_classifier(params: Params, dataset: str, *, prepared_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Fit the classifier on `dataset`'s training split and write out_dir/{classifier.pt, classifier.json}.

    An unlabelled dataset gets only classifier.json saying so; FCD is then not computed for its models.

    Returns the summary: test accuracy and the two FCD floors (or `labelled: false`).
    """
    from pipeline import tracking  # imported here, so that an unlabelled dataset never loads MLflow

    manifest = read_manifest(prepared_dir)
    classes = len(manifest["class_names"])
    if classes < 2:
        return write_unlabelled(out_dir)
    settings = params.classifier
    torch.manual_seed(params.base.seed)
    device = resolve_device(params.base.device)
    task = Reconstruct()
    train = load_tensors(prepared_dir, "train", task, device)
    test = load_tensors(prepared_dir, "test", task, device)
    kwargs = {"in_channels": manifest["channels"], "image_size": manifest["image_size"], "classes": classes,
              "width": settings.width, "features": settings.features}  # fmt: skip
    model = Classifier(**kwargs).to(device)
    update = ClassificationUpdate(model, lr=settings.lr)
    generator = torch.Generator(device).manual_seed(params.base.seed)

    uri = tracking.resolve_uri(params.tracking.uri)
    run = tracking.start_run(uri, experiment="classifiers", name=f"classifier {dataset}",
                             tags={"dvc.stage": f"classify@{dataset}", "dataset": dataset})  # fmt: skip
    run.log_params({**flatten(settings, "classifier."), "dataset": dataset, **flatten(params.dataset(dataset), "dataset.")})
    history = History()
    progress = ProgressBar(f"classifier {dataset}", total_images=len(train["labels"]) * settings.epochs, done_images=0)
    started = time.perf_counter()
    model.train()
    try:
        fit(update, task, train, epochs=settings.epochs, batch_size=settings.batch_size, generator=generator,
            callbacks=[history, MetricLogger(run, history, every=20), progress])  # fmt: skip
    except BaseException as error:
        run.finish("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        progress.close()
    model.eval()

    logits, test_features = classify(model, test["images"])
    labels = test["labels"].cpu().numpy()
    halves = np.random.default_rng(params.base.seed).permutation(len(labels))
    middle = len(labels) // 2
    train_pick = torch.randperm(len(train["labels"]), generator=generator, device=device)[: settings.samples]
    _, train_features = classify(model, train["images"][train_pick])
    summary = {
        "labelled": True,
        "accuracy": float((logits.argmax(1) == labels).mean()),
        "fcd_test_halves": frechet_distance(test_features[halves[:middle]], test_features[halves[middle:]]),
        "fcd_train": frechet_distance(train_features, test_features),
        "train_images_for_fcd_train": len(train_pick),
        "train_seconds": time.perf_counter() - started,
    }
    with staged_dir(out_dir) as staging:
        torch.save({"kwargs": kwargs, "state_dict": model.state_dict()}, staging / MODEL_FILE)
        write_text(staging / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    run.log_metrics([(0, {f"test/{key}": float(value) for key, value in summary.items()})])
    run.log_artifact(out_dir / MODEL_FILE, "model")
    run.finish()
    return summary


def write_unlabelled(out_dir: Path) -> dict[str, Any]:
    """The classifier folder of an unlabelled dataset: a note that there is no classifier."""
    with staged_dir(out_dir) as staging:
        write_text(staging / SUMMARY_FILE, json.dumps({"labelled": False}) + "\n")
    return {"labelled": False}


def load_classifier(folder: Path, device: torch.device) -> Classifier | None:
    """The trained classifier in eval mode, or None when its dataset is unlabelled."""
    summary = folder / SUMMARY_FILE
    if not summary.exists():
        raise TrainingError(f"{summary} not found; run `dvc repro classify@{folder.name}` first")
    if not json.loads(summary.read_text())["labelled"]:
        return None
    saved = torch.load(folder / MODEL_FILE, map_location=device, weights_only=True)
    model = Classifier(**saved["kwargs"]).to(device)
    model.load_state_dict(saved["state_dict"])
    return model.eval()


@torch.no_grad()
def classify(model: Classifier, images: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Logits and penultimate features of images (uint8 NHWC as stored, or float NCHW in [0, 1]), in batches."""
    logits, features = [], []
    for start in range(0, len(images), BATCH):
        part = images[start : start + BATCH]
        output = model(to_float(part) if part.dtype == torch.uint8 else part.float())
        logits.append(output.logits.float().cpu().numpy())
        features.append(output.features.float().cpu().numpy())
    return np.concatenate(logits), np.concatenate(features)
