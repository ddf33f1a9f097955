"""Measurement operators y = f_θ(x): sample θ, then apply it. Shared by prepare and ambient training.

Every operator works on a batch (B, C, H, W) in whatever range the caller uses, draws θ from the
generator it is given (so prepare is reproducible and training can draw a fresh θ on every use),
and follows the definitions of the AmbientGAN / Ambient-VAE code. `observed(y)` is the θ a measurement
reveals (the kept pixels; nothing of the noise), which a latent search can measure its guesses with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.config import DatasetConfig
from pipeline.evaluation import baselines
from pipeline.schema import ConfigError, NonNegative, Positive, Size, check_kwargs


class DropIndependent:
    """Zero each pixel of each channel with probability p; scale the kept ones by 1/(1-p) (inverted dropout)."""

    def __init__(self, *, p: float = 0.5) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_independent.p must be in [0, 1), got {p}")
        self.p = p
        self.gain = 1.0 / (1.0 - p)  # what kept pixels are multiplied by

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Tensor:
        keep = torch.rand(shape, generator=generator, device=generator.device) >= self.p
        return keep.float() * self.gain  # (B, C, H, W)

    def apply(self, x: Tensor, theta: Tensor) -> Tensor:
        return x * theta

    def observed(self, measured: Tensor) -> Tensor:
        """θ as far as a measurement shows it: a pixel reading 0 was dropped (or was black, which is the same
        to the measurement); the others were kept and scaled."""
        return (measured != 0).float() * self.gain

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.apply(x, self.sample(x.shape, generator))

    def restore(self, measured: np.ndarray) -> np.ndarray:
        """The non-learned restoration of (N, H, W, C) measurements: inpaint the dropped pixels."""
        return baselines.inpaint(measured, self.gain)


class DropPatch:
    """Zero a size×size square, all channels, at a uniform top-left corner in {0, …, side - size - 1}.

    The upper bound excludes the last position, as `np.random.choice(h - k)` does in the seed.
    """

    keep_inside = False
    gain = 1.0  # kept pixels are kept as they are

    def __init__(self, *, size: Size = 14) -> None:
        if size < 1:
            raise ValueError(f"patch size must be at least 1, got {size}")
        self.size = size

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Tensor:
        batch, _, height, width = shape
        if self.size >= min(height, width):
            raise ValueError(f"patch size {self.size} does not fit a {height}×{width} image; use a smaller size")
        top = torch.randint(0, height - self.size, (batch,), generator=generator, device=generator.device)
        left = torch.randint(0, width - self.size, (batch,), generator=generator, device=generator.device)
        rows = torch.arange(height, device=generator.device)
        cols = torch.arange(width, device=generator.device)
        inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + self.size)  # (B, H)
        inside_cols = (cols >= left[:, None]) & (cols < left[:, None] + self.size)  # (B, W)
        inside = inside_rows[:, :, None] & inside_cols[:, None, :]  # (B, H, W)
        mask = inside if self.keep_inside else ~inside
        return mask[:, None].float()  # (B, 1, H, W): the same square on every channel

    def apply(self, x: Tensor, theta: Tensor) -> Tensor:
        return x * theta

    def observed(self, measured: Tensor) -> Tensor:
        """The mask as far as a measurement shows it: where every channel reads 0 (B, 1, H, W)."""
        return (measured != 0).any(dim=1, keepdim=True).float()

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.apply(x, self.sample(x.shape, generator))

    def restore(self, measured: np.ndarray) -> np.ndarray:
        """The non-learned restoration of (N, H, W, C) measurements: inpaint the dropped square."""
        return baselines.inpaint(measured, self.gain)


class KeepPatch(DropPatch):
    """Keep only a size×size square (the complement of drop_patch)."""

    keep_inside = True


class AddNoise:
    """y = x + σ·n with n ~ N(0, 1) per pixel and channel; no clipping (the operator is linear)."""

    gain = 1.0

    def __init__(self, *, sigma: NonNegative = 0.2) -> None:
        self.sigma = sigma

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Tensor:
        return self.sigma * torch.randn(shape, generator=generator, device=generator.device)

    def blur(self, x: Tensor) -> Tensor:
        return x

    def apply(self, x: Tensor, theta: Tensor) -> Tensor:
        return self.blur(x) + theta

    def observed(self, measured: Tensor) -> Tensor:
        """The noise cannot be read off a measurement; its expectation, 0, is what is known."""
        return torch.zeros_like(measured)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.apply(x, self.sample(x.shape, generator))

    def restore(self, measured: np.ndarray) -> np.ndarray:
        """The non-learned restoration of (N, H, W, C) measurements: total-variation denoising."""
        return baselines.total_variation(measured, self.sigma)


class BlurAddNoise(AddNoise):
    """y = G * x + σ·n: a Gaussian blur (radius r, size×size, per channel, zero padding) then noise."""

    def __init__(self, *, sigma: NonNegative = 0.2, radius: Positive = 1.0, size: Size = 5) -> None:
        super().__init__(sigma=sigma)
        axis = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        kernel = torch.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * radius**2))
        self.kernel = kernel / kernel.sum()  # (size, size)

    def blur(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        weight = self.kernel.to(x)[None, None].expand(channels, 1, -1, -1)  # (C, 1, k, k)
        return F.conv2d(x, weight, padding=self.kernel.shape[-1] // 2, groups=channels)

    def restore(self, measured: np.ndarray) -> np.ndarray:
        """The non-learned restoration of (N, H, W, C) measurements: Wiener deconvolution with the known blur."""
        return baselines.deconvolve(measured, self.kernel.double().numpy())


FORWARD_MODELS = {
    "drop_independent": DropIndependent,
    "drop_patch": DropPatch,
    "keep_patch": KeepPatch,
    "add_noise": AddNoise,
    "blur_add_noise": BlurAddNoise,
}


def build_forward(name: str, **kwargs: object) -> DropIndependent | DropPatch | AddNoise:
    """Instantiate a forward model by registry name."""
    if name not in FORWARD_MODELS:
        raise ValueError(f"unknown forward model {name!r}; choose one of {', '.join(FORWARD_MODELS)}")
    return FORWARD_MODELS[name](**kwargs)


def check_forward(dataset: DatasetConfig, where: str) -> dict[str, Mapping[str, Any]]:
    """A dataset's forward models' settings checked against their constructors (typed), each built once so
    that a value only it can judge fails in one line, and a patch size checked against the image size."""
    checked = {}
    for name, kwargs in dataset.forward.items():
        settings = check_kwargs(FORWARD_MODELS[name], kwargs, f"{where}.{name}")
        try:
            build_forward(name, **settings)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{where}.{name}: {error}") from None
        size = settings.get("size")
        if size is not None and not 0 < size < dataset.image_size:
            raise ConfigError(f"{where}.{name}.size: {size} does not fit {dataset.image_size}-pixel images")
        checked[name] = settings
    return checked
