"""train@<experiment>: build task, model and update rule from params, fit with callbacks, resume if interrupted."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pipeline import tracking
from pipeline.config import Params, flatten
from pipeline.data.store import read_manifest
from pipeline.errors import TrainingError
from pipeline.files import staged_dir, write_text
from pipeline.models import build_model
from pipeline.tasks import build_task, load_tensors
from pipeline.training import checkpoint
from pipeline.training.callbacks import Checkpointer, History, MetricLogger, ProgressBar
from pipeline.training.loop import check_batch_size, fit, resolve_device
from pipeline.training.steps import update_rule_for

MODEL_FILE = "model.pt"
RUN_FILE = "run.json"


def run_params(params: Params, name: str) -> dict[str, Any]:
    """What an MLflow run records as params: the experiment's sections, its dataset and `base`, flattened."""
    experiment = params.experiment(name)
    return {
        "experiment": name,
        **flatten({key: getattr(experiment, key) for key in ("study", "task", "model", "update", "train")}),
        "dataset": experiment.dataset,
        **flatten(params.dataset(experiment.dataset), "dataset."),
        **flatten(params.base, "base."),
    }


def train_experiment(
    params: Params, name: str, *, prepared_dir: Path, model_dir: Path, plots_dir: Path, checkpoint_path: Path
) -> dict[str, Any]:
    """Train experiment `name` and write model_dir/{model.pt, run.json} and plots_dir/<loss>.csv.

    A checkpoint at `checkpoint_path` from the same settings and data is resumed; it is removed once the
    outputs are written, so a forced re-run trains from scratch.
    """
    experiment = params.experiment(name)
    torch.manual_seed(params.base.seed)
    device = resolve_device(params.base.device)
    task = build_task(experiment.task.name, **experiment.task.args)
    arrays = load_tensors(prepared_dir, "train", task, device)
    model_args = {**task.model_shape(params.dataset(experiment.dataset)), **experiment.model.args}
    model = build_model(experiment.model.name, **model_args).to(device)
    update = update_rule_for(type(model))(model, **experiment.update)
    generator = torch.Generator(device).manual_seed(params.base.seed)

    fingerprint = _fingerprint(run_params(params, name), read_manifest(prepared_dir))
    state = checkpoint.load(checkpoint_path)
    if state is not None and state["fingerprint"] != fingerprint:
        print(f"{checkpoint_path} was written with other settings or data; training from scratch", file=sys.stderr)
        state = None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            update.load_state_dict(state["update"])
        except (RuntimeError, KeyError, ValueError):  # the model's code changed since the checkpoint was written
            print(f"{checkpoint_path} does not fit the current model code; training from scratch", file=sys.stderr)
            state = None
            model = build_model(experiment.model.name, **model_args).to(device)
            update = update_rule_for(type(model))(model, **experiment.update)
    if state is not None:
        checkpoint.restore_rng(generator, state["rng"])
    history = History(state["history"] if state else None)
    start_epoch, step = (state["epoch"], state["step"]) if state else (0, 0)
    seconds_before = state["seconds"] if state else 0.0

    check_batch_size(len(arrays["labels"]), experiment.train.batch_size)  # before a run is opened for nothing
    uri = tracking.resolve_uri(params.tracking.uri)
    tags = {"dvc.stage": f"train@{name}", "dataset": experiment.dataset}
    run = tracking.start_run(uri, experiment=experiment.study, name=name, tags=tags, run_id=state and state["run_id"])
    if run.created:
        run.log_params(run_params(params, name))
    started = time.perf_counter()

    def snapshot(epoch: int, step: int) -> dict[str, Any]:
        return {
            "fingerprint": fingerprint, "epoch": epoch, "step": step, "run_id": run.run_id,
            "model": model.state_dict(), "update": update.state_dict(), "rng": checkpoint.rng_state(generator),
            "history": history.rows, "seconds": seconds_before + time.perf_counter() - started,
        }  # fmt: skip

    count = len(arrays["labels"])
    progress = ProgressBar(name, total_images=count * experiment.train.epochs, done_images=count * start_epoch)
    callbacks = [history, MetricLogger(run, history, every=experiment.train.log_every), progress]
    model.train()
    try:
        fit(
            update, task, arrays,
            epochs=experiment.train.epochs, batch_size=experiment.train.batch_size, generator=generator,
            start_epoch=start_epoch, step=step, precision=params.base.precision, sync_every=experiment.train.log_every,
            callbacks=[*callbacks, Checkpointer(checkpoint_path, snapshot)],
        )  # fmt: skip
    except BaseException as error:
        run.finish("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        progress.close()
    update.finish()
    seconds = seconds_before + time.perf_counter() - started

    with staged_dir(model_dir) as staging:
        torch.save(
            {"model": experiment.model.name, "model_args": model_args, "state_dict": model.state_dict(),
             "task": experiment.task.name, "task_args": plain(experiment.task.args)},
            staging / MODEL_FILE,
        )  # fmt: skip
        summary = {"run_id": run.run_id, "experiment": name, "epochs": experiment.train.epochs, "train_seconds": seconds}
        write_text(staging / RUN_FILE, json.dumps(summary, indent=2) + "\n")
    _write_curves(history.rows, plots_dir)
    run.log_metrics([(step, {"train_seconds": seconds})])
    run.log_artifact(model_dir / MODEL_FILE, "model")
    run.finish()
    checkpoint_path.unlink(missing_ok=True)
    if checkpoint_path.parent.exists() and not any(checkpoint_path.parent.iterdir()):
        checkpoint_path.parent.rmdir()
    return summary


def load_trained(model_dir: Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained model in eval mode, and the run summary written beside it."""
    path = model_dir / MODEL_FILE
    if not path.exists():
        raise TrainingError(f"{path} not found; run `dvc repro train@{model_dir.name}` first")
    saved = torch.load(path, map_location=device, weights_only=True)
    model = build_model(saved["model"], **saved["model_args"]).to(device)
    model.load_state_dict(saved["state_dict"])
    return model.eval(), json.loads((model_dir / RUN_FILE).read_text())


def plain(args: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as builtins (a nested config as a dict), which `torch.load(weights_only=True)` reads back."""
    return {key: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value for key, value in args.items()}


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
