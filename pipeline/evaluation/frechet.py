"""Fréchet distance between two sets of feature vectors, each summarised by a Gaussian (mean, covariance):
the formula of FID, computed here on our own classifier's features (FCD) so it needs no download."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg


def frechet_distance(first: np.ndarray, second: np.ndarray) -> float:
    """‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2·(Σ₁Σ₂)^½) for two (N, D) feature arrays (N may differ).

    The matrix square root can come back slightly complex, or fail on a singular product, from rounding;
    as in the reference FID code, an ε·I is then added to both covariances and the imaginary part dropped.
    """
    if len(first) < 2 or len(second) < 2:
        raise ValueError("a Fréchet distance needs at least two feature vectors on each side")
    first, second = first.astype(np.float64), second.astype(np.float64)
    mean_first, mean_second = first.mean(0), second.mean(0)
    cov_first, cov_second = np.cov(first, rowvar=False), np.cov(second, rowvar=False)
    with warnings.catch_warnings():  # dead ReLU features make both covariances singular; handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_first @ cov_second)
    if not np.isfinite(root).all():
        offset = np.eye(len(cov_first)) * 1e-6
        root = linalg.sqrtm((cov_first + offset) @ (cov_second + offset))
    root = root.real
    return float(((mean_first - mean_second) ** 2).sum() + np.trace(cov_first + cov_second - 2 * root))
