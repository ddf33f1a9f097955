"""`aegan`: every DVC stage as a subcommand (`aegan train ae_digits`).

Importing this stays light: no torch, no mlflow."""

from importlib.metadata import version
from typing import Annotated

import typer

from stages import apply, check, classify, code, derive, download, evaluate, prepare, report, summary, sweep, train

app = typer.Typer(add_completion=False, no_args_is_help=True)
# every DVC stage, then two commands that are none:
# `check` judges params.yaml, `apply` runs a trained model on one image
for command in (
    code.code,
    download.download,
    prepare.prepare,
    classify.classify,
    derive.derive,
    train.train,
    evaluate.evaluate,
    sweep.sweep,
    report.report,
    summary.summary,
    check.check,
    apply.apply,
):
    app.command()(command)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"aegan {version('aegan')}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """aegan: autoencoder/GAN studies as a DVC pipeline. Run `dvc repro` for everything, or one stage here."""


if __name__ == "__main__":
    app()
