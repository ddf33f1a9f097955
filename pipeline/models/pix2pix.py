"""Image-to-image translation after pix2pix (Isola et al. 2017): a U-Net generator and a PatchGAN critic.

`unet` is the generator alone (trained with a pixel loss: the L1-only ablation); `pix2pix` pairs the same
generator with a critic that judges (input, output) pairs patch by patch. Outputs end in a sigmoid, as
every image here is in [0, 1] (pix2pix itself used tanh on [-1, 1] images).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from pipeline.models.gan import GeneratorOutput
from pipeline.schema import Size


class UNet(nn.Module):
    """pix2pix's U-Net: `depth` stride-2 4×4 convolutions down (widths w, 2w, 4w, 8w, 8w, …), as many
    transposed convolutions up, each level's encoder map concatenated into the decoder. At 256 px and
    depth 8 this is pix2pix's generator; depth 6 takes 64-px images down to 1×1.

    Dropout 0.5 sits where pix2pix put it: on the decoder levels of width 8w between the fourth and the
    innermost. It is active in training only; evaluation is deterministic.
    """

    update_rule: ClassVar[str] = "reconstruction"

    def __init__(
        self, *, in_channels: int, out_channels: int, image_size: int, width: Size = 64, depth: Size = 6
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        if image_size % 2**depth:
            raise ValueError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}")
        widths = [width * min(2**level, 8) for level in range(depth)]
        self.down = nn.ModuleList()
        for level, (before, after) in enumerate(zip([in_channels, *widths], widths)):
            layers: list[nn.Module] = [] if level == 0 else [nn.LeakyReLU(0.2)]
            layers.append(
                nn.Conv2d(before, after, 4, stride=2, padding=1, bias=False)
            )  # as pix2pix: no bias going down
            if 0 < level < depth - 1:  # no norm on the outermost and innermost levels
                layers.append(nn.BatchNorm2d(after))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for level in range(depth):
            before = widths[level] * (1 if level == depth - 1 else 2)  # the innermost level has no skip to join
            after = widths[level - 1] if level else out_channels
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(before, after, 4, stride=2, padding=1, bias=level == 0),
            ]  # BN follows the rest
            if level:
                layers.append(nn.BatchNorm2d(after))
                if 4 <= level < depth - 1:
                    layers.append(nn.Dropout(0.5))
            else:
                layers.append(nn.Sigmoid())
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> GeneratorOutput:
        skips = []
        for down in self.down:
            x = down(x)  # level l: (B, widths[l], S/2^(l+1), S/2^(l+1))
            skips.append(x)
        for level in reversed(range(len(self.up))):
            if level < len(self.up) - 1:
                x = torch.cat([skips[level], x], 1)  # (B, 2·widths[l], …)
            x = self.up[level](x)
        return GeneratorOutput(image=x)  # (B, out_channels, S, S)


class PatchCritic(nn.Module):
    """pix2pix's PatchGAN discriminator: one logit per overlapping patch, for (B, in_channels, S, S) input.

    `layers` stride-2 convolutions (widths w, 2w, 4w, capped at 8w), one stride-1 convolution, then one
    logit map; 3 layers give pix2pix's 70×70 receptive field, 2 layers 34×34.
    """

    def __init__(self, in_channels: int, width: Size = 64, layers: Size = 3) -> None:
        super().__init__()
        widths = [width * min(2**level, 8) for level in range(layers + 1)]
        body: list[nn.Module] = []
        for level, (before, after) in enumerate(zip([in_channels, *widths[:-1]], widths)):
            stride = 2 if level < layers else 1
            norm = [nn.BatchNorm2d(after)] if level else []
            body += [nn.Conv2d(before, after, 4, stride=stride, padding=1, bias=not norm), *norm, nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*body, nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1))

    def forward(self, condition: Tensor, image: Tensor) -> Tensor:
        return self.body(torch.cat([condition, image], 1))  # (B, 1, h, w) patch logits


class Pix2Pix(nn.Module):
    """The U-Net generator and a PatchGAN critic on (input, image) pairs; trained with a conditional GAN
    loss plus a weighted L1 term (update rule `conditional_adversarial`)."""

    update_rule: ClassVar[str] = "conditional_adversarial"

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        image_size: int,
        width: Size = 64,
        depth: Size = 6,
        critic_width: Size = 64,
        critic_layers: Size = 3,
    ) -> None:
        super().__init__()
        self.generator = UNet(
            in_channels=in_channels, out_channels=out_channels, image_size=image_size, width=width, depth=depth
        )
        self.critic = PatchCritic(in_channels + out_channels, critic_width, critic_layers)

    def forward(self, x: Tensor) -> GeneratorOutput:
        return self.generator(x)
