"""Principal component analysis as a model: the linear baseline every autoencoder is judged against.

Its "training" is scikit-learn's PCA on the training images (see `PrincipalComponentsFit`); the fitted mean
and components are buffers, so it saves, loads, encodes and decodes like any other model here.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from pipeline.models.autoencoder import AutoencoderOutput
from pipeline.schema import Size

CURVE_COMPONENTS = 64  # components kept beyond latent_dim, for the PSNR-against-components curve


class PrincipalComponents(nn.Module):
    """x ≈ mean + zᵀ·components[:latent_dim], with z = components[:latent_dim]·(x − mean)."""

    update_rule: ClassVar[str] = "principal_components"

    def __init__(self, *, in_channels: int, out_channels: int, image_size: int, latent_dim: Size = 16) -> None:
        super().__init__()
        if in_channels != out_channels:
            raise ValueError("PCA reconstructs its input: in_channels and out_channels must be equal")
        self.shape = (out_channels, image_size, image_size)
        pixels = out_channels * image_size**2
        self.latent_dim = latent_dim
        kept = max(latent_dim, CURVE_COMPONENTS)
        self.register_buffer("mean", torch.zeros(pixels))  # (D,)
        self.register_buffer("components", torch.zeros(kept, pixels))  # (K, D), rows orthonormal; zero rows unused
        self.register_buffer("explained_variance_ratio", torch.zeros(kept))  # (K,)

    def encode(self, x: Tensor, components: int | None = None) -> Tensor:
        basis = self.components[: components or self.latent_dim]  # (k, D)
        return (x.flatten(1) - self.mean) @ basis.T  # (B, k)

    def decode(self, z: Tensor) -> Tensor:
        basis = self.components[: z.shape[1]]
        return (z @ basis + self.mean).view(-1, *self.shape)  # (B, C, H, W), not clipped: PCA is linear

    def forward(self, x: Tensor) -> AutoencoderOutput:
        latent = self.encode(x)
        return AutoencoderOutput(image=self.decode(latent), latent=latent)

    def scores(self) -> dict[str, float]:
        """The explained-variance ratio of all `latent_dim` components together; each component's own is in
        the evaluation's psnr_by_components.csv, a plot rather than ten metrics."""
        return {"explained_variance_total": sum(self.explained_variance_ratio.tolist()[: self.latent_dim])}

    def eigenimages(self, count: int) -> Tensor:
        """The mean image and the first `count` components, each rescaled to [0, 1] for display.
        Returns (count + 1, C, H, W)."""
        images = torch.cat([self.mean[None], self.components[:count]]).view(-1, *self.shape)
        low = images.flatten(1).min(dim=1).values.view(-1, 1, 1, 1)
        high = images.flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
        return (images - low) / (high - low).clamp_min(1e-12)
