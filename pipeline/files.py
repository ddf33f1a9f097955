"""Outputs that are whole or absent, written by one process at a time, and only inside the project.

A stage builds a folder under a staging name unique to its process and renames it into place when complete
(`staged_dir`); files go through a temporary name and `os.replace` (`write_text`, `write_arrays`). A lock per
output (`claim`, an `fcntl` lock on `.<name>.lock` beside it) keeps a second process running the same stage
from publishing over the first: it fails at once, in one line, before any work.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pipeline.errors import AeganError

_held: dict[Path, int] = {}  # resolved output path -> the open lock file this process holds for it


class BusyError(AeganError):
    """Another process is writing the same output."""


def inside(path: Path, root: Path | None = None) -> Path:
    """`path` itself, after checking that it resolves (links followed) to a place inside `root`.

    Stages run from the project root (DVC runs them there), so `root` defaults to the working directory.
    """
    root = (root or Path.cwd()).resolve()
    if not path.absolute().resolve().is_relative_to(root):
        raise AeganError(f"{path} lies outside the project ({root}); aegan writes only inside the project folder")
    return path


@contextmanager
def claim(target: Path, wait: bool = False) -> Iterator[None]:
    """Hold `target`'s lock while the block runs; another process holding it is a one-line BusyError, or with
    `wait` is waited for (a shared download cache file: the second run then finds it complete).

    Re-entrant within one process (a stage claims its output before its work, and `staged_dir` claims it again
    when it publishes). The lock file stays: removing it would let a third process lock a file the second still
    holds open.
    """
    key = target.absolute().resolve()
    if key in _held:
        yield
        return
    lock = target.with_name(f".{target.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:  # never through a link: a lock file linked elsewhere (a checkout can bring one) must not be written
        handle = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise AeganError(f"cannot use {lock} as a lock file ({error.strerror}); remove it and run again") from None
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise AeganError(f"{lock} is not a plain file; remove it and run again")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise BusyError(
            f"another run is writing {target} (it holds {lock}); wait for it to finish or stop it"
        ) from None
    os.ftruncate(handle, 0)
    os.write(handle, f"{os.getpid()}\n".encode())  # who holds it, for a user who wonders
    _held[key] = handle
    try:
        yield
    finally:
        del _held[key]
        os.close(handle)  # closing releases the lock


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces `target`, on any failure it is removed.

    The staging name is unique to the call, and what it removes is only ever a folder of this layout: stale
    staging folders of `target` left by a killed run, and `target` itself once the new one is complete. A
    `target` that is a link or a file is refused rather than followed or removed.
    """
    with claim(target):
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise AeganError(f"{target} exists and is not a folder aegan wrote; move it away and run again")
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.partial"):
            shutil.rmtree(stale, ignore_errors=True)  # we hold the lock, so no live run is filling it
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
        os.chmod(staging, 0o755)  # mkdtemp makes it private; an output folder is an ordinary one
        try:
            yield staging
            if not target.exists():
                os.replace(staging, target)
                return
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
            os.replace(target, retired / target.name)
            try:
                os.replace(staging, target)
            except BaseException:
                os.replace(retired / target.name, target)  # the old output back in place
                raise
            shutil.rmtree(retired, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def write_text(path: Path, text: str) -> None:
    """Write a file via a temporary name unique to the call, so a reader never sees half of it."""
    with new_file(path) as partial:
        partial.write_text(text)


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays as one compressed .npz via a temporary name."""
    with new_file(path) as partial, partial.open("wb") as file:  # a file object: numpy adds no .npz suffix
        np.savez_compressed(file, **arrays)


@contextmanager
def new_file(path: Path) -> Iterator[Path]:
    """A fresh temporary name beside `path` to write to, renamed onto `path` when the block succeeds and removed
    when it fails, so `path` is the old file or the whole new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        os.chmod(partial, 0o644)  # mkstemp makes it private; outputs are ordinary files
        with partial.open("rb+") as written:  # on disk before the rename: after a power loss, old or new, not empty
            os.fsync(written.fileno())
        os.replace(partial, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # and the rename itself
        finally:
            os.close(folder)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
