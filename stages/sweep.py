"""DVC stage sweep@<experiment>-<percent>: a restore experiment trained and scored again at another drop
probability."""

import json
from typing import Annotated

import typer

from stages.common import (
    CHECKPOINTS,
    CLASSIFIERS,
    METRICS,
    MODELS,
    PREPARED,
    ParamsOption,
    load,
    outputs,
    user_errors,
    work,
)

app = typer.Typer(add_completion=False)


@app.command()
def sweep(
    experiment: Annotated[str, typer.Argument(help="a name listed under `sweep.experiments` in params.yaml")],
    percent: Annotated[int, typer.Argument(help="a drop probability in percent, listed under `sweep.percent`")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write models/sweep/<experiment>-p<percent>/ (its distorted copies, model, loss curves and figures) and
    metrics/<study>/sweep/<experiment>-p<percent>.json (its test scores and the non-learned restoration's)."""
    with user_errors():
        from pipeline.config import point_name
        from pipeline.schema import ConfigError

        config = load(params)
        if experiment not in config.sweep.experiments or percent not in config.sweep.percent:
            raise ConfigError(
                f"sweep: {experiment} at {percent}% is not a point; list both in sweep.experiments and sweep.percent"
            )
        from pipeline.files import write_text  # torch and MLflow only once the point is known
        from pipeline.sweep import run_point

        name = point_name(experiment, percent)
        scores = METRICS / config.sweep.study / "sweep" / f"{name}.json"
        with outputs(MODELS / "sweep" / name, scores, CHECKPOINTS / "sweep" / name), work():
            result = run_point(
                config,
                experiment,
                percent,
                prepared_dir=PREPARED / config.sweep.dataset,
                classifier_dir=CLASSIFIERS / config.sweep.dataset,
                out_dir=MODELS / "sweep" / name,
                checkpoint_path=CHECKPOINTS / "sweep" / name / "last.pt",
            )
            write_text(scores, json.dumps(result, indent=2) + "\n")
        typer.echo(f"{name}: PSNR {result['psnr_mean']:.2f} dB, non-learned {result['baseline_psnr_mean']:.2f} dB")


if __name__ == "__main__":
    app()
