"""DVC stage classify@<dataset>: the classifier whose features score generated samples (FCD)."""

from typing import Annotated

import typer

from stages.common import CLASSIFIERS, METRICS, PREPARED, ParamsOption, load, outputs, user_errors, work

app = typer.Typer(add_completion=False)


@app.command()
def classify(
    dataset: Annotated[str, typer.Argument(help="key under `datasets:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write models/classifiers/<dataset>/, metrics/classifiers/<dataset>.json (accuracy, FCD floors) and
    .timing.json (its training time)."""
    with user_errors():
        from pipeline.scores import write_scores
        from pipeline.training.classifier import train_classifier

        config = load(params)
        config.dataset(dataset)  # an unknown name fails here, in one line
        scores = METRICS / "classifiers" / f"{dataset}.json"
        with outputs(CLASSIFIERS / dataset, scores), work():  # the classifier's MLflow run is opened inside
            summary = train_classifier(config, dataset, prepared_dir=PREPARED / dataset, out_dir=CLASSIFIERS / dataset)
            write_scores(scores.with_suffix(""), summary)  # .json and .timing.json
        if summary["labelled"]:
            typer.echo(
                f"classifier {dataset}: test accuracy {summary['accuracy']:.4f}, "
                f"FCD test halves {summary['fcd_test_halves']:.3g}, train vs test {summary['fcd_train']:.3g}"
            )
        else:
            typer.echo(f"{dataset} has no labels: no classifier, so its models get no FCD")


if __name__ == "__main__":
    app()
