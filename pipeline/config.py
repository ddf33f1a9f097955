"""The only reader of params.yaml: typed, frozen configuration that rejects what it does not know.

Every error is a `ConfigError` naming the key path (`experiments.ae_digits.train.epochs`) and, for a choice, the
valid values, so a stage prints it as one line and exits non-zero. No torch and none of the library are imported:
this judges what params.yaml alone can say (keys, types, ranges, names); the checks that need a constructor are
`pipeline.experiment`'s, for the experiment a stage runs and, under `aegan check`, for all.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from pipeline.checks import check_derived, check_split_group, check_sweep
from pipeline.schema import Bounds, Component, ConfigError, Index, Positive, Seed, Size, build, registry_names

PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")  # dataset, experiment and study names: never a path
MODEL_SHAPE_KEYS = ("in_channels", "out_channels", "image_size", "condition_channels")  # from the task and dataset
MODEL_NAMES = registry_names("models", "MODELS")
TASK_NAMES = registry_names("tasks", "TASKS")
FORWARD_NAMES = registry_names("forward", "FORWARD_MODELS")


@dataclass(frozen=True)
class BaseConfig:
    """Settings every stage reads."""

    seed: Seed = 0  # drives numpy, torch and the train/test split
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast on CUDA; CPU always runs fp32
    processes: Annotated[int, Bounds(1, 1024)] = 1  # >1: train@ runs as this many torchrun ranks (data-parallel)


@dataclass(frozen=True)
class DatasetConfig:
    """One prepared dataset: where its images come from and which views prepare derives."""

    source: Literal["digits", "lfw_faces", "photos", "mnist", "fashion_mnist", "celeba", "folder", "reconstructions"]
    image_size: Annotated[int, Bounds(8, 4096)] = 28  # square side after centre-crop and resize
    channels: Literal[1, 3] = 1
    # ignored by sources with an official split (mnist, fashion_mnist, celeba)
    test_fraction: Annotated[float, Bounds(0, 1, open_low=True, open_high=True)] = 0.2
    # keep at most this many images (train and test together): 2 = one each
    limit: Annotated[int, Bounds(2)] | None = None
    count: Size = 2000  # photos: number of random crops
    path: str | None = None  # folder: a local directory or archive of images
    url: str | None = None  # folder: archive URL; other downloadable sources: a mirror to use instead
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>" for `url` (folder archives)
    # folder: files that cannot be used are skipped (or fail the download), listed in data/prepared/<name>/skipped.csv
    min_side: Size = 16  # folder: a shorter side below this would be enlarged into blur
    # folder: long / short side above this: the centre crop keeps a sliver
    max_aspect: Annotated[float, Bounds(1)] = 2.0
    on_bad_image: Literal["skip", "fail"] = "skip"
    split_group: str | None = None  # folder: regex whose first group names a file's group, kept on one side
    views: tuple[Literal["gray", "edges", "lab"], ...] = ()
    edge_sigma: Positive = 1.0  # Gaussian sigma of the Canny detector
    forward: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # forward model -> its kwargs
    experiment: str | None = None  # reconstructions (a `derived` dataset): the experiment that made them

    def applying(self) -> dict[str, Any]:
        """The settings that apply to this source, unset ones left out: what an MLflow run shows of its data."""
        folder_only = {"path", "checksum", "min_side", "max_aspect", "on_bad_image", "split_group"}
        ignored = set() if self.source == "folder" else folder_only
        if self.source != "photos":
            ignored.add("count")
        if self.source in ("mnist", "fashion_mnist", "celeba"):  # an official split
            ignored.add("test_fraction")
        if "edges" not in self.views:
            ignored.add("edge_sigma")
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ignored}
        return {key: value for key, value in values.items() if value is not None and value != () and value != {}}


@dataclass(frozen=True)
class DerivedConfig:
    """A dataset a trained experiment makes (derive@<name>): its reconstructions of its own dataset, both splits,
    labels kept; the real test images stay beside them as the reference an FCD is computed against."""

    source: Literal["reconstructions"]
    experiment: str
    dataset: str  # the experiment's dataset, named again for dvc.yaml's dependencies (checked against it)


@dataclass(frozen=True)
class TrainConfig:
    """Loop knobs; the update rule's own hyperparameters (learning rates, loss weights) live in `update`."""

    epochs: Size = 10
    batch_size: Size = 64
    # steps between reading losses back from the device (NaN check, progress); MLflow gets them every 5 s
    log_every: Size = 50


@dataclass(frozen=True)
class ExperimentConfig:
    """One trained model: model + dataset + task + hyperparameters."""

    study: str
    dataset: str
    task: Component
    model: Component
    update: Mapping[str, Any]
    train: TrainConfig = TrainConfig()


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
    transfer_targets: tuple[Index, ...] = (5, 4)  # labels the first columns² test images are decoded with


def point_name(name: str, percent: int) -> str:
    """A sweep point's experiment or dataset, `ambient_drop_digits-p70`, as dvc.yaml names its outputs (a whole
    percentage: MLflow refuses a model name with a dot)."""
    return f"{name}-p{percent}"


@dataclass(frozen=True)
class SweepConfig:
    """Opt-in, off while a list is empty: sweep@<experiment>-<percent> re-trains and re-scores each restore
    experiment with drop_independent copies at each drop probability (AmbientGAN's PSNR against p)."""

    study: str = "ambient"  # the experiments' study: its report draws the sweep
    dataset: str = "digits"  # the experiments' dataset, named for dvc.yaml's dependencies (checked)
    experiments: tuple[str, ...] = ()
    percent: tuple[Annotated[int, Bounds(1, 99)], ...] = ()  # drop probabilities p, in percent


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
    derived: Mapping[str, DerivedConfig] = field(default_factory=dict)
    sweep: SweepConfig = SweepConfig()

    def experiment(self, name: str) -> ExperimentConfig:
        return _pick(self.experiments, name, "experiments")

    def origin(self, name: str) -> str:
        """The prepared dataset a dataset's images come from: itself, or where a chain of derived ones starts."""
        return self.origin(self.derived[name].dataset) if name in self.derived else name

    def dataset(self, name: str) -> DatasetConfig:
        """A dataset's settings; a derived one has its source dataset's size and channels and no views."""
        if name not in self.derived:
            return _pick({**self.datasets, **self.derived}, name, "datasets")
        made = self.derived[name]
        source = self.dataset(made.dataset)  # `check_derived` has ruled out a cycle
        return dataclasses.replace(source, source="reconstructions", experiment=made.experiment, views=(), forward={})


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read, type-check and cross-check params.yaml (see the module's docstring); a `ConfigError` names the
    offending key path and what would be valid."""
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
    return _check(build(Params, raw, ""))


def _pick(table: Mapping[str, Any], name: str, section: str) -> Any:
    if name not in table:
        raise ConfigError(f"{section}.{name}: no such entry; choose one of {', '.join(sorted(table))}")
    return table[name]


def _check(params: Params) -> Params:
    """Cross-check what params.yaml alone can judge: names against the registries' names, ranges, pairings.
    What needs the library (a model's constructor, a task's defaults) is `pipeline.experiment`'s to check."""
    for section, keys in (
        ("datasets", params.datasets),
        ("derived", params.derived),
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
        if dataset.source == "reconstructions" or dataset.experiment is not None:
            raise ConfigError(
                f"{where}: a dataset an experiment makes goes under `derived:` (source, experiment, dataset)"
            )
        if dataset.source == "folder" and not (dataset.path or dataset.url):
            raise ConfigError(f"{where}: source 'folder' needs `path` (a directory or archive) or `url`")
        if dataset.url and dataset.source == "folder" and not dataset.checksum:
            raise ConfigError(f"{where}.checksum: an archive URL needs a checksum such as 'sha256:<hex>'")
        if dataset.split_group is not None:  # searched in each file's path inside the folder, as '^([fm]\d{4})'
            check_split_group(dataset, f"{where}.split_group")
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
        if experiment.dataset not in params.datasets and experiment.dataset not in params.derived:
            choices = ", ".join(sorted([*params.datasets, *params.derived]))
            raise ConfigError(f"{where}.dataset: unknown dataset {experiment.dataset!r}; choose one of {choices}")
        _pick_choice(TASK_NAMES, experiment.task.name, f"{where}.task.name")
        _pick_choice(MODEL_NAMES, experiment.model.name, f"{where}.model.name")
        for key in MODEL_SHAPE_KEYS:
            if key in experiment.model.args:
                raise ConfigError(f"{where}.model.{key}: set by the dataset and task, remove it here")
    check_derived(params)
    check_sweep(params)
    # models/classifiers/ holds the classifiers; reports/<study>/comparison/ the report's side-by-side figures
    for reserved in ("classifiers", "comparison", "sweep"):  # models/sweep/ holds the sweep's points
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
