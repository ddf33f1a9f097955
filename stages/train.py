"""DVC stage train@<experiment>: fit one model; an interrupted run resumes from its last epoch checkpoint."""

from typing import Annotated

import typer

from stages.common import CHECKPOINTS, MODELS, PLOTS, PREPARED, ParamsOption, load, outputs, user_errors

app = typer.Typer(add_completion=False)


@app.command()
def train(
    experiment: Annotated[str, typer.Argument(help="key under `experiments:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write models/<experiment>/{model.pt,run.json} and plots/<study>/<experiment>/*.csv; log the run to MLflow."""
    with user_errors():
        from pipeline.training.run import train_experiment

        config = load(params)
        chosen = config.experiment(experiment)
        model_dir, checkpoints = MODELS / experiment, CHECKPOINTS / experiment
        plots_dir = PLOTS / chosen.study / experiment  # report@<study> draws its experiments' curves together
        with outputs(model_dir, plots_dir, checkpoints):
            summary = train_experiment(
                config,
                experiment,
                prepared_dir=PREPARED / chosen.dataset,
                model_dir=model_dir,
                plots_dir=plots_dir,
                checkpoint_path=checkpoints / "last.pt",
            )
        typer.echo(f"trained {experiment} in {summary['train_seconds']:.1f} s (MLflow run {summary['run_id']})")
        # the stage's work is its training; opening the MLflow store and building optimizers are start-up
        typer.echo(f"work: {summary['train_seconds']:.2f} s")


if __name__ == "__main__":
    app()
