"""render@<experiment>: comparison grids, samples, interpolation strips and eigenimages as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from skimage import io
from torch import Tensor, nn

from pipeline import tracking
from pipeline.config import Params
from pipeline.errors import DataError
from pipeline.evaluation.evaluate import Predictions, draw_samples, predict_split
from pipeline.evaluation.metrics import psnr
from pipeline.files import staged_dir
from pipeline.images import to_numpy
from pipeline.tasks import Batch

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
    """Write a uint8 (H, W, 3) image as PNG, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    io.imsave(path, image, check_contrast=False)


def comparison_rows(
    inputs: Tensor, predictions: Tensor, targets: Tensor | None, *, columns: int, blocks: int
) -> list[np.ndarray]:
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


def render_experiment(params: Params, name: str, *, prepared_dir: Path, model_dir: Path, out_dir: Path) -> list[Path]:
    """Write the experiment's figures to out_dir and attach them to the model's MLflow run.

    Every model that reconstructs gets grid.png (test inputs over outputs); models that can sample get
    samples.png (fixed noise); models with an encoder get interpolation.png, conditional ones their transfer
    figures instead (see `transfer_figures`); PCA gets eigenimages.png and psnr_by_components.csv.
    """
    columns = params.render.columns
    # A latent search (restore with a decoder-only model) costs a second per few images, so restore renders
    # only the images its figures show: the grid's first 4·columns and the interpolation pairs.
    reach = 1 + max((max(pair) for pair in params.render.interpolation_pairs), default=0)
    limit = max(4 * columns, reach) if params.experiment(name).task.name == "restore" else None
    predicted = predict_split(params, name, prepared_dir=prepared_dir, model_dir=model_dir, limit=limit)
    model = predicted.model
    with staged_dir(out_dir) as staging:
        if predicted.batches:  # a generate task has no per-image output to compare
            batch, output = predicted.batches[0], predicted.outputs[0]
            rows = comparison_rows(batch.input, output, predicted.task.truth(batch), columns=columns, blocks=4)
            save_png(grid(rows), staging / "grid.png")
        if hasattr(model, "sample"):  # the first samples FCD is computed on: the same noise for every model
            samples = draw_samples(model, columns * columns, params.base.seed)
            save_png(grid([to_numpy(row) for row in samples.split(columns)]), staging / "samples.png")
        if hasattr(model, "eigenimages"):
            images = model.eigenimages(2 * columns)  # the mean, then the components
            save_png(grid([to_numpy(images[:1]), to_numpy(images[1 : 1 + columns]), to_numpy(images[1 + columns :])]),
                     staging / "eigenimages.png")  # fmt: skip
            (staging / "psnr_by_components.csv").write_text(component_curve(model, predicted.batches))
        if hasattr(predicted.task, "conditioned_on"):
            for figure, rows in transfer_figures(predicted, params.render.transfer_targets, columns).items():
                save_png(grid(rows), staging / f"{figure}.png")
        elif hasattr(model, "encode") and predicted.batches:
            test = torch.cat([b.input for b in predicted.batches])
            strips = [interpolate(model, test, pair, params.render.frames, name) for pair in params.render.interpolation_pairs]
            save_png(grid([to_numpy(strip) for strip in strips]), staging / "interpolation.png")
    paths = sorted(out_dir.iterdir())
    tracked = tracking.reopen(tracking.resolve_uri(params.tracking.uri), predicted.run["run_id"], tags={"dvc.render": f"render@{name}"})
    for path in paths:
        tracked.log_artifact(path, "figures")
    return paths


@torch.no_grad()
def transfer_figures(predicted: Predictions, targets: tuple[int, ...], columns: int) -> dict[str, list[np.ndarray]]:
    """A conditional model's transfers, each figure as rows of images.

    Label condition: `transfer_to_<k>`, the first columns² test images (left) and each decoded with label k
    (right); `transfer_table`, the first test image of each label (first column) decoded with every label.
    Image condition: `transfer`, in blocks of four rows: the image whose latent is kept, the image whose
    condition is given, that condition, and the decoding of the one with the other.
    """
    task, model = predicted.task, predicted.model
    test = torch.cat([b.input for b in predicted.batches])  # (N, C, H, W)
    labels = torch.cat([b.label for b in predicted.batches])
    conditions = torch.cat([b.condition for b in predicted.batches])
    z = torch.cat([task.latent(model, b) for b in predicted.batches])
    if task.conditioned_on == "image":
        rows = []
        for start in range(0, min(len(test), 4 * columns), columns):
            kept = torch.arange(start, min(start + columns, len(test)))
            given = kept.roll(1)  # each image gets its neighbour's condition
            result = model.decode(z[kept], conditions[given])
            rows += [to_numpy(test[kept]), to_numpy(test[given]), to_numpy(conditions[given]), to_numpy(result)]
        return {"transfer": rows}
    figures = {}
    shown = min(len(test), columns * columns)
    blank = np.ones((1, *to_numpy(test[:1]).shape[1:]), np.float32)
    for target in targets:
        condition = task.conditions(predicted.test, torch.arange(shown), torch.full((shown,), target, device=labels.device))
        result = to_numpy(model.decode(z[:shown], condition))
        source = to_numpy(test[:shown])
        figures[f"transfer_to_{target}"] = [np.concatenate([source[r : r + columns], blank, result[r : r + columns]])
                                            for r in range(0, shown, columns)]  # fmt: skip
    firsts = [int(torch.nonzero(labels == k)[0]) for k in range(task.classes) if bool((labels == k).any())]
    table = []
    for index in firsts:
        every = torch.arange(task.classes, device=labels.device)
        condition = task.conditions(predicted.test, torch.full_like(every, index), every)
        decoded = model.decode(z[index].expand(task.classes, -1), condition)
        table.append(np.concatenate([to_numpy(test[index : index + 1]), blank, to_numpy(decoded)]))
    figures["transfer_table"] = table
    return figures


@torch.no_grad()
def interpolate(model: nn.Module, images: Tensor, pair: tuple[int, int], frames: int, name: str) -> Tensor:
    """Decode `frames` evenly spaced points on the straight line between two test images' latents: (frames, C, H, W)."""
    first, second = pair
    if max(first, second) >= len(images):
        raise DataError(f"render.interpolation_pairs: index {max(first, second)} is beyond the {len(images)} test images "
                        f"of {name}'s dataset; pick indices below {len(images)}")  # fmt: skip
    ends = model.encode(images[[first, second]])  # (2, …latent shape)
    weights = torch.linspace(0.0, 1.0, frames, device=ends.device).view(-1, *[1] * (ends.dim() - 1))
    return model.decode((1 - weights) * ends[:1] + weights * ends[1:])


@torch.no_grad()
def component_curve(model: nn.Module, batches: list[Batch]) -> str:
    """CSV of mean test PSNR when reconstructing with the first k principal components, k = 1 … all kept."""
    images = torch.cat([b.input for b in batches])
    target = to_numpy(torch.cat([b.target for b in batches]))
    fitted = int((model.explained_variance_ratio > 0).sum())
    lines = ["components,psnr"]
    for count in range(1, fitted + 1):
        restored = model.decode(model.encode(images, components=count))
        lines.append(f"{count},{psnr(to_numpy(restored), target).mean():.4f}")
    return "\n".join(lines) + "\n"
