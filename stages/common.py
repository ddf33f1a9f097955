"""What every stage shares: the output layout that dvc.yaml names, params loading, and one-line errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
CODE = Path("data/code")  # the `code` stage's lists of the files each stage kind runs
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


@contextmanager
def work() -> Iterator[None]:
    """Time what the stage does once its imports and params are loaded, and end its output with `work: <s> s`:
    the rest of the stage's wall time is start-up (bench/pipeline_time.py reads the line to tell them apart)."""
    started = time.perf_counter()
    yield
    typer.echo(f"work: {time.perf_counter() - started:.2f} s")


@contextmanager
def outputs(*paths: Path) -> Iterator[None]:
    """Check that every output lies inside the project, then hold each one's lock while the stage works: a
    second run of the same stage stops in one line before any work (see `pipeline.files.claim`)."""
    from pipeline.files import claim, inside

    for path in paths:
        inside(path)
    with ExitStack() as held:
        for path in paths:
            held.enter_context(claim(path))
        yield


def load(params_path: Path) -> Params:
    from pipeline.config import load_params

    return load_params(params_path)
