"""A VAE whose decoder is also a WGAN-GP generator: the β-VAE objective and a Wasserstein critic, composed."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from pipeline.schema import Fraction, NonNegative, Positive, Size
from pipeline.tasks.batch import Batch
from pipeline.training.updates.base import build_optimizer, frozen, noise, step
from pipeline.training.updates.losses import variational_terms
from pipeline.training.updates.wasserstein import AlternatingRule, Alternation, WassersteinCritic


class VAEWassersteinUpdate(AlternatingRule):
    """A VAE whose decoder is also a WGAN-GP generator.

    The critic learns to score real images above both reconstructions and prior samples (a coin flip per
    image picks which one the gradient penalty mixes with). The encoder and decoder minimise
        reconstruction + β·KL + feature_weight·‖critic features(x) − critic features(x̃)‖²
        − adversarial_weight · mean critic score of (reconstructions, prior samples),
    every `critic_steps` critic steps. The reconstruction is a pixel loss summed over pixels per image, as
    the VAE's; the feature term is VAE-GAN's "learned similarity", summed over features per image.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: Positive = 1e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.9),
        critic_steps: Size = 1,
        penalty: NonNegative = 10.0,
        beta: NonNegative = 1.0,
        loss: Literal["mse", "l1", "bce"] = "bce",
        adversarial_weight: NonNegative = 1.0,
        feature_weight: NonNegative = 0.0,
    ) -> None:
        if penalty <= 0:
            raise ValueError(f"penalty must be above 0 (the critic has no other Lipschitz constraint), got {penalty}")
        self.model, self.turns = model, Alternation(critic_steps)
        self.beta, self.loss = beta, loss
        self.adversarial_weight, self.feature_weight = adversarial_weight, feature_weight
        autoencoder = [p for name, p in model.named_parameters() if not name.startswith("critic.")]
        self.optimizer_generator = build_optimizer(autoencoder, lr=lr, betas=betas)
        critic_optimizer = build_optimizer(model.critic.parameters(), lr=lr, betas=betas)
        self.critic = WassersteinCritic(model.critic, critic_optimizer, penalty, clip=0.0)
        self.optimizers = {"generator": self.optimizer_generator, "critic": critic_optimizer}

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        real, count = batch.target, len(batch.input)  # under `denoise` the critic must see clean images as real
        generator_turn = self.turns.generator_turn()
        with torch.set_grad_enabled(generator_turn):
            output = self.model(batch.input)
            prior = self.model.decode(noise(self.model, count, real.device))
        pick = torch.rand(count, 1, 1, 1, device=real.device) < 0.5
        fake = torch.where(pick, output.image, prior).detach()
        loss_critic, distance = self.critic.step(real, fake)
        if generator_turn:
            reconstruction, kl = variational_terms(output, batch.target, self.loss)
            critic = self.model.critic
            with frozen(critic):
                adversarial = -0.5 * (critic(output.image).float().mean() + critic(prior).float().mean())
                loss = reconstruction + self.beta * kl + self.adversarial_weight * adversarial
                if self.feature_weight:
                    difference = critic.features(output.image) - critic.features(real).detach()
                    loss = loss + self.feature_weight * difference.float().pow(2).sum() / count
                step(self.optimizer_generator, loss)
            parts = {"loss_generator": loss, "reconstruction": reconstruction, "kl": kl, "adversarial": adversarial}
            self.turns.generator_losses = {name: value.detach() for name, value in parts.items()}
        return self.turns.done({"loss_critic": loss_critic, "wasserstein": distance})
