"""DVC stage render@<experiment>: comparison grids as PNG, also attached to the model's MLflow run."""

from typing import Annotated

import typer

from stages.common import MODELS, PREPARED, REPORTS, ParamsOption, load, user_errors

app = typer.Typer(add_completion=False)


@app.command()
def render(
    experiment: Annotated[str, typer.Argument(help="key under `experiments:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write reports/<study>/<experiment>/*.png."""
    with user_errors():
        from pipeline.render import render_experiment

        config = load(params)
        settings = config.experiment(experiment)
        paths = render_experiment(
            config, experiment, prepared_dir=PREPARED / settings.dataset, model_dir=MODELS / experiment,
            out_dir=REPORTS / settings.study / experiment,
        )  # fmt: skip
        typer.echo("wrote " + ", ".join(map(str, paths)))


if __name__ == "__main__":
    app()
