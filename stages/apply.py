"""`aegan apply <experiment> <image>`: a trained model on one image file (not a DVC stage)."""

from pathlib import Path
from typing import Annotated

import typer

from stages.common import MODELS, ParamsOption, load, user_errors

app = typer.Typer(add_completion=False)


@app.command()
def apply(
    experiment: Annotated[str, typer.Argument(help="a trained experiment whose task maps images to images")],
    image: Annotated[Path, typer.Argument(help="a PNG or JPEG file", dir_okay=False)],
    out: Annotated[
        Path | None,
        typer.Option(help="where to write the result (.png or .jpg); default <image>_<experiment>.png here"),
    ] = None,
    params: ParamsOption = "params.yaml",
) -> None:
    """Run a trained model on one image, at the size it was trained on.

    Serves experiments whose task maps an image to an image:
    colorize: a gray or colour photo in, its colours out;
    translate: the file's edges drawn as an image;
    reconstruct: the file through the autoencoder;
    denoise: the file as the noisy input;
    restore: the file as the distorted measurement;
    transfer: the file decoded with its own condition.
    Not generate: a generator draws from noise.
    """
    with user_errors():
        from pipeline.inference import apply_to_file

        out = out or Path(f"{image.stem}_{experiment}.png")  # in the working directory, never beside the input
        apply_to_file(load(params), experiment, model_dir=MODELS / experiment, image_path=image, out_path=out)
        typer.echo(f"wrote {out}")


if __name__ == "__main__":
    app()
