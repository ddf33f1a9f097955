"""Conditional autoencoder-GANs: the encoder and the decoder both read a condition, so the latent need not
carry what the condition already says, and decoding with another condition transfers style.

`conditional_aegan` is the seed's label-conditioned network at 28×28, layer for layer: the one-hot label
enters as a (B, classes, 1, 1) map that transposed convolutions expand to the image features' size, where
it is concatenated. `image_conditional_aegan` takes an image as the condition (a gray image, an edge map)
at sizes 4·2^k (8, 16, 32, 64, …): the condition's features join the encoder at its first level and the
decoder at every level, so structure comes from the condition and the latent is free to keep the rest (colour, texture).

Both critics output a logit; the seed ended its discriminator in a sigmoid and used BCE, which is the
same loss computed less stably.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from pipeline.schema import Size


class ConditionalOutput(NamedTuple):
    image: Tensor  # (B, out_channels, H, W) in [0, 1]
    latent: Tensor  # (B, latent_dim)


def initialise(module: nn.Module) -> None:
    """The seed's (and DCGAN's) start: convolution weights N(0, 0.02), batch-norm scales N(1, 0.02), shifts 0."""
    if any(p.is_meta for p in module.parameters(recurse=False)):
        return  # a shape-only build (the config check): nothing to draw, and drawing on meta imports torch's compiler
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def block(layer: nn.Module, channels: int, activation: nn.Module) -> list[nn.Module]:
    return [layer, nn.BatchNorm2d(channels), activation]


class LabelEncoder(nn.Module):
    """(x (B, C, 28, 28), one-hot (B, classes)) -> z (B, latent_dim)."""

    def __init__(self, in_channels: int, classes: int, width: int, condition_width: int, latent_dim: int) -> None:
        super().__init__()
        self.condition = nn.Sequential(
            *block(nn.ConvTranspose2d(classes, 2 * condition_width, 6), 2 * condition_width, nn.ReLU()),  # 6×6
            nn.ConvTranspose2d(2 * condition_width, condition_width, 4, stride=2),  # 14×14
        )
        self.image = nn.Conv2d(in_channels, 4 * width, 3, stride=2, padding=1, bias=False)  # 14×14
        both = 4 * width + condition_width  # image and condition features, concatenated
        self.joined = nn.Sequential(
            nn.BatchNorm2d(both),
            nn.ReLU(),
            *block(nn.Conv2d(both, 2 * width, 3, stride=2, padding=1, bias=False), 2 * width, nn.ReLU()),  # 7×7
            *block(nn.Conv2d(2 * width, width, 3, stride=2, padding=1, bias=False), width, nn.ReLU()),  # 4×4
            nn.Conv2d(width, latent_dim, 4),
            nn.Flatten(),  # (B, latent_dim): no activation
        )

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        spread = self.condition(condition[:, :, None, None])  # (B, condition_width, 14, 14)
        return self.joined(torch.cat([self.image(x), spread], dim=1))


class LabelDecoder(nn.Module):
    """(z (B, latent_dim), one-hot (B, classes)) -> image (B, C, 28, 28) in [0, 1]."""

    def __init__(self, out_channels: int, classes: int, width: int, condition_width: int, latent_dim: int) -> None:
        super().__init__()
        self.condition = nn.Sequential(
            *block(nn.ConvTranspose2d(classes, 2 * condition_width, 6), 2 * condition_width, nn.ReLU()),  # 6×6
            nn.Conv2d(2 * condition_width, condition_width, 3, padding=1),
        )
        self.latent = nn.Sequential(
            *block(nn.ConvTranspose2d(latent_dim, 2 * width, 6, bias=False), 2 * width, nn.ReLU()),  # 6×6
            nn.Conv2d(2 * width, 4 * width, 3, padding=1, bias=False),
        )
        both = 4 * width + condition_width  # latent and condition features, concatenated
        self.joined = nn.Sequential(
            nn.BatchNorm2d(both),
            nn.ReLU(),
            *block(nn.ConvTranspose2d(both, 2 * width, 5, stride=2, bias=False), 2 * width, nn.ReLU()),  # 15×15
            *block(nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1, bias=False), width, nn.ReLU()),  # 29×29
            nn.Conv2d(width, out_channels, 4, padding=1),
            nn.Sigmoid(),  # 28×28
        )

    def forward(self, z: Tensor, condition: Tensor) -> Tensor:
        return self.joined(
            torch.cat([self.latent(z[:, :, None, None]), self.condition(condition[:, :, None, None])], dim=1)
        )


class LabelCritic(nn.Module):
    """(x (B, C, 28, 28), one-hot (B, classes)) -> (B,) logits. LeakyReLU at PyTorch's default slope 0.01, and
    no activation after the first convolution, as the seed."""

    def __init__(self, in_channels: int, classes: int, width: int) -> None:
        super().__init__()
        self.condition = nn.ConvTranspose2d(classes, width, 4, bias=False)  # (B, width, 4, 4)
        self.image = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1, bias=False),  # 14×14
            *block(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False), 2 * width, nn.LeakyReLU()),  # 7×7
            nn.Conv2d(2 * width, 3 * width, 3, stride=2, padding=1, bias=False),  # 4×4
        )
        self.joined = nn.Sequential(
            nn.BatchNorm2d(4 * width),
            nn.LeakyReLU(),
            *block(nn.Conv2d(4 * width, 8 * width, 3, padding=1, bias=False), 8 * width, nn.LeakyReLU()),
            *block(nn.Conv2d(8 * width, 2 * width, 3, padding=1, bias=False), 2 * width, nn.LeakyReLU()),
            nn.Conv2d(2 * width, 1, 4, bias=False),
            nn.Flatten(),  # (B, 1)
        )

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        return self.joined(torch.cat([self.image(x), self.condition(condition[:, :, None, None])], dim=1)).squeeze(1)


class ConditionalAutoencoder(nn.Module):
    """What both conditional models share: `encoder(x, c)`, `decoder(z, c)` and `critic(x, c)` modules."""

    update_rule: ClassVar[str] = "conditional_aegan"
    conditioned_on: ClassVar[str]  # "label" or "image": what the task must hand in as the condition
    latent_dim: int
    encoder: nn.Module
    decoder: nn.Module
    critic: nn.Module

    def encode(self, x: Tensor, condition: Tensor) -> Tensor:
        return self.encoder(x, condition)  # (B, latent_dim)

    def decode(self, z: Tensor, condition: Tensor) -> Tensor:
        return self.decoder(z, condition)  # (B, C, H, W) in [0, 1]

    def forward(self, x: Tensor, condition: Tensor) -> ConditionalOutput:
        z = self.encoder(x, condition)
        return ConditionalOutput(image=self.decoder(z, condition), latent=z)


class LabelConditionalAEGAN(ConditionalAutoencoder):
    """The seed's AE-GAN: 28×28 images, a one-hot label as the condition, a 16-number latent.

    `width`, `critic_width` and `condition_width` are the seed's ngf, ndf and ncondf (32, 32, 12). Weights
    start as the seed's: convolutions N(0, 0.02), batch-norm scales N(1, 0.02).
    """

    conditioned_on: ClassVar[str] = "label"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        condition_channels: int,
        latent_dim: Size = 16,
        width: Size = 32,
        critic_width: Size = 32,
        condition_width: Size = 12,
    ) -> None:
        super().__init__()
        if image_size != 28:
            raise ValueError(
                f"the seed's label-conditioned network is built for 28×28 images, not {image_size}; "
                "use image_size 28 or image_conditional_aegan"
            )
        self.latent_dim = latent_dim
        self.encoder = LabelEncoder(in_channels, condition_channels, width, condition_width, latent_dim)
        self.decoder = LabelDecoder(out_channels, condition_channels, width, condition_width, latent_dim)
        self.critic = LabelCritic(in_channels, condition_channels, critic_width)
        self.apply(initialise)


class ConditionFeatures(nn.Module):
    """The condition image's features at every level: (B, c, S, S) -> [(B, w, S, S), (B, w, S/2, S/2), …, 4×4]."""

    def __init__(self, in_channels: int, width: int, levels: int) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 4, stride=2, padding=1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2))
            for _ in range(levels)
        )

    def forward(self, condition: Tensor) -> list[Tensor]:
        features = [self.first(condition)]
        for layer in self.down:
            features.append(layer(features[-1]))
        return features


class ImageEncoder(nn.Module):
    """(x (B, C, S, S), condition (B, c, S, S)) -> z (B, latent_dim): the condition's full-size features are
    concatenated to the image, then stride-2 convolutions take it to 4×4 and a 4×4 convolution to the latent."""

    def __init__(
        self, in_channels: int, condition_channels: int, widths: list[int], condition_width: int, latent_dim: int
    ) -> None:
        super().__init__()
        self.condition = nn.Sequential(nn.Conv2d(condition_channels, condition_width, 3, padding=1), nn.LeakyReLU(0.2))
        layers: list[nn.Module] = []
        for before, after in zip([in_channels + condition_width, *widths[:-1]], widths):
            layers += block(nn.Conv2d(before, after, 4, stride=2, padding=1, bias=False), after, nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*layers, nn.Conv2d(widths[-1], latent_dim, 4), nn.Flatten())

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        return self.body(torch.cat([x, self.condition(condition)], dim=1))


class ImageDecoder(nn.Module):
    """(z (B, latent_dim), condition (B, c, S, S)) -> image (B, C, S, S) in [0, 1]. z becomes a 4×4 map; each
    transposed convolution doubles the side, and the condition's features at that side are concatenated
    before it, so the decoder can draw the condition's structure at every scale."""

    def __init__(
        self, out_channels: int, condition_channels: int, widths: list[int], condition_width: int, latent_dim: int
    ) -> None:
        super().__init__()
        self.condition = ConditionFeatures(condition_channels, condition_width, len(widths))
        self.latent = nn.Sequential(
            *block(nn.ConvTranspose2d(latent_dim, widths[-1], 4, bias=False), widths[-1], nn.ReLU())
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                *block(
                    nn.ConvTranspose2d(before + condition_width, after, 4, stride=2, padding=1, bias=False),
                    after,
                    nn.ReLU(),
                )
            )
            for before, after in zip(widths[::-1], widths[::-1][1:])
        )
        self.last = nn.Sequential(
            nn.ConvTranspose2d(widths[0] + condition_width, widths[0], 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(widths[0] + condition_width, out_channels, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: Tensor, condition: Tensor) -> Tensor:
        features = self.condition(condition)[::-1]  # 4×4 first, full size last
        h = self.latent(z[:, :, None, None])  # (B, widths[-1], 4, 4)
        for layer, joined in zip(self.up, features):
            h = layer(torch.cat([h, joined], dim=1))
        h = self.last[:2](torch.cat([h, features[-2]], dim=1))  # (B, widths[0], S, S)
        return self.last[2:](torch.cat([h, features[-1]], dim=1))


class ImageCritic(nn.Module):
    """(x, condition) -> (B,) logits: the pair concatenated, stride-2 convolutions to 4×4, one 4×4 convolution."""

    def __init__(self, in_channels: int, condition_channels: int, widths: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for level, (before, after) in enumerate(zip([in_channels + condition_channels, *widths[:-1]], widths)):
            conv = nn.Conv2d(before, after, 4, stride=2, padding=1, bias=level == 0)
            layers += [conv, nn.LeakyReLU(0.2)] if level == 0 else block(conv, after, nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*layers, nn.Conv2d(widths[-1], 1, 4), nn.Flatten())

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        return self.body(torch.cat([x, condition], dim=1)).squeeze(1)


class ImageConditionalAEGAN(ConditionalAutoencoder):
    """The seed's process with an image as the condition (its gray-image and sketch results): S×S images with
    S = 4·2^k, widths doubling from `width` at every halving (capped at 8·width), the same three updates."""

    conditioned_on: ClassVar[str] = "image"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        condition_channels: int,
        latent_dim: Size = 16,
        width: Size = 16,
        critic_width: Size = 16,
        condition_width: Size = 8,
    ) -> None:
        super().__init__()
        levels = (image_size // 4).bit_length() - 1  # halvings from S to 4
        if image_size < 8 or image_size != 4 * 2**levels:
            raise ValueError(f"image_size must be 4 times a power of two (8, 16, 32, 64, …), got {image_size}")
        widths = [width * min(2**level, 8) for level in range(levels)]  # e.g. 64 px: [w, 2w, 4w, 8w]
        self.latent_dim = latent_dim
        self.encoder = ImageEncoder(in_channels, condition_channels, widths, condition_width, latent_dim)
        self.decoder = ImageDecoder(out_channels, condition_channels, widths, condition_width, latent_dim)
        self.critic = ImageCritic(
            in_channels, condition_channels, [critic_width * min(2**level, 8) for level in range(levels)]
        )
        self.apply(initialise)
