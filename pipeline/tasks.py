"""Tasks: what a model reads and what it must produce. A task picks the prepared views, builds batches
by index from tensors that already sit on the device, and tells evaluation what to compare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.config import DatasetConfig, Positive, Size
from pipeline.data.store import load_split, read_manifest
from pipeline.errors import DataError
from pipeline.evaluation.metrics import psnr, ssim
from pipeline.evaluation.search import LatentSearch, latent_search
from pipeline.forward import AddNoise, DropIndependent, DropPatch, build_forward
from pipeline.images import ab_from_rgb, rgb_from_lab, to_float, to_numpy


class Batch(NamedTuple):
    input: Tensor  # (B, C_in, H, W) float, what the model reads
    target: Tensor | None  # (B, C_out, H, W) float in [0, 1]; None where training must not see it
    label: Tensor  # (B,) int64, -1 when the dataset is unlabelled
    condition: Tensor | None = None  # what a conditional model reads besides the input: (B, classes) or (B, c, H, W)
    measure: Callable[[Tensor], Tensor] | None = None  # the forward model that made `input`, fresh θ per call (ambient training)

    def head(self, count: int) -> Batch:
        """The first `count` images, every per-image field cut alike."""
        return Batch(*(part[:count] if isinstance(part, Tensor) else part for part in self))


class Reconstruct:
    """x -> x."""

    views: ClassVar[tuple[str, ...]] = ("images",)
    reconstructs: ClassVar[bool] = True  # whether the model maps each input to an output that evaluation scores
    scores_input: ClassVar[bool] = False  # whether evaluation also scores the raw input against the target
    target_range: ClassVar[tuple[float, float]] = (0.0, 1.0)  # what the model's output must be able to reach

    def model_shape(self, dataset: DatasetConfig) -> dict[str, int]:
        """The shape arguments a model needs for this task on this dataset."""
        return {"in_channels": dataset.channels, "out_channels": dataset.channels, "image_size": dataset.image_size}

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        images = to_float(arrays["images"][index])
        return Batch(input=images, target=images, label=arrays["labels"][index])

    def training_batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        """What training may see of images `index`; evaluation reads `batch`, which may hold more (the truth)."""
        return self.batch(arrays, index, generator)

    def given(self, arrays: Mapping[str, Tensor], index: Tensor) -> Batch:
        """The batch for images someone hands in (`aegan apply`), the views derived from them as prepare does."""
        return self.batch(arrays, index, torch.Generator(index.device).manual_seed(0))

    def check(self, arrays: Mapping[str, Tensor], folder: Path) -> None:
        """Raise DataError when the loaded split cannot serve this task."""

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        """The image evaluation scores: (B, C, H, W) in [0, 1]."""
        return model(batch.input).image

    def latent(self, model: nn.Module, batch: Batch) -> Tensor:
        """The model's code for each input: (B, …) as its `encode` gives it."""
        return model.encode(batch.input)

    def truth(self, batch: Batch) -> Tensor:
        """The image a prediction is scored against: (B, C, H, W) in [0, 1]."""
        return batch.target

    def scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
        """Per-image scores of (N, H, W, C) predictions in [0, 1] against the truth."""
        return {"psnr": psnr(prediction, truth), "ssim": ssim(prediction, truth)}


class Denoise(Reconstruct):
    """x + σ·n, clipped to [0, 1] -> x. The noise is drawn afresh for every batch."""

    scores_input = True

    def __init__(self, *, sigma: Positive = 0.2) -> None:
        self.sigma = sigma

    def baseline(self, noisy: np.ndarray) -> np.ndarray:
        """The non-learned denoiser compared against: total variation (Chambolle), weight σ/2, image by image.

        (N, H, W, C) floats in [0, 1] in and out.
        """
        from skimage.restoration import denoise_tv_chambolle  # imported here: it costs every stage 0.4 s of scipy.stats

        return np.stack([denoise_tv_chambolle(image, weight=self.sigma / 2, channel_axis=-1) for image in noisy])

    def given(self, arrays: Mapping[str, Tensor], index: Tensor) -> Batch:
        return super().batch(arrays, index, torch.Generator(index.device))  # an image handed in is noisy already

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        clean = to_float(arrays["images"][index])
        noise = torch.randn(clean.shape, generator=generator, device=clean.device)
        return Batch(input=(clean + self.sigma * noise).clamp(0.0, 1.0), target=clean, label=arrays["labels"][index])


class Generate(Reconstruct):
    """z -> x: a generator learns the training images' distribution; there is no per-image output, so
    evaluation scores its samples (Fréchet distance in a classifier's feature space), not reconstructions."""

    reconstructs = False

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        raise TypeError("a generate task has no per-image prediction; sample from the model instead")


class Colorize(Reconstruct):
    """Lab lightness -> chroma. The model reads L/100 (B, 1, H, W) and is trained towards ab/128 (B, 2, H, W)
    in [-1, 1]; evaluation converts (L, predicted ab) to RGB and scores it against the RGB of the true Lab,
    so every error it measures is a colour error. The non-learned baseline is the gray image (ab = 0)."""

    views = ("lab",)
    target_range = (-1.0, 1.0)

    def model_shape(self, dataset: DatasetConfig) -> dict[str, int]:
        return {"in_channels": 1, "out_channels": 2, "image_size": dataset.image_size}

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        code = to_float(arrays["lab"][index])  # (B, 3, H, W): L·2.55/255 = L/100, (a + 128)/255, (b + 128)/255
        chroma = (code[:, 1:] * 255.0 - 128.0) / 128.0
        return Batch(input=code[:, :1], target=chroma, label=arrays["labels"][index])

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        return rgb_from_lab(batch.input, model(batch.input).image)

    def truth(self, batch: Batch) -> Tensor:
        return rgb_from_lab(batch.input, batch.target)

    def baseline(self, lightness: np.ndarray) -> np.ndarray:
        """The gray image of the same lightness: (N, H, W, 1) L/100 -> (N, H, W, 3) RGB in [0, 1]."""
        gray = torch.from_numpy(lightness).permute(0, 3, 1, 2)
        return to_numpy(rgb_from_lab(gray, torch.zeros(len(gray), 2, *gray.shape[2:])))

    def scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
        """PSNR and SSIM in RGB, and `ab_error`: the mean distance in the ab plane (Lab units) per image."""
        error = np.linalg.norm(ab_from_rgb(prediction) - ab_from_rgb(truth), axis=-1).mean(axis=(1, 2))
        return {**super().scores(prediction, truth), "ab_error": error}


class Translate(Reconstruct):
    """Canny edge map (B, 1, H, W), 1 on an edge -> the image. The edges are the dataset's `edges` view,
    detected at its `edge_sigma`."""

    views = ("images", "edges")

    def model_shape(self, dataset: DatasetConfig) -> dict[str, int]:
        return {"in_channels": 1, "out_channels": dataset.channels, "image_size": dataset.image_size}

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        return Batch(input=to_float(arrays["edges"][index]), target=to_float(arrays["images"][index]), label=arrays["labels"][index])

    def scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
        """PSNR and SSIM, and `gradient_ratio`: the prediction's mean gradient magnitude over the truth's, per
        image. Below 1 the output is smoother than the photo (the blur a pixel loss settles for), near 1 it has
        as much edge and texture, whether or not in the right places (which PSNR and SSIM judge)."""
        return {**super().scores(prediction, truth), "gradient_ratio": edge_energy(prediction) / np.maximum(edge_energy(truth), 1 / 255)}


class Transfer(Reconstruct):
    """(x, condition) -> x, for a model that reads the condition in its encoder and its decoder. Evaluation
    scores the reconstruction with the image's own condition; transferring is decoding with another one.

    `condition: label` hands in the one-hot class (B, classes); `gray` and `edges` hand in that view of the
    image itself (B, 1, H, W).
    """

    def __init__(self, *, condition: Literal["label", "gray", "edges"] = "label", classes: Size = 10) -> None:
        if classes < 2:
            raise ValueError(f"classes must be at least 2, got {classes}")
        self.condition, self.classes = condition, classes
        self.conditioned_on = "label" if condition == "label" else "image"
        self.views = ("images",) if condition == "label" else ("images", condition)

    def model_shape(self, dataset: DatasetConfig) -> dict[str, int]:
        return {**super().model_shape(dataset), "condition_channels": self.classes if self.condition == "label" else 1}

    def check(self, arrays: Mapping[str, Tensor], folder: Path) -> None:
        if self.condition != "label":
            return
        labels = arrays["labels"]
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.classes):
            found = "has no labels" if int(labels.min()) < 0 else f"has labels up to {int(labels.max())}"
            raise DataError(f"{folder} {found}; a label condition needs labels 0 to {self.classes - 1} "
                            "(set task.classes, or condition gray or edges)")  # fmt: skip

    def conditions(self, arrays: Mapping[str, Tensor], index: Tensor, labels: Tensor | None = None) -> Tensor:
        """The conditions of images `index`, or, for a label condition, of `labels` instead of their own."""
        if self.condition == "label":
            return nn.functional.one_hot(arrays["labels"][index] if labels is None else labels, self.classes).float()
        return to_float(arrays[self.condition][index])

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        images = to_float(arrays["images"][index])
        return Batch(input=images, target=images, label=arrays["labels"][index], condition=self.conditions(arrays, index))

    def given(self, arrays: Mapping[str, Tensor], index: Tensor) -> Batch:
        if self.condition == "label":
            raise DataError("a label-conditioned model needs each image's class, which a file does not carry")
        return super().given(arrays, index)

    def predict(self, model: nn.Module, batch: Batch) -> Tensor:
        return model(batch.input, batch.condition).image

    def latent(self, model: nn.Module, batch: Batch) -> Tensor:
        return model.encode(batch.input, batch.condition)


class Restore(Reconstruct):
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
    searches_latent: ClassVar[bool] = True  # a decoder-only model restores by latent search, so it may take this task

    def __init__(
        self, *, forward: Literal["drop_independent", "drop_patch", "keep_patch", "add_noise", "blur_add_noise"] = "drop_independent",
        supervised: bool = False, remeasure: bool = False, search: LatentSearch = LatentSearch(),
    ) -> None:  # fmt: skip
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

    def measure(self, generator: torch.Generator) -> Callable[[Tensor], Tensor]:
        """The bound forward model drawing θ from `generator`: x (B, C, H, W) -> f_θ(x)."""
        operator = self.operator
        if operator is None:
            raise DataError(f"the {self.forward} forward model is bound when data is loaded; load it with load_tensors")
        return lambda x: operator(x, generator)

    def training_batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        measure = self.measure(generator)
        measured = measure(to_float(arrays["images"][index])) if self.remeasure else to_float(arrays[self.forward][index])
        if self.supervised:
            return Batch(input=measured, target=to_float(arrays["images"][index]), label=arrays["labels"][index])
        return Batch(input=measured, target=None, label=arrays["labels"][index], measure=measure)

    def batch(self, arrays: Mapping[str, Tensor], index: Tensor, generator: torch.Generator) -> Batch:
        measured = to_float(arrays[self.forward][index])
        return Batch(input=measured, target=to_float(arrays["images"][index]), label=arrays["labels"][index],
                     measure=self.measure(generator))  # fmt: skip

    def given(self, arrays: Mapping[str, Tensor], index: Tensor) -> Batch:
        images = to_float(arrays["images"][index])  # an image handed in is distorted already
        return Batch(input=images, target=images, label=arrays["labels"][index], measure=self.measure(torch.Generator(index.device)))

    def predict(self, model: nn.Module, batch: Batch, trace: Callable[[float, Tensor], None] | None = None) -> Tensor:
        """The encoder's restoration, or a latent search's (`trace` follows the search, see `latent_search`)."""
        if hasattr(model, "encode"):
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
        """The non-learned restoration, image by image, (N, H, W, C) in and out, clipped to [0, 1]:

        - drop models: biharmonic inpainting of the zeroed pixels, channel by channel (a dropped pixel is
          one that reads exactly 0; pixels that were black already are filled from their neighbours), after
          dividing out the operator's gain on kept pixels (drop_independent's 1/(1 − p));
        - add_noise: total-variation denoising (Chambolle), weight σ/2;
        - blur_add_noise: Wiener deconvolution with the known blur, self-tuned (scikit-image's unsupervised
          Wiener: it estimates the noise and the smoothness prior from the image).
        """
        from skimage import restoration  # imported here: it costs every stage 0.4 s of scipy.stats

        operator = self.operator
        restored = []
        for image in measured.astype(np.float64):  # (H, W, C)
            channels = range(image.shape[-1])
            if self.forward == "add_noise":
                image = restoration.denoise_tv_chambolle(image, weight=operator.sigma / 2, channel_axis=-1)
            elif self.forward == "blur_add_noise":  # the noise level and the prior's weight are estimated per image
                kernel = operator.kernel.double().numpy()
                image = np.stack([restoration.unsupervised_wiener(image[..., c], kernel, clip=False, rng=0)[0] for c in channels], -1)
            else:
                kept = image / operator.gain
                image = np.stack([restoration.inpaint_biharmonic(kept[..., c], image[..., c] == 0) for c in channels], -1)
            restored.append(np.clip(image, 0.0, 1.0))
        return np.stack(restored).astype(np.float32)

    def tiled_scores(self, prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        """The seed's protocol: the first 64 images tiled 8×8 into one image, PSNR with data_range 1 and SSIM
        with data_range 2 (what its scikit-image assumed for floats), 7×7 window. Needs 64 images."""
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        def tile(images: np.ndarray) -> np.ndarray:
            count, height, width, channels = images.shape
            return images[:64].reshape(8, 8, height, width, channels).transpose(0, 2, 1, 3, 4).reshape(8 * height, 8 * width, channels)

        if len(prediction) < 64:
            return {}
        guess, true = tile(prediction).astype(np.float64), tile(truth).astype(np.float64)
        return {"tiled_psnr": float(peak_signal_noise_ratio(true, guess, data_range=1.0)),
                "tiled_ssim": float(structural_similarity(true, guess, data_range=2.0, channel_axis=-1))}  # fmt: skip


def edge_energy(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) in [0, 1] -> (N,) mean absolute difference between neighbouring pixels of the gray image."""
    gray = images.mean(axis=-1)
    return np.abs(np.diff(gray, axis=1)).mean(axis=(1, 2)) + np.abs(np.diff(gray, axis=2)).mean(axis=(1, 2))


TASKS: dict[str, type] = {
    "reconstruct": Reconstruct,
    "denoise": Denoise,
    "generate": Generate,
    "colorize": Colorize,
    "translate": Translate,
    "transfer": Transfer,
    "restore": Restore,
}


def build_task(name: str, **kwargs: Any) -> Reconstruct:
    """Instantiate a registered task; an unknown name lists the valid ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    return TASKS[name](**kwargs)


def load_tensors(folder: Path, split: str, task: Reconstruct, device: torch.device) -> dict[str, Tensor]:
    """The views a task reads plus labels, as whole tensors on `device` (uint8 stays uint8 to save memory)."""
    arrays = load_split(folder, split)
    missing = [view for view in task.views if view not in arrays]
    if missing:
        raise DataError(f"{folder} has no {', '.join(missing)} view; add it to the dataset's `views` or `forward`")
    tensors = {name: torch.from_numpy(np.array(arrays[name])).to(device) for name in (*task.views, "labels")}
    task.check(tensors, folder)
    return tensors
