"""One experiment resolved for the stage about to run it: its task built, its model's class and arguments
checked against the constructors, and the pairings only the library can judge (the model fits the task,
its outputs reach the task's target range, the dataset prepares the distorted copies a restore task reads).

`pipeline.config` has already judged what params.yaml alone can say; this module raises the same one-line
`ConfigError`s for the rest, before the stage does any work. The update rule's own settings belong to
training (`pipeline.training.run.build_update`), so evaluation never imports the training code.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline import capabilities
from pipeline.config import MODEL_SHAPE_KEYS, ExperimentConfig, Params
from pipeline.errors import TrainingError, first_line
from pipeline.files import staged_dir, write_text
from pipeline.models import MODELS, build_model
from pipeline.schema import Component, ConfigError, check_kwargs
from pipeline.tasks import TASKS, Task

MODEL_FILE = "model.pt"  # in models/<experiment>/: the weights, and what rebuilds the model around them
RUN_FILE = "run.json"  # beside it: the MLflow run id and the training time


@dataclass(frozen=True)
class Experiment:
    """What a stage needs to run one experiment: its settings (task and model arguments typed), the built
    task, the model's class and the arguments it is built with (its shape from the task and dataset)."""

    name: str
    config: ExperimentConfig
    task: Task
    model_class: type[nn.Module]
    model_args: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"experiments.{self.name}"

    def build_model(self) -> nn.Module:
        """A freshly initialised model (on torch's current default device); a setting only the constructor
        can judge, such as an image size the model's depth cannot halve, is a one-line ConfigError."""
        return attempt(lambda: self.model_class(**self.model_args), f"{self.where}.model")


def resolve(params: Params, name: str) -> Experiment:
    """Build experiment `name`'s task and check its model and task settings against the library.

    Raises:
        ConfigError: naming the key path, as `pipeline.config` does.
    """
    config = params.experiment(name)
    dataset = params.dataset(config.dataset)
    where = f"experiments.{name}"
    task_class, model_class = TASKS[config.task.name], MODELS[config.model.name]
    task_args = check_kwargs(task_class, config.task.args, f"{where}.task")
    model_args = check_kwargs(model_class, config.model.args, f"{where}.model", provided=MODEL_SHAPE_KEYS)
    task = attempt(lambda: task_class(**task_args), f"{where}.task")

    wanted, given = task.conditioned_on, capabilities.condition_of(model_class)
    if wanted != given:
        conditional = sorted(n for n, m in MODELS.items() if capabilities.condition_of(m) == wanted)
        if wanted is None:
            raise ConfigError(f"{where}.task.name: {config.model.name} is conditioned on {given}s; use task transfer")
        reads = f"is conditioned on {given}s" if given else "reads no condition"
        raise ConfigError(
            f"{where}.model.name: {config.model.name} {reads}; {wanted} conditions need one of {', '.join(conditional)}"
        )
    extra = [view for view in task.views if view != "images"]
    if dataset.source == "reconstructions" and extra:  # a derived dataset holds images and labels alone
        raise ConfigError(
            f"{where}.dataset: derived dataset {config.dataset} has no {', '.join(extra)}; task {config.task.name} "
            f"needs it, so train this experiment on {params.origin(config.dataset)}"
        )
    if task.restores:  # the dataset must prepare the copies, the model suit the mode
        if task.forward not in dataset.forward:
            raise ConfigError(
                f"{where}.task.forward: dataset {config.dataset} prepares no {task.forward} copies; "
                f"add {task.forward} under datasets.{config.dataset}.forward"
            )
        if task.supervised and not capabilities.encodes(model_class):
            raise ConfigError(
                f"{where}.task.supervised: {config.model.name} has no encoder to learn a restoration with; "
                "a generator trains on the measurements (remove supervised)"
            )
    decoder_only = capabilities.samples(model_class) and not capabilities.encodes(model_class)
    if task.reconstructs and decoder_only and not task.searches_latent:  # a decoder-only model restores by search
        raise ConfigError(
            f"{where}.task.name: {config.model.name} maps noise to images, not images to images; use task generate"
        )
    reach = capabilities.output_range(model_class)
    if task.reconstructs and reach != task.target_range:
        raise ConfigError(
            f"{where}.model.name: {config.model.name}'s outputs lie in {list(reach)} but task "
            f"{config.task.name} needs {list(task.target_range)}; pick a model made for the task"
        )
    beyond = [t for t in params.figures.transfer_targets if wanted == "label" and t >= task.classes]
    if beyond:
        raise ConfigError(
            f"figures.transfer_targets: {beyond[0]} is not a label of {where}'s {task.classes} classes; "
            f"pick targets below {task.classes}"
        )
    if not task.reconstructs and not capabilities.samples(model_class):
        raise ConfigError(f"{where}.task.name: {config.model.name} cannot sample; use task reconstruct")
    typed = dataclasses.replace(
        config, task=Component(config.task.name, task_args), model=Component(config.model.name, model_args)
    )
    return Experiment(name, typed, task, model_class, {**task.model_shape(dataset), **model_args})


def attempt(build: Callable[[], Any], where: str) -> Any:
    """Run a constructor; its ValueError or TypeError becomes a ConfigError at `where`."""
    try:
        return build()
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {error}") from None


def save_trained(experiment: Experiment, model: nn.Module, summary: dict[str, Any], model_dir: Path) -> None:
    """model_dir/{model.pt, run.json}, published whole: the weights with what rebuilds the model around them
    (read back by `load_trained` as data), and the run's summary."""
    with staged_dir(model_dir) as staging:
        config = experiment.config
        saved = {
            "model": config.model.name,
            "model_args": dict(experiment.model_args),
            "state_dict": model.state_dict(),
        }
        torch.save({**saved, "task": config.task.name, "task_args": plain(config.task.args)}, staging / MODEL_FILE)
        write_text(staging / RUN_FILE, json.dumps(summary, indent=2) + "\n")


def load_trained(model_dir: Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The trained model in eval mode, and the run summary written beside it."""
    path = model_dir / MODEL_FILE
    if not path.exists():
        raise TrainingError(f"{path} not found; run `dvc repro train@{model_dir.name}` first")
    try:  # loaded as data (weights_only): a crafted file runs no code
        saved = torch.load(path, map_location=device, weights_only=True)
        model = build_model(saved["model"], **saved["model_args"]).to(device)
        model.load_state_dict(saved["state_dict"])
        run = json.loads((model_dir / RUN_FILE).read_text())
    except Exception as error:  # damaged, from other model code, or not a model file at all
        raise TrainingError(
            f"{model_dir} does not hold a model this code can load ({first_line(error)}); "
            f"run `dvc repro --force train@{model_dir.name}`"
        ) from None
    return model.eval(), run


def plain(args: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as builtins (a nested config as a dict), which `torch.load(weights_only=True)` reads back."""
    return {key: dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value for key, value in args.items()}
