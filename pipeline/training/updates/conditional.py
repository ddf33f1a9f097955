"""Conditional adversarial rules: pix2pix, and the label-conditioned AE-GAN's three updates per batch."""

from __future__ import annotations

from torch import Tensor, nn

from pipeline.schema import Fraction, NonNegative, Positive
from pipeline.tasks.batch import Batch
from pipeline.training.updates.base import UpdateRule, build_optimizer, frozen, noise, step
from pipeline.training.updates.losses import called_real, critic_cross_entropy, pixel_loss


class ConditionalAdversarialUpdate(UpdateRule):
    """pix2pix: a conditional GAN plus a weighted pixel term.

    The critic sees (input, target) as real and (input, generator(input)) as fake, patch by patch, with
    cross-entropy on logits halved as pix2pix does to slow it against the generator. The generator then
    minimises cross-entropy towards "real" + `l1_weight` · mean |output − target| (pix2pix: 100). No noise
    input: as in pix2pix, the generator's dropout is its only source of randomness.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: Positive = 2e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.999),
        l1_weight: NonNegative = 100.0,
    ) -> None:
        self.model, self.l1_weight = model, l1_weight
        self.optimizer_generator = build_optimizer(model.generator.parameters(), lr=lr, betas=betas)
        self.optimizer_critic = build_optimizer(model.critic.parameters(), lr=lr, betas=betas)
        self.optimizers = {"generator": self.optimizer_generator, "critic": self.optimizer_critic}

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        condition, target = batch.input, batch.target
        fake = self.model.generator(condition).image
        real_score = self.model.critic(condition, target).float()
        fake_score = self.model.critic(condition, fake.detach()).float()
        loss_critic = 0.5 * critic_cross_entropy(real_score, fake_score)
        step(self.optimizer_critic, loss_critic)
        with frozen(self.model.critic):
            score = self.model.critic(condition, fake).float()
            adversarial = called_real(score)
            l1 = pixel_loss("l1", fake, target)
            step(self.optimizer_generator, adversarial + self.l1_weight * l1)
        return {"loss_critic": loss_critic.detach(), "adversarial": adversarial.detach(), "l1": l1.detach()}


class ConditionalAEGANUpdate(UpdateRule):
    """The seed's three updates per batch, each with its own Adam (lr 1e-4, betas (0.5, 0.999)):

    1. critic: cross-entropy of critic(x, c) towards real and of critic(decoder(z, c), c) towards fake, with
       z ~ N(0, I) and c the batch's own conditions;
    2. decoder alone: the same fakes, cross-entropy towards real. Prior noise carries nothing about c, so
       the only way to fool a conditional critic is to draw what c says: this is what makes the decoder
       obey its condition;
    3. encoder and decoder: `reconstruction_weight`·MSE(decoder(encoder(x, c), c), x) + `center_weight`·mean z²
       (the seed: 1 and 0.001), which pulls the latent towards 0, the centre of the prior the decoder is
       trained on in step 2.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: Positive = 1e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.999),
        reconstruction_weight: NonNegative = 1.0,
        center_weight: NonNegative = 1e-3,
    ) -> None:
        if reconstruction_weight <= 0:
            raise ValueError(f"reconstruction_weight must be above 0, got {reconstruction_weight}")
        self.model = model
        self.reconstruction_weight, self.center_weight = reconstruction_weight, center_weight
        autoencoder = [*model.encoder.parameters(), *model.decoder.parameters()]
        self.optimizers = {
            "critic": build_optimizer(model.critic.parameters(), lr=lr, betas=betas),
            "decoder": build_optimizer(model.decoder.parameters(), lr=lr, betas=betas),
            "autoencoder": build_optimizer(autoencoder, lr=lr, betas=betas),
        }

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        real, condition = batch.input, batch.condition
        fake = self.model.decode(noise(self.model, len(real), real.device), condition)
        real_score = self.model.critic(real, condition).float()
        fake_score = self.model.critic(fake.detach(), condition).float()
        loss_critic = critic_cross_entropy(real_score, fake_score)
        step(self.optimizers["critic"], loss_critic)
        with frozen(self.model.critic):
            score = self.model.critic(fake, condition).float()
            loss_generator = called_real(score)
            step(self.optimizers["decoder"], loss_generator)
        z = self.model.encode(real, condition)
        reconstruction = pixel_loss("mse", self.model.decode(z, condition), batch.target)
        center = z.float().pow(2).mean()
        step(self.optimizers["autoencoder"], self.reconstruction_weight * reconstruction + self.center_weight * center)
        return {
            "loss_critic": loss_critic.detach(),
            "loss_generator": loss_generator.detach(),
            "reconstruction": reconstruction.detach(),
            "center": center.detach(),
        }
