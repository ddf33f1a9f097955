"""`aegan`: every DVC stage as a subcommand (`aegan train ae_digits`).

Importing this stays light: no torch, no mlflow."""

import typer

from stages import apply, check, classify, code, download, evaluate, prepare, report, train

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="aegan: autoencoder/GAN studies as a DVC pipeline. Run `dvc repro` for everything, or one stage here.",
)
# every DVC stage, then two commands that are none:
# `check` judges params.yaml, `apply` runs a trained model on one image
for command in (
    code.code,
    download.download,
    prepare.prepare,
    classify.classify,
    train.train,
    evaluate.evaluate,
    report.report,
    check.check,
    apply.apply,
):
    app.command()(command)

if __name__ == "__main__":
    app()
