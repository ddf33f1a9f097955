"""Update rules: one object per training scheme, called once per batch. Each owns its optimizers and
returns its losses as detached tensors; the loop knows nothing of what is inside.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from torch import Tensor, nn

from pipeline.tasks import Batch

PIXEL_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "bce": F.binary_cross_entropy}


def pixel_loss(name: str, prediction: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """A pixel loss in fp32 with autocast off: under bf16 autocast, CUDA refuses binary cross-entropy on
    probabilities, and sums over many pixels lose precision."""
    with torch.autocast(prediction.device.type, enabled=False):
        return PIXEL_LOSSES[name](prediction.float(), target.float(), reduction=reduction)


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
        self.loss = loss
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        output = self.model(batch.input)
        loss = pixel_loss(self.loss, output.image, batch.target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


class VariationalUpdate(ReconstructionUpdate):
    """The β-VAE objective: per-image reconstruction loss (summed over pixels) + β·KL(q(z|x) ‖ N(0, I))."""

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        loss: Literal["mse", "l1", "bce"] = "bce",
        beta: float = 1.0,
    ) -> None:
        super().__init__(model, lr=lr, betas=betas, weight_decay=weight_decay, loss=loss)
        self.beta = beta

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        output = self.model(batch.input)
        count = len(batch.input)
        reconstruction = pixel_loss(self.loss, output.image, batch.target, reduction="sum") / count
        mean, logvar = output.mean.float(), output.logvar.float()
        kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp()) / count
        loss = reconstruction + self.beta * kl
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), "reconstruction": reconstruction.detach(), "kl": kl.detach()}


class PrincipalComponentsFit:
    """Closed-form PCA (scikit-learn, full SVD) on every training image seen so far; no optimizer.

    Each batch is added to the pool and the fit is redone, so after one epoch the components are those of
    the whole training split. Further epochs add the same images again, which leaves the fit unchanged.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.pool: list[np.ndarray] = []

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
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

    def state_dict(self) -> dict[str, Any]:
        return {}  # the fit lives in the model's buffers; checkpoints are taken after whole epochs

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


UPDATE_RULES: dict[str, type] = {
    "reconstruction": ReconstructionUpdate,
    "variational": VariationalUpdate,
    "principal_components": PrincipalComponentsFit,
}


def update_rule_for(model_class: type[nn.Module]) -> type:
    """The update rule a model family trains with (its `update_rule` class attribute)."""
    return UPDATE_RULES[model_class.update_rule]
