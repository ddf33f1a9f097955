"""f_θ(x) -> x for a known forward model f: inpainting, denoising, deblurring."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.capabilities import encodes
from pipeline.data.store import read_manifest
from pipeline.errors import DataError
from pipeline.evaluation.search import LatentSearch, latent_search
from pipeline.forward import AddNoise, DropIndependent, DropPatch, build_forward
from pipeline.images import to_float
from pipeline.tasks.base import Task
from pipeline.tasks.batch import Batch

Forward = Literal["drop_independent", "drop_patch", "keep_patch", "add_noise", "blur_add_noise"]


class Restore(Task):
    """f_θ(x) -> x for a known forward model f (a dataset's `forward` entry): inpainting, denoising.

    Evaluation reads the distorted test copies prepare wrote (the same inputs for every method) and scores
    against the clean images. Training reads the distorted training copies, one per image as a real sensor
    gives, and its batches carry the forward model so generated images can be measured with a fresh θ on
    every use; with `remeasure` the clean images are measured afresh on every pass instead, as the seed's
    in-graph measurement did. Unless `supervised`, no clean training image reaches the update rule.

    A model without an encoder (a GAN) restores by searching its latent space for each image (ACSG), as
    `search` says (see `LatentSearch`; the defaults are the seed's).
    """

    scores_input = True
    restores: ClassVar[bool] = True
    searches_latent: ClassVar[bool] = True
    input_name = "distorted input"
    baseline_name = "non-learned"

    def __init__(
        self,
        *,
        forward: Forward = "drop_independent",
        supervised: bool = False,
        remeasure: bool = False,
        search: LatentSearch = LatentSearch(),
    ) -> None:
        self.forward, self.supervised, self.remeasure, self.search = forward, supervised, remeasure, search
        self.views = ("images", forward)
        self.operator: DropIndependent | DropPatch | AddNoise | None = None  # bound by `check` from the manifest

    def check(self, arrays: Mapping[str, Tensor], folder: Path) -> None:
        """Bind the forward model with the settings prepare used for these copies (its manifest's `forward`)."""
        settings = read_manifest(folder).get("forward", {})
        if self.forward not in settings:
            raise DataError(f"{folder} has no {self.forward} copies; add {self.forward} under the dataset's `forward`")
        self.bind(settings[self.forward])

    def bind(self, settings: Mapping[str, Any]) -> None:
        """Use the forward model with these settings (p, size, sigma) from now on."""
        self.operator = build_forward(self.forward, **settings)

    def from_file(self, images: np.ndarray, forward: Mapping[str, Mapping]) -> np.ndarray:
        """A file handed in is the distorted image, through the dataset's forward model. A file cannot hold a gain
        above 1 on kept pixels (drop_independent's 1/(1 − p)): put it back, in float16 as prepare stored its
        distorted copies."""
        self.bind(forward.get(self.forward, {}))
        return (images.astype(np.float32) / 255.0 * self.operator.gain).astype(np.float16)

    def measure(self, generator: torch.Generator) -> Callable[[Tensor], Tensor]:
        """The bound forward model drawing θ from `generator`: x (B, C, H, W) -> f_θ(x)."""
        operator = self.operator
        if operator is None:
            raise DataError(f"the {self.forward} forward model is bound when data is loaded; load it with load_tensors")
        return lambda x: operator(x, generator)

    def training_batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        measure = self.measure(generator)
        clean = arrays["images"][index]
        measured = measure(to_float(clean)) if self.remeasure else to_float(arrays[self.forward][index])
        if self.supervised:
            return Batch(input=measured, target=to_float(clean), label=arrays["labels"][index])
        return Batch(input=measured, target=None, label=arrays["labels"][index], measure=measure)

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        measured, clean = to_float(arrays[self.forward][index]), to_float(arrays["images"][index])
        return Batch(input=measured, target=clean, label=arrays["labels"][index], measure=self.measure(generator))

    def given(self, arrays: Mapping[str, Tensor], index: Tensor) -> Batch:
        images = to_float(arrays["images"][index])  # an image handed in is distorted already
        measure = self.measure(torch.Generator(index.device))
        return Batch(input=images, target=images, label=arrays["labels"][index], measure=measure)

    def predict(self, model: nn.Module, batch: Batch, trace: Callable[[float, Tensor], None] | None = None) -> Tensor:
        """The encoder's restoration, or a latent search's (`trace` follows the search, see `latent_search`)."""
        if encodes(model):
            return model(batch.input).image
        return latent_search(model, batch.input, self.search_measure(batch), self.search, trace=trace)

    def search_measure(self, batch: Batch) -> Callable[[Tensor], Tensor]:
        """f for a latent search on `batch`: with a fresh θ per call, or with the θ its input shows."""
        if self.search.theta == "fresh":
            return batch.measure
        theta = self.operator.observed(batch.input)
        return lambda images: self.operator.apply(images, theta)

    def scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
        """PSNR, SSIM and the mean squared error per image (what the seed's time-versus-error plot shows)."""
        return {**super().scores(prediction, truth), "mse": ((prediction - truth) ** 2).mean(axis=(1, 2, 3))}

    def baseline(self, measured: np.ndarray) -> np.ndarray:
        """The forward model's non-learned restoration (see its `restore`), in float64, clipped to [0, 1]."""
        return np.clip(self.operator.restore(measured.astype(np.float64)), 0.0, 1.0).astype(np.float32)

    def tiled_scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        """The seed's protocol: the first 64 images tiled 8×8 into one image, PSNR with data_range 1 and SSIM
        with data_range 2 (what its scikit-image assumed for floats), 7×7 window. Needs 64 images."""
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        if len(prediction) < 64:
            return {}
        guess, true = _tile(prediction).astype(np.float64), _tile(truth).astype(np.float64)
        return {
            "tiled_psnr": float(peak_signal_noise_ratio(true, guess, data_range=1.0)),
            "tiled_ssim": float(structural_similarity(true, guess, data_range=2.0, channel_axis=-1)),
        }


def _tile(images: np.ndarray) -> np.ndarray:
    """The first 64 of (N, H, W, C) images as one (8H, 8W, C) grid, row by row."""
    _, height, width, channels = images.shape
    rows = images[:64].reshape(8, 8, height, width, channels).transpose(0, 2, 1, 3, 4)  # (8, H, 8, W, C)
    return rows.reshape(8 * height, 8 * width, channels)
