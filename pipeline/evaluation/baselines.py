"""The non-learned methods a learned model is compared with, on the very same inputs: (N, H, W, C) float arrays
in and out, image by image, in the input's precision and unclipped (the caller decides both). Which one serves
a task is the task's, or its forward model's, to say. scikit-image is imported inside each: it costs every
stage that imports it 0.4 s of scipy.stats.
"""

from __future__ import annotations

import numpy as np


def total_variation(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Total-variation denoising (Chambolle), weight σ/2: the baseline for additive Gaussian noise of σ."""
    from skimage.restoration import denoise_tv_chambolle

    return np.stack([denoise_tv_chambolle(image, weight=sigma / 2, channel_axis=-1) for image in noisy])


def inpaint(measured: np.ndarray, gain: float) -> np.ndarray:
    """Biharmonic inpainting of the pixels that read exactly 0, channel by channel, after dividing out the gain
    kept pixels were multiplied by (drop_independent's 1/(1 − p)). Pixels that were black already are filled
    from their neighbours too: a measurement cannot tell them from dropped ones."""
    from skimage.restoration import inpaint_biharmonic

    def restore(image: np.ndarray) -> np.ndarray:  # (H, W, C)
        kept = image / gain
        return np.stack([inpaint_biharmonic(kept[..., c], image[..., c] == 0) for c in range(image.shape[-1])], -1)

    return np.stack([restore(image) for image in measured])


def deconvolve(measured: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Wiener deconvolution with the known blur `kernel` (k, k), self-tuned: scikit-image's unsupervised Wiener
    estimates the noise level and the smoothness prior from each image."""
    from skimage.restoration import unsupervised_wiener

    def restore(image: np.ndarray) -> np.ndarray:  # (H, W, C)
        channels = range(image.shape[-1])
        return np.stack([unsupervised_wiener(image[..., c], kernel, clip=False, rng=0)[0] for c in channels], -1)

    return np.stack([restore(image) for image in measured])
