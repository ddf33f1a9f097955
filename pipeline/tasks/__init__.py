"""Tasks: what a model reads and what it must produce, one file per task (`base.Task` is the contract)."""

from __future__ import annotations

from typing import Any

from pipeline.tasks.base import Task
from pipeline.tasks.batch import Batch
from pipeline.tasks.colorize import Colorize
from pipeline.tasks.denoise import Denoise
from pipeline.tasks.generate import Generate
from pipeline.tasks.reconstruct import Reconstruct
from pipeline.tasks.restore import Restore
from pipeline.tasks.transfer import Transfer
from pipeline.tasks.translate import Translate

TASKS: dict[str, type[Task]] = {
    "reconstruct": Reconstruct,
    "denoise": Denoise,
    "generate": Generate,
    "colorize": Colorize,
    "translate": Translate,
    "transfer": Transfer,
    "restore": Restore,
}


def build_task(name: str, **kwargs: Any) -> Task:
    """Instantiate a registered task; an unknown name lists the valid ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    return TASKS[name](**kwargs)


__all__ = [
    "TASKS",
    "Batch",
    "Colorize",
    "Denoise",
    "Generate",
    "Reconstruct",
    "Restore",
    "Task",
    "Transfer",
    "Translate",
    "build_task",
]
