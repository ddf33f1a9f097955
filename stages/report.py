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
    """Write reports/<study>/table.csv and table.md."""
    with user_errors():
        from pipeline.files import write_text
        from pipeline.report import study_table, to_markdown

        table = study_table(load(params), study, METRICS / study)
        write_text(REPORTS / study / "table.csv", table.to_csv(index=False))
        write_text(REPORTS / study / "table.md", to_markdown(table, f"Study `{study}`"))
        typer.echo(to_markdown(table, study))


if __name__ == "__main__":
    app()
