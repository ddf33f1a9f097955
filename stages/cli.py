"""`aegan`: every DVC stage as a subcommand (`aegan train ae_digits`). Importing this stays light: no torch, no mlflow."""

import typer

from stages import apply, classify, download, evaluate, prepare, render, report, train

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="aegan: autoencoder/GAN studies as a DVC pipeline. Run `dvc repro` for everything, or one stage here.",
)
# every DVC stage, then `apply`, which is none: it runs a trained model on one image file
for command in (download.download, prepare.prepare, classify.classify, train.train, evaluate.evaluate, render.render, report.report, apply.apply):
    app.command()(command)

if __name__ == "__main__":
    app()
