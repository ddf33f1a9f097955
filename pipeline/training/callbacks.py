"""Side effects of training, triggered by the loop: progress bar, per-epoch history, MLflow metrics, checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.training import checkpoint


class ProgressBar:
    """One bar over all remaining images, showing throughput (img/s) and the latest losses."""

    def __init__(self, name: str, *, total_images: int, done_images: int) -> None:
        self.bar = tqdm(total=total_images, initial=done_images, unit="img", unit_scale=True, desc=name, mininterval=1.0)

    def on_step(self, step: int, metrics: dict[str, float], images: int) -> None:
        self.bar.set_postfix({name: f"{value:.4g}" for name, value in metrics.items()}, refresh=False)
        self.bar.update(images)

    def on_epoch_end(self, epoch: int, step: int) -> None:
        pass

    def close(self) -> None:
        self.bar.close()


class History:
    """Per-epoch means of every step metric: the loss curves (DVC plots) and part of the checkpoint."""

    def __init__(self, rows: list[dict[str, float]] | None = None) -> None:
        self.rows = list(rows or [])
        self.sums: dict[str, float] = {}
        self.steps = 0

    def on_step(self, step: int, metrics: dict[str, float], images: int) -> None:
        for name, value in metrics.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.steps += 1

    def on_epoch_end(self, epoch: int, step: int) -> None:
        self.rows.append({"epoch": epoch, **{name: total / self.steps for name, total in self.sums.items()}})
        self.sums, self.steps = {}, 0


class MetricLogger:
    """Sends step metrics to the tracking run in batches of `every` steps, and each epoch's means."""

    def __init__(self, run: Any, history: History, *, every: int) -> None:
        self.run, self.history, self.every = run, history, every
        self.buffer: list[tuple[int, dict[str, float]]] = []

    def on_step(self, step: int, metrics: dict[str, float], images: int) -> None:
        self.buffer.append((step, {f"train/{name}": value for name, value in metrics.items()}))
        if len(self.buffer) >= self.every:
            self.flush()

    def on_epoch_end(self, epoch: int, step: int) -> None:
        means = {f"epoch/{name}": value for name, value in self.history.rows[-1].items() if name != "epoch"}
        self.buffer.append((epoch, means))
        self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.run.log_metrics(self.buffer)
            self.buffer = []


class Checkpointer:
    """Saves the state `snapshot(epoch, step)` returns at the end of every epoch."""

    def __init__(self, path: Path, snapshot: Callable[[int, int], dict[str, Any]]) -> None:
        self.path, self.snapshot = path, snapshot

    def on_step(self, step: int, metrics: dict[str, float], images: int) -> None:
        pass

    def on_epoch_end(self, epoch: int, step: int) -> None:
        checkpoint.save(self.path, self.snapshot(epoch, step))
