"""Prepared datasets on disk: one folder per split of uint8 NHWC .npy arrays, plus manifest.json.

Writes fill a staging folder that is renamed into place only when complete (see `pipeline.files`),
so an interrupted prepare leaves nothing that looks finished. Reads are memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DataError

MANIFEST = "manifest.json"


class PreparedWriter:
    """Pre-allocates each array as a memory-mapped .npy file and fills it chunk by chunk."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging  # from `pipeline.files.staged_dir`, which publishes or discards it
        self.arrays: dict[str, np.memmap] = {}

    def allocate(self, split: str, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> None:
        path = self.staging / split / f"{name}.npy"
        path.parent.mkdir(exist_ok=True)
        self.arrays[f"{split}/{name}"] = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)

    def write(self, split: str, name: str, start: int, values: np.ndarray) -> None:
        self.arrays[f"{split}/{name}"][start : start + len(values)] = values

    def finish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Flush, checksum and write the manifest; returns it with the array entries added."""
        entries = {}
        for key, array in self.arrays.items():
            array.flush()
            entries[key] = {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": _sha256(Path(array.filename))}
        self.arrays.clear()
        manifest = {**manifest, "arrays": entries}
        (self.staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a prepared dataset; a clear error when prepare has not run."""
    path = folder / MANIFEST
    if not path.exists():
        raise DataError(f"{folder} is not a prepared dataset (no {MANIFEST}); run `dvc repro prepare@{folder.name}`")
    return json.loads(path.read_text())


def load_split(folder: Path, split: str) -> dict[str, np.ndarray]:
    """All arrays of one split ("train" or "test"), memory-mapped read-only, keyed by view name."""
    manifest = read_manifest(folder)
    names = [key.split("/", 1)[1] for key in manifest["arrays"] if key.startswith(f"{split}/")]
    return {name: np.load(folder / split / f"{name}.npy", mmap_mode="r") for name in names}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
