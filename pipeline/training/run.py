"""train@<experiment>: build task, model and update rule from params, fit with callbacks, resume if interrupted."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline import tracking
from pipeline.config import ExperimentConfig, Params
from pipeline.data.store import read_manifest
from pipeline.data.tensors import load_tensors
from pipeline.device import resolve_device
from pipeline.experiment import Experiment, attempt, resolve, save_trained
from pipeline.files import staged_dir, write_text
from pipeline.forward import check_forward
from pipeline.models import MODELS
from pipeline.schema import ConfigError, check_kwargs
from pipeline.training import checkpoint, distributed
from pipeline.training.callbacks import Checkpointer, History, MetricLogger, ProgressBar
from pipeline.training.loop import check_batch_size, fit
from pipeline.training.updates import UpdateRule, update_rule_for

# what a checkpoint that does not fit the model code raises on loading (other model code, or a file made by hand)
UNFITTING = (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError)


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
    world, device = distributed.join(params.base.seed, resolve_device(params.base.device))
    try:
        return _train(
            params, experiment, config, settings, world, device, prepared_dir, model_dir, plots_dir, checkpoint_path
        )
    finally:
        distributed.leave()


def _train(
    params: Params,
    experiment: Experiment,
    config: ExperimentConfig,
    settings: Mapping[str, Any],
    world: distributed.World,
    device: torch.device,
    prepared_dir: Path,
    model_dir: Path,
    plots_dir: Path,
    checkpoint_path: Path,
) -> dict[str, Any]:
    """`train_experiment` on this rank: every rank trains; rank 0 alone reads the checkpoint (and hands it to the
    others), logs to MLflow and writes the outputs."""
    name = experiment.name
    arrays = load_tensors(prepared_dir, "train", experiment.task, device)
    model, update, generator = _start(experiment, settings, params.base.seed, device)

    manifest = read_manifest(prepared_dir)
    fingerprint = _fingerprint(tracking.run_params(params, config, name), manifest, world.size)
    state = checkpoint.load(checkpoint_path) if world.leader else None
    if state is not None and state["fingerprint"] != fingerprint:
        print(f"{checkpoint_path} was written with other settings or data; training from scratch", file=sys.stderr)
        state = None
    state = distributed.broadcast(state)
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            update.load_state_dict(state["update"])
            checkpoint.restore_rng(generator, state["rng"])
        except UNFITTING:
            if world.leader:
                print(f"{checkpoint_path} does not fit the current model code; training from scratch", file=sys.stderr)
            state = None
            model, update, generator = _start(experiment, settings, params.base.seed, device)  # as if none was there
    history = History(state["history"] if state else None)
    start_epoch, step = (state["epoch"], state["step"]) if state else (0, 0)
    seconds_before = state["seconds"] if state else 0.0

    check_batch_size(len(arrays["labels"]), config.train.batch_size)  # before a run is opened for nothing
    every = checkpoint.interval()  # likewise a bad AEGAN_CHECKPOINT_SECONDS
    train = functools.partial(
        _fit,
        model,
        update,
        experiment.task,
        arrays,
        epochs=config.train.epochs,
        batch_size=config.train.batch_size,
        generator=generator,
        start_epoch=start_epoch,
        step=step,
        precision=params.base.precision,
        sync_every=config.train.log_every,
        world=world,
    )
    if not world.leader:
        train(callbacks=[])
        return {}
    uri = tracking.resolve_uri(params.tracking.uri)
    tags = {
        "dvc.stage": f"train@{name}",
        "dataset": config.dataset,
        "model": config.model.name,
        "task": config.task.name,
        "aegan.params": fingerprint[:8],  # tells two variants of one experiment apart
        "aegan.ranks": str(world.size),
        **tracking.dvc_experiment(),
        "mlflow.note.content": f"{config.model.name} on {config.dataset}, task {config.task.name}",
    }
    label = tags.get("dvc.exp_name") or fingerprint[:8]  # the DVC experiment's name under `dvc exp run`
    run = tracking.Store(uri).start_run(
        experiment=config.study, name=f"{name} ({label})", tags=tags, run_id=state and state["run_id"]
    )
    with run:  # ends FAILED (KILLED on Ctrl-C) if anything fails once it is open, never RUNNING
        if run.created:
            run.log_params(tracking.logged_params(params, config, name, experiment.task))
            run.log_dataset(config.dataset, manifest, prepared_dir)
        summary = _fit_and_save(
            run,
            experiment,
            config,
            model,
            update,
            train,
            generator,
            history,
            count=len(arrays["labels"]),
            start_epoch=start_epoch,
            seconds_before=seconds_before,
            checkpoint_seconds=every,
            fingerprint=fingerprint,
            model_dir=model_dir,
            plots_dir=plots_dir,
            checkpoint_path=checkpoint_path,
        )
        run.log_model(model_dir, name=name, kind=config.model.name)
    checkpoint_path.unlink(missing_ok=True)
    if checkpoint_path.parent.exists() and not any(checkpoint_path.parent.iterdir()):
        checkpoint_path.parent.rmdir()
    return summary


def _start(
    experiment: Experiment, settings: Mapping[str, Any], seed: int, device: torch.device
) -> tuple[nn.Module, UpdateRule, torch.Generator]:
    """A fresh model, its update rule and the batch generator, seeded alike on every rank (so every replica
    starts from the same weights)."""
    torch.manual_seed(seed)
    model = distributed.prepare(experiment.build_model().to(device), device)
    return model, build_update(experiment, model, settings), torch.Generator(device).manual_seed(seed)


def _fit(model: nn.Module, update: UpdateRule, *args: Any, **kwargs: Any) -> int:
    """`fit`, then the rule's last word (`finish`: averaged weights in place) and a check that the ranks agree."""
    model.train()
    step = fit(update, *args, **kwargs)
    update.finish()
    distributed.check_replicas(model)
    return step


def _fit_and_save(
    run: tracking.Run,
    experiment: Experiment,
    config: ExperimentConfig,
    model: nn.Module,
    update: UpdateRule,
    train: Callable[..., int],
    generator: torch.Generator,
    history: History,
    *,
    count: int,
    start_epoch: int,
    seconds_before: float,
    checkpoint_seconds: float,
    fingerprint: str,
    model_dir: Path,
    plots_dir: Path,
    checkpoint_path: Path,
) -> dict[str, Any]:
    """The training itself, inside the open run: `train` (`_fit`, its settings bound) from `start_epoch` with
    the callbacks that log, show progress and checkpoint, then write the outputs."""
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

    progress = ProgressBar(experiment.name, total_images=count * config.train.epochs, done_images=count * start_epoch)
    logger = MetricLogger(run, history)
    saver = Checkpointer(checkpoint_path, snapshot, epochs=config.train.epochs, seconds=checkpoint_seconds)
    try:
        step = train(callbacks=[history, logger, progress, saver])
    except BaseException:
        with contextlib.suppress(Exception):  # the metrics up to the failure, if the store still takes them
            logger.flush()
        raise
    finally:
        progress.close()
    logger.flush()
    seconds = seconds_before + time.perf_counter() - started

    summary = {
        "run_id": run.run_id,
        "experiment": experiment.name,
        "epochs": config.train.epochs,
        "train_seconds": seconds,
    }
    save_trained(experiment, model, summary, model_dir)
    _write_curves(history.rows, plots_dir)
    run.log_metrics([(step, {"train_seconds": seconds})])
    return summary


def _write_curves(rows: list[dict[str, float]], plots_dir: Path) -> None:
    """One CSV per loss (epoch, value): DVC plots then draw every curve of every model family."""
    with staged_dir(plots_dir) as staging:
        for name in [key for key in rows[0] if key != "epoch"] if rows else []:
            lines = ["epoch," + name, *(f"{row['epoch']},{row[name]:.6g}" for row in rows)]
            write_text(staging / f"{name}.csv", "\n".join(lines) + "\n")


def _fingerprint(run: dict[str, Any], manifest: dict[str, Any], ranks: int) -> str:
    """What a checkpoint must have been written under to be resumed: the settings, the data and the number of
    ranks (a user's own torchrun may differ from base.processes; other ranks draw other noise)."""
    arrays = {key: entry["sha256"] for key, entry in manifest["arrays"].items() if key.startswith("train/")}
    text = json.dumps({"params": run, "data": arrays, "ranks": ranks}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
