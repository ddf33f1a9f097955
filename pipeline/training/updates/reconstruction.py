"""Rules that fit a model to its targets: a pixel loss, the β-VAE objective, closed-form PCA, and the judging
classifier's cross-entropy."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.schema import Fraction, NonNegative, Positive
from pipeline.tasks.batch import Batch
from pipeline.training import distributed
from pipeline.training.updates.base import UpdateRule, build_optimizer, step
from pipeline.training.updates.losses import pixel_loss, variational_terms


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
        self.model, self.loss = model, loss
        self.optimizer = build_optimizer(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
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


class PrincipalComponentsFit(UpdateRule):
    """Closed-form PCA (scikit-learn, full SVD) on every training image seen so far; no optimizer.

    Each batch is added to the pool and the fit is redone, so after one epoch the components are those of
    the whole training split. Further epochs add the same images again, which leaves the fit unchanged.
    There is no optimizer state to checkpoint: the fit lives in the model's buffers, and checkpoints are
    taken after whole epochs.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.optimizers = {}
        self.pool: list[np.ndarray] = []

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        from sklearn.decomposition import PCA  # imported here: scikit-learn costs every other stage half a second

        # (B, D): under torchrun every rank's shard, so each rank fits the same components
        self.pool.append(distributed.gather_rows(batch.input.flatten(1)).double().cpu().numpy())
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


class ClassificationUpdate(UpdateRule):
    """Cross-entropy on the batch's labels, Adam; reports the loss and the batch accuracy."""

    def __init__(self, model: nn.Module, *, lr: Positive = 1e-3, weight_decay: NonNegative = 0.0) -> None:
        self.model = model
        self.optimizer = build_optimizer(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.optimizers = {"optimizer": self.optimizer}

    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        logits = self.model(batch.input).logits.float()
        loss = F.cross_entropy(logits, batch.label)
        step(self.optimizer, loss)
        return {"loss": loss.detach(), "accuracy": (logits.detach().argmax(1) == batch.label).float().mean()}
