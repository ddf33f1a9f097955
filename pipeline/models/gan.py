"""Generative adversarial networks: a generator from N(0, I) to images and a critic that scores images.

The same architecture serves two objectives, chosen by class: `adversarial` (the critic outputs a logit,
non-saturating cross-entropy, as DCGAN) and `wasserstein` (the critic outputs an unbounded score, WGAN with
a gradient penalty or weight clipping). The conv generator is the conv VAE's decoder, layer for layer, so
the study compares objectives, not architectures.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Literal, NamedTuple

from torch import Tensor, nn

from pipeline.models.autoencoder import down_stack, stack_widths, up_stack
from pipeline.models.linear import perceptron, pixel_decoder
from pipeline.models.vae import PriorSampler
from pipeline.schema import Size


class GeneratorOutput(NamedTuple):
    image: Tensor  # (B, out_channels, H, W) in [0, 1]


class Critic(nn.Module):
    """`body` turns an image into features, a linear head turns those into one score per image."""

    def __init__(self, body: nn.Module, features: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(features, 1)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x).flatten(1)  # (B, C, H, W) -> (B, features)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(1)  # (B,): a logit, or a Wasserstein score


def conv_critic(in_channels: int, image_size: int, width: int, depth: int, *, batch_norm: bool) -> Critic:
    """The conv encoder's down stack with a one-number head: (B, C, S, S) -> (B,)."""
    widths, side = stack_widths(image_size, width, depth)
    return Critic(nn.Sequential(*down_stack(in_channels, widths, batch_norm=batch_norm)), widths[-1] * side**2)


def conv_generator(
    out_channels: int, image_size: int, width: int, depth: int, latent_dim: int, upsample: str = "transposed"
) -> nn.Sequential:
    """z (B, latent_dim) -> linear -> (B, widths[-1], side, side) -> up stack -> (B, C, S, S) in [0, 1]."""
    widths, side = stack_widths(image_size, width, depth)
    return nn.Sequential(
        nn.Linear(latent_dim, widths[-1] * side**2),
        nn.ReLU(),
        nn.Unflatten(1, (widths[-1], side, side)),
        *up_stack(widths, out_channels, upsample),
    )


class GAN(PriorSampler, nn.Module):
    """What every GAN here shares: `self.generator` maps noise to images, `self.critic` scores images."""

    generator: nn.Module
    critic: Critic

    def decode(self, z: Tensor) -> Tensor:
        return self.generator(z)  # (B, latent_dim) -> (B, C, H, W)

    def forward(self, z: Tensor) -> GeneratorOutput:
        return GeneratorOutput(image=self.generator(z))


class LinearGAN(GAN):
    """Perceptron generator and critic. Defaults are the seed's FashionMNIST sizes: G z-128-256-256-512-784,
    D 784-512-512-256-128-64-1 with LeakyReLU(0.2). The generator ends in a sigmoid rather than the seed's
    tanh: the seed fed [0, 1] images to a [−1, 1] generator."""

    update_rule: ClassVar[str] = "adversarial"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        latent_dim: Size = 100,
        generator_hidden: tuple[Size, ...] = (128, 256, 256, 512),
        critic_hidden: tuple[Size, ...] = (512, 512, 256, 128, 64),
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = pixel_decoder([latent_dim, *generator_hidden], (out_channels, image_size, image_size))
        leaky = partial(nn.LeakyReLU, 0.2)
        widths = [in_channels * image_size**2, *critic_hidden]  # no hidden layer: a linear critic of the pixels
        body = nn.Sequential(nn.Flatten(), *perceptron(widths, leaky), *([leaky()] if critic_hidden else []))
        self.critic = Critic(body, widths[-1])


class LinearWGAN(LinearGAN):
    """The linear GAN trained as a Wasserstein GAN: the same networks, the critic's score left unbounded."""

    update_rule: ClassVar[str] = "wasserstein"


class DCGAN(GAN):
    """Conv generator (the conv VAE's decoder) and a conv critic (the conv encoder's down stack).

    `critic_width` sets the critic's channels apart from the generator's `width`: a critic much narrower
    than it needs to be gives a Wasserstein critic too little to estimate the distance with. `upsample:
    resize` builds the generator's up stack from resizing and convolutions instead of transposed ones
    (`up_stack`), against the checkerboard texture.
    """

    update_rule: ClassVar[str] = "adversarial"
    critic_batch_norm: ClassVar[bool] = True

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        latent_dim: Size = 32,
        width: Size = 32,
        depth: Size = 2,
        critic_width: Size = 32,
        upsample: Literal["transposed", "resize"] = "transposed",
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = conv_generator(out_channels, image_size, width, depth, latent_dim, upsample)
        self.critic = conv_critic(in_channels, image_size, critic_width, depth, batch_norm=self.critic_batch_norm)


class WassersteinDCGAN(DCGAN):
    """DCGAN's networks trained as a WGAN; the critic has no batch norm, which the gradient penalty needs."""

    update_rule: ClassVar[str] = "wasserstein"
    critic_batch_norm: ClassVar[bool] = False
