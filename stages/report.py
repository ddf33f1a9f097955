"""DVC stage report@<study>: the study's side-by-side table, and its evaluations brought into their MLflow runs."""

from typing import Annotated

import typer

from stages.common import METRICS, PLOTS, REPORTS, ParamsOption, load, outputs, user_errors, work

app = typer.Typer(add_completion=False)


@app.command()
def report(
    study: Annotated[str, typer.Argument(help="a name listed under `studies:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write reports/<study>/table.csv, table.md, losses.csv and comparison/*.png (the study's models side by side, and
    for restore studies each forward model's time against error); log each experiment's scores and figures
    to its training run, and the table to a `<study> table` run."""
    with user_errors():
        from pipeline.report import to_markdown, write_report
        from pipeline.schema import ConfigError
        from pipeline.studies import study_for

        config = load(params)
        if study not in config.studies:
            raise ConfigError(f"studies: {study!r} is not listed; choose one of {', '.join(config.studies)}")
        with outputs(REPORTS / study), work():  # the MLflow store is opened inside, once
            table = write_report(config, study, METRICS, REPORTS, PLOTS)
        typer.echo(to_markdown(table, study, extras=study_for(study)))


if __name__ == "__main__":
    app()
