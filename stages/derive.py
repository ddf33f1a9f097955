"""DVC stage derive@<name>: a dataset a trained experiment makes (its reconstructions of its own dataset)."""

from typing import Annotated

import typer

from stages.common import CLASSIFIERS, MODELS, PREPARED, ParamsOption, load, outputs, user_errors, work

app = typer.Typer(add_completion=False)


@app.command()
def derive(
    name: Annotated[str, typer.Argument(help="key under `derived:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write data/prepared/<name>/ (the experiment's reconstructions of both splits, the real test images as
    `reference`) and models/classifiers/<name>/ (its dataset's classifier, copied)."""
    with user_errors():
        from pipeline.config import ConfigError

        config = load(params)
        if name not in config.derived:
            choices = ", ".join(sorted(config.derived)) or "none are set"
            raise ConfigError(f"derived.{name}: no such entry; choose one of {choices}")
        from pipeline.data.derive import derive_dataset  # torch only once the name is known

        made = config.derived[name]
        with outputs(PREPARED / name, CLASSIFIERS / name), work():
            manifest = derive_dataset(
                config,
                name,
                source_dir=PREPARED / made.dataset,
                model_dir=MODELS / made.experiment,
                out_dir=PREPARED / name,
                classifier_dirs=(CLASSIFIERS / made.dataset, CLASSIFIERS / name),
            )
        counts = manifest["counts"]
        typer.echo(
            f"derived {name}: {made.experiment}'s reconstructions, {counts['train']} train and {counts['test']} test"
        )


if __name__ == "__main__":
    app()
