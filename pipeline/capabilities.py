"""What a model can do, declared in one place: evaluation, figures, reports, `aegan apply` and the config's
cross-checks ask here, never `hasattr`.

A model family declares an ability by defining its method (or, for a condition or an output range, its class
attribute); each ability is a `typing.Protocol` below, and `abilities(model)` lists a model's. What each one
earns a model in evaluation:

| ability       | declared by                     | scores                                  | figures                  |
|---------------|---------------------------------|-----------------------------------------|--------------------------|
| `Encodes`     | `encode(x[, condition])`        | linear label probe; restores by encoder | interpolation strips     |
| `Samples`     | `sample(count, generator)`      | FCD on a labelled dataset               | samples.png              |
| conditioned   | `conditioned_on = "label"`      | transfer accuracy                       | transfer_to_<label>.png  |
|               | `conditioned_on = "image"`      | colour_from_latent (colour images)      | interpolation strips     |
| `ScoresItself`| `scores()`                      | its own (PCA's explained variance)      |                          |
| `Eigenimages` | `eigenimages(count)`            | PSNR against components                 | eigenimages.png          |
| `Searchable`  | `decode(z)` and a `critic`      | with `Encodes`: restore time vs. ACSG's |                          |

Every model whose task reconstructs gets PSNR and SSIM (and its task's own scores) and grid.png. A model
without `Encodes` restores by a latent search when its task allows it; a model states the range its output
reaches with `output_range` (default [0, 1]).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Encodes(Protocol):
    def encode(self, x: torch.Tensor, *condition: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Samples(Protocol):
    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor: ...


@runtime_checkable
class ScoresItself(Protocol):
    def scores(self) -> dict[str, float]: ...


@runtime_checkable
class Eigenimages(Protocol):
    def eigenimages(self, count: int) -> torch.Tensor: ...


@runtime_checkable
class Searchable(Protocol):
    """A generator with a discriminator: what a latent search (`pipeline.evaluation.search`) restores through."""

    latent_dim: int
    critic: torch.nn.Module

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


ABILITIES = {"encodes": Encodes, "samples": Samples, "scores itself": ScoresItself, "eigenimages": Eigenimages}


def _has(model: Any, ability: type) -> bool:
    """For a model or a model class alike."""
    return issubclass(model, ability) if isinstance(model, type) else isinstance(model, ability)


def encodes(model: Any) -> bool:
    return _has(model, Encodes)


def samples(model: Any) -> bool:
    return _has(model, Samples)


def scores_itself(model: Any) -> bool:
    return _has(model, ScoresItself)


def draws_eigenimages(model: Any) -> bool:
    return _has(model, Eigenimages)


def searchable(model: torch.nn.Module) -> bool:
    """For a model only (a protocol with attributes cannot judge a class)."""
    return isinstance(model, Searchable)


def condition_of(model: Any) -> str | None:
    """What a conditional model reads beside the image (its `conditioned_on`: "label" or "image"), or None."""
    return getattr(model, "conditioned_on", None)


def output_range(model: Any) -> tuple[float, float]:
    return getattr(model, "output_range", (0.0, 1.0))


def abilities(model: Any) -> list[str]:
    """The names of what `model` (or its class) can do, for messages and `aegan check`."""
    found = [name for name, ability in ABILITIES.items() if _has(model, ability)]
    if condition := condition_of(model):
        found.append(f"conditioned on {condition}")
    return found
