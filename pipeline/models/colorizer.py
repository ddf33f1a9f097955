"""Colourisation networks: the Lab lightness L in, the two chroma channels ab out.

The seed's colouriser is a plain encoder-decoder of 3×3 convolutions (three stride-2 steps down, two
nearest-neighbour upsamplings back, and a last upsampling after the tanh), so its ab map is predicted at
half the image's resolution. The U-Net variant is the same network with the encoder's feature maps
concatenated into the decoder at 1/4 and 1/2 resolution.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from pipeline.schema import Size


class ColorOutput(NamedTuple):
    image: Tensor  # (B, 2, H, W): a and b divided by 128, in [-1, 1]


def conv(before: int, after: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(before, after, 3, stride=stride, padding=1), nn.ReLU())


class Colorizer(nn.Module):
    """The seed's colourisation autoencoder with every width a multiple of `width` (the seed: 64, at 256 px).

    Encoder: w s2, 2w, 2w s2, 4w, 4w s2, 8w, 8w, 4w (at S/8). Decoder: 2w, up, w, up, w/2, w/4, 2 + tanh, up.
    """

    update_rule: ClassVar[str] = "reconstruction"
    output_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)

    def __init__(self, *, in_channels: int, out_channels: int, image_size: int, width: Size = 64) -> None:
        super().__init__()
        if image_size % 8:
            raise ValueError(f"image_size {image_size} must be divisible by 8 (three stride-2 steps)")
        if width < 4 or width % 4:
            raise ValueError(f"width must be a positive multiple of 4 (the last layers use width/4), got {width}")
        w = width
        self.encoder_half = nn.Sequential(conv(in_channels, w, 2), conv(w, 2 * w))  # (B, 2w, S/2, S/2)
        self.encoder_quarter = nn.Sequential(conv(2 * w, 2 * w, 2), conv(2 * w, 4 * w))  # (B, 4w, S/4, S/4)
        self.encoder_eighth = nn.Sequential(
            conv(4 * w, 4 * w, 2), conv(4 * w, 8 * w), conv(8 * w, 8 * w), conv(8 * w, 4 * w), conv(4 * w, 2 * w)
        )  # (B, 2w, S/8, S/8)
        self.decoder_quarter = conv(2 * w + self.skip(4 * w), w)  # after upsampling to S/4
        self.decoder_half = nn.Sequential(
            conv(w + self.skip(2 * w), w // 2),
            conv(w // 2, w // 4),
            nn.Conv2d(w // 4, out_channels, 3, padding=1),
            nn.Tanh(),
        )
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def skip(self, channels: int) -> int:
        """How many encoder channels join the decoder at a level: none here, all of them in the U-Net."""
        return 0

    def join(self, decoded: Tensor, encoded: Tensor) -> Tensor:
        return decoded

    def forward(self, x: Tensor) -> ColorOutput:
        half = self.encoder_half(x)
        quarter = self.encoder_quarter(half)
        h = self.decoder_quarter(self.join(self.upsample(self.encoder_eighth(quarter)), quarter))  # (B, w, S/4, S/4)
        h = self.decoder_half(self.join(self.upsample(h), half))  # (B, 2, S/2, S/2)
        return ColorOutput(image=self.upsample(h))  # (B, 2, S, S): the seed upsamples after the tanh


class ColorizerUNet(Colorizer):
    """The colouriser with skip connections: the decoder also reads the encoder's maps at S/4 and S/2."""

    def skip(self, channels: int) -> int:
        return channels

    def join(self, decoded: Tensor, encoded: Tensor) -> Tensor:
        return torch.cat([decoded, encoded], 1)
