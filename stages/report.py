"""DVC stage report@<study>: the study's side-by-side table (CSV and Markdown)."""

from typing import Annotated

import typer

from stages.common import METRICS, REPORTS, ParamsOption, load, user_errors

app = typer.Typer(add_completion=False)


@app.command()
def report(
    study: Annotated[str, typer.Argument(help="a name listed under `studies:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write reports/<study>/table.csv and table.md, and attach them to a `<study> table` MLflow run."""
    with user_errors():
        from pipeline.files import write_text
        from pipeline.report import log_table, study_table, to_markdown

        config = load(params)
        table = study_table(config, study, METRICS)
        paths = [REPORTS / study / "table.csv", REPORTS / study / "table.md"]
        write_text(paths[0], table.to_csv(index=False))
        write_text(paths[1], to_markdown(table, f"Study `{study}`"))
        log_table(config, study, paths)
        typer.echo(to_markdown(table, study))


if __name__ == "__main__":
    app()
