"""Update rules: one object per training scheme, called once per batch. Each owns its optimizers and
returns its losses as detached tensors; the loop knows nothing of what is inside.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.tasks import Batch

PIXEL_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "bce": F.binary_cross_entropy}


class ReconstructionUpdate:
    """Minimise a pixel loss between the model's image and the target: autoencoders, denoisers, colourisers."""

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        loss: Literal["mse", "l1", "bce"] = "mse",
    ) -> None:
        self.model = model
        self.loss = PIXEL_LOSSES[loss]
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        output = self.model(batch.input)
        loss = self.loss(output.image.float(), batch.target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


UPDATE_RULES: dict[str, type] = {
    "reconstruction": ReconstructionUpdate,
}


def update_rule_for(model_class: type[nn.Module]) -> type:
    """The update rule a model family trains with (its `update_rule` class attribute)."""
    return UPDATE_RULES[model_class.update_rule]
