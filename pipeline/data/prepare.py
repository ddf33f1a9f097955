"""The prepare stage's work: raw images -> fixed train/test split of standardised uint8 arrays and derived views.

It runs in chunks, so peak memory depends on the chunk size, not on how many images there are.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from pipeline.config import DatasetConfig
from pipeline.data import sources, views
from pipeline.data.decode import write_refused
from pipeline.data.raw import RawImages
from pipeline.data.store import PreparedWriter
from pipeline.errors import DataError
from pipeline.files import staged_dir
from pipeline.forward import build_forward, check_forward
from pipeline.images import to_float

CHUNK = 256  # images read, resized and written at a time
SKIPPED = "skipped.csv"  # in data/prepared/<name>/: path, reason of each source file that was left out


def split_indices(raw: RawImages, config: DatasetConfig, seed: int, where: str = "dataset") -> dict[str, np.ndarray]:
    """Train/test indices: the source's official split, else a seeded random one (of whole groups with
    `split_group`); `limit` subsamples both."""
    rng = np.random.default_rng(seed)
    count = len(raw)
    if raw.split is not None:
        test = np.flatnonzero(raw.split)
        train = np.flatnonzero(~raw.split)
    elif config.split_group is not None:
        test, train = _group_split(raw, config, rng, where)
    else:
        order = rng.permutation(count)
        cut = max(1, math.ceil(count * config.test_fraction))  # scikit-learn's train_test_split rounds up too
        test, train = order[:cut], order[cut:]
    if config.limit is not None and config.limit < count:
        keep_test = max(1, round(config.limit * len(test) / count))
        test = rng.choice(test, keep_test, replace=False)
        train = rng.choice(train, config.limit - keep_test, replace=False)
    # Sorted reads are sequential on disk; training shuffles anyway.
    return {"train": np.sort(train), "test": np.sort(test)}


def _group_split(
    raw: RawImages, config: DatasetConfig, rng: np.random.Generator, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups, in a seeded order, go to the test split until it holds at least test_fraction of the
    images (rounded up, as the plain split); the rest train. No group straddles the two."""
    pattern = re.compile(config.split_group)
    groups = []
    for name in raw.names:
        found = pattern.search(name)
        if found is None or found.group(1) is None:
            raise DataError(f"{where}.split_group: {name} does not match '{config.split_group}'; fix the pattern")
        groups.append(found.group(1))
    names, group_of = np.unique(np.array(groups), return_inverse=True)
    if len(names) < 2:
        raise DataError(f"{where}.split_group: every image is in group '{names[0]}'; a split needs two groups")
    wanted = max(1, math.ceil(len(raw) * config.test_fraction))
    sizes = np.bincount(group_of)
    order = rng.permutation(len(names))
    taken = np.cumsum(sizes[order])
    test_groups = order[: min(int(np.searchsorted(taken, wanted)) + 1, len(names) - 1)]
    in_test = np.isin(group_of, test_groups)
    return np.flatnonzero(in_test), np.flatnonzero(~in_test)


def prepare_dataset(name: str, config: DatasetConfig, raw_dir: Path, out_dir: Path, seed: int) -> dict:
    """Write data/prepared/<name>/ from data/raw/<name>/ and return its manifest.

    Args:
        name: the dataset's key in params.yaml.
        config: its settings.
        raw_dir: what the download stage produced.
        out_dir: the folder to (re)create.
        seed: drives the split, random crops and the distorted copies.
    """
    raw = sources.open_raw(config, raw_dir, seed)
    splits = split_indices(raw, config, seed, f"datasets.{name}")
    size, channels = config.image_size, config.channels
    layout = {"images": channels, **{view: 3 if view == "lab" else 1 for view in config.views}}
    forward = check_forward(config, f"datasets.{name}.forward")  # before any work: a bad setting fails in one line
    operators = {key: build_forward(key, **kwargs) for key, kwargs in forward.items()}
    with staged_dir(out_dir) as staging:
        write_refused(staging / SKIPPED, list(raw.refused))  # the source files left out, by the user's path
        writer = PreparedWriter(staging)
        for split, indices in splits.items():
            count = len(indices)
            for view, depth in layout.items():
                writer.allocate(split, view, (count, size, size, depth), np.uint8)
            for key in operators:
                # float16: distortions leave [0, 1] (noise, 1/(1-p) scaling), so uint8 cannot hold them.
                writer.allocate(split, key, (count, size, size, channels), np.float16)
            writer.allocate(split, "labels", (count,), np.int64)
            generator = torch.Generator().manual_seed(seed + (split == "test"))
            for start in range(0, count, CHUNK):
                chunk = indices[start : start + CHUNK]
                images = views.standardise(raw.read(chunk), size, channels)
                writer.write(split, "images", start, images)
                writer.write(split, "labels", start, raw.labels[chunk])
                for view in config.views:
                    writer.write(split, view, start, derive_view(view, images, config))
                clean = to_float(torch.from_numpy(images))  # (B, C, H, W)
                for key, operator in operators.items():
                    measured = operator(clean, generator).permute(0, 2, 3, 1)  # (B, H, W, C)
                    writer.write(split, key, start, measured.numpy().astype(np.float16))
        return writer.finish(
            {
                "dataset": name,
                "source": config.source,
                "image_size": size,
                "channels": channels,
                "seed": seed,
                "counts": {split: len(indices) for split, indices in splits.items()},
                "class_names": list(raw.class_names),
                "skipped": len(raw.refused),
                "views": list(config.views),
                "forward": {key: dict(kwargs) for key, kwargs in forward.items()},
                # a folder's source files in each split, in the order of the arrays
                **(
                    {"files": {split: [raw.names[i] for i in index] for split, index in splits.items()}}
                    if raw.names
                    else {}
                ),
            }
        )


def derive_view(view: str, images: np.ndarray, config: DatasetConfig) -> np.ndarray:
    """The named derived view (gray, edges or lab) of standardised (N, H, W, C) uint8 images."""
    if view == "gray":
        return views.gray(images)
    if view == "edges":
        return views.edges(images, config.edge_sigma)
    return views.encode_lab(images)
