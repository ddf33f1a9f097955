"""DVC stage evaluate@<experiment>: per-image PSNR/SSIM on the test split; means and spread as DVC metrics."""

import json
from typing import Annotated

import typer

from stages.common import METRICS, MODELS, PREPARED, ParamsOption, load, user_errors

app = typer.Typer(add_completion=False)


@app.command()
def evaluate(
    experiment: Annotated[str, typer.Argument(help="key under `experiments:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write metrics/<study>/<experiment>.json (summary) and .csv (one row per test image)."""
    with user_errors():
        from pipeline.evaluation.evaluate import evaluate_experiment
        from pipeline.files import write_text

        config = load(params)
        settings = config.experiment(experiment)
        summary, per_image = evaluate_experiment(
            config, experiment, prepared_dir=PREPARED / settings.dataset, model_dir=MODELS / experiment
        )
        out = METRICS / settings.study / experiment
        write_text(out.with_suffix(".csv"), per_image.to_csv(index=False))
        write_text(out.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
        typer.echo(f"{experiment}: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if k.endswith("_mean")))


if __name__ == "__main__":
    app()
