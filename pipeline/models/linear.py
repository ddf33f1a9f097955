"""Fully connected autoencoder and VAE: the seed's "linear" baselines, multilayer perceptrons on flattened pixels.

The seed's FashionMNIST sizes are the defaults: 784-512-256-128 with a 20-number code (12 for the VAE).
"""

from __future__ import annotations

from itertools import pairwise
from typing import ClassVar

from torch import Tensor, nn

from pipeline.models.autoencoder import AutoencoderOutput
from pipeline.models.vae import GaussianEncoding
from pipeline.schema import Size


def perceptron(sizes: list[int], activation: type[nn.Module] = nn.ReLU) -> list[nn.Module]:
    """Linear layers between consecutive `sizes`, an activation after each but the last."""
    layers: list[nn.Module] = []
    for before, after in pairwise(sizes):
        layers += [nn.Linear(before, after), activation()]
    return layers[:-1]


def pixel_decoder(sizes: list[int], shape: tuple[int, int, int]) -> nn.Sequential:
    """Latent -> hidden layers -> C·H·W pixels -> sigmoid, reshaped to (B, C, H, W)."""
    channels, height, width = shape
    return nn.Sequential(*perceptron([*sizes, channels * height * width]), nn.Sigmoid(), nn.Unflatten(1, shape))


class LinearAutoencoder(nn.Module):
    """Flatten -> hidden layers -> latent -> mirrored hidden layers -> sigmoid image.

    The seed puts a ReLU on the code as well; a ReLU there zeroes half a Gaussian-like code, so the code
    here is linear, as in every other autoencoder of this project.
    """

    update_rule: ClassVar[str] = "reconstruction"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        latent_dim: Size = 20,
        hidden: tuple[Size, ...] = (512, 256, 128),
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        pixels = in_channels * image_size**2
        self.encoder = nn.Sequential(nn.Flatten(), *perceptron([pixels, *hidden, latent_dim]))
        self.decoder = pixel_decoder([latent_dim, *hidden[::-1]], (out_channels, image_size, image_size))

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, C, H, W) -> (B, latent_dim)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, latent_dim) -> (B, C, H, W)

    def forward(self, x: Tensor) -> AutoencoderOutput:
        latent = self.encode(x)
        return AutoencoderOutput(image=self.decode(latent), latent=latent)


class LinearVAE(GaussianEncoding):
    """The linear autoencoder with a Gaussian code: the last hidden layer gives mean and log-variance.

    The seed samples with exp(σ) but takes σ as a standard deviation in its KL term; here σ is a
    log-variance in both, which is what the β-VAE objective (`VariationalUpdate`) assumes.
    """

    update_rule: ClassVar[str] = "variational"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        latent_dim: Size = 12,
        hidden: tuple[Size, ...] = (512, 256, 128),
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        pixels = in_channels * image_size**2
        self.encoder = nn.Sequential(nn.Flatten(), *perceptron([pixels, *hidden, 2 * latent_dim]))
        self.decoder = pixel_decoder([latent_dim, *hidden[::-1]], (out_channels, image_size, image_size))

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, latent_dim) -> (B, C, H, W)
