"""Restoring an image with a generator alone: search its latent space for the image whose measurement looks
like the one given (CSGM), as the seed's ACSG baseline did with an AmbientGAN."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from pipeline.schema import NonNegative, Positive, Size

SEED_BATCH = 64  # the seed searched 64 images at a time; its prior term was summed over them


@dataclass(frozen=True)
class LatentSearch:
    """How an image is restored through a generator G: Adam on z, from N(0, I), `steps` steps at `lr`, on

        feature_weight · mean (D_l(f(G(z))) − D_l(y))²  +  pixel_weight · mean (f(G(z)) − y)²  +  prior_weight · Σz²

    with D_l the discriminator's middle layer. The defaults are the seed's ACSG (its ml1_w, ml2_w, zp_w,
    lr_test, iter_test). `theta: fresh` measures G(z) with a new θ at every step, as the seed's graph did;
    `observed` with the θ the measurement shows (its kept pixels; no noise), as CSGM measures with the
    known operator.
    """

    steps: Size = 100
    lr: Positive = 0.1
    feature_weight: NonNegative = 5.0
    pixel_weight: NonNegative = 0.0
    prior_weight: NonNegative = 0.001
    theta: Literal["fresh", "observed"] = "fresh"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.lr <= 0:
            raise ValueError(f"search.steps must be at least 1 and search.lr above 0 (got {self.steps}, {self.lr})")
        if (
            min(self.feature_weight, self.pixel_weight, self.prior_weight) < 0
            or self.feature_weight + self.pixel_weight == 0
        ):
            raise ValueError("search weights cannot be negative, and feature_weight or pixel_weight must be above 0")


def latent_search(
    model: nn.Module,
    measured: Tensor,
    measure: Callable[[Tensor], Tensor],
    settings: LatentSearch,
    *,
    seed: int = 0,
    trace: Callable[[float, Tensor], None] | None = None,
) -> Tensor:
    """G(z) for the z that `settings` finds for each image of `measured` (y, (B, C, H, W)).

    Args:
        model: a GAN with `decode` (the generator) and `critic.features` (D_l).
        measured: y.
        measure: f as `settings.theta` asks: with a fresh θ on every call, or with y's own.
        settings: the loss and the optimiser.
        seed: draws the starting z.
        trace: called with each G(z) the search draws and the seconds it had searched when that image was
            drawn: once per step (the image the step starts from) and once for the final G(z).

    The seed summed z² over its batch of 64 while the other terms are batch means; here the prior term is
    scaled by 64 / B, so each image is restored as it would be in a batch of 64 whatever the batch size.
    """
    device = measured.device
    generator = torch.Generator(device).manual_seed(seed)
    z = torch.randn(len(measured), model.latent_dim, generator=generator, device=device).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=settings.lr)
    prior_weight = settings.prior_weight * SEED_BATCH / len(measured)
    spent = 0.0
    with torch.enable_grad():
        target = model.critic.features(measured).detach() if settings.feature_weight else None
        for _ in range(settings.steps):
            # the clock waits for the device (a CUDA synchronize): only while tracing, where the curve needs it
            started = clock(device) if trace is not None else 0.0
            image = model.decode(z)
            drawn = spent + clock(device) - started if trace is not None else 0.0  # when this G(z) was there to read
            seen = measure(image)
            loss = prior_weight * z.float().pow(2).sum()
            if settings.feature_weight:
                loss = loss + settings.feature_weight * (model.critic.features(seen) - target).float().pow(2).mean()
            if settings.pixel_weight:
                loss = loss + settings.pixel_weight * (seen - measured).float().pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if trace is not None:
                spent += clock(device) - started
                trace(drawn, image.detach())
        started = clock(device) if trace is not None else 0.0
        with torch.no_grad():
            image = model.decode(z)
        spent += clock(device) - started if trace is not None else 0.0
    if trace is not None:
        trace(spent, image)
    return image


def clock(device: torch.device) -> float:
    """Seconds on a monotonic clock, once the device has finished what was queued on it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
