"""Model registry: one literal dict from the name used in params.yaml to the architecture class."""

from __future__ import annotations

from typing import Any

from torch import nn

from pipeline.models.autoencoder import ConvAutoencoder

MODELS: dict[str, type[nn.Module]] = {
    "conv_ae": ConvAutoencoder,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered model; an unknown name lists the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
