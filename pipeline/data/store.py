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

from pipeline.errors import DataError, first_line

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
            raise ValueError(
                f"{key}: expected rows from {written} of shape {shape[1:]}, got {start} and {values.shape[1:]}"
            )
        handle.write(np.ascontiguousarray(values, dtype=dtype).tobytes())
        self.files[key] = (handle, shape, dtype, written + len(values))

    def write_whole(self, split: str, name: str, values: np.ndarray) -> None:
        """Allocate and write a whole array at once (labels, a copy of another dataset's images)."""
        self.allocate(split, name, values.shape, values.dtype)
        self.write(split, name, 0, np.asarray(values))

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
    """All arrays of one split ("train" or "test"), memory-mapped read-only, keyed by view name.

    Each array's shape and dtype are checked against the manifest (they are in the .npy header, so this reads no
    data); `verify` checks the contents.
    """
    manifest = read_manifest(folder)
    arrays = {}
    for key, entry in manifest["arrays"].items():
        if not key.startswith(f"{split}/"):
            continue
        path = folder / f"{key}.npy"
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise DataError(f"{path} cannot be read ({first_line(error)}); {_REDO.format(name=folder.name)}") from None
        if list(array.shape) != entry["shape"] or str(array.dtype) != entry["dtype"]:
            raise DataError(
                f"{path} holds {array.dtype} {list(array.shape)} where its manifest says {entry['dtype']} "
                f"{entry['shape']}; {_REDO.format(name=folder.name)}"
            )
        arrays[key.split("/", 1)[1]] = array
    return arrays


def verify(folder: Path) -> int:
    """Check every array of a prepared dataset against the sha256 in its manifest; returns how many there are."""
    manifest = read_manifest(folder)
    for key, entry in manifest["arrays"].items():
        path = folder / f"{key}.npy"
        if not path.is_file() or _sha256(path) != entry["sha256"]:
            problem = "is missing" if not path.is_file() else "has changed since prepare wrote it (sha256 differs)"
            raise DataError(f"{path} {problem}; {_REDO.format(name=folder.name)}")
    return len(manifest["arrays"])


_REDO = "prepare it again with `dvc repro -f prepare@{name}`"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
