"""Update rules, one file per family; a model class names its rule (`update_rule`) and `update_rule_for` finds it.

Each rule owns its optimizers (built by `base.build_optimizer` from its `update:` settings) and is called once
per batch; the losses it is made of are the pure functions of `losses`.
"""

from __future__ import annotations

from torch import nn

from pipeline.training.updates.adversarial import AdversarialUpdate
from pipeline.training.updates.ambient import AmbientVAEGANUpdate
from pipeline.training.updates.base import UpdateRule, build_optimizer, frozen
from pipeline.training.updates.conditional import ConditionalAdversarialUpdate, ConditionalAEGANUpdate
from pipeline.training.updates.hybrids import VAEWassersteinUpdate
from pipeline.training.updates.losses import gradient_penalty, pixel_loss
from pipeline.training.updates.reconstruction import (
    ClassificationUpdate,
    PrincipalComponentsFit,
    ReconstructionUpdate,
    VariationalUpdate,
)
from pipeline.training.updates.wasserstein import WassersteinUpdate

UPDATE_RULES: dict[str, type[UpdateRule]] = {
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


def update_rule_for(model_class: type[nn.Module]) -> type[UpdateRule]:
    """The update rule a model family trains with (its `update_rule` class attribute)."""
    return UPDATE_RULES[model_class.update_rule]


__all__ = [
    "UPDATE_RULES",
    "AdversarialUpdate",
    "AmbientVAEGANUpdate",
    "ClassificationUpdate",
    "ConditionalAEGANUpdate",
    "ConditionalAdversarialUpdate",
    "PrincipalComponentsFit",
    "ReconstructionUpdate",
    "UpdateRule",
    "VAEWassersteinUpdate",
    "VariationalUpdate",
    "WassersteinUpdate",
    "build_optimizer",
    "frozen",
    "gradient_penalty",
    "pixel_loss",
    "update_rule_for",
]
