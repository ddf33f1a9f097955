"""Comparison grids to PNG: rows of test inputs over the model's outputs (and targets where they differ)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import io

from pipeline.images import to_numpy

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
    path.parent.mkdir(parents=True, exist_ok=True)
    io.imsave(path, image, check_contrast=False)


def comparison_rows(inputs, predictions, targets, *, columns: int, blocks: int) -> list[np.ndarray]:
    """Interleave `blocks` blocks of `columns` images: input row, output row, and target row when it is not the input.

    Arguments are (B, C, H, W) tensors in [0, 1] (inputs with another channel count are shown as they are).
    """
    show_target = targets is not inputs
    rows = []
    for block in range(blocks):
        part = slice(block * columns, (block + 1) * columns)
        if len(predictions[part]) == 0:
            break
        rows += [to_numpy(inputs[part]), to_numpy(predictions[part])]
        if show_target:
            rows.append(to_numpy(targets[part]))
    return rows


def render_experiment(params, name: str, *, prepared_dir: Path, model_dir: Path, out_dir: Path) -> list[Path]:
    """Write out_dir/grid.png (test inputs over outputs) and attach it to the model's MLflow run."""
    from pipeline import tracking
    from pipeline.evaluation.evaluate import predict_split
    from pipeline.files import staged_dir

    columns, blocks = params.render.columns, 4
    _, batches, predictions, run = predict_split(
        params, name, prepared_dir=prepared_dir, model_dir=model_dir, limit=columns * blocks
    )
    batch, prediction = batches[0], predictions[0]
    rows = comparison_rows(batch.input, prediction, batch.target, columns=columns, blocks=blocks)
    with staged_dir(out_dir) as staging:
        save_png(grid(rows), staging / "grid.png")
    tracked = tracking.reopen(tracking.resolve_uri(params.tracking.uri), run["run_id"], tags={"dvc.render": f"render@{name}"})
    tracked.log_artifact(out_dir / "grid.png", "figures")
    return [out_dir / "grid.png"]
