"""The Ambient VAE-GAN's update: a VAE-GAN that learns from measurements only."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from pipeline.schema import Fraction, NonNegative, Positive
from pipeline.tasks.batch import Batch
from pipeline.training.updates.base import UpdateRule, apply, build_optimizer, noise
from pipeline.training.updates.losses import kl_per_unit, towards


class AmbientVAEGANUpdate(UpdateRule):
    """The Ambient VAE-GAN: a VAE-GAN that sees only measurements y = f_θ(x), so the decoder's images are
    measured (fresh θ each) before the discriminator or the similarity terms compare them with y.

    With x̃ = Dec(z), z ~ q(z|y), and x_p = Dec(z_p), z_p ~ N(0, I):
        critic:   BCE(D(y), 0.75) + BCE(D(f(x_p)), 0) + BCE(D(f(x̃)), 0)        (one-sided smoothing)
        similarity = α·½·mean (x̃ − y)²  +  β·½·mean (D_l(f(x̃)) − D_l(y))²     (the seed's Gaussian log-likelihoods)
        encoder:  kl_weight·KL + similarity                                        (the seed: kl_weight 1)
        decoder:  BCE(D(f(x_p)), 0.375) + BCE(D(f(x̃)), 0.375) + decoder_weight·similarity
    where D_l is the discriminator's middle convolution and KL is averaged over latent units and images, as
    the seed. `pixel_term: measured` compares f(x̃) instead of x̃ with y (the seed's gamma = 1, its README's
    algorithm). With a clean target in the batch (`supervised`) nothing is measured: y is replaced by x
    as the discriminator's real input and as the similarity terms' target, while the encoder still reads y.

    Each part has its own RMSprop (decay 0.9 and ε 1e-10 as TensorFlow's) at lr·0.98^(step/10000), the decay
    frozen once lr falls to 5e-5. TensorFlow starts the running mean square at 1 and PyTorch at 0, so the
    first steps here are larger, which over the study's short schedules learns faster (see the README). The
    seed ran the three updates one after the other, each on a fresh pass; here they share one forward pass
    (as Larsen's VAE-GAN code did), which costs a third less.
    """

    learns_from_measurements: ClassVar[bool] = True

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: Positive = 3e-4,
        pixel_weight: NonNegative = 10.0,
        feature_weight: NonNegative = 1.0,
        decoder_weight: NonNegative = 1e-6,
        kl_weight: NonNegative = 1.0,
        real_label: Fraction = 0.75,
        generator_label: Fraction = 0.375,
        pixel_term: Literal["unmeasured", "measured"] = "unmeasured",
    ) -> None:
        if not (0 < real_label <= 1 and 0 < generator_label <= 1):
            raise ValueError(
                f"real_label and generator_label must be in (0, 1], got {real_label} and {generator_label}"
            )
        self.model, self.lr = model, lr
        self.pixel_weight, self.feature_weight, self.decoder_weight = pixel_weight, feature_weight, decoder_weight
        self.kl_weight = kl_weight
        self.real_label, self.generator_label, self.pixel_term = real_label, generator_label, pixel_term
        self.parts = {"encoder": model.encoder, "decoder": model.decoder, "critic": model.critic}
        self.optimizers = {
            name: build_optimizer(part.parameters(), "rmsprop_tf", lr=lr) for name, part in self.parts.items()
        }
        self.steps = 0

    def learning_rate(self) -> float:
        """lr·0.98^(step/10000), the step counting only while that stays above 5e-5 (the seed's schedule)."""
        return max(self.lr * 0.98 ** (self.steps / 10000), min(self.lr, 5e-5))

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        measured, count = batch.input, len(batch.input)
        seen = batch.measure if batch.target is None else (lambda images: images)
        real = measured if batch.target is None else batch.target
        output = self.model(measured)
        prior = self.model.decode(noise(self.model, count, measured.device))
        critic = self.model.critic
        real_score, real_features = critic.judge(real)
        seen_reconstruction = seen(output.image)
        reconstruction_score, reconstruction_features = critic.judge(seen_reconstruction)
        prior_score = critic(seen(prior))

        estimate = output.image if self.pixel_term == "unmeasured" or batch.target is not None else seen_reconstruction
        pixel = 0.5 * (estimate.float() - real.float()).pow(2).mean()
        feature = 0.5 * (reconstruction_features.float() - real_features.float().detach()).pow(2).mean()
        similarity = self.pixel_weight * pixel + self.feature_weight * feature
        kl = kl_per_unit(output.mean, output.logvar)
        losses = {
            "encoder": self.kl_weight * kl + similarity,
            "decoder": towards(prior_score, self.generator_label)
            + towards(reconstruction_score, self.generator_label)
            + self.decoder_weight * similarity,
            "critic": towards(real_score, self.real_label)
            + towards(prior_score, 0.0)
            + towards(reconstruction_score, 0.0),
        }
        for name, loss in losses.items():  # each part's gradient of its own loss, all from the one pass
            parameters = list(self.parts[name].parameters())
            gradients = torch.autograd.grad(loss, parameters, retain_graph=name != "critic")
            for parameter, gradient in zip(parameters, gradients):
                parameter.grad = gradient
        rate = self.learning_rate()
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = rate
            apply(optimizer)
        if rate > 5e-5:
            self.steps += 1
        return {
            **{f"loss_{name}": loss.detach() for name, loss in losses.items()},
            "pixel": pixel.detach(),
            "feature": feature.detach(),
            "kl": kl.detach(),
            "real_probability": real_score.detach().sigmoid().mean(),
            "fake_probability": prior_score.detach().sigmoid().mean(),
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.steps = state["steps"]
