"""Model registry: one literal dict from the name used in params.yaml to the architecture class."""

from __future__ import annotations

from typing import Any

from torch import nn

from pipeline.models.ambient import AmbientGAN, AmbientVAEGAN
from pipeline.models.autoencoder import ConvAutoencoder, SeedConvAutoencoder
from pipeline.models.colorizer import Colorizer, ColorizerUNet
from pipeline.models.conditional import ImageConditionalAEGAN, LabelConditionalAEGAN
from pipeline.models.gan import DCGAN, LinearGAN, LinearWGAN, WassersteinDCGAN
from pipeline.models.linear import LinearAutoencoder, LinearVAE
from pipeline.models.pca import PrincipalComponents
from pipeline.models.pix2pix import Pix2Pix, UNet
from pipeline.models.residual import ResidualVAE
from pipeline.models.vae import ConvVAE
from pipeline.models.vae_gan import ConvVAEWGAN

MODELS: dict[str, type[nn.Module]] = {
    "pca": PrincipalComponents,
    "conv_ae": ConvAutoencoder,
    "seed_conv_ae": SeedConvAutoencoder,
    "conv_vae": ConvVAE,
    "residual_vae": ResidualVAE,
    "linear_ae": LinearAutoencoder,
    "linear_vae": LinearVAE,
    "linear_gan": LinearGAN,
    "linear_wgan": LinearWGAN,
    "dcgan": DCGAN,
    "wgan_gp": WassersteinDCGAN,
    "vae_wgan": ConvVAEWGAN,
    "colorizer": Colorizer,
    "colorizer_unet": ColorizerUNet,
    "unet": UNet,
    "pix2pix": Pix2Pix,
    "conditional_aegan": LabelConditionalAEGAN,
    "image_conditional_aegan": ImageConditionalAEGAN,
    "ambient_vaegan": AmbientVAEGAN,
    "ambient_gan": AmbientGAN,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered model; an unknown name lists the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
