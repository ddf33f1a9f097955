"""What several test files build: tiny arrays and images, stub models and classifiers, tiny ambient params."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from pipeline.config import parse_params
from pipeline.data.views import edges, encode_lab
from pipeline.evaluation.classifier import ClassifierOutput
from pipeline.models import build_model
from pipeline.training.run import train_experiment
from pipeline.training.updates import update_rule_for
from tests.conftest import tiny_params


class LinearGenerator(torch.nn.Module):
    """G(z) = sigmoid(W z) as 28×28 images: every image it can draw has a latent the search can reach."""

    latent_dim = 6

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(28 * 28, 6, generator=torch.Generator().manual_seed(0)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z @ self.weight.T).view(-1, 1, 28, 28)


def ambient_params(**experiments: dict) -> dict:
    raw = tiny_params()
    raw["studies"] = ["ambient"]
    base = {
        "study": "ambient",
        "dataset": "digits",
        "model": {"name": "ambient_vaegan", "width": 4, "latent_dim": 8},
        "update": FAST,
        "train": {"epochs": 2, "batch_size": 32},
    }
    raw["experiments"] = {name: {**copy.deepcopy(base), **settings} for name, settings in experiments.items()}
    return raw


def train_ambient(params: dict, name: str, root) -> dict[str, torch.Tensor]:
    parsed = parse_params(params)
    train_experiment(
        parsed,
        name,
        prepared_dir=root["prepared"],
        model_dir=root["out"] / name,
        plots_dir=root["out"] / "plots" / name,
        checkpoint_path=root["out"] / "checkpoints" / f"{name}.pt",
    )
    return torch.load(root["out"] / name / "model.pt", weights_only=True)["state_dict"]


FAST = {"lr": 1.0e-3, "decoder_weight": 1.0, "kl_weight": 0.01}


def digit_arrays(count: int = 20) -> dict[str, torch.Tensor]:
    """Images whose first ten pixels spell their label one-hot, plus a gray view: (N, 8, 8, 1) uint8."""
    labels = torch.arange(count) % 10
    images = torch.zeros(count, 8, 8, 1, dtype=torch.uint8)
    images.view(count, -1)[torch.arange(count), labels] = 255
    return {"images": images, "gray": 255 - images, "labels": labels}


class StubConditional(nn.Module):
    """z is the image's own label; the decoder draws label/10 everywhere, from the condition or, if it
    ignores the condition, from z."""

    def __init__(self, obeys: bool) -> None:
        super().__init__()
        self.obeys = obeys
        self.weight = nn.Parameter(torch.zeros(1))

    def encode(self, x, condition):
        return condition.argmax(1, keepdim=True).float()  # (B, 1)

    def decode(self, z, condition):
        label = condition.argmax(1).float() if self.obeys else z[:, 0]
        return (label / 10).view(-1, 1, 1, 1).expand(-1, 1, 4, 4)


class StubClassifier(nn.Module):
    """Calls an image label k when its mean pixel is k/10."""

    def forward(self, x):
        label = (x.flatten(1).mean(1) * 10).round().long().clamp(0, 9)
        return ClassifierOutput(logits=nn.functional.one_hot(label, 10).float(), features=x.flatten(1)[:, :4])


class StubEncoder(nn.Module):
    def __init__(self, keeps_label: bool) -> None:
        super().__init__()
        self.keeps_label = keeps_label

    def encode(self, x):
        if self.keeps_label:
            return x.flatten(1)[:, :10] + 0.1 * torch.randn(len(x), 10)  # the one-hot label pixels, noisy
        return torch.randn(len(x), 10)


class StubImageConditional(nn.Module):
    """z is the image's mean colour; the decoder paints it (or, if `from_condition`, paints the condition,
    here the colour image itself, as a decoder that reads colour off the condition's scene would)."""

    def __init__(self, from_condition: bool) -> None:
        super().__init__()
        self.from_condition = from_condition

    def encode(self, x, condition):
        return x.mean((2, 3))  # (B, 3)

    def decode(self, z, condition):
        return condition if self.from_condition else z[:, :, None, None].expand(-1, -1, 4, 4)


def tiny_label_model(**update):
    model = build_model(
        "conditional_aegan",
        in_channels=1,
        out_channels=1,
        image_size=28,
        condition_channels=10,
        latent_dim=4,
        width=4,
        critic_width=4,
        condition_width=2,
    )
    return model, update_rule_for(type(model))(model, **update)


def colour_images(count: int = 6, size: int = 16) -> np.ndarray:
    """Smooth random colour images, (N, S, S, 3) uint8."""
    rng = np.random.default_rng(0)
    small = rng.random((count, 4, 4, 3))
    return (np.kron(small, np.ones((1, size // 4, size // 4, 1))) * 255).round().astype(np.uint8)


def arrays_of(images: np.ndarray) -> dict[str, torch.Tensor]:
    return {
        "images": torch.from_numpy(images),
        "lab": torch.from_numpy(encode_lab(images)),
        "edges": torch.from_numpy(edges(images, sigma=1.0)),
        "labels": torch.zeros(len(images), dtype=torch.long),
    }
