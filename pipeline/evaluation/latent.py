"""What a latent holds and what decoding it with another condition gives: the linear label probe and the
transfer accuracy that test the feature-subtraction hypothesis."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.evaluation.classifier import Classifier, classify
from pipeline.tasks import Batch, Task, Transfer

BATCH = 256


@torch.no_grad()
def latents(task: Task, model: nn.Module, batches: list[Batch]) -> np.ndarray | None:
    """(N, latent_dim) codes of the batches' inputs, or None when the model's code is not a flat vector."""
    codes = [task.latent(model, batch).float() for batch in batches]
    if codes[0].dim() != 2:  # e.g. the seed port's feature map: no vector to probe
        return None
    return torch.cat(codes).cpu().numpy()


def label_probe(
    task: Task, model: nn.Module, load_train: Callable[[], Mapping[str, Tensor]], test_batches: list[Batch], seed: int
) -> dict[str, float]:
    """Accuracy of a linear classifier predicting each test image's label from its latent, fitted on the
    training split's latents (standardised, multinomial logistic regression), and what a probe that
    learned nothing scores: the share of test images with the training split's most common label.

    Empty when the dataset is unlabelled or the model's code is not a vector; the training split is only
    loaded (`load_train()`) when neither is the case.
    """
    from sklearn.linear_model import LogisticRegression  # imported here: scikit-learn costs half a second
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    test_labels = torch.cat([batch.label for batch in test_batches]).cpu().numpy()
    if test_labels.min() < 0:
        return {}
    test_codes = latents(task, model, test_batches)
    if test_codes is None:
        return {}
    train = load_train()
    train_labels = train["labels"].cpu().numpy()
    if train_labels.min() < 0 or len(np.unique(train_labels)) < 2:
        return {}
    generator = torch.Generator(train["labels"].device).manual_seed(seed)
    count = len(train_labels)
    train_batches = [
        task.batch(train, torch.arange(s, min(s + BATCH, count), device=train["labels"].device), generator)
        for s in range(0, count, BATCH)
    ]
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
        latents(task, model, train_batches), train_labels
    )
    return {
        "label_probe_accuracy": float((probe.predict(test_codes) == test_labels).mean()),
        "label_probe_chance": float((test_labels == np.bincount(train_labels).argmax()).mean()),
    }


@torch.no_grad()
def transfer_accuracy(
    task: Transfer, model: nn.Module, batches: list[Batch], classifier: Classifier
) -> tuple[np.ndarray, dict[str, float]]:
    """Encode every test image with its own label, decode it with each label in turn, and ask the classifier
    whether it sees that label.

    Returns the share of targets each image reached, (N,), and the accuracy per target label,
    {"transfer_accuracy_to_<k>": …}, plus `transfer_accuracy_other_labels`: over the targets that are
    not the image's own label, the decodings that are transfers rather than reconstructions.
    """
    hits, own = [], []  # per batch: (B, classes) bool, image i decoded as label k was classified as k; its label
    for batch in batches:
        own.append(batch.label.cpu().numpy())
        z = model.encode(batch.input, batch.condition)
        row = []
        for target in range(task.classes):
            labels = torch.full_like(batch.label, target)
            decoded = model.decode(z, nn.functional.one_hot(labels, task.classes).float())
            logits, _ = classify(classifier, decoded)
            row.append(logits.argmax(1) == target)
        hits.append(np.stack(row, axis=1))
    table = np.concatenate(hits)  # (N, classes)
    other = np.arange(task.classes)[None, :] != np.concatenate(own)[:, None]
    per_target = {f"transfer_accuracy_to_{k}": float(table[:, k].mean()) for k in range(task.classes)}
    return table.mean(axis=1), {**per_target, "transfer_accuracy_other_labels": float(table[other].mean())}


@torch.no_grad()
def colour_source(model: nn.Module, batches: list[Batch]) -> np.ndarray:
    """For an image condition: decode each test image's latent with its neighbour's condition, and say per
    image (1 or 0) whether the result's tint (mean RGB minus its mean) is nearer the image the latent came
    from than the image the condition came from. The hypothesis says the latent keeps the colour; a
    decoder that reads colour off the condition's scene scores near 0."""
    images = torch.cat([batch.input for batch in batches])  # (N, C, H, W)
    conditions = torch.cat([batch.condition for batch in batches])
    z = torch.cat([model.encode(batch.input, batch.condition) for batch in batches])
    given = torch.arange(len(images), device=images.device).roll(1)
    result = torch.cat(
        [model.decode(z[s : s + BATCH], conditions[given[s : s + BATCH]]) for s in range(0, len(z), BATCH)]
    )

    def tint(x: Tensor) -> Tensor:
        return x.mean((2, 3)) - x.mean((1, 2, 3))[:, None]  # (N, C)

    to_latent = (tint(result) - tint(images)).norm(dim=1)
    to_condition = (tint(result) - tint(images[given])).norm(dim=1)
    return (to_latent < to_condition).float().cpu().numpy()
