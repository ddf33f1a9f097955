"""A VAE whose encoder and decoder carry residual blocks: the GAN-AE seed's "7 CNNs and 2 resnets both in
encoder and decoder", at its default depth of 2.

Encoder: a 3×3 stem, then per level a stride-2 4×4 convolution and a residual block of two 3×3 convolutions
(1 + 3·depth convolutions, `depth` residual blocks), flattened to mean and log-variance. The decoder mirrors it:
a linear projection to the smallest feature map, per level a residual block and a stride-2 transposed
convolution, and a 3×3 convolution to the image. The residual path lets the gradient reach the stem unchanged,
which the plain `conv_vae` of the same width and depth lacks.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from pipeline.models.autoencoder import stack_widths
from pipeline.models.vae import GaussianEncoding
from pipeline.schema import Size


class ResidualBlock(nn.Module):
    """x + conv(ReLU(BN(conv(ReLU(BN(x)))))), 3×3 convolutions that keep the shape (B, C, S, S)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResidualVAE(GaussianEncoding):
    """Conv VAE with a residual block at every level of its encoder and decoder."""

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
        widths, side = stack_widths(image_size, width, depth)  # 28, 8, 2 -> [8, 16], 7
        stem = width // 2 or 1  # the stem's width: the first level doubles it, as every later level does
        down: list[nn.Module] = [nn.Conv2d(in_channels, stem, 3, padding=1), nn.ReLU()]
        for before, after in zip([stem, *widths[:-1]], widths):
            down += [nn.Conv2d(before, after, 4, stride=2, padding=1), ResidualBlock(after)]
        features = widths[-1] * side**2
        self.encoder = nn.Sequential(*down, nn.ReLU(), nn.Flatten(), nn.Linear(features, 2 * latent_dim))
        self.project = nn.Sequential(nn.Linear(latent_dim, features), nn.ReLU())
        up: list[nn.Module] = []
        for before, after in zip(widths[::-1], [*widths[::-1][1:], stem]):
            up += [ResidualBlock(before), nn.ConvTranspose2d(before, after, 4, stride=2, padding=1), nn.ReLU()]
        self.decoder = nn.Sequential(*up, nn.Conv2d(stem, out_channels, 3, padding=1), nn.Sigmoid())
        self.feature_shape = (widths[-1], side, side)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(self.project(z).view(-1, *self.feature_shape))  # (B, latent_dim) -> (B, C, H, W)
