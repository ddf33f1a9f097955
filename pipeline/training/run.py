"""train@<experiment>: build task, model and update rule from params, fit with callbacks, resume if interrupted."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline import tracking
from pipeline.config import ExperimentConfig, Params, flatten
from pipeline.data.store import read_manifest
from pipeline.data.tensors import load_tensors
from pipeline.device import resolve_device
from pipeline.experiment import MODEL_FILE, RUN_FILE, Experiment, attempt, plain, resolve
from pipeline.files import staged_dir, write_text
from pipeline.forward import check_forward
from pipeline.models import MODELS
from pipeline.schema import ConfigError, check_kwargs
from pipeline.tasks.base import Task
from pipeline.training import checkpoint
from pipeline.training.callbacks import Checkpointer, History, MetricLogger, ProgressBar
from pipeline.training.loop import check_batch_size, fit
from pipeline.training.updates import UpdateRule, update_rule_for

CHECKPOINT_SECONDS = 10.0  # the least time between two checkpoints of a run (see Checkpointer)


def run_params(params: Params, experiment: ExperimentConfig, name: str) -> dict[str, Any]:
    """What an MLflow run records as params: the experiment's sections (typed, defaults filled in where the
    library has checked them), its dataset and `base`, flattened."""
    return {
        "experiment": name,
        **flatten({key: getattr(experiment, key) for key in ("study", "task", "model", "update", "train")}),
        "dataset": experiment.dataset,
        **flatten(params.dataset(experiment.dataset), "dataset."),
        **flatten(params.base, "base."),
    }


def logged_params(params: Params, experiment: ExperimentConfig, name: str, task: Task) -> dict[str, Any]:
    """`run_params` as an MLflow run shows them: of the dataset's settings, only those that apply to its source
    and to the experiment's task: the edge detector's σ where the task reads edges, and of the forward models
    only the one a restore task measures through."""
    everything = run_params(params, experiment, name)
    applying = params.dataset(experiment.dataset).applying()
    if "edges" not in task.views:
        applying.pop("edge_sigma", None)
    forward = applying.pop("forward", {})
    if task.restores and task.forward in forward:
        applying["forward"] = {task.forward: forward[task.forward]}
    kept = {key: value for key, value in everything.items() if not key.startswith("dataset.")}
    return kept | flatten(applying, "dataset.")


def check_update(experiment: Experiment) -> Mapping[str, Any]:
    """The update rule's settings checked against its constructor (typed), and whether it can learn what the
    task hands it; a one-line ConfigError otherwise."""
    rule, where = update_rule_for(experiment.model_class), f"{experiment.where}.update"
    task = experiment.task
    if task.restores and not task.supervised and not rule.learns_from_measurements:
        learners = sorted(n for n, m in MODELS.items() if update_rule_for(m).learns_from_measurements)
        raise ConfigError(
            f"{experiment.where}.task.supervised: {experiment.config.model.name} learns from clean targets; "
            f"set supervised: true or use one of {', '.join(learners)}"
        )
    return check_kwargs(rule, experiment.config.update, where)


def build_update(experiment: Experiment, model: nn.Module, settings: Mapping[str, Any]) -> UpdateRule:
    """The update rule for `model`, owning its optimizers; settings only its constructor can judge (a penalty
    and a clip both 0) are a one-line ConfigError."""
    return attempt(lambda: update_rule_for(type(model))(model, **settings), f"{experiment.where}.update")


def check_experiment(params: Params, name: str) -> None:
    """Every check the library can make of experiment `name` without training it: its settings against the
    constructors, and model and update rule built, weightless, on the meta device (`aegan check`)."""
    experiment = resolve(params, name)
    settings = check_update(experiment)
    with torch.device("meta"):
        build_update(experiment, experiment.build_model(), settings)


def check_all(params: Params) -> None:
    """`check_experiment` for every experiment, after every dataset's forward models: what `aegan check` runs."""
    for name, dataset in params.datasets.items():
        check_forward(dataset, f"datasets.{name}.forward")
    for name in params.experiments:
        check_experiment(params, name)


def train_experiment(
    params: Params, name: str, *, prepared_dir: Path, model_dir: Path, plots_dir: Path, checkpoint_path: Path
) -> dict[str, Any]:
    """Train experiment `name` and write model_dir/{model.pt, run.json} and plots_dir/<loss>.csv.

    A checkpoint at `checkpoint_path` from the same settings and data is resumed; it is removed once the
    outputs are written, so a forced re-run trains from scratch. The MLflow run is marked FAILED (KILLED on
    Ctrl-C) if anything after its opening fails, never left RUNNING.
    """
    experiment = resolve(params, name)
    settings = check_update(experiment)
    config = dataclasses.replace(experiment.config, update=settings)
    torch.manual_seed(params.base.seed)
    device = resolve_device(params.base.device)
    arrays = load_tensors(prepared_dir, "train", experiment.task, device)
    model = experiment.build_model().to(device)
    update = build_update(experiment, model, settings)
    generator = torch.Generator(device).manual_seed(params.base.seed)

    manifest = read_manifest(prepared_dir)
    fingerprint = _fingerprint(run_params(params, config, name), manifest)
    state = checkpoint.load(checkpoint_path)
    if state is not None and state["fingerprint"] != fingerprint:
        print(f"{checkpoint_path} was written with other settings or data; training from scratch", file=sys.stderr)
        state = None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            update.load_state_dict(state["update"])
            checkpoint.restore_rng(generator, state["rng"])
        except (
            RuntimeError,
            KeyError,
            ValueError,
            TypeError,
            AttributeError,
            IndexError,
        ):  # other model code, or a file made by hand
            print(f"{checkpoint_path} does not fit the current model code; training from scratch", file=sys.stderr)
            state = None
            torch.manual_seed(params.base.seed)  # as if no checkpoint had been there
            model = experiment.build_model().to(device)
            update = build_update(experiment, model, settings)
            generator = torch.Generator(device).manual_seed(params.base.seed)
    history = History(state["history"] if state else None)
    start_epoch, step = (state["epoch"], state["step"]) if state else (0, 0)
    seconds_before = state["seconds"] if state else 0.0

    check_batch_size(len(arrays["labels"]), config.train.batch_size)  # before a run is opened for nothing
    uri = tracking.resolve_uri(params.tracking.uri)
    tags = {
        "dvc.stage": f"train@{name}",
        "dataset": config.dataset,
        "model": config.model.name,
        "task": config.task.name,
        "aegan.params": fingerprint[:8],  # tells two variants of one experiment apart
        **tracking.dvc_experiment(),
        "mlflow.note.content": f"{config.model.name} on {config.dataset}, task {config.task.name}",
    }
    label = tags.get("dvc.exp_name") or fingerprint[:8]  # the DVC experiment's name under `dvc exp run`
    run = tracking.Store(uri).start_run(
        experiment=config.study, name=f"{name} ({label})", tags=tags, run_id=state and state["run_id"]
    )
    with run:  # ends FAILED (KILLED on Ctrl-C) if anything fails once it is open, never RUNNING
        if run.created:
            run.log_params(logged_params(params, config, name, experiment.task))
            run.log_dataset(config.dataset, manifest, prepared_dir)
        summary = _fit_and_save(
            run,
            experiment,
            config,
            model,
            update,
            arrays,
            generator,
            history,
            start_epoch=start_epoch,
            step=step,
            seconds_before=seconds_before,
            fingerprint=fingerprint,
            precision=params.base.precision,
            model_dir=model_dir,
            plots_dir=plots_dir,
            checkpoint_path=checkpoint_path,
        )
        run.log_model(model_dir, name=name, kind=config.model.name)
    checkpoint_path.unlink(missing_ok=True)
    if checkpoint_path.parent.exists() and not any(checkpoint_path.parent.iterdir()):
        checkpoint_path.parent.rmdir()
    return summary


def _fit_and_save(
    run: tracking.Run,
    experiment: Experiment,
    config: ExperimentConfig,
    model: nn.Module,
    update: UpdateRule,
    arrays: dict[str, torch.Tensor],
    generator: torch.Generator,
    history: History,
    *,
    start_epoch: int,
    step: int,
    seconds_before: float,
    fingerprint: str,
    precision: str,
    model_dir: Path,
    plots_dir: Path,
    checkpoint_path: Path,
) -> dict[str, Any]:
    """The training itself, inside the open run: fit from `start_epoch`, then write the outputs."""
    started = time.perf_counter()

    def snapshot(epoch: int, step: int) -> dict[str, Any]:
        return {
            "fingerprint": fingerprint,
            "epoch": epoch,
            "step": step,
            "run_id": run.run_id,
            "model": model.state_dict(),
            "update": update.state_dict(),
            "rng": checkpoint.rng_state(generator),
            "history": history.rows,
            "seconds": seconds_before + time.perf_counter() - started,
        }

    count = len(arrays["labels"])
    progress = ProgressBar(experiment.name, total_images=count * config.train.epochs, done_images=count * start_epoch)
    logger = MetricLogger(run, history)
    saver = Checkpointer(checkpoint_path, snapshot, epochs=config.train.epochs, seconds=CHECKPOINT_SECONDS)
    model.train()
    try:
        step = fit(
            update,
            experiment.task,
            arrays,
            epochs=config.train.epochs,
            batch_size=config.train.batch_size,
            generator=generator,
            start_epoch=start_epoch,
            step=step,
            precision=precision,
            sync_every=config.train.log_every,
            callbacks=[history, logger, progress, saver],
        )
    except BaseException:
        with contextlib.suppress(Exception):  # the metrics up to the failure, if the store still takes them
            logger.flush()
        raise
    finally:
        progress.close()
    logger.flush()
    update.finish()
    seconds = seconds_before + time.perf_counter() - started

    with staged_dir(model_dir) as staging:
        torch.save(
            {
                "model": config.model.name,
                "model_args": dict(experiment.model_args),
                "state_dict": model.state_dict(),
                "task": config.task.name,
                "task_args": plain(config.task.args),
            },
            staging / MODEL_FILE,
        )
        summary = {
            "run_id": run.run_id,
            "experiment": experiment.name,
            "epochs": config.train.epochs,
            "train_seconds": seconds,
        }
        write_text(staging / RUN_FILE, json.dumps(summary, indent=2) + "\n")
    _write_curves(history.rows, plots_dir)
    run.log_metrics([(step, {"train_seconds": seconds})])
    return summary


def _write_curves(rows: list[dict[str, float]], plots_dir: Path) -> None:
    """One CSV per loss (epoch, value): DVC plots then draw every curve of every model family."""
    with staged_dir(plots_dir) as staging:
        for name in [key for key in rows[0] if key != "epoch"] if rows else []:
            lines = ["epoch," + name, *(f"{row['epoch']},{row[name]:.6g}" for row in rows)]
            write_text(staging / f"{name}.csv", "\n".join(lines) + "\n")


def _fingerprint(run: dict[str, Any], manifest: dict[str, Any]) -> str:
    arrays = {key: entry["sha256"] for key, entry in manifest["arrays"].items() if key.startswith("train/")}
    text = json.dumps({"params": run, "data": arrays}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
