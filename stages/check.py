"""`aegan check`: every check of params.yaml, those that need the library too, for every experiment.

Not a DVC stage."""

from typing import Annotated

import typer

from stages.common import PREPARED, ParamsOption, load, user_errors

app = typer.Typer(add_completion=False)


@app.command()
def check(
    params: ParamsOption = "params.yaml",
    data: Annotated[
        bool, typer.Option("--data", help="also check every prepared array against its manifest's sha256")
    ] = False,
) -> None:
    """Check params.yaml as every stage would before it runs: keys, types and names, then each experiment's
    settings against its model, task and update rule (built weightless), and each dataset's forward models.
    With --data, also read every prepared dataset in data/prepared/ whole and check it against its manifest."""
    with user_errors():
        from pipeline.training.run import check_all

        config = load(params)
        check_all(config)
        typer.echo(f"{params}: {len(config.datasets)} datasets and {len(config.experiments)} experiments check out")
        if data:
            from pipeline.data.store import verify

            for name in config.datasets:
                folder = PREPARED / name
                if (folder / "manifest.json").is_file():
                    typer.echo(f"{folder}: {verify(folder)} arrays match their manifest")
                else:
                    typer.echo(f"{folder}: not prepared yet (`dvc repro prepare@{name}`)")


if __name__ == "__main__":
    app()
