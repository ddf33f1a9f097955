"""Image views derived in prepare: square resize, grayscale, Canny edges, Lab. uint8 NHWC in and out.

Lab is stored as uint8 with a fixed affine code (see `encode_lab`/`decode_lab`): L·2.55, a+128, b+128.
"""

from __future__ import annotations

import numpy as np
from skimage import color, feature, transform

from pipeline.images import to_uint8


def square(image: np.ndarray) -> np.ndarray:
    """Centre-crop an HxW(xC) image to its largest centred square."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top : top + side, left : left + side]


def standardise(images: list[np.ndarray], size: int, channels: int) -> np.ndarray:
    """Centre-crop, resize (anti-aliased) and convert channels: list of uint8 images -> (N, size, size, channels) uint8.

    Images of equal shape are resized together in one vectorised call.
    """
    out = np.empty((len(images), size, size, channels), dtype=np.uint8)
    shapes: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        image = square(image if image.ndim == 3 else image[:, :, None])
        images[i] = image
        shapes.setdefault(image.shape, []).append(i)
    for shape, members in shapes.items():
        batch = np.stack([images[i] for i in members]).astype(np.float32) / 255.0  # (n, s, s, c)
        if shape[0] != size:
            batch = transform.resize(batch, (len(members), size, size, shape[2]), anti_aliasing=shape[0] > size)
        out[members] = to_uint8(_convert_channels(batch, channels))
    return out


def _convert_channels(batch: np.ndarray, channels: int) -> np.ndarray:
    have = batch.shape[-1]
    if have == 4:  # drop alpha
        batch, have = batch[..., :3], 3
    if have == channels:
        return batch
    if channels == 1:
        return color.rgb2gray(batch)[..., None]
    return np.repeat(batch, 3, axis=-1)


def gray(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, H, W, 1) uint8 luminance."""
    if images.shape[-1] == 1:
        return images.copy()
    return to_uint8(color.rgb2gray(images.astype(np.float32) / 255.0)[..., None])


def edges(images: np.ndarray, sigma: float) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, H, W, 1) uint8 Canny edge maps (255 on an edge)."""
    luminance = gray(images)[..., 0].astype(np.float32) / 255.0
    maps = [feature.canny(image, sigma=sigma) for image in luminance]  # canny is 2-D only
    return (np.stack(maps)[..., None] * 255).astype(np.uint8)


def encode_lab(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, H, W, 3) uint8 Lab code (L·2.55, a+128, b+128)."""
    if images.shape[-1] != 3:
        raise ValueError("the lab view needs colour images; set the dataset's channels to 3")
    lab = color.rgb2lab(images.astype(np.float32) / 255.0)
    lab[..., 0] *= 2.55
    lab[..., 1:] += 128.0
    return np.clip(np.rint(lab), 0, 255).astype(np.uint8)


def decode_lab(code: np.ndarray) -> np.ndarray:
    """Inverse of `encode_lab`: uint8 code -> float Lab (L in [0, 100], a and b in [-128, 127])."""
    lab = code.astype(np.float32)
    lab[..., 0] /= 2.55
    lab[..., 1:] -= 128.0
    return lab
