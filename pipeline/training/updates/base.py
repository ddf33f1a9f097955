"""What every update rule shares: its optimizers by name (saved and restored for checkpoints), an optional moving
average of a generator's weights, and the one factory every optimizer is built by."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from pipeline.tasks.batch import Batch
from pipeline.training import distributed

Optimizer = Literal["adam", "rmsprop", "rmsprop_tf"]


def build_optimizer(
    parameters: Iterable[nn.Parameter],
    kind: Optimizer = "adam",
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Every optimizer of every rule, from its `update:` settings. `rmsprop` is PyTorch's; `rmsprop_tf` is
    RMSprop with TensorFlow's decay 0.9 and ε 1e-10 (the Ambient seed's)."""
    if kind == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr)
    if kind == "rmsprop_tf":
        return torch.optim.RMSprop(parameters, lr=lr, alpha=0.9, eps=1e-10)
    return torch.optim.Adam(parameters, lr=lr, betas=betas, weight_decay=weight_decay)


def step(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    apply(optimizer)


def apply(optimizer: torch.optim.Optimizer) -> None:
    """Step `optimizer` on its gradients averaged over the ranks (`distributed`; as they are in one process):
    every optimizer step of every rule goes through here."""
    distributed.average_gradients(parameter for group in optimizer.param_groups for parameter in group["params"])
    optimizer.step()


def noise(model: nn.Module, count: int, device: torch.device) -> Tensor:
    return torch.randn(count, model.latent_dim, device=device)  # (B, latent_dim) from torch's global stream


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
    """One training scheme, called once per batch: it owns its optimizers (`self.optimizers`, set by every
    rule's constructor) and returns its losses as detached tensors; the loop knows nothing of what is inside."""

    learns_from_measurements: ClassVar[bool] = False  # whether it trains on batches without a clean target
    optimizers: dict[str, torch.optim.Optimizer]  # by name, as checkpoints store them
    average: AveragedModel | None = None  # the moving average of `averaged`, see `keep_average`
    averaged: nn.Module  # the module whose weights are averaged (a generator)

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        raise NotImplementedError

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
