"""A prepared split as whole tensors on the device, the views a task reads and nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pipeline.data.store import load_split
from pipeline.errors import DataError
from pipeline.tasks.base import Task


def load_tensors(folder: Path, split: str, task: Task, device: torch.device) -> dict[str, Tensor]:
    """The views `task` reads plus labels, as whole tensors on `device` (uint8 stays uint8 to save memory); the
    task then checks it can serve them (and a restore task binds its forward model)."""
    arrays = load_split(folder, split)
    missing = [view for view in task.views if view not in arrays]
    if missing:
        raise DataError(f"{folder} has no {', '.join(missing)} view; add it to the dataset's `views` or `forward`")
    # a derived dataset's test split keeps the real images as `reference`: what an FCD is computed against
    wanted = (*task.views, "labels", *(["reference"] if "reference" in arrays else []))
    tensors = {name: torch.from_numpy(np.array(arrays[name])).to(device) for name in wanted}
    task.check(tensors, folder)
    return tensors
