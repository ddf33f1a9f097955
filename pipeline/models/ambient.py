"""The Ambient VAE-GAN's networks: a Gaussian encoder, a decoder that is also the generator, and a
discriminator whose middle convolution is the feature space of the learned similarity term.

The layers are the seed's, in two sizes picked by the image side: up to 32 pixels the MNIST networks (three
stride-2 convolutions, a 7×7 start for the decoder at 28 px), above it the 64×64 CelebA networks (a 1024-unit
hidden layer in the encoder, four convolutions and a 256-unit layer in the discriminator). `width` is the
first convolution's channels (the seed: 16 and 64); every other layer scales with it. Convolutions are 3×3
with stride 2 and TensorFlow's "SAME" padding, as the seed's, so sides round up (28 -> 14 -> 7 -> 4).

Images are in [0, 1] and the decoder ends in a sigmoid; the seed's CelebA decoder ended in tanh on [−1, 1].
`ambient_gan` is the same decoder and discriminator without the encoder: the AmbientGAN whose latent space
the ACSG baseline searches.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.models.gan import GAN
from pipeline.models.vae import GaussianEncoding
from pipeline.schema import Size

SMALL = 32  # the largest side that gets the MNIST networks


class SameConv(nn.Conv2d):
    """3×3 stride-2 convolution with TensorFlow's SAME padding: side n -> ceil(n / 2). TensorFlow pads the
    odd pixel after, not before, so (0, 1) for even sides and (1, 1) for odd ones."""

    def __init__(self, before: int, after: int) -> None:
        super().__init__(before, after, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        side = x.shape[-1]
        total = max(2 * (math.ceil(side / 2) - 1) + 3 - side, 0)
        return super().forward(F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2)))


class SameDeconv(nn.ConvTranspose2d):
    """TensorFlow's 3×3 stride-2 SAME transposed convolution: side n -> 2n. Without padding it gives 2n + 1;
    TensorFlow keeps the first 2n rows and columns (PyTorch's padding=1, output_padding=1 is one pixel off)."""

    def __init__(self, before: int, after: int) -> None:
        super().__init__(before, after, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        side = 2 * x.shape[-1]
        return super().forward(x)[..., :side, :side]


def initialise(module: nn.Module) -> None:
    """The seed's start: convolutions truncated N(0, 0.02), transposed convolutions and dense layers N(0, 0.02),
    biases 0; batch norm at scale 1, shift 0."""
    if any(p.is_meta for p in module.parameters(recurse=False)):
        return  # a shape-only build (the config check)
    if isinstance(module, nn.Conv2d):
        nn.init.trunc_normal_(module.weight, 0.0, 0.02, -0.04, 0.04)
    elif isinstance(module, (nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and module.bias is not None:
        nn.init.zeros_(module.bias)


def normed(layer: nn.Module, channels: int, *, flat: bool = False) -> list[nn.Module]:
    """layer -> batch norm (momentum 0.1 = TensorFlow's decay 0.9, eps 1e-5) -> ReLU."""
    return [layer, (nn.BatchNorm1d if flat else nn.BatchNorm2d)(channels), nn.ReLU()]


def encoder(channels: int, image_size: int, width: int, latent_dim: int) -> nn.Sequential:
    """(B, C, S, S) -> (B, 2·latent_dim): mean and log-variance. MNIST: conv w, 2w, 4w; CelebA adds FC 16w."""
    side = math.ceil(image_size / 8)
    layers = [
        *normed(SameConv(channels, width), width),
        *normed(SameConv(width, 2 * width), 2 * width),
        *normed(SameConv(2 * width, 4 * width), 4 * width),
        nn.Flatten(),
    ]
    features = 4 * width * side**2
    if image_size > SMALL:
        layers += normed(nn.Linear(features, 16 * width), 16 * width, flat=True)
        features = 16 * width
    return nn.Sequential(*layers, nn.Linear(features, 2 * latent_dim))


def decoder(channels: int, image_size: int, width: int, latent_dim: int) -> nn.Sequential:
    """z (B, latent_dim) -> (B, C, S, S) in [0, 1].

    MNIST: FC to (2w, S/4, S/4), deconv w, deconv C. CelebA: FC to (4w, S/8, S/8), deconv 4w, 2w, w/2, then a
    stride-1 3×3 convolution to C.
    """
    small = image_size <= SMALL
    levels = 2 if small else 3
    if image_size % 2**levels:
        raise ValueError(f"image_size {image_size} must be divisible by {2**levels} for the seed's decoder")
    side = image_size // 2**levels
    widths = [2 * width, width] if small else [4 * width, 4 * width, 2 * width, max(width // 2, 1)]
    layers = [
        *normed(nn.Linear(latent_dim, widths[0] * side**2), widths[0] * side**2, flat=True),
        nn.Unflatten(1, (widths[0], side, side)),
    ]
    for before, after in pairwise(widths):
        layers += normed(SameDeconv(before, after), after)
    last = SameDeconv(widths[-1], channels) if small else nn.ConvTranspose2d(widths[-1], channels, 3, padding=1)
    return nn.Sequential(*layers, last, nn.Sigmoid())


class Discriminator(nn.Module):
    """Image -> logit, through `features`: the middle convolution before its batch norm (the seed's Dis_l).

    MNIST: conv w (no norm), conv 2w, conv 4w = features, then norm, ReLU, FC 1.
    CelebA: conv w/2 (no norm), conv 2w, conv 4w, conv 4w = features, then norm, ReLU, FC 4w, FC 1.
    """

    def __init__(self, channels: int, image_size: int, width: int) -> None:
        super().__init__()
        small = image_size <= SMALL
        widths = [width, 2 * width, 4 * width] if small else [max(width // 2, 1), 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = [SameConv(channels, widths[0]), nn.ReLU()]
        for before, after in pairwise(widths[:-1]):
            layers += normed(SameConv(before, after), after)
        self.body = nn.Sequential(*layers, SameConv(widths[-2], widths[-1]))
        side = math.ceil(image_size / 2 ** len(widths))
        hidden = [] if small else normed(nn.Linear(widths[-1] * side**2, 4 * width), 4 * width, flat=True)
        self.head = nn.Sequential(
            nn.BatchNorm2d(widths[-1]),
            nn.ReLU(),
            nn.Flatten(),
            *hidden,
            nn.Linear(widths[-1] * side**2 if small else 4 * width, 1),
        )

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)  # (B, 4w, S/8, S/8) for MNIST, (B, 4w, S/16, S/16) for CelebA

    def judge(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logit (B,), features) from one pass."""
        features = self.body(x)
        return self.head(features).squeeze(1), features

    def forward(self, x: Tensor) -> Tensor:
        return self.judge(x)[0]


def seed_sizes(image_size: int, width: int | None, latent_dim: int | None) -> tuple[int, int]:
    """(width, latent_dim), the seed's where not given: 16 and 20 for the MNIST networks, 64 and 128 for CelebA's."""
    small = image_size <= SMALL
    return (width or (16 if small else 64)), (latent_dim or (20 if small else 128))


class AmbientVAEGAN(GaussianEncoding):
    """Encoder q(z|y), decoder Dec(z) and discriminator, trained by the `ambient_vaegan` rule: from distorted
    images y = f_θ(x) only, with the forward model f applied to everything the discriminator sees."""

    update_rule: ClassVar[str] = "ambient_vaegan"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        latent_dim: Size | None = None,
        width: Size | None = None,
    ) -> None:
        super().__init__()
        width, self.latent_dim = seed_sizes(image_size, width, latent_dim)
        self.encoder = encoder(in_channels, image_size, width, self.latent_dim)
        self.decoder = decoder(out_channels, image_size, width, self.latent_dim)
        self.critic = Discriminator(out_channels, image_size, width)
        self.apply(initialise)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)


class AmbientGAN(GAN):
    """The Ambient VAE-GAN's decoder (the generator) and discriminator alone, trained as a GAN whose
    discriminator sees f(G(z)) against the measurements: AmbientGAN. Restoring an image is a search for the
    latent whose measured image looks like it (ACSG)."""

    update_rule: ClassVar[str] = "adversarial"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        latent_dim: Size | None = None,
        width: Size | None = None,
    ) -> None:
        super().__init__()
        width, self.latent_dim = seed_sizes(image_size, width, latent_dim)
        self.generator = decoder(out_channels, image_size, width, self.latent_dim)
        self.critic = Discriminator(out_channels, image_size, width)
        self.apply(initialise)
