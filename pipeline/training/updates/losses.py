"""The losses update rules are made of, as pure functions of tensors (and, for the penalties, a critic)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PIXEL_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "bce": F.binary_cross_entropy}


def pixel_loss(name: str, prediction: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """A pixel loss in fp32 with autocast off: under bf16 autocast, CUDA refuses binary cross-entropy on
    probabilities, and sums over many pixels lose precision."""
    with torch.autocast(prediction.device.type, enabled=False):
        return PIXEL_LOSSES[name](prediction.float(), target.float(), reduction=reduction)


def variational_terms(output: Any, target: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """A VAE's per-image reconstruction loss (summed over pixels) and KL(q(z|x) ‖ N(0, I)), batch means."""
    count = len(target)
    reconstruction = pixel_loss(loss, output.image, target, reduction="sum") / count
    mean, logvar = output.mean.float(), output.logvar.float()
    return reconstruction, -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp()) / count


def towards(score: Tensor, label: float) -> Tensor:
    """Cross-entropy of a critic's logits towards `label` (1 real, 0 fake, in between smoothed), in fp32."""
    score = score.float()
    return F.binary_cross_entropy_with_logits(score, torch.full_like(score, label))


def critic_cross_entropy(real_score: Tensor, fake_score: Tensor, real_label: float = 1.0) -> Tensor:
    """A logit critic's loss: real scores towards `real_label`, fake ones towards 0."""
    return towards(real_score, real_label) + towards(fake_score, 0.0)


def called_real(score: Tensor) -> Tensor:
    """The non-saturating generator loss: the critic's logits for fakes towards real."""
    return towards(score, 1.0)


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP's (‖∇ critic(x̂)‖ − 1)², averaged over x̂ drawn uniformly on lines between real and fake images."""
    weight = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)  # (B, 1, 1, 1)
    mixed = (weight * real + (1 - weight) * fake).requires_grad_(True)
    (gradient,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (gradient.flatten(1).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(real_score: Tensor, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018) without its weight: mean ‖∇ critic(real)‖², `real` requiring grad."""
    (gradient,) = torch.autograd.grad(real_score.sum(), real, create_graph=True)
    return gradient.flatten(1).pow(2).sum(1).mean()


def kl_per_unit(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z|x) ‖ N(0, I)) averaged over latent units and images, as the Ambient seed took it."""
    mean, logvar = mean.float(), logvar.float()
    return -0.5 * torch.mean(1 + logvar - mean.pow(2) - logvar.exp())
