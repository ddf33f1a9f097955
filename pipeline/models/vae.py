"""Convolutional variational autoencoder: the bottlenecked autoencoder's stacks with a Gaussian latent."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from pipeline.models.autoencoder import down_stack, up_stack


class VariationalOutput(NamedTuple):
    image: Tensor  # (B, out_channels, H, W) in [0, 1], decoded from a sample of q(z|x) (the mean in eval mode)
    latent: Tensor  # (B, latent_dim): the posterior mean, what interpolation walks along
    mean: Tensor  # (B, latent_dim)
    logvar: Tensor  # (B, latent_dim), log σ² of q(z|x)


class ConvVAE(nn.Module):
    """Encoder to mean and log-variance, reparameterised sample, decoder to a sigmoid image."""

    update_rule: ClassVar[str] = "variational"

    def __init__(
        self, *, in_channels: int, out_channels: int, image_size: int, latent_dim: int = 16, width: int = 32, depth: int = 2
    ) -> None:
        super().__init__()
        if image_size % 2**depth:
            raise ValueError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}")
        widths = [width * 2**level for level in range(depth)]
        side = image_size // 2**depth
        self.latent_dim = latent_dim
        self.feature_shape = (widths[-1], side, side)
        self.encoder = nn.Sequential(*down_stack(in_channels, widths), nn.Flatten(), nn.Linear(widths[-1] * side**2, 2 * latent_dim))
        self.project = nn.Sequential(nn.Linear(latent_dim, widths[-1] * side**2), nn.ReLU())
        self.decoder = nn.Sequential(*up_stack(widths, out_channels))

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x).chunk(2, dim=1)[0]  # the posterior mean, (B, latent_dim)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(self.project(z).view(-1, *self.feature_shape))

    def forward(self, x: Tensor) -> VariationalOutput:
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, latent_dim) each
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean
        return VariationalOutput(image=self.decode(z), latent=mean, mean=mean, logvar=logvar)

    @torch.no_grad()
    def sample(self, count: int, generator: torch.Generator) -> Tensor:
        """Decode `count` draws from the prior N(0, I): (count, out_channels, H, W)."""
        z = torch.randn(count, self.latent_dim, generator=generator, device=generator.device)
        return self.decode(z.to(next(self.parameters()).device))
