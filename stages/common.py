"""What every stage shares: the output layout that dvc.yaml names, params loading, and one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from pipeline.config import Params

ParamsOption = Annotated[Path, typer.Option("--params", help="the params file", dir_okay=False)]

RAW = Path("data/raw")
DOWNLOADS = Path("data/downloads")  # persistent download cache, outside DVC so a kept or hand-placed file is reused
PREPARED = Path("data/prepared")
MODELS = Path("models")
CLASSIFIERS = MODELS / "classifiers"
PLOTS = Path("plots")
METRICS = Path("metrics")
REPORTS = Path("reports")
COMPARISON = "comparison"  # reports/<study>/comparison/: the study's models side by side (so no experiment may take the name)
CHECKPOINTS = Path("checkpoints")  # outside DVC outs: DVC deletes outs before a stage runs, which would lose them


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user-actionable error into one line on stderr and exit status 1."""
    from pipeline.errors import AeganError

    try:
        yield
    except AeganError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


def load(params_path: Path) -> Params:
    from pipeline.config import load_params

    return load_params(params_path)
