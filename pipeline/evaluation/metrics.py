"""PSNR and SSIM per image with scikit-image's definitions (the ones the seeds reported), on [0, 1] images."""

from __future__ import annotations

import numpy as np


def psnr(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, H, W, C) floats in [0, 1] -> (N,) PSNR in dB with data_range 1; identical images give inf."""
    from skimage.metrics import peak_signal_noise_ratio  # imported here: it loads scipy.stats, 0.4 s per stage

    with np.errstate(divide="ignore"):
        return np.array([peak_signal_noise_ratio(t, p, data_range=1.0) for p, t in zip(prediction, target)])


def ssim(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, H, W, C) floats in [0, 1] -> (N,) SSIM, 7×7 uniform window, data_range 1, averaged over channels."""
    from skimage.metrics import structural_similarity

    return np.array([structural_similarity(t, p, data_range=1.0, channel_axis=-1) for p, t in zip(prediction, target)])


def summarise(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean and standard deviation of each per-image score: {"psnr_mean": …, "psnr_std": …, …}."""
    summary: dict[str, float] = {}
    for name, values in scores.items():
        summary[f"{name}_mean"] = float(np.mean(values))
        summary[f"{name}_std"] = float(np.std(values))
    return summary
