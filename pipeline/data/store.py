"""Prepared datasets on disk: one folder per split of uint8 NHWC .npy arrays, plus manifest.json.

Writes fill a staging folder that is renamed into place only when complete (see `pipeline.files`),
so an interrupted prepare leaves nothing that looks finished. Reads are memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pipeline.errors import DataError

MANIFEST = "manifest.json"


class PreparedWriter:
    """Writes each array as a .npy file, chunk after chunk, straight to disk.

    Plain sequential writes rather than a memory map: pages of a mapped file that were written count as the
    process's resident memory until unmapped, which would make memory grow with the dataset.
    """

    def __init__(self, staging: Path) -> None:
        self.staging = staging  # from `pipeline.files.staged_dir`, which publishes or discards it
        self.files: dict[str, tuple[BinaryIO, tuple[int, ...], np.dtype, int]] = {}

    def allocate(self, split: str, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> None:
        path = self.staging / split / f"{name}.npy"
        path.parent.mkdir(exist_ok=True)
        handle = path.open("wb")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(handle, header)
        self.files[f"{split}/{name}"] = (handle, shape, np.dtype(dtype), 0)

    def write(self, split: str, name: str, start: int, values: np.ndarray) -> None:
        """Append rows `start … start + len(values)`; chunks must come in order."""
        key = f"{split}/{name}"
        handle, shape, dtype, written = self.files[key]
        if start != written or values.shape[1:] != shape[1:]:
            raise ValueError(f"{key}: expected rows from {written} of shape {shape[1:]}, got {start} and {values.shape[1:]}")
        handle.write(np.ascontiguousarray(values, dtype=dtype).tobytes())
        self.files[key] = (handle, shape, dtype, written + len(values))

    def finish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Close, checksum and write the manifest; returns it with the array entries added."""
        entries = {}
        for key, (handle, shape, dtype, written) in self.files.items():
            handle.close()
            if written != shape[0]:
                raise ValueError(f"{key}: {written} of {shape[0]} rows written")
            entries[key] = {"shape": list(shape), "dtype": str(dtype), "sha256": _sha256(Path(handle.name))}
        self.files.clear()
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
