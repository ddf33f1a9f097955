"""Convolutional autoencoders: one with a real bottleneck (a flat latent vector) and a faithful port of the
seed's bottleneck-free network, kept so its published numbers can be reproduced."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from torch import Tensor, nn

from pipeline.schema import Size


class AutoencoderOutput(NamedTuple):
    image: Tensor  # (B, out_channels, H, W) in [0, 1]
    latent: Tensor  # (B, latent_dim), or the seed port's (B, 32, H, W) feature map


def stack_widths(image_size: int, width: int, depth: int) -> tuple[list[int], int]:
    """The channel widths of `depth` stride-2 levels and the side they end at: (28, 32, 2) -> ([32, 64], 7)."""
    if image_size % 2**depth:
        raise ValueError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}")
    return [width * 2**level for level in range(depth)], image_size // 2**depth


def down_stack(in_channels: int, widths: list[int], *, batch_norm: bool = True) -> list[nn.Module]:
    """Stride-2 4×4 convolutions, each halving the side: (B, C, S, S) -> (B, widths[-1], S/2^n, S/2^n).

    `batch_norm=False` is for a Wasserstein critic: its gradient penalty is per image, which batch
    statistics would mix across the batch.
    """
    layers: list[nn.Module] = []
    for before, after in zip([in_channels, *widths[:-1]], widths):
        norm = [nn.BatchNorm2d(after)] if batch_norm else []
        layers += [nn.Conv2d(before, after, 4, stride=2, padding=1), *norm, nn.LeakyReLU(0.2)]
    return layers


def up_stack(widths: list[int], out_channels: int, upsample: str = "transposed") -> list[nn.Module]:
    """The mirror of `down_stack`, ending in a sigmoid so images come out in [0, 1]. Each level doubles the side
    by a stride-2 4×4 transposed convolution, or with `upsample="resize"` by nearest-neighbour resizing and a
    3×3 convolution. A stride-2 transposed convolution paints the four pixel phases of its output (even and
    odd rows and columns) with four different quarters of its kernel, which must be learnt to agree or the
    image carries a checkerboard (Odena et al. 2016); resizing first gives every output pixel the same
    weights."""

    def double(before: int, after: int) -> list[nn.Module]:
        if upsample == "resize":
            return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(before, after, 3, padding=1)]
        return [nn.ConvTranspose2d(before, after, 4, stride=2, padding=1)]

    layers: list[nn.Module] = []
    for before, after in zip(widths[::-1], widths[::-1][1:]):
        layers += [*double(before, after), nn.BatchNorm2d(after), nn.ReLU()]
    return [*layers, *double(widths[0], out_channels), nn.Sigmoid()]


def conv_codec(
    *, in_channels: int, out_channels: int, image_size: int, width: int, depth: int, code: int, latent_dim: int
) -> tuple[nn.Module, nn.Module, nn.Module, tuple[int, int, int]]:
    """The conv stacks shared by the bottlenecked AE and the VAE.

    Returns the encoder (image -> `code` numbers), the projection (latent -> feature map), the decoder
    (feature map -> image) and the feature map's shape, e.g. (64, 7, 7) for 28×28 at width 32, depth 2.
    """
    widths, side = stack_widths(image_size, width, depth)  # e.g. [32, 64], 7
    features = widths[-1] * side**2
    encoder = nn.Sequential(*down_stack(in_channels, widths), nn.Flatten(), nn.Linear(features, code))
    project = nn.Sequential(nn.Linear(latent_dim, features), nn.ReLU())
    decoder = nn.Sequential(*up_stack(widths, out_channels))
    return encoder, project, decoder, (widths[-1], side, side)


class ConvAutoencoder(nn.Module):
    """`depth` stride-2 conv blocks (width doubling) -> linear latent -> mirrored transposed convs -> sigmoid."""

    update_rule: ClassVar[str] = "reconstruction"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        latent_dim: Size = 32,
        width: Size = 32,
        depth: Size = 2,
    ) -> None:
        super().__init__()
        self.encoder, self.project, self.decoder, self.feature_shape = conv_codec(
            in_channels=in_channels,
            out_channels=out_channels,
            image_size=image_size,
            width=width,
            depth=depth,
            code=latent_dim,
            latent_dim=latent_dim,
        )

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, C, H, W) -> (B, latent_dim)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(self.project(z).view(-1, *self.feature_shape))  # (B, latent_dim) -> (B, C, H, W)

    def forward(self, x: Tensor) -> AutoencoderOutput:
        latent = self.encode(x)
        return AutoencoderOutput(image=self.decode(latent), latent=latent)


class KerasSameTranspose(nn.Module):
    """Keras' Conv2DTranspose(k=4, stride 1, padding='same'): full transposed conv, then keep H×W from offset 1."""

    def __init__(self, before: int, after: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(before, after, 4)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        return self.conv(x)[..., 1 : 1 + height, 1 : 1 + width]  # (B, after, H + 3, W + 3) -> (B, after, H, W)


class SeedConvAutoencoder(nn.Module):
    """The seed's face autoencoder: Conv 8/16/32 (3×3, ReLU, same) then transposed conv 32/16/8 (4×4, ReLU, same)
    and a 4×4 transposed conv to the output with a sigmoid. No pooling, so the "latent" is a 32×H×W map, larger
    than the image: 32,697 weights for one channel, as the seed's summary reports."""

    update_rule: ClassVar[str] = "reconstruction"

    def __init__(self, *, in_channels: int, out_channels: int, image_size: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            KerasSameTranspose(32, 32),
            nn.ReLU(),
            KerasSameTranspose(32, 16),
            nn.ReLU(),
            KerasSameTranspose(16, 8),
            nn.ReLU(),
            KerasSameTranspose(8, out_channels),
            nn.Sigmoid(),
        )

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, C, H, W) -> (B, 32, H, W)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, 32, H, W) -> (B, C, H, W)

    def forward(self, x: Tensor) -> AutoencoderOutput:
        latent = self.encode(x)
        return AutoencoderOutput(image=self.decode(latent), latent=latent)
