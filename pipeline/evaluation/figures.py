"""The figures of one experiment, drawn by evaluate@<experiment> from the predictions it scored: comparison
grids, samples, interpolation strips, transfers and eigenimages, as PNG in reports/<study>/<experiment>/."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from pipeline import capabilities
from pipeline.config import FiguresConfig
from pipeline.errors import DataError
from pipeline.evaluation.metrics import psnr
from pipeline.figures import grid, save_png
from pipeline.files import staged_dir
from pipeline.images import to_numpy
from pipeline.tasks.batch import Batch

if TYPE_CHECKING:
    from pipeline.evaluation.evaluate import Predictions


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


def draw_figures(
    predicted: Predictions, samples: Tensor | None, settings: FiguresConfig, name: str, out_dir: Path
) -> list[Path]:
    """Write the experiment's figures to out_dir (replacing what was there) and return their paths.

    Every model that reconstructs gets grid.png (test inputs over outputs); models that can sample get
    samples.png (the first columns² of `samples`, the same noise for every model of that latent size);
    models with an encoder get interpolation.png, conditional ones their transfer figures instead (see
    `transfer_figures`); PCA gets eigenimages.png and psnr_by_components.csv.
    """
    columns, model = settings.columns, predicted.model
    with staged_dir(out_dir) as staging:
        if predicted.batches:  # a generate task has no per-image output to compare
            batch, output = predicted.batches[0], predicted.outputs[0]
            rows = comparison_rows(batch.input, output, predicted.task.truth(batch), columns=columns, blocks=4)
            save_png(grid(rows), staging / "grid.png")
        if samples is not None:
            shown = samples[: columns * columns]
            save_png(grid([to_numpy(row) for row in shown.split(columns)]), staging / "samples.png")
        if capabilities.draws_eigenimages(model):
            images = model.eigenimages(2 * columns)  # the mean, then the components
            save_png(
                grid([to_numpy(images[:1]), to_numpy(images[1 : 1 + columns]), to_numpy(images[1 + columns :])]),
                staging / "eigenimages.png",
            )
            (staging / "psnr_by_components.csv").write_text(component_curve(model, predicted.batches))
        if predicted.task.conditioned_on is not None:
            for figure, rows in transfer_figures(predicted, settings.transfer_targets, columns).items():
                save_png(grid(rows), staging / f"{figure}.png")
        elif capabilities.encodes(model) and predicted.batches:
            test = torch.cat([b.input for b in predicted.batches])
            strips = [interpolate(model, test, pair, settings.frames, name) for pair in settings.interpolation_pairs]
            save_png(grid([to_numpy(strip) for strip in strips]), staging / "interpolation.png")
    return sorted(out_dir.iterdir())


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
        condition = task.conditions(
            predicted.test, torch.arange(shown), torch.full((shown,), target, device=labels.device)
        )
        result = to_numpy(model.decode(z[:shown], condition))
        source = to_numpy(test[:shown])
        figures[f"transfer_to_{target}"] = [
            np.concatenate([source[r : r + columns], blank, result[r : r + columns]]) for r in range(0, shown, columns)
        ]
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
        raise DataError(
            f"figures.interpolation_pairs: index {max(first, second)} is beyond the {len(images)} test images "
            f"of {name}'s dataset; pick indices below {len(images)}"
        )
    ends = model.encode(images[[first, second]])  # (2, …latent shape)
    weights = torch.linspace(0.0, 1.0, frames, device=ends.device).view(-1, *[1] * (ends.dim() - 1))
    return model.decode((1 - weights) * ends[:1] + weights * ends[1:])


@torch.no_grad()
def component_curve(model: nn.Module, batches: list[Batch]) -> str:
    """CSV of mean test PSNR when reconstructing with the first k principal components, k = 1 … all kept,
    beside the share of the training variance the k-th component explains (a DVC plot, not a metric)."""
    images = torch.cat([b.input for b in batches])
    target = to_numpy(torch.cat([b.target for b in batches]))
    ratios = model.explained_variance_ratio.tolist()
    fitted = sum(ratio > 0 for ratio in ratios)
    lines = ["components,psnr,explained_variance"]
    for count in range(1, fitted + 1):
        restored = model.decode(model.encode(images, components=count))
        lines.append(f"{count},{psnr(to_numpy(restored), target).mean():.4f},{ratios[count - 1]:.6g}")
    return "\n".join(lines) + "\n"
