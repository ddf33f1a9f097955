"""What a source leaves in data/raw/<name>/ as prepare reads it, and how a source is registered."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import DatasetConfig


@dataclass(frozen=True)
class RawImages:
    """A source's images as prepare sees them: labels and split up front, pixels on demand."""

    labels: np.ndarray  # (N,) int64, -1 where the source has no labels
    class_names: tuple[str, ...]  # label i -> name; () when unlabelled
    split: np.ndarray | None  # (N,) bool, True = test, for official splits; None -> prepare draws a seeded split
    read: Callable[[np.ndarray], list[np.ndarray]]  # indices -> uint8 HxW or HxWx3 images, in the order given
    refused: tuple[tuple[str, str], ...] = ()  # (the user's path, reason) of each file left out
    names: tuple[str, ...] = ()  # a folder's: each image's path inside it (posix), which split_group reads

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Source:
    """How one kind of source reaches raw_dir (`fetch`) and is read back from it (`open`)."""

    fetch: Callable[[str, DatasetConfig, Path, Path], None]
    open: Callable[[DatasetConfig, Path, int], RawImages]


def link(cached: Path, target: Path) -> None:
    """Put a cached download into raw_dir without doubling the disk it takes when the file system allows."""
    try:
        os.link(cached, target)
    except OSError:
        shutil.copy2(cached, target)
