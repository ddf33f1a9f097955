"""The non-saturating GAN (DCGAN's objective), optionally with R1 and AmbientGAN's measured fakes."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from pipeline.schema import Decay, Fraction, NonNegative, Positive, Size
from pipeline.tasks.batch import Batch
from pipeline.training.updates.base import UpdateRule, build_optimizer, frozen, noise, step
from pipeline.training.updates.losses import called_real, critic_cross_entropy, r1_penalty


class AdversarialUpdate(UpdateRule):
    """The non-saturating GAN of DCGAN: a critic step on real against generated images (cross-entropy on
    logits), then a generator step on fresh noise that asks the critic to call its images real.

    `real_label` below 1 is one-sided label smoothing (the seed's DCGAN used 0.9). `penalty` above 0 adds
    R1 (Mescheder et al. 2018): penalty/2 · mean ‖∇ critic(real)‖², which keeps the critic's input gradients
    small and smooth; without it a perceptron critic's gradients push the generator towards pixel noise.

    When the batch carries its forward model (`restore`, not supervised), the real images are measurements
    and every generated image is measured with a fresh θ before the critic sees it: AmbientGAN.

    `average` above 0 keeps a moving average of the generator's weights, the generator once training ends
    (`UpdateRule.keep_average`). `generator_steps` generator steps follow each critic step, each on fresh
    noise (two in AmbientGAN's CelebA runs): a critic that wins too easily leaves the generator no gradient.
    """

    learns_from_measurements: ClassVar[bool] = True

    def __init__(
        self,
        model: nn.Module,
        *,
        lr_generator: Positive = 2e-4,
        lr_critic: Positive = 2e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.999),
        real_label: Fraction = 1.0,
        penalty: NonNegative = 0.0,
        average: Decay = 0.0,
        generator_steps: Size = 1,
    ) -> None:
        if penalty < 0:
            raise ValueError(f"penalty must be 0 (off) or above, got {penalty}")
        if not 0 < real_label <= 1:
            raise ValueError(f"real_label must be in (0, 1], got {real_label}")
        self.model = model
        self.real_label, self.penalty, self.generator_steps = real_label, penalty, generator_steps
        self.optimizer_generator = build_optimizer(model.generator.parameters(), lr=lr_generator, betas=betas)
        self.optimizer_critic = build_optimizer(model.critic.parameters(), lr=lr_critic, betas=betas)
        self.optimizers = {"generator": self.optimizer_generator, "critic": self.optimizer_critic}
        self.keep_average(model.generator, average)

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        real = batch.input.detach().requires_grad_(self.penalty > 0)
        seen = batch.measure or (
            lambda images: images
        )  # AmbientGAN: the critic judges measured fakes against measurements
        fake = seen(self.model.generator(noise(self.model, len(real), real.device)))
        real_score, fake_score = self.model.critic(real).float(), self.model.critic(fake.detach()).float()
        loss_critic = critic_cross_entropy(real_score, fake_score, self.real_label)
        if self.penalty:
            loss_critic = loss_critic + self.penalty / 2 * r1_penalty(real_score, real)
        step(self.optimizer_critic, loss_critic)
        with frozen(self.model.critic):
            for _ in range(self.generator_steps):
                fake = seen(self.model.generator(noise(self.model, len(real), real.device)))
                loss_generator = called_real(self.model.critic(fake).float())
                step(self.optimizer_generator, loss_generator)
                self.update_average()
        return {
            "loss_critic": loss_critic.detach(),
            "loss_generator": loss_generator.detach(),
            "real_probability": real_score.detach().sigmoid().mean(),
            "fake_probability": fake_score.detach().sigmoid().mean(),
        }
