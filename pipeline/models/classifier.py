"""The small CNN that judges samples: its test accuracy says it can tell the classes apart, and its
penultimate features are the space in which generated and real images are compared (Fréchet distance)."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from torch import Tensor, nn


class ClassifierOutput(NamedTuple):
    logits: Tensor  # (B, classes)
    features: Tensor  # (B, features): the penultimate layer, after its ReLU


LARGEST_SIDE = 32  # larger images are average-pooled down to this first, which keeps classify@photos cheap


class Classifier(nn.Module):
    """Two conv blocks (3×3, batch norm, ReLU, 2×2 max-pool), pooled to 4×4, then a `features`-wide layer and
    the class logits. Average pooling to 4×4 makes one network fit any image size the config allows (8 up); images larger
    than 32 pixels are seen at 32, so FCD judges shapes and colours at that scale, not fine texture."""

    update_rule: ClassVar[str] = "classification"

    def __init__(self, *, in_channels: int, image_size: int, classes: int, width: int = 32, features: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(min(image_size, LARGEST_SIDE)),
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),  # (B, 2·width·16)
            nn.Linear(2 * width * 16, features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(features, classes)

    def forward(self, x: Tensor) -> ClassifierOutput:
        features = self.body(x)
        return ClassifierOutput(logits=self.head(features), features=features)
