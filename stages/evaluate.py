"""DVC stage evaluate@<experiment>: every score on the test split and every figure, from one set of predictions."""

import json
from typing import Annotated

import typer

from stages.common import (
    CLASSIFIERS,
    METRICS,
    MODELS,
    PREPARED,
    REPORTS,
    ParamsOption,
    load,
    outputs,
    user_errors,
    work,
)

app = typer.Typer(add_completion=False)


@app.command()
def evaluate(
    experiment: Annotated[str, typer.Argument(help="key under `experiments:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write metrics/<study>/<experiment>.json (summary), .timing.json (its clock readings), .csv (one row per
    test image, or per sample), .npz (the first test images in, out and true, or the first samples: the study
    report's comparison), .run.json (what the report brings into the MLflow run) and the figures in
    reports/<study>/<experiment>/."""
    with user_errors():
        from pipeline.evaluation.evaluate import evaluate_experiment
        from pipeline.files import write_arrays, write_text
        from pipeline.scores import write_scores

        config = load(params)
        settings = config.experiment(experiment)
        out = METRICS / settings.study / experiment  # .json, .csv, .npz and .run.json: one lock for the four
        with outputs(out, REPORTS / settings.study / experiment), work():
            summary, per_image, preview, record = evaluate_experiment(
                config,
                experiment,
                prepared_dir=PREPARED / settings.dataset,
                model_dir=MODELS / experiment,
                classifier_dir=CLASSIFIERS / settings.dataset,
                figures_dir=REPORTS / settings.study / experiment,
            )
            write_text(out.with_suffix(".csv"), per_image.to_csv(index=False))
            write_scores(out, summary)  # .json and .timing.json
            write_arrays(out.with_suffix(".npz"), preview)
            write_text(out.with_suffix(".run.json"), json.dumps(record, indent=2) + "\n")
        shown = {k: v for k, v in summary.items() if k.endswith("_mean") or k == "fcd"}
        typer.echo(f"{experiment}: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))


if __name__ == "__main__":
    app()
