"""Images to PNG: grids of image rows and the time-against-error plot. A leaf: numpy in, files out; it
imports no torch, training or tracking code, so the report stage can draw without them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MIN_CELL = 64  # small images are enlarged (nearest neighbour) so a grid stays legible
GAP = 2  # pixels of white between cells


def grid(rows: list[np.ndarray]) -> np.ndarray:
    """Tile rows of images, each (N, H, W, C) float in [0, 1], into one uint8 RGB image."""
    height, width = rows[0].shape[1:3]
    scale = max(1, -(-MIN_CELL // height))
    cells = []
    for row in rows:
        row = np.repeat(row, 3, axis=-1) if row.shape[-1] == 1 else row
        row = row.repeat(scale, axis=1).repeat(scale, axis=2)  # (N, H·s, W·s, 3)
        cells.append(row)
    count = max(len(row) for row in cells)
    cell_h, cell_w = height * scale, width * scale
    canvas = np.ones((len(cells) * (cell_h + GAP) + GAP, count * (cell_w + GAP) + GAP, 3), dtype=np.float32)
    for r, row in enumerate(cells):
        for c, image in enumerate(row):
            top, left = GAP + r * (cell_h + GAP), GAP + c * (cell_w + GAP)
            canvas[top : top + cell_h, left : left + cell_w] = image
    return (canvas * 255).round().astype(np.uint8)


def save_png(image: np.ndarray, path: Path) -> None:
    """Write a uint8 (H, W, 3) image as PNG (Pillow's default encoder), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


def plot_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    path: Path,
    *,
    axes_labels: tuple[str, str] = ("seconds per image", "mean squared error"),
    log_x: bool = True,
) -> None:
    """Labelled (x, y) lines, a single point as a dot; by default the seed's time-versus-error figure (seconds
    per image on a log scale against mean squared error)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4), dpi=100)
    for label, (x, y) in curves.items():
        axes.plot(x, y, "-" if len(x) > 1 else "o", label=label)
    axes.set(xscale="log" if log_x else "linear", xlabel=axes_labels[0], ylabel=axes_labels[1], title=title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
