"""DVC stage report@<study>: the study's side-by-side table, and its evaluations brought into their MLflow runs."""

from typing import Annotated

import typer

from stages.common import COMPARISON, METRICS, REPORTS, ParamsOption, load, user_errors

app = typer.Typer(add_completion=False)


@app.command()
def report(
    study: Annotated[str, typer.Argument(help="a name listed under `studies:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write reports/<study>/table.csv, table.md and comparison/*.png (the study's models side by side, and
    for restore studies each forward model's time against error); log each experiment's scores and figures
    to its training run, and the table to a `<study> table` run."""
    with user_errors():
        from pipeline.config import ConfigError
        from pipeline.figures import grid, plot_time_curves, save_png
        from pipeline.files import staged_dir, write_text
        from pipeline.report import comparisons, log_study, study_table, time_curves, to_markdown

        config = load(params)
        if study not in config.studies:
            raise ConfigError(f"studies: {study!r} is not listed; choose one of {', '.join(config.studies)}")
        table = study_table(config, study, METRICS)
        figures = comparisons(config, study, METRICS)
        curves = time_curves(config, study, METRICS, table)
        folder = REPORTS / study / COMPARISON
        with staged_dir(folder) as staging:
            for key, (_, rows) in figures.items():
                save_png(grid(rows), staging / f"{key}.png")
            for key, methods in curves.items():
                plot_time_curves(methods, f"{key}: time against error", staging / f"time_{key}.png")
        shown = {f"{COMPARISON}/{key}.png": names for key, (names, _) in figures.items()}
        shown |= {f"{COMPARISON}/time_{key}.png": list(methods) for key, methods in curves.items()}
        paths = [REPORTS / study / "table.csv", REPORTS / study / "table.md"]
        write_text(paths[0], table.to_csv(index=False))
        write_text(paths[1], to_markdown(table, f"Study `{study}`", shown))
        log_study(config, study, METRICS, REPORTS, [*paths, *sorted(folder.iterdir())])
        typer.echo(to_markdown(table, study))


if __name__ == "__main__":
    app()
