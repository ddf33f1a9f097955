"""`aegan check`: every check of params.yaml, including those that need the library, for every experiment (not a DVC stage)."""

import typer

from stages.common import ParamsOption, load, user_errors

app = typer.Typer(add_completion=False)


@app.command()
def check(params: ParamsOption = "params.yaml") -> None:
    """Check params.yaml as every stage would before it runs: keys, types and names, then each experiment's
    settings against its model, task and update rule (built weightless), and each dataset's forward models."""
    with user_errors():
        from pipeline.training.run import check_all

        config = load(params)
        check_all(config)
        typer.echo(f"{params}: {len(config.datasets)} datasets and {len(config.experiments)} experiments check out")


if __name__ == "__main__":
    app()
