"""Model registry: one literal dict from the name used in params.yaml to the architecture class."""

from __future__ import annotations

from typing import Any

from torch import nn

from pipeline.models.autoencoder import ConvAutoencoder, SeedConvAutoencoder
from pipeline.models.pca import PrincipalComponents
from pipeline.models.vae import ConvVAE

MODELS: dict[str, type[nn.Module]] = {
    "pca": PrincipalComponents,
    "conv_ae": ConvAutoencoder,
    "seed_conv_ae": SeedConvAutoencoder,
    "conv_vae": ConvVAE,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered model; an unknown name lists the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
