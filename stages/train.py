"""DVC stage train@<experiment>: fit one model; an interrupted run resumes from its last epoch checkpoint."""

import contextlib
import os
import subprocess
import sys
from typing import Annotated

import typer

from stages.common import CHECKPOINTS, MODELS, PLOTS, PREPARED, ParamsOption, load, outputs, user_errors

app = typer.Typer(add_completion=False)


@app.command()
def train(
    experiment: Annotated[str, typer.Argument(help="key under `experiments:` in params.yaml")],
    params: ParamsOption = "params.yaml",
) -> None:
    """Write models/<experiment>/{model.pt,run.json} and plots/<study>/<experiment>/*.csv; log the run to MLflow.

    With base.processes > 1 it runs itself again under torchrun, as that many data-parallel ranks; started by
    torchrun (on one machine or several) it is one rank, and rank 0 alone writes and logs."""
    with user_errors():
        config = load(params)
        chosen = config.experiment(experiment)
        if config.base.processes > 1 and "WORLD_SIZE" not in os.environ:  # torchrun sets it for every rank
            raise typer.Exit(launch(config.base.processes, ["train", experiment, "--params", str(params)]))
        from pipeline.training.run import train_experiment

        model_dir, checkpoints = MODELS / experiment, CHECKPOINTS / experiment
        plots_dir = PLOTS / chosen.study / experiment  # report@<study> draws its experiments' curves together
        leader = os.environ.get("RANK", "0") == "0"  # rank 0 of a torchrun job alone writes and logs
        with outputs(model_dir, plots_dir, checkpoints) if leader else contextlib.nullcontext():
            summary = train_experiment(
                config,
                experiment,
                prepared_dir=PREPARED / chosen.dataset,
                model_dir=model_dir,
                plots_dir=plots_dir,
                checkpoint_path=checkpoints / "last.pt",
            )
        if leader:
            typer.echo(f"trained {experiment} in {summary['train_seconds']:.1f} s (MLflow run {summary['run_id']})")
            # the stage's work is its training; opening the MLflow store and building optimizers are start-up
            typer.echo(f"work: {summary['train_seconds']:.2f} s")


def launch(processes: int, arguments: list[str]) -> int:
    """Run `aegan <arguments>` as `processes` torchrun ranks on this machine, before this process has imported
    torch: `--standalone` picks a free port, so two stages launched at once do not meet. Returns torchrun's
    exit status (non-zero when any rank failed; torchrun then stops the others)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    return subprocess.run([*command, "-m", "stages.cli", *arguments], check=False).returncode


if __name__ == "__main__":
    app()
