"""The only reader of params.yaml: typed, frozen configuration that rejects what it does not know.

Every error is a `ConfigError` whose message names the key path (`experiments.ae_digits.train.epochs`)
and, for a choice, the valid values, so a stage can print it as one line and exit non-zero.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import AeganError


class ConfigError(AeganError):
    """params.yaml is missing, malformed, or holds an unknown key or a bad value."""


MODEL_SHAPE_KEYS = ("in_channels", "out_channels", "image_size", "condition_channels")  # filled from the task and dataset, not params


@dataclass(frozen=True)
class BaseConfig:
    """Settings every stage reads."""

    seed: int = 0  # drives numpy, torch and the train/test split
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast on CUDA; CPU always runs fp32


@dataclass(frozen=True)
class DatasetConfig:
    """One prepared dataset: where its images come from and which views prepare derives."""

    source: Literal["digits", "lfw_faces", "photos", "mnist", "fashion_mnist", "celeba", "folder"]
    image_size: int = 28  # square side after centre-crop and resize
    channels: Literal[1, 3] = 1
    test_fraction: float = 0.2  # ignored by sources with an official split (mnist, fashion_mnist, celeba)
    limit: int | None = None  # keep at most this many images (train and test together)
    count: int = 2000  # photos: number of random crops
    path: str | None = None  # folder: a local directory or archive of images
    url: str | None = None  # folder: archive URL; other downloadable sources: a mirror to use instead
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>" for `url` (folder archives)
    views: tuple[Literal["gray", "edges", "lab"], ...] = ()
    edge_sigma: float = 1.0  # Gaussian sigma of the Canny detector
    forward: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # forward model -> its kwargs


@dataclass(frozen=True)
class Component:
    """A registry entry chosen by name plus the keyword arguments its constructor takes."""

    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class TrainConfig:
    """Loop knobs; the update rule's own hyperparameters (learning rates, loss weights) live in `update`."""

    epochs: int = 10
    batch_size: int = 64
    log_every: int = 50  # steps between reading losses back from the device (NaN check, progress) and sending them to MLflow


@dataclass(frozen=True)
class ExperimentConfig:
    """One trained model: model + dataset + task + hyperparameters."""

    study: str
    dataset: str
    task: Component
    model: Component
    update: Mapping[str, Any]
    train: TrainConfig


@dataclass(frozen=True)
class ClassifierConfig:
    """The classifier trained per labelled dataset, and how many samples its features judge (FCD)."""

    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 32  # channels of the first conv block; the second has twice as many
    features: int = 64  # width of the penultimate layer, the space FCD is computed in
    samples: int = 1000  # samples drawn (fixed seed) from each generative model for its FCD


@dataclass(frozen=True)
class RenderConfig:
    """Figure layout, shared by every render stage."""

    columns: int = 8  # images per row in comparison grids
    frames: int = 16  # images per latent interpolation strip
    interpolation_pairs: tuple[tuple[int, int], ...] = ((0, 1), (4, 9), (10, 19))  # test-split indices
    transfer_targets: tuple[int, ...] = (5, 4)  # labels the first columns² test images are decoded with, as the seed's figures


@dataclass(frozen=True)
class TrackingConfig:
    uri: str = "sqlite:///mlflow.db"  # MLFLOW_TRACKING_URI, when set, wins


@dataclass(frozen=True)
class Params:
    datasets: Mapping[str, DatasetConfig]
    studies: tuple[str, ...]
    experiments: Mapping[str, ExperimentConfig]
    base: BaseConfig = BaseConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    render: RenderConfig = RenderConfig()
    tracking: TrackingConfig = TrackingConfig()

    def experiment(self, name: str) -> ExperimentConfig:
        return _pick(self.experiments, name, "experiments")

    def dataset(self, name: str) -> DatasetConfig:
        return _pick(self.datasets, name, "datasets")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read, type-check and cross-check params.yaml.

    Args:
        path: the YAML file.

    Returns:
        The frozen configuration.

    Raises:
        ConfigError: with the offending key path and what would be valid.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found; run from the project root or pass --params") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    return parse_params(raw)


def parse_params(raw: Any) -> Params:
    """Build `Params` from an already-parsed mapping (see `load_params`)."""
    if not isinstance(raw, dict):
        raise ConfigError("params.yaml must be a mapping of sections")
    return _cross_check(_build(Params, raw, ""))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a config (dataclass or mapping) into `a.b.c -> value`, as MLflow params want."""
    if isinstance(value, Component):
        value = {"name": value.name, **value.args}
    elif dataclasses.is_dataclass(value):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): list(value) if isinstance(value, tuple) else value}


def check_kwargs(
    target: Callable[..., Any], args: Mapping[str, Any], where: str, provided: tuple[str, ...] = ()
) -> Mapping[str, Any]:
    """Check keyword arguments against `target`'s keyword-only parameters and type hints.

    Args:
        target: a class or function whose keyword-only parameters are the valid keys.
        args: the keys and values from params.yaml.
        where: the key path, for messages.
        provided: parameters the pipeline fills in itself (a model's shape comes from its task and dataset).

    Returns:
        The arguments with values converted to their hinted types, read-only.
    """
    signature = inspect.signature(target)
    hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    accepted = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in provided
    }
    checked = {}
    for key, value in args.items():
        if key in provided:
            raise ConfigError(f"{where}.{key}: set by the dataset and task, remove it here")
        if key not in accepted:
            raise ConfigError(f"{where}.{key}: unknown key; valid keys are {', '.join(sorted(accepted)) or 'none'}")
        checked[key] = _coerce(hints[key], value, f"{where}.{key}") if key in hints else value
    missing = [n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in args]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    return types.MappingProxyType(checked)


def _pick(table: Mapping[str, Any], name: str, section: str) -> Any:
    if name not in table:
        raise ConfigError(f"{section}.{name}: no such entry; choose one of {', '.join(sorted(table))}")
    return table[name]


def _cross_check(params: Params) -> Params:
    """Check names against the registries and kwargs against the constructors; return params with kwargs typed."""
    # Imported here so that `aegan --help` never pays for torch.
    import torch

    from pipeline import forward, tasks
    from pipeline.models import MODELS
    from pipeline.models.vae import PriorSampler
    from pipeline.training.steps import update_rule_for

    datasets = {}
    for name, dataset in params.datasets.items():
        where = f"datasets.{name}"
        if dataset.source == "folder" and not (dataset.path or dataset.url):
            raise ConfigError(f"{where}: source 'folder' needs `path` (a directory or archive) or `url`")
        if dataset.url and dataset.source == "folder" and not dataset.checksum:
            raise ConfigError(f"{where}.checksum: an archive URL needs a checksum such as 'sha256:<hex>'")
        if dataset.limit is not None and dataset.limit < 2:
            raise ConfigError(f"{where}.limit: must be at least 2 (one train and one test image), got {dataset.limit}")
        if not 0.0 < dataset.test_fraction < 1.0:
            raise ConfigError(f"{where}.test_fraction: must be between 0 and 1, got {dataset.test_fraction}")
        if dataset.image_size < 8:
            raise ConfigError(f"{where}.image_size: must be at least 8, got {dataset.image_size}")
        if "lab" in dataset.views and dataset.channels != 3:
            raise ConfigError(f"{where}.views: the lab view needs colour images; set channels: 3 or drop lab")
        operators = {}
        for model, kwargs in dataset.forward.items():
            operator = _pick_choice(forward.FORWARD_MODELS, model, f"{where}.forward")
            operators[model] = check_kwargs(operator, kwargs, f"{where}.forward.{model}")
            size = operators[model].get("size")
            if size is not None and not 0 < size < dataset.image_size:
                raise ConfigError(f"{where}.forward.{model}.size: {size} does not fit {dataset.image_size}-pixel images")
        datasets[name] = dataclasses.replace(dataset, forward=types.MappingProxyType(operators))

    experiments = {}
    for name, experiment in params.experiments.items():
        where = f"experiments.{name}"
        if experiment.study not in params.studies:
            raise ConfigError(f"{where}.study: unknown study {experiment.study!r}; choose one of {', '.join(params.studies)}")
        if experiment.dataset not in params.datasets:
            choices = ", ".join(sorted(params.datasets))
            raise ConfigError(f"{where}.dataset: unknown dataset {experiment.dataset!r}; choose one of {choices}")
        task = _pick_choice(tasks.TASKS, experiment.task.name, f"{where}.task.name")
        model = _pick_choice(MODELS, experiment.model.name, f"{where}.model.name")
        for key in ("epochs", "batch_size", "log_every"):
            if getattr(experiment.train, key) < 1:
                raise ConfigError(f"{where}.train.{key}: must be at least 1")
        task_args = check_kwargs(task, experiment.task.args, f"{where}.task")
        model_args = check_kwargs(model, experiment.model.args, f"{where}.model", provided=MODEL_SHAPE_KEYS)
        # Build both once, weightless, so that a value only the constructor can judge (an image size the
        # model's depth cannot halve) fails here in one line rather than in the middle of a stage.
        task_instance = _try(lambda: task(**task_args), f"{where}.task")
        shape = task_instance.model_shape(params.datasets[experiment.dataset])
        wanted, given = getattr(task_instance, "conditioned_on", None), getattr(model, "conditioned_on", None)
        if wanted != given:
            conditional = sorted(n for n, m in MODELS.items() if getattr(m, "conditioned_on", None) == wanted)
            if wanted is None:
                raise ConfigError(f"{where}.task.name: {experiment.model.name} is conditioned on {given}s; use task transfer")
            reads = f"is conditioned on {given}s" if given else "reads no condition"
            raise ConfigError(f"{where}.model.name: {experiment.model.name} {reads}; {wanted} conditions need one of {', '.join(conditional)}")
        update_args = check_kwargs(update_rule_for(model), experiment.update, f"{where}.update")
        with torch.device("meta"), _without_dynamo():
            instance = _try(lambda: model(**shape, **model_args), f"{where}.model")
            _try(lambda: update_rule_for(model)(instance, **update_args), f"{where}.update")  # e.g. penalty and clip both 0
        if hasattr(task_instance, "forward"):  # restore: the dataset must prepare the copies, the model suit the mode
            _check_restore(task_instance, model, experiment, params.datasets[experiment.dataset], where)
        searches = getattr(task, "searches_latent", False)  # a decoder-only model restores by latent search
        if task.reconstructs and issubclass(model, PriorSampler) and not hasattr(model, "encode") and not searches:
            raise ConfigError(f"{where}.task.name: {experiment.model.name} maps noise to images, not images to images; use task generate")
        reach = getattr(model, "output_range", (0.0, 1.0))
        if task.reconstructs and reach != task.target_range:
            raise ConfigError(f"{where}.model.name: {experiment.model.name}'s outputs lie in {list(reach)} but task "
                              f"{experiment.task.name} needs {list(task.target_range)}; pick a model made for the task")  # fmt: skip
        beyond = [t for t in params.render.transfer_targets if wanted == "label" and t >= task_instance.classes]
        if beyond:
            raise ConfigError(f"render.transfer_targets: {beyond[0]} is not a label of {where}'s {task_instance.classes} classes; "
                              f"pick targets below {task_instance.classes}")  # fmt: skip
        if not task.reconstructs and not hasattr(model, "sample"):
            raise ConfigError(f"{where}.task.name: {experiment.model.name} cannot sample; use task reconstruct")
        experiments[name] = dataclasses.replace(
            experiment,
            task=Component(experiment.task.name, task_args),
            model=Component(experiment.model.name, model_args),
            update=update_args,
        )
    if params.classifier.lr <= 0:
        raise ConfigError(f"classifier.lr: must be above 0, got {params.classifier.lr}")
    # models/classifiers/ holds the classifiers; reports/<study>/comparison/ the report's side-by-side figures
    for reserved in ("classifiers", "comparison"):
        if reserved in params.experiments:
            raise ConfigError(f"experiments.{reserved}: the name is reserved for the pipeline's own outputs; rename it")
    for key in ("epochs", "batch_size", "width", "features", "samples"):
        if getattr(params.classifier, key) < (2 if key == "samples" else 1):
            raise ConfigError(f"classifier.{key}: must be at least {2 if key == 'samples' else 1}")
    if params.render.columns < 1 or params.render.frames < 2:
        raise ConfigError("render: columns must be at least 1 and frames at least 2")
    if any(target < 0 for target in params.render.transfer_targets):
        raise ConfigError(f"render.transfer_targets: labels cannot be negative, got {list(params.render.transfer_targets)}")
    for study in params.studies:
        if study == "classifiers":  # metrics/classifiers/ holds the classifiers' metrics
            raise ConfigError("studies: 'classifiers' is reserved for the classifier stage's outputs; choose another name")
        if not any(e.study == study for e in experiments.values()):
            raise ConfigError(f"studies: {study!r} has no experiment; add one or remove the study")
    return dataclasses.replace(
        params, datasets=types.MappingProxyType(datasets), experiments=types.MappingProxyType(experiments)
    )


def _check_restore(task: Any, model: type, experiment: ExperimentConfig, dataset: DatasetConfig, where: str) -> None:
    from pipeline.models import MODELS
    from pipeline.training.steps import update_rule_for

    if task.forward not in dataset.forward:
        raise ConfigError(f"{where}.task.forward: dataset {experiment.dataset} prepares no {task.forward} copies; "
                          f"add {task.forward} under datasets.{experiment.dataset}.forward")  # fmt: skip
    if not task.supervised and not update_rule_for(model).learns_from_measurements:
        learners = sorted(n for n, m in MODELS.items() if update_rule_for(m).learns_from_measurements)
        raise ConfigError(f"{where}.task.supervised: {experiment.model.name} learns from clean targets; set supervised: true "
                          f"or use one of {', '.join(learners)}")  # fmt: skip
    if task.supervised and not hasattr(model, "encode"):
        raise ConfigError(f"{where}.task.supervised: {experiment.model.name} has no encoder to learn a restoration with; "
                          "a generator trains on the measurements (remove supervised)")  # fmt: skip


@contextlib.contextmanager
def _without_dynamo() -> Iterator[None]:
    """Build optimizers without importing torch._dynamo. torch wraps `Optimizer.add_param_group` so that its
    first call imports the compiler (a second of start-up in every stage); the config check only builds
    optimizers to let them judge their settings (a negative lr, betas out of range), which the unwrapped
    method does just the same."""
    import torch

    wrapped = torch.optim.Optimizer.add_param_group
    torch.optim.Optimizer.add_param_group = getattr(wrapped, "__wrapped__", wrapped)
    try:
        yield
    finally:
        torch.optim.Optimizer.add_param_group = wrapped


def _try(build: Callable[[], Any], where: str) -> Any:
    try:
        return build()
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {error}") from None


def _pick_choice(table: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in table:
        raise ConfigError(f"{where}: unknown name {name!r}; choose one of {', '.join(sorted(table))}")
    return table[name]


def _build(cls: type, raw: Any, where: str) -> Any:
    """Construct dataclass `cls` from a mapping, field by field, with type checks."""
    label = where or "params.yaml"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{label}: expected a mapping, got {type(raw).__name__}")
    if cls is Component:
        return _component(raw, where)
    if cls is ExperimentConfig and "train" not in raw:
        raw = {**raw, "train": {}}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where + '.' if where else ''}{unknown[0]}: unknown key; valid keys are {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, spec in fields.items():
        path = f"{where}.{name}" if where else name
        if name in raw:
            values[name] = _coerce(hints[name], raw[name], path)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}: missing required key")
    return cls(**values)


def _component(raw: Mapping[str, Any], where: str) -> Component:
    if not isinstance(raw.get("name"), str):
        raise ConfigError(f"{where}.name: missing; give the registry name of the {where.rsplit('.', 1)[-1]}")
    return Component(name=raw["name"], args=types.MappingProxyType({k: v for k, v in raw.items() if k != "name"}))


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check `value` against type `hint`; return it in frozen form (tuples, read-only mappings)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is Literal:
        if isinstance(value, bool) or value not in args:  # True == 1 would otherwise pass for Literal[1, 3]
            raise ConfigError(f"{where}: {value!r} is not valid; choose one of {', '.join(map(str, args))}")
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, where)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        fixed = origin is tuple and args and args[-1] is not Ellipsis  # tuple[float, float]: exactly two
        if fixed and len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        items = args if fixed else [args[0] if args else Any] * len(value)
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, (item, v) in enumerate(zip(items, value)))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        item = args[1] if args else Any
        return types.MappingProxyType({str(k): _coerce(item, v, f"{where}.{k}") for k, v in value.items()})
    if hint is float:
        if isinstance(value, str):  # YAML reads `1e-3` (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    return value
