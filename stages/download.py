"""DVC stage download@<dataset>: fetch (or copy from installed packages) a dataset's raw files."""

from typing import Annotated

import typer

from stages.common import DOWNLOADS, RAW, ParamsOption, load, outputs, user_errors, work

app = typer.Typer(add_completion=False)


@app.command()
def download(
    dataset: Annotated[str, typer.Argument(help="key under `datasets:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Fill data/raw/<dataset>/; network files are verified by checksum and cached in data/downloads/."""
    with user_errors():
        from pipeline.data.sources import fetch

        settings = load(params).dataset(dataset)
        with outputs(RAW / dataset), work():
            fetch(dataset, settings, RAW / dataset, DOWNLOADS)


if __name__ == "__main__":
    app()
