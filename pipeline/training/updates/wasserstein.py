"""WGAN: a critic estimating the Wasserstein-1 distance under a Lipschitz constraint, and a generator stepping once
every few critic steps. `WassersteinCritic` and `Alternation` are the pieces the VAE-WGAN hybrid shares."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from pipeline.schema import Decay, Fraction, NonNegative, Positive, Size
from pipeline.tasks.batch import Batch
from pipeline.training.updates.base import UpdateRule, build_optimizer, frozen, noise, step
from pipeline.training.updates.losses import gradient_penalty


class WassersteinCritic:
    """The critic's half: maximise mean score(real) − mean score(fake), kept 1-Lipschitz by a gradient penalty
    (`penalty`, WGAN-GP) or by clipping every weight to ±clip after each step (the original WGAN)."""

    def __init__(self, critic: nn.Module, optimizer: torch.optim.Optimizer, penalty: float, clip: float) -> None:
        self.critic, self.optimizer, self.penalty, self.clip = critic, optimizer, penalty, clip

    def step(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """One update on detached fakes; returns its loss and the Wasserstein estimate, detached."""
        distance = self.critic(real).float().mean() - self.critic(fake).float().mean()
        loss = -distance
        if self.penalty:
            loss = loss + self.penalty * gradient_penalty(self.critic, real, fake)
        step(self.optimizer, loss)
        if self.clip:
            with torch.no_grad():
                for parameter in self.critic.parameters():
                    parameter.clamp_(-self.clip, self.clip)
        return loss.detach(), distance.detach()


class Alternation:
    """Whose turn it is: the generator steps on every `critic_steps`-th call; its latest losses are reported on
    the calls in between. Saved in checkpoints, so a resumed run keeps the rhythm."""

    def __init__(self, critic_steps: int) -> None:
        if critic_steps < 1:
            raise ValueError(f"critic_steps must be at least 1, got {critic_steps}")
        self.critic_steps, self.calls = critic_steps, 0
        self.generator_losses: dict[str, Tensor] = {}

    def generator_turn(self) -> bool:
        return self.calls % self.critic_steps == 0

    def done(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        """End the call: `losses` (the critic's) with the latest generator losses."""
        self.calls += 1
        return {**losses, **self.generator_losses}

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "generator_losses": self.generator_losses}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.calls = state["calls"]
        self.generator_losses = {name: value.to(device) for name, value in state["generator_losses"].items()}


class AlternatingRule(UpdateRule):
    """A rule whose generator steps on `self.turns`' schedule: its checkpoint holds the schedule too."""

    turns: Alternation

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **self.turns.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.turns.load_state_dict(state, next(self.model.parameters()).device)


class WassersteinUpdate(AlternatingRule):
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
        self.model, self.turns = model, Alternation(critic_steps)
        self.optimizer_generator = build_optimizer(model.generator.parameters(), optimizer, lr=lr, betas=betas)
        critic_optimizer = build_optimizer(model.critic.parameters(), optimizer, lr=lr, betas=betas)
        self.critic = WassersteinCritic(model.critic, critic_optimizer, penalty, clip)
        self.optimizers = {"generator": self.optimizer_generator, "critic": critic_optimizer}
        self.keep_average(model.generator, average)

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        real = batch.input
        with torch.no_grad():
            fake = self.model.generator(noise(self.model, len(real), real.device))
        loss_critic, distance = self.critic.step(real, fake)
        if self.turns.generator_turn():
            fake = self.model.generator(noise(self.model, len(real), real.device))
            with frozen(self.model.critic):
                loss = -self.model.critic(fake).float().mean()
                step(self.optimizer_generator, loss)
            self.update_average()
            self.turns.generator_losses = {"loss_generator": loss.detach()}
        return self.turns.done({"loss_critic": loss_critic, "wasserstein": distance})
