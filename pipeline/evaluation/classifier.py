"""The classifier that judges a labelled dataset's images: its network (trained by classify@<dataset>, see
`pipeline.training.classifier`), loading it, and the logits and features it judges by: FCD, transfer accuracy.
Its test accuracy says it can tell the classes apart; its penultimate features are the space in which
generated and real images are compared (Fréchet distance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.errors import TrainingError
from pipeline.images import to_float


class ClassifierOutput(NamedTuple):
    logits: Tensor  # (B, classes)
    features: Tensor  # (B, features): the penultimate layer, after its ReLU


LARGEST_SIDE = 32  # larger images are average-pooled down to this first, which keeps classify@photos cheap


class Classifier(nn.Module):
    """Two conv blocks (3×3, batch norm, ReLU, 2×2 max-pool), pooled to 4×4, then a `features`-wide layer and
    the class logits. Average pooling to 4×4 makes one network fit any image size the config allows (8 up);
    images larger than 32 pixels are seen at 32, so FCD judges shapes and colours at that scale, not fine texture."""

    def __init__(self, *, in_channels: int, image_size: int, classes: int, width: int = 32, features: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(min(image_size, LARGEST_SIDE)),
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),  # (B, 2·width·16)
            nn.Linear(2 * width * 16, features),
            nn.ReLU(),
        )
        self.head = nn.Linear(features, classes)

    def forward(self, x: Tensor) -> ClassifierOutput:
        features = self.body(x)
        return ClassifierOutput(logits=self.head(features), features=features)


MODEL_FILE = "classifier.pt"
SUMMARY_FILE = "classifier.json"
BATCH = 256


def load_classifier(folder: Path, device: torch.device) -> Classifier | None:
    """The trained classifier in eval mode, or None when its dataset is unlabelled."""
    summary = folder / SUMMARY_FILE
    if not summary.exists():
        raise TrainingError(f"{summary} not found; run `dvc repro classify@{folder.name}` first")
    if not json.loads(summary.read_text())["labelled"]:
        return None
    try:  # loaded as data (weights_only): a crafted file runs no code
        saved = torch.load(folder / MODEL_FILE, map_location=device, weights_only=True)
        model = Classifier(**saved["kwargs"]).to(device)
        model.load_state_dict(saved["state_dict"])
    except Exception as error:
        raise TrainingError(
            f"{folder / MODEL_FILE} is not a classifier this code can load ({error.__class__.__name__}); "
            f"run `dvc repro --force classify@{folder.name}`"
        ) from None
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
