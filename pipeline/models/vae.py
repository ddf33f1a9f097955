"""Variational autoencoders: a Gaussian latent on top of an encoder that outputs mean and log-variance."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from pipeline.models.autoencoder import conv_codec
from pipeline.schema import Size


class VariationalOutput(NamedTuple):
    image: Tensor  # (B, out_channels, H, W) in [0, 1], decoded from a sample of q(z|x) (the mean in eval mode)
    latent: Tensor  # (B, latent_dim): the posterior mean, what interpolation walks along
    mean: Tensor  # (B, latent_dim)
    logvar: Tensor  # (B, latent_dim), log σ² of q(z|x)


class PriorSampler:
    """`sample()` for any model with `latent_dim` and `decode(z)`: VAEs and GAN generators alike, so that one
    seed gives every model of a study the very same noise."""

    latent_dim: int

    @torch.no_grad()
    def sample(self, count: int, generator: torch.Generator) -> Tensor:
        """Decode `count` draws from N(0, I), drawn on the generator's device: (count, C, H, W)."""
        z = torch.randn(count, self.latent_dim, generator=generator, device=generator.device)
        return self.decode(z.to(next(self.parameters()).device))


class GaussianEncoding(PriorSampler, nn.Module):
    """What every VAE shares: `self.encoder` maps an image to 2·latent_dim numbers (mean, log-variance);
    subclasses provide `decode`."""

    latent_dim: int
    encoder: nn.Module

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x).chunk(2, dim=1)[0]  # the posterior mean, (B, latent_dim)

    def forward(self, x: Tensor) -> VariationalOutput:
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, latent_dim) each
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean
        return VariationalOutput(image=self.decode(z), latent=mean, mean=mean, logvar=logvar)


class ConvVAE(GaussianEncoding):
    """Encoder to mean and log-variance, reparameterised sample, decoder to a sigmoid image."""

    update_rule: ClassVar[str] = "variational"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        latent_dim: Size = 16,
        width: Size = 32,
        depth: Size = 2,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder, self.project, self.decoder, self.feature_shape = conv_codec(
            in_channels=in_channels,
            out_channels=out_channels,
            image_size=image_size,
            width=width,
            depth=depth,
            code=2 * latent_dim,
            latent_dim=latent_dim,  # code = mean and log-variance
        )

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(self.project(z).view(-1, *self.feature_shape))  # (B, latent_dim) -> (B, C, H, W)
