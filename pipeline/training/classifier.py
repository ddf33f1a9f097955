"""classify@<dataset>: train the classifier that judges a labelled dataset's generated samples (FCD).

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

from pipeline.config import Params
from pipeline.data.store import read_manifest
from pipeline.data.tensors import load_tensors
from pipeline.device import resolve_device
from pipeline.evaluation.classifier import MODEL_FILE, SUMMARY_FILE, Classifier, classify
from pipeline.evaluation.frechet import frechet_distance
from pipeline.files import staged_dir, write_text
from pipeline.schema import flatten
from pipeline.tasks.reconstruct import Reconstruct
from pipeline.training.callbacks import History, MetricLogger, ProgressBar
from pipeline.training.loop import fit
from pipeline.training.updates import ClassificationUpdate


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
    kwargs = {
        "in_channels": manifest["channels"],
        "image_size": manifest["image_size"],
        "classes": classes,
        "width": settings.width,
        "features": settings.features,
    }
    model = Classifier(**kwargs).to(device)
    update = ClassificationUpdate(model, lr=settings.lr)
    generator = torch.Generator(device).manual_seed(params.base.seed)

    uri = tracking.resolve_uri(params.tracking.uri)
    run = tracking.Store(uri).start_run(
        experiment="classifiers",
        name=f"classifier {dataset}",
        tags={"dvc.stage": f"classify@{dataset}", "dataset": dataset},
    )
    with run:  # ends FAILED (KILLED on Ctrl-C) if anything fails once it is open, never RUNNING
        run.log_params(
            {**flatten(settings, "classifier."), "dataset": dataset, **flatten(params.dataset(dataset), "dataset.")}
        )
        history = History()
        logger = MetricLogger(run, history)
        progress = ProgressBar(
            f"classifier {dataset}", total_images=len(train["labels"]) * settings.epochs, done_images=0
        )
        started = time.perf_counter()
        model.train()
        try:
            fit(
                update,
                task,
                train,
                epochs=settings.epochs,
                batch_size=settings.batch_size,
                generator=generator,
                callbacks=[history, logger, progress],
            )
        finally:
            progress.close()
        logger.flush()
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
    return summary


def write_unlabelled(out_dir: Path) -> dict[str, Any]:
    """The classifier folder of an unlabelled dataset: a note that there is no classifier."""
    with staged_dir(out_dir) as staging:
        write_text(staging / SUMMARY_FILE, json.dumps({"labelled": False}) + "\n")
    return {"labelled": False}
