"""DVC stage `summary`: one table across every study, the best experiment of each beside its strongest reference."""

import typer

from stages.common import METRICS, REPORTS, ParamsOption, load, outputs, user_errors, work

app = typer.Typer(add_completion=False)

SUMMARY = REPORTS / "summary.md"


@app.command()
def summary(params: ParamsOption = "params.yaml") -> None:
    """Write reports/summary.md: for each study, dataset and task the best experiment's PSNR, SSIM and FCD, its
    strongest reference (non-learned, raw input, real images) and the seed's published number, from metrics/."""
    with user_errors():
        from pipeline.summary import write_summary

        config = load(params)
        with outputs(SUMMARY), work():
            table = write_summary(config, METRICS, SUMMARY)
        typer.echo(table.to_markdown(index=False))


if __name__ == "__main__":
    app()
