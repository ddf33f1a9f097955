"""The only reader of params.yaml: typed, frozen configuration that rejects what it does not know.

Every error is a `ConfigError` whose message names the key path (`experiments.ae_digits.train.epochs`)
and, for a choice, the valid values, so a stage can print it as one line and exit non-zero. This module
imports no torch and none of the library: it judges what params.yaml alone can say (keys, types, ranges,
names). The checks that need a model's constructor or a task's defaults are `pipeline.experiment`'s,
run for the experiment a stage is about to run, and for all of them by `aegan check`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from pipeline.errors import AeganError


class ConfigError(AeganError):
    """params.yaml is missing, malformed, or holds an unknown key or a bad value."""

    def __init__(self, message: str) -> None:
        # a key from params.yaml may hold a line break or another control character: shown escaped, on one line
        super().__init__("".join(char if char.isprintable() else repr(char)[1:-1] for char in message))


@dataclass(frozen=True)
class Bounds:
    """A number's allowed range, carried by its type hint (`Annotated[int, Bounds(1)]`). params.yaml's fields and
    the library's keyword arguments (models, tasks, update rules, forward models) declare theirs this way, and
    `_coerce` checks every value against it, so a width of 0 or a seed of -1 is one line naming the key."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False  # `low` itself is out of range
    open_high: bool = False

    def check(self, value: float, where: str) -> None:
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            raise ConfigError(f"{where}: must be {'above' if self.open_low else 'at least'} {self.low:g}, got {value}")
        if self.high is not None and (value > self.high or (self.open_high and value == self.high)):
            raise ConfigError(f"{where}: must be {'below' if self.open_high else 'at most'} {self.high:g}, got {value}")


Size = Annotated[int, Bounds(1)]  # a count: units, layers, epochs, images, steps
Index = Annotated[int, Bounds(0)]  # a position or a label
Seed = Annotated[int, Bounds(0, 2**32 - 1)]  # what numpy's and torch's generators accept
Positive = Annotated[float, Bounds(0, open_low=True)]  # learning rates, radii
NonNegative = Annotated[float, Bounds(0)]  # loss weights, penalties, noise levels (0 turns the term off)
Fraction = Annotated[float, Bounds(0, 1)]  # probabilities, labels of a smoothed target, Adam's betas
Decay = Annotated[float, Bounds(0, 1, open_high=True)]  # a moving average's decay: 1 would never move

PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")  # dataset, experiment and study names: never a path
MODEL_SHAPE_KEYS = (
    "in_channels",
    "out_channels",
    "image_size",
    "condition_channels",
)  # filled from the task and dataset, not params

# The registries' names (pipeline.models.MODELS, pipeline.tasks.TASKS, pipeline.forward.FORWARD_MODELS), written
# out so that reading params.yaml costs no torch; tests/test_config.py keeps them equal to the registries.
MODEL_NAMES = frozenset(
    {
        "pca",
        "conv_ae",
        "seed_conv_ae",
        "conv_vae",
        "linear_ae",
        "linear_vae",
        "linear_gan",
        "linear_wgan",
        "dcgan",
        "wgan_gp",
        "vae_wgan",
        "colorizer",
        "colorizer_unet",
        "unet",
        "pix2pix",
        "conditional_aegan",
        "image_conditional_aegan",
        "ambient_vaegan",
        "ambient_gan",
    }
)
TASK_NAMES = frozenset({"reconstruct", "denoise", "generate", "colorize", "translate", "transfer", "restore"})
FORWARD_NAMES = frozenset({"drop_independent", "drop_patch", "keep_patch", "add_noise", "blur_add_noise"})


@dataclass(frozen=True)
class BaseConfig:
    """Settings every stage reads."""

    seed: Seed = 0  # drives numpy, torch and the train/test split
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast on CUDA; CPU always runs fp32


@dataclass(frozen=True)
class DatasetConfig:
    """One prepared dataset: where its images come from and which views prepare derives."""

    source: Literal["digits", "lfw_faces", "photos", "mnist", "fashion_mnist", "celeba", "folder"]
    image_size: Annotated[int, Bounds(8, 4096)] = 28  # square side after centre-crop and resize
    channels: Literal[1, 3] = 1
    # ignored by sources with an official split (mnist, fashion_mnist, celeba)
    test_fraction: Annotated[float, Bounds(0, 1, open_low=True, open_high=True)] = 0.2
    limit: Annotated[int, Bounds(2)] | None = (
        None  # keep at most this many images (train and test together): 2 = one each
    )
    count: Size = 2000  # photos: number of random crops
    path: str | None = None  # folder: a local directory or archive of images
    url: str | None = None  # folder: archive URL; other downloadable sources: a mirror to use instead
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>" for `url` (folder archives)
    # folder: files that cannot be used are skipped (or fail the download), listed in data/prepared/<name>/skipped.csv
    min_side: Size = 16  # folder: a shorter side below this would be enlarged into blur
    max_aspect: Annotated[float, Bounds(1)] = (
        2.0  # folder: long / short side above this: the centre crop keeps a sliver
    )
    on_bad_image: Literal["skip", "fail"] = "skip"
    views: tuple[Literal["gray", "edges", "lab"], ...] = ()
    edge_sigma: Positive = 1.0  # Gaussian sigma of the Canny detector
    forward: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # forward model -> its kwargs


@dataclass(frozen=True)
class Component:
    """A registry entry chosen by name plus the keyword arguments its constructor takes."""

    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class TrainConfig:
    """Loop knobs; the update rule's own hyperparameters (learning rates, loss weights) live in `update`."""

    epochs: Size = 10
    batch_size: Size = 64
    log_every: Size = (
        50  # steps between reading losses back from the device (NaN check, progress); MLflow gets them every 5 s
    )


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

    epochs: Size = 6
    batch_size: Size = 64
    lr: Positive = 1e-3
    width: Size = 32  # channels of the first conv block; the second has twice as many
    features: Size = 64  # width of the penultimate layer, the space FCD is computed in
    samples: Annotated[int, Bounds(2)] = 1000  # samples drawn (fixed seed) from each generative model for its FCD


@dataclass(frozen=True)
class FiguresConfig:
    """The layout of the figures every evaluate stage draws."""

    columns: Size = 8  # images per row in comparison grids
    frames: Annotated[int, Bounds(2)] = 16  # images per latent interpolation strip: both ends at least
    interpolation_pairs: tuple[tuple[Index, Index], ...] = ((0, 1), (4, 9), (10, 19))  # test-split indices
    transfer_targets: tuple[Index, ...] = (
        5,
        4,
    )  # labels the first columns² test images are decoded with, as the seed's figures


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
    figures: FiguresConfig = FiguresConfig()
    tracking: TrackingConfig = TrackingConfig()

    def experiment(self, name: str) -> ExperimentConfig:
        return _pick(self.experiments, name, "experiments")

    def dataset(self, name: str) -> DatasetConfig:
        return _pick(self.datasets, name, "datasets")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read, type-check and cross-check params.yaml (without the library: see the module's docstring).

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
    return _check(_build(Params, raw, ""))


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
    """Check keyword arguments against `target`'s keyword-only parameters and type hints (a constructor of the
    library, handed in by its caller: this module imports none).

    Args:
        target: a class or function whose keyword-only parameters are the valid keys.
        args: the keys and values from params.yaml.
        where: the key path, for messages.
        provided: parameters the pipeline fills in itself (a model's shape comes from its task and dataset).

    Returns:
        The arguments with values converted to their hinted types, read-only.
    """
    signature = inspect.signature(target)
    hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target, include_extras=True)
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


def _check(params: Params) -> Params:
    """Cross-check what params.yaml alone can judge: names against the registries' names, ranges, pairings.
    What needs the library (a model's constructor, a task's defaults) is `pipeline.experiment`'s to check."""
    for section, keys in (
        ("datasets", params.datasets),
        ("experiments", params.experiments),
        ("studies", params.studies),
    ):
        for key in keys:  # each becomes a folder name: data/raw/<dataset>, models/<experiment>, reports/<study>
            if not PLAIN_NAME.fullmatch(key):
                raise ConfigError(
                    f"{section}: {key!r} is not a plain name; a name that becomes a folder may hold only "
                    "letters, digits, _ and -"
                )
    for name, dataset in params.datasets.items():
        where = f"datasets.{name}"
        if dataset.source == "folder" and not (dataset.path or dataset.url):
            raise ConfigError(f"{where}: source 'folder' needs `path` (a directory or archive) or `url`")
        if dataset.url and dataset.source == "folder" and not dataset.checksum:
            raise ConfigError(f"{where}.checksum: an archive URL needs a checksum such as 'sha256:<hex>'")
        if "lab" in dataset.views and dataset.channels != 3:
            raise ConfigError(f"{where}.views: the lab view needs colour images; set channels: 3 or drop lab")
        for operator in dataset.forward:
            _pick_choice(FORWARD_NAMES, operator, f"{where}.forward")

    for name, experiment in params.experiments.items():
        where = f"experiments.{name}"
        if experiment.study not in params.studies:
            raise ConfigError(
                f"{where}.study: unknown study {experiment.study!r}; choose one of {', '.join(params.studies)}"
            )
        if experiment.dataset not in params.datasets:
            choices = ", ".join(sorted(params.datasets))
            raise ConfigError(f"{where}.dataset: unknown dataset {experiment.dataset!r}; choose one of {choices}")
        _pick_choice(TASK_NAMES, experiment.task.name, f"{where}.task.name")
        _pick_choice(MODEL_NAMES, experiment.model.name, f"{where}.model.name")
        for key in MODEL_SHAPE_KEYS:
            if key in experiment.model.args:
                raise ConfigError(f"{where}.model.{key}: set by the dataset and task, remove it here")
    # models/classifiers/ holds the classifiers; reports/<study>/comparison/ the report's side-by-side figures
    for reserved in ("classifiers", "comparison"):
        if reserved in params.experiments:
            raise ConfigError(f"experiments.{reserved}: the name is reserved for the pipeline's own outputs; rename it")
    for study in params.studies:
        if study == "classifiers":  # metrics/classifiers/ holds the classifiers' metrics
            raise ConfigError(
                "studies: 'classifiers' is reserved for the classifier stage's outputs; choose another name"
            )
        if not any(e.study == study for e in params.experiments.values()):
            raise ConfigError(f"studies: {study!r} has no experiment; add one or remove the study")
    return params


def _pick_choice(names: Collection[str], name: str, where: str) -> None:
    if name not in names:
        raise ConfigError(f"{where}: unknown name {name!r}; choose one of {', '.join(sorted(names))}")


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
    unknown = sorted(set(raw) - set(fields), key=str)  # YAML keys may be numbers
    if unknown:
        raise ConfigError(
            f"{where + '.' if where else ''}{unknown[0]}: unknown key; valid keys are {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls, include_extras=True)
    values = {}
    for name, spec in fields.items():
        path = f"{where}.{name}" if where else name
        if name in raw:
            values[name] = _coerce(hints[name], raw[name], path)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}: missing required key")
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:  # a settings class's own cross-field check (`LatentSearch`)
        raise ConfigError(f"{label}: {error}") from None


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
    if origin is Annotated:
        value = _coerce(args[0], value, where)
        for bounds in (meta for meta in hint.__metadata__ if isinstance(meta, Bounds)):
            bounds.check(value, where)
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
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):  # YAML's .nan and .inf, or an integer past float's range
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    return value
