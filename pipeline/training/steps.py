"""Update rules: one object per training scheme, called once per batch. Each owns its optimizers and
returns its losses as detached tensors; the loop knows nothing of what is inside.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from pipeline.config import Decay, Fraction, NonNegative, Positive, Size
from pipeline.tasks.batch import Batch

PIXEL_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "bce": F.binary_cross_entropy}


def pixel_loss(name: str, prediction: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """A pixel loss in fp32 with autocast off: under bf16 autocast, CUDA refuses binary cross-entropy on
    probabilities, and sums over many pixels lose precision."""
    with torch.autocast(prediction.device.type, enabled=False):
        return PIXEL_LOSSES[name](prediction.float(), target.float(), reduction=reduction)


def step(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


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


def critic_cross_entropy(real_score: Tensor, fake_score: Tensor, real_label: Fraction = 1.0) -> Tensor:
    """A logit critic's loss: real scores towards `real_label`, fake ones towards 0."""
    return towards(real_score, real_label) + towards(fake_score, 0.0)


def called_real(score: Tensor) -> Tensor:
    """The non-saturating generator loss: the critic's logits for fakes towards real."""
    return towards(score, 1.0)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Leave `module`'s weight gradients uncomputed (the critic during a generator step): the critic's own
    step would discard them, and skipping them saves a tenth of a GAN step. Input gradients still flow."""
    parameters = [p for p in module.parameters() if p.requires_grad]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:  # only those it froze
            parameter.requires_grad_(True)


class UpdateRule:
    """What every update rule shares: its optimizers by name, saved and restored for checkpoints, and an
    optional moving average of the generator's weights that becomes the generator when training ends."""

    optimizers: dict[str, torch.optim.Optimizer] = {}
    average: AveragedModel | None = None  # the moving average of `averaged`, see `keep_average`
    averaged: nn.Module  # the module whose weights are averaged (a generator)
    learns_from_measurements: ClassVar[bool] = False  # whether it trains on batches without a clean target

    def keep_average(self, module: nn.Module, decay: float) -> None:
        """Keep an exponential moving average of `module`'s weights (`decay` per `update_average` call; 0 is
        off), which `finish` puts in place of the weights. From step to step a GAN generator circles a good
        solution rather than settling on it; the average sits closer (Yazıcı et al. 2019), and its samples
        lose the per-pixel noise a perceptron generator shows. About 1/(1 − decay) recent steps count.
        Buffers are averaged too: batch norm's running statistics, sensibly; its integer batch counter
        stays at its first value, which batch norm with a fixed momentum never reads."""
        if not 0 <= decay < 1:
            raise ValueError(f"average must be in [0, 1) (0 is off), got {decay}")
        if decay:
            self.average = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
            self.averaged = module

    def update_average(self) -> None:
        if self.average is not None:
            self.average.update_parameters(self.averaged)

    def finish(self) -> None:
        """Called once after the last step: the averaged weights, if kept, replace the trained ones."""
        if self.average is not None:
            self.averaged.load_state_dict(self.average.module.state_dict())

    def state_dict(self) -> dict[str, Any]:
        state = {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()}
        return state if self.average is None else {**state, "average": self.average.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])
        if self.average is not None:
            self.average.load_state_dict(state["average"])


class ReconstructionUpdate(UpdateRule):
    """Minimise a pixel loss between the model's image and the target: autoencoders, denoisers, colourisers."""

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: Positive = 1e-3,
        betas: tuple[Fraction, Fraction] = (0.9, 0.999),
        weight_decay: NonNegative = 0.0,
        loss: Literal["mse", "l1", "bce"] = "mse",
    ) -> None:
        self.model = model
        self.loss = loss
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
        self.optimizers = {"optimizer": self.optimizer}

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        output = self.model(batch.input)
        loss = pixel_loss(self.loss, output.image, batch.target)
        step(self.optimizer, loss)
        return {"loss": loss.detach()}


class VariationalUpdate(ReconstructionUpdate):
    """The β-VAE objective: per-image reconstruction loss (summed over pixels) + β·KL(q(z|x) ‖ N(0, I))."""

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: Positive = 1e-3,
        betas: tuple[Fraction, Fraction] = (0.9, 0.999),
        weight_decay: NonNegative = 0.0,
        loss: Literal["mse", "l1", "bce"] = "bce",
        beta: NonNegative = 1.0,
    ) -> None:
        super().__init__(model, lr=lr, betas=betas, weight_decay=weight_decay, loss=loss)
        self.beta = beta

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        output = self.model(batch.input)
        reconstruction, kl = variational_terms(output, batch.target, self.loss)
        loss = reconstruction + self.beta * kl
        step(self.optimizer, loss)
        return {"loss": loss.detach(), "reconstruction": reconstruction.detach(), "kl": kl.detach()}


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP's (‖∇ critic(x̂)‖ − 1)², averaged over x̂ drawn uniformly on lines between real and fake images."""
    weight = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)  # (B, 1, 1, 1)
    mixed = (weight * real + (1 - weight) * fake).requires_grad_(True)
    (gradient,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (gradient.flatten(1).norm(dim=1) - 1).pow(2).mean()


def noise(model: nn.Module, count: int, device: torch.device) -> Tensor:
    return torch.randn(count, model.latent_dim, device=device)  # (B, latent_dim) from torch's global stream


class AdversarialUpdate(UpdateRule):
    """The non-saturating GAN of DCGAN: a critic step on real against generated images (cross-entropy on
    logits), then a generator step on fresh noise that asks the critic to call its images real.

    `real_label` below 1 is one-sided label smoothing (the seed's DCGAN used 0.9). `penalty` above 0 adds
    R1 (Mescheder et al. 2018): penalty/2 · mean ‖∇ critic(real)‖², which keeps the critic's input gradients
    small and smooth; without it a perceptron critic's gradients push the generator towards pixel noise.

    When the batch carries its forward model (`restore`, not supervised), the real images are measurements
    and every generated image is measured with a fresh θ before the critic sees it: AmbientGAN.

    `average` above 0 keeps a moving average of the generator's weights, the generator once training ends
    (`UpdateRule.keep_average`).
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
    ) -> None:
        if penalty < 0:
            raise ValueError(f"penalty must be 0 (off) or above, got {penalty}")
        if not 0 < real_label <= 1:
            raise ValueError(f"real_label must be in (0, 1], got {real_label}")
        self.model = model
        self.real_label, self.penalty = real_label, penalty
        self.optimizer_generator = torch.optim.Adam(model.generator.parameters(), lr=lr_generator, betas=betas)
        self.optimizer_critic = torch.optim.Adam(model.critic.parameters(), lr=lr_critic, betas=betas)
        self.optimizers = {"generator": self.optimizer_generator, "critic": self.optimizer_critic}
        self.keep_average(model.generator, average)

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        real = batch.input.detach().requires_grad_(self.penalty > 0)
        seen = batch.measure or (lambda images: images)  # AmbientGAN: the critic judges measured fakes against measurements
        fake = seen(self.model.generator(noise(self.model, len(real), real.device)))
        real_score, fake_score = self.model.critic(real).float(), self.model.critic(fake.detach()).float()
        loss_critic = critic_cross_entropy(real_score, fake_score, self.real_label)
        if self.penalty:
            (gradient,) = torch.autograd.grad(real_score.sum(), real, create_graph=True)
            loss_critic = loss_critic + self.penalty / 2 * gradient.flatten(1).pow(2).sum(1).mean()
        step(self.optimizer_critic, loss_critic)
        with frozen(self.model.critic):
            score = self.model.critic(seen(self.model.generator(noise(self.model, len(real), real.device)))).float()
            loss_generator = called_real(score)
            step(self.optimizer_generator, loss_generator)
        self.update_average()
        return {
            "loss_critic": loss_critic.detach(), "loss_generator": loss_generator.detach(),
            "real_probability": real_score.detach().sigmoid().mean(), "fake_probability": fake_score.detach().sigmoid().mean(),
        }  # fmt: skip


class WassersteinUpdate(UpdateRule):
    """WGAN: the critic maximises mean score(real) − mean score(fake), a Wasserstein-1 estimate while it stays
    1-Lipschitz; the generator steps once every `critic_steps` critic steps to raise the score of its images.

    The Lipschitz constraint is a gradient penalty (`penalty`, WGAN-GP) or, with `penalty: 0` and `clip`
    above 0, clipping every critic weight to ±clip after each critic step (the original WGAN, as the seed
    trained it, with RMSprop). `average` is the adversarial rule's.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: Positive = 1e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.9),
        optimizer: Literal["adam", "rmsprop"] = "adam",
        critic_steps: Size = 5,
        penalty: NonNegative = 10.0,
        clip: NonNegative = 0.0,
        average: Decay = 0.0,
    ) -> None:
        if penalty < 0 or clip < 0:
            raise ValueError(f"penalty and clip cannot be negative (got penalty {penalty}, clip {clip})")
        if (penalty > 0) == (clip > 0):
            raise ValueError(f"set exactly one of penalty and clip above 0 (got penalty {penalty}, clip {clip})")
        if critic_steps < 1:
            raise ValueError(f"critic_steps must be at least 1, got {critic_steps}")
        self.model = model
        self.critic_steps, self.penalty, self.clip = critic_steps, penalty, clip
        def make(parameters: Any) -> torch.optim.Optimizer:
            if optimizer == "rmsprop":
                return torch.optim.RMSprop(parameters, lr=lr)
            return torch.optim.Adam(parameters, lr=lr, betas=betas)

        self.optimizer_generator = make(self.generator_parameters())
        self.optimizer_critic = make(model.critic.parameters())
        self.optimizers = {"generator": self.optimizer_generator, "critic": self.optimizer_critic}
        self.calls = 0
        self.generator_losses: dict[str, Tensor] = {}  # the latest generator step's losses, reported until the next
        if average:  # guarded: the VAE-WGAN's model has no `generator` to name, and never averages
            self.keep_average(model.generator, average)

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.model.generator.parameters())

    def critic_step(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """One critic update on detached fakes; returns its loss and the Wasserstein estimate."""
        distance = self.model.critic(real).float().mean() - self.model.critic(fake).float().mean()
        loss = -distance
        if self.penalty:
            loss = loss + self.penalty * gradient_penalty(self.model.critic, real, fake)
        step(self.optimizer_critic, loss)
        if self.clip:
            with torch.no_grad():
                for parameter in self.model.critic.parameters():
                    parameter.clamp_(-self.clip, self.clip)
        return loss.detach(), distance.detach()

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        real = batch.input
        with torch.no_grad():
            fake = self.model.generator(noise(self.model, len(real), real.device))
        loss_critic, distance = self.critic_step(real, fake)
        if self.calls % self.critic_steps == 0:
            fake = self.model.generator(noise(self.model, len(real), real.device))
            with frozen(self.model.critic):
                loss = -self.model.critic(fake).float().mean()
                step(self.optimizer_generator, loss)
            self.update_average()
            self.generator_losses = {"loss_generator": loss.detach()}
        self.calls += 1
        return {"loss_critic": loss_critic, "wasserstein": distance, **self.generator_losses}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "calls": self.calls, "generator_losses": self.generator_losses}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        device = next(self.model.parameters()).device
        self.calls = state["calls"]
        self.generator_losses = {name: value.to(device) for name, value in state["generator_losses"].items()}


class VAEWassersteinUpdate(WassersteinUpdate):
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
        super().__init__(model, lr=lr, betas=betas, critic_steps=critic_steps, penalty=penalty)
        self.beta, self.loss = beta, loss
        self.adversarial_weight, self.feature_weight = adversarial_weight, feature_weight

    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.model.named_parameters() if not name.startswith("critic.")]

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        real, count = batch.target, len(batch.input)  # under `denoise` the critic must see clean images as real
        generator_turn = self.calls % self.critic_steps == 0
        with torch.set_grad_enabled(generator_turn):
            output = self.model(batch.input)
            prior = self.model.decode(noise(self.model, count, real.device))
        pick = torch.rand(count, 1, 1, 1, device=real.device) < 0.5
        fake = torch.where(pick, output.image, prior).detach()
        loss_critic, distance = self.critic_step(real, fake)
        if generator_turn:
            reconstruction, kl = variational_terms(output, batch.target, self.loss)
            with frozen(self.model.critic):
                adversarial = -0.5 * (self.model.critic(output.image).float().mean() + self.model.critic(prior).float().mean())
                loss = reconstruction + self.beta * kl + self.adversarial_weight * adversarial
                if self.feature_weight:
                    critic_features = self.model.critic.features
                    similarity = (critic_features(output.image) - critic_features(real).detach()).float().pow(2).sum() / count
                    loss = loss + self.feature_weight * similarity
                step(self.optimizer_generator, loss)
            parts = {"loss_generator": loss, "reconstruction": reconstruction, "kl": kl, "adversarial": adversarial}
            self.generator_losses = {name: value.detach() for name, value in parts.items()}
        self.calls += 1
        return {"loss_critic": loss_critic, "wasserstein": distance, **self.generator_losses}


class ConditionalAdversarialUpdate(UpdateRule):
    """pix2pix: a conditional GAN plus a weighted pixel term.

    The critic sees (input, target) as real and (input, generator(input)) as fake, patch by patch, with
    cross-entropy on logits halved as pix2pix does to slow it against the generator. The generator then
    minimises cross-entropy towards "real" + `l1_weight` · mean |output − target| (pix2pix: 100). No noise
    input: as in pix2pix, the generator's dropout is its only source of randomness.
    """

    def __init__(
        self, model: nn.Module, *, lr: Positive = 2e-4, betas: tuple[Fraction, Fraction] = (0.5, 0.999), l1_weight: float = 100.0
    ) -> None:
        if l1_weight < 0:
            raise ValueError(f"l1_weight cannot be negative, got {l1_weight}")
        self.model, self.l1_weight = model, l1_weight
        self.optimizer_generator = torch.optim.Adam(model.generator.parameters(), lr=lr, betas=betas)
        self.optimizer_critic = torch.optim.Adam(model.critic.parameters(), lr=lr, betas=betas)
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
    3. encoder and decoder: `reconstruction_weight`·MSE(decoder(encoder(x, c), c), x) +
       `center_weight`·mean z² (the seed: 1 and 0.001), which pulls the latent towards 0, the centre of the prior the decoder
       is trained on in step 2.
    """

    def __init__(
        self, model: nn.Module, *, lr: Positive = 1e-4, betas: tuple[Fraction, Fraction] = (0.5, 0.999),
        reconstruction_weight: NonNegative = 1.0, center_weight: NonNegative = 1e-3,
    ) -> None:  # fmt: skip
        if reconstruction_weight <= 0 or center_weight < 0:
            raise ValueError(f"reconstruction_weight must be above 0 and center_weight 0 or above "
                             f"(got {reconstruction_weight}, {center_weight})")  # fmt: skip
        self.model = model
        self.reconstruction_weight, self.center_weight = reconstruction_weight, center_weight
        self.optimizer_critic = torch.optim.Adam(model.critic.parameters(), lr=lr, betas=betas)
        self.optimizer_decoder = torch.optim.Adam(model.decoder.parameters(), lr=lr, betas=betas)
        autoencoder = [*model.encoder.parameters(), *model.decoder.parameters()]
        self.optimizer_autoencoder = torch.optim.Adam(autoencoder, lr=lr, betas=betas)
        self.optimizers = {"critic": self.optimizer_critic, "decoder": self.optimizer_decoder, "autoencoder": self.optimizer_autoencoder}

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        real, condition = batch.input, batch.condition
        fake = self.model.decode(noise(self.model, len(real), real.device), condition)
        real_score = self.model.critic(real, condition).float()
        fake_score = self.model.critic(fake.detach(), condition).float()
        loss_critic = critic_cross_entropy(real_score, fake_score)
        step(self.optimizer_critic, loss_critic)
        with frozen(self.model.critic):
            score = self.model.critic(fake, condition).float()
            loss_generator = called_real(score)
            step(self.optimizer_decoder, loss_generator)
        z = self.model.encode(real, condition)
        reconstruction = pixel_loss("mse", self.model.decode(z, condition), batch.target)
        center = z.float().pow(2).mean()
        step(self.optimizer_autoencoder, self.reconstruction_weight * reconstruction + self.center_weight * center)
        return {
            "loss_critic": loss_critic.detach(), "loss_generator": loss_generator.detach(),
            "reconstruction": reconstruction.detach(), "center": center.detach(),
        }  # fmt: skip


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
    frozen once lr falls to 5e-5. TensorFlow starts the running mean square at 1 and PyTorch at 0, so the first
    steps here are larger, which over the study's short schedules learns faster (see the README). The seed ran the three updates one after the other, each on a fresh pass;
    here they share one forward pass (as Larsen's VAE-GAN code did), which costs a third less.
    """

    learns_from_measurements: ClassVar[bool] = True

    def __init__(
        self, model: nn.Module, *, lr: Positive = 3e-4, pixel_weight: NonNegative = 10.0, feature_weight: NonNegative = 1.0,
        decoder_weight: NonNegative = 1e-6, kl_weight: NonNegative = 1.0, real_label: Fraction = 0.75, generator_label: Fraction = 0.375,
        pixel_term: Literal["unmeasured", "measured"] = "unmeasured",
    ) -> None:  # fmt: skip
        if min(pixel_weight, feature_weight, decoder_weight, kl_weight) < 0:
            raise ValueError("pixel_weight, feature_weight, decoder_weight and kl_weight cannot be negative")
        if not (0 < real_label <= 1 and 0 < generator_label <= 1):
            raise ValueError(f"real_label and generator_label must be in (0, 1], got {real_label} and {generator_label}")
        self.model, self.lr = model, lr
        self.pixel_weight, self.feature_weight, self.decoder_weight = pixel_weight, feature_weight, decoder_weight
        self.kl_weight = kl_weight
        self.real_label, self.generator_label, self.pixel_term = real_label, generator_label, pixel_term
        self.parts = {"encoder": model.encoder, "decoder": model.decoder, "critic": model.critic}
        self.optimizers = {name: torch.optim.RMSprop(part.parameters(), lr=lr, alpha=0.9, eps=1e-10) for name, part in self.parts.items()}
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
        mean, logvar = output.mean.float(), output.logvar.float()
        kl = -0.5 * torch.mean(1 + logvar - mean.pow(2) - logvar.exp())
        losses = {
            "encoder": self.kl_weight * kl + similarity,
            "decoder": towards(prior_score, self.generator_label) + towards(reconstruction_score, self.generator_label)
            + self.decoder_weight * similarity,
            "critic": towards(real_score, self.real_label) + towards(prior_score, 0.0) + towards(reconstruction_score, 0.0),
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
            optimizer.step()
        if rate > 5e-5:
            self.steps += 1
        return {
            "loss_encoder": losses["encoder"].detach(), "loss_decoder": losses["decoder"].detach(),
            "loss_critic": losses["critic"].detach(), "pixel": pixel.detach(), "feature": feature.detach(), "kl": kl.detach(),
            "real_probability": real_score.detach().sigmoid().mean(), "fake_probability": prior_score.detach().sigmoid().mean(),
        }  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.steps = state["steps"]


class ClassificationUpdate(UpdateRule):
    """Cross-entropy on the batch's labels, Adam; reports the loss and the batch accuracy."""

    def __init__(self, model: nn.Module, *, lr: Positive = 1e-3, weight_decay: NonNegative = 0.0) -> None:
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.optimizers = {"optimizer": self.optimizer}

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        logits = self.model(batch.input).logits.float()
        loss = F.cross_entropy(logits, batch.label)
        step(self.optimizer, loss)
        return {"loss": loss.detach(), "accuracy": (logits.detach().argmax(1) == batch.label).float().mean()}


class PrincipalComponentsFit(UpdateRule):
    """Closed-form PCA (scikit-learn, full SVD) on every training image seen so far; no optimizer.

    Each batch is added to the pool and the fit is redone, so after one epoch the components are those of
    the whole training split. Further epochs add the same images again, which leaves the fit unchanged.
    There is no optimizer state to checkpoint: the fit lives in the model's buffers, and checkpoints are
    taken after whole epochs.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.pool: list[np.ndarray] = []

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        from sklearn.decomposition import PCA  # imported here: scikit-learn costs every other stage half a second

        self.pool.append(batch.input.flatten(1).double().cpu().numpy())

        pixels = np.concatenate(self.pool)  # (N, D)
        kept = min(len(pixels), pixels.shape[1], len(self.model.components))
        pca = PCA(n_components=kept, svd_solver="full").fit(pixels)
        device = self.model.mean.device
        self.model.mean.copy_(torch.from_numpy(pca.mean_).to(device))
        self.model.components.zero_()
        self.model.components[:kept] = torch.from_numpy(pca.components_).to(device)
        self.model.explained_variance_ratio.zero_()
        self.model.explained_variance_ratio[:kept] = torch.from_numpy(pca.explained_variance_ratio_).to(device)
        with torch.no_grad():
            loss = F.mse_loss(self.model(batch.input).image, batch.target)
        return {"loss": loss}


UPDATE_RULES: dict[str, type] = {
    "reconstruction": ReconstructionUpdate,
    "variational": VariationalUpdate,
    "principal_components": PrincipalComponentsFit,
    "adversarial": AdversarialUpdate,
    "wasserstein": WassersteinUpdate,
    "vae_wasserstein": VAEWassersteinUpdate,
    "conditional_adversarial": ConditionalAdversarialUpdate,
    "conditional_aegan": ConditionalAEGANUpdate,
    "ambient_vaegan": AmbientVAEGANUpdate,
}


def update_rule_for(model_class: type[nn.Module]) -> type:
    """The update rule a model family trains with (its `update_rule` class attribute)."""
    return UPDATE_RULES[model_class.update_rule]
