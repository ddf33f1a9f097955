"""DVC stage prepare@<dataset>: standardised uint8 arrays, a fixed split, derived views and distorted copies."""

from typing import Annotated

import typer

from stages.common import PREPARED, RAW, ParamsOption, load, outputs, user_errors, work

app = typer.Typer(add_completion=False)


@app.command()
def prepare(
    dataset: Annotated[str, typer.Argument(help="key under `datasets:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write data/prepared/<dataset>/{train,test}/*.npy and manifest.json."""
    with user_errors():
        from pipeline.data.prepare import prepare_dataset

        config = load(params)
        settings = config.dataset(dataset)
        with outputs(PREPARED / dataset), work():
            manifest = prepare_dataset(dataset, settings, RAW / dataset, PREPARED / dataset, config.base.seed)
            typer.echo(
                f"prepared {dataset}: {manifest['counts']['train']} train, {manifest['counts']['test']} test images"
                + (
                    f"; skipped {manifest['skipped']} files, listed in {PREPARED / dataset / 'skipped.csv'}"
                    if manifest["skipped"]
                    else ""
                )
            )


if __name__ == "__main__":
    app()
