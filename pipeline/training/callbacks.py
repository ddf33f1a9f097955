"""Side effects of training, triggered by the loop: progress bar, per-epoch history, MLflow metrics, checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.training import checkpoint


class ProgressBar:
    """One bar over all remaining images, showing throughput (img/s) and the latest losses."""

    def __init__(self, name: str, *, total_images: int, done_images: int) -> None:
        self.bar = tqdm(
            total=total_images, initial=done_images, unit="img", unit_scale=True, desc=name, mininterval=1.0
        )

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
    """Sends every step's metrics and each epoch's means to the tracking run, in one call at most every `seconds`
    (a SQLite store commits each call: a call per epoch cost a tiny model a sixth of its training time), and
    whatever is left when `flush` is called at the end."""

    def __init__(self, run: Any, history: History, *, seconds: float = 5.0) -> None:
        self.run, self.history, self.seconds = run, history, seconds
        self.buffer: list[tuple[int, dict[str, float]]] = []
        self.sent = time.monotonic()

    def on_step(self, step: int, metrics: dict[str, float], images: int) -> None:
        self.buffer.append((step, {f"train/{name}": value for name, value in metrics.items()}))
        self._flush_if_due()

    def on_epoch_end(self, epoch: int, step: int) -> None:
        means = {f"epoch/{name}": value for name, value in self.history.rows[-1].items() if name != "epoch"}
        self.buffer.append((epoch, means))
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        if time.monotonic() - self.sent >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.run.log_metrics(self.buffer)
            self.buffer = []
        self.sent = time.monotonic()


class Checkpointer:
    """Saves the state `snapshot(epoch, step)` returns at the end of an epoch once `seconds` have passed since
    the last save (or the start), but not after the last epoch, whose model training writes at once. An
    interrupted run so loses at most `seconds` and an epoch of work; a run of tiny epochs is not slowed by a
    save per epoch (200 saves were a sixth of a small face autoencoder's training)."""

    def __init__(
        self, path: Path, snapshot: Callable[[int, int], dict[str, Any]], *, epochs: int, seconds: float
    ) -> None:
        self.path, self.snapshot, self.epochs, self.seconds = path, snapshot, epochs, seconds
        self.saved = time.monotonic()

    def on_step(self, step: int, metrics: dict[str, float], images: int) -> None:
        pass

    def on_epoch_end(self, epoch: int, step: int) -> None:
        if epoch < self.epochs and time.monotonic() - self.saved >= self.seconds:
            checkpoint.save(self.path, self.snapshot(epoch, step))
            self.saved = time.monotonic()
