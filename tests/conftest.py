"""Shared fixtures: an isolated MLflow store, tiny params, and a small prepared digits dataset."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
UTRECHT = SHARED_DATA / "utrecht"  # the seed's ECVP Utrecht faces, beside the project
UTRECHT_PERSON = r"^([fm]\d{4})"  # f4001.jpg and f4001s.jpg (smiling) are one person
needs_faces = pytest.mark.skipif(
    not UTRECHT.is_dir(), reason=f"{UTRECHT} (the ECVP Utrecht faces) is not on this machine"
)


@pytest.fixture(autouse=True, scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every test logs to one throw-away SQLite store, never to the project's mlflow.db."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    patch.chdir(folder)  # MLflow puts run artifacts under the working directory
    yield uri
    patch.undo()


@pytest.fixture(autouse=True)
def checkpoint_every_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests interrupt runs of a few seconds: let them checkpoint after every epoch (runs of the real
    pipeline keep at least CHECKPOINT_SECONDS between checkpoints; tests/test_training.py checks that)."""
    from pipeline.training import checkpoint

    monkeypatch.setattr(checkpoint, "CHECKPOINT_SECONDS", 0.0)


def repo_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def utrecht_faces(views: list[str]) -> dict:
    """The Utrecht faces through the generic folder source at 32 px, with `views`: a quarter of the people held
    out, each person's two photographs on one side (`UTRECHT_SPLIT`), as close to the seed's 91 / 31 as whole
    people allow."""
    return {
        "source": "folder",
        "path": str(UTRECHT),
        "image_size": 32,
        "channels": 3,
        "test_fraction": 0.25,
        "split_group": UTRECHT_PERSON,
        "views": views,
        "edge_sigma": 1.0,
    }


def build_project(raw: dict, root: Path):
    """A throw-away project at `root`: params.yaml written from `raw`, every dataset fetched and prepared,
    every experiment trained, by the real code. Returns the parsed params."""
    from pipeline.config import parse_params
    from pipeline.data.prepare import prepare_dataset
    from pipeline.data.sources import fetch
    from pipeline.training.run import train_experiment

    (root / "params.yaml").write_text(yaml.safe_dump(raw))  # what `aegan apply` reads
    params = parse_params(raw)
    for name, dataset in params.datasets.items():
        fetch(name, dataset, root / "raw" / name, root / "downloads")
        prepare_dataset(name, dataset, root / "raw" / name, root / "prepared" / name, seed=params.base.seed)
    for name, experiment in params.experiments.items():
        folders = {"prepared_dir": root / "prepared" / experiment.dataset, "model_dir": root / "models" / name}
        train_experiment(
            params, name, **folders, plots_dir=root / "plots" / name, checkpoint_path=root / "ck" / name / "last.pt"
        )
    return params


def checked(raw: dict):
    """`parse_params` and then every check that needs the library, as `aegan check` runs them."""
    from pipeline.config import parse_params
    from pipeline.training.run import check_all

    params = parse_params(raw)
    check_all(params)
    return params


def tiny_params(**experiment_overrides) -> dict:
    """The repository's params shrunk to seconds: 300 digits, 3 epochs, a narrow model."""
    raw = copy.deepcopy(repo_params())
    raw["datasets"] = {"digits": {**raw["datasets"]["digits"], "limit": 300}}
    raw["studies"] = ["autoencoders"]
    experiment = {
        "study": "autoencoders",
        "dataset": "digits",
        "task": {"name": "reconstruct"},
        "model": {"name": "conv_ae", "latent_dim": 8, "width": 8},
        "update": {"lr": 3.0e-3},
        "train": {"epochs": 3, "batch_size": 32},
    }
    raw["experiments"] = {"ae_tiny": {**experiment, **experiment_overrides}}
    raw["derived"] = {}  # made by experiments this project does not have
    raw["base"] = {"seed": 0, "device": "cpu", "precision": "fp32"}
    return raw


@pytest.fixture(scope="session")
def prepared_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/prepared/digits for `tiny_params()`, built once by the real download and prepare code."""
    from pipeline.config import parse_params
    from pipeline.data.prepare import prepare_dataset
    from pipeline.data.sources import fetch

    root = tmp_path_factory.mktemp("data")
    config = parse_params(tiny_params()).dataset("digits")
    fetch("digits", config, root / "raw" / "digits", root / "downloads")
    prepare_dataset("digits", config, root / "raw" / "digits", root / "prepared" / "digits", seed=0)
    return root / "prepared"


@pytest.fixture(scope="session")
def digit_classifier(prepared_digits, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The classifier of `prepared_digits` (its folder and summary), trained by the real classify code."""
    from pipeline.config import parse_params
    from pipeline.training.classifier import train_classifier

    folder = tmp_path_factory.mktemp("classifier") / "digits"
    params = parse_params({**tiny_params(), "classifier": {"epochs": 12, "samples": 100}})
    return folder, train_classifier(params, "digits", prepared_dir=prepared_digits / "digits", out_dir=folder)
