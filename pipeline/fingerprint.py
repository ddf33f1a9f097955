"""The code half of each DVC stage's dependencies: the project files its command can run, with their checksums.

A stage's command runs its file in stages/, stages/common.py and every pipeline module reachable from them
through imports (at module level or inside functions, but not under `if TYPE_CHECKING:`), each package's
__init__ included. The `code` stage writes one list per stage kind to data/code/<kind>.txt and every stage
depends on its kind's list: the list changes exactly when one of the files it names does, so a stage re-runs
for the code it runs and no other. One dependency in dvc.lock instead of twenty per stage keeps the lock small,
which matters because DVC parses and rewrites the whole lock after every stage.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from pipeline.files import write_text

# the DVC stages' commands
KINDS = ("download", "prepare", "classify", "derive", "train", "evaluate", "sweep", "report", "summary")


def imported_names(file: Path) -> set[str]:
    """Every `pipeline.…` name `file` imports (a module, or a module's member), outside `if TYPE_CHECKING:`."""
    tree = ast.parse(file.read_text())
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return {name for name in names if name.split(".")[0] == "pipeline"}


def stage_files(root: Path, kind: str) -> list[Path]:
    """The project files `aegan <kind>` can run, relative to `root`, sorted."""
    starts = [root / "stages" / f"{kind}.py", root / "stages" / "common.py"]
    seen = set(starts)
    todo = sorted(set().union(*(imported_names(file) for file in starts)))
    while todo:
        parts = todo.pop().split(".")
        for end in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            file = _module_file(root, parts[:end])
            if file is not None and file not in seen:
                seen.add(file)
                todo.extend(imported_names(file))
    return sorted(file.relative_to(root) for file in seen)


def fingerprint(root: Path, kind: str) -> str:
    """`<sha256>  <path>` per line, for every file `aegan <kind>` can run."""
    return "".join(
        f"{hashlib.sha256((root / path).read_bytes()).hexdigest()}  {path.as_posix()}\n"
        for path in stage_files(root, kind)
    )


def write_fingerprints(root: Path, out_dir: Path) -> list[Path]:
    """Write out_dir/<kind>.txt for every stage kind; returns the paths."""
    paths = [out_dir / f"{kind}.txt" for kind in KINDS]
    for kind, path in zip(KINDS, paths):
        write_text(path, fingerprint(root, kind))
    return paths


def _module_file(root: Path, parts: list[str]) -> Path | None:
    path = root.joinpath(*parts)
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None
