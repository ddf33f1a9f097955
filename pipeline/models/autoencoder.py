"""Convolutional autoencoder with a real bottleneck: stride-2 convolutions down to a flat latent vector and back."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from torch import Tensor, nn


class AutoencoderOutput(NamedTuple):
    image: Tensor  # (B, out_channels, H, W) in [0, 1]
    latent: Tensor  # (B, latent_dim)


class ConvAutoencoder(nn.Module):
    """`depth` stride-2 conv blocks (width doubling each time) -> linear latent -> mirrored transposed convs -> sigmoid."""

    update_rule: ClassVar[str] = "reconstruction"

    def __init__(
        self, *, in_channels: int, out_channels: int, image_size: int, latent_dim: int = 32, width: int = 32, depth: int = 2
    ) -> None:
        super().__init__()
        if image_size % 2**depth:
            raise ValueError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}")
        widths = [width * 2**level for level in range(depth)]  # e.g. [32, 64]
        self.feature_shape = (widths[-1], image_size // 2**depth, image_size // 2**depth)  # (64, 7, 7) for 28×28
        features = widths[-1] * (image_size // 2**depth) ** 2

        down: list[nn.Module] = []
        for before, after in zip([in_channels, *widths[:-1]], widths):
            down += [nn.Conv2d(before, after, 4, stride=2, padding=1), nn.BatchNorm2d(after), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(features, latent_dim))

        up: list[nn.Module] = []
        for before, after in zip(widths[::-1], widths[::-1][1:]):
            up += [nn.ConvTranspose2d(before, after, 4, stride=2, padding=1), nn.BatchNorm2d(after), nn.ReLU()]
        up += [nn.ConvTranspose2d(widths[0], out_channels, 4, stride=2, padding=1), nn.Sigmoid()]
        self.project = nn.Sequential(nn.Linear(latent_dim, features), nn.ReLU())
        self.decoder = nn.Sequential(*up)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, C, H, W) -> (B, latent_dim)

    def decode(self, z: Tensor) -> Tensor:
        features = self.project(z).view(-1, *self.feature_shape)  # (B, width·2^(depth-1), H/2^depth, W/2^depth)
        return self.decoder(features)

    def forward(self, x: Tensor) -> AutoencoderOutput:
        latent = self.encode(x)
        return AutoencoderOutput(image=self.decode(latent), latent=latent)
