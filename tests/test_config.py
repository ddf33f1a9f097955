"""pipeline.config and pipeline.experiment: the repository's params load without torch and check out against the
library; typos, bad types and unknown names fail with the key path."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import FORWARD_NAMES, MODEL_NAMES, TASK_NAMES, load_params, parse_params
from pipeline.errors import AeganError
from pipeline.schema import ConfigError, flatten
from tests.conftest import ROOT, checked, repo_params


def test_repository_params_load_and_are_frozen():
    params = load_params(ROOT / "params.yaml")
    experiment = params.experiment("ae_digits")
    assert experiment.model.name == "conv_ae"
    assert experiment.dataset in params.datasets
    assert params.dataset("digits").forward["add_noise"]["sigma"] == 0.2
    with pytest.raises(dataclasses.FrozenInstanceError):
        experiment.train.epochs = 1
    with pytest.raises(TypeError):
        experiment.model.args["latent_dim"] = 1  # read-only mapping


def _with(path: str, value):
    raw = copy.deepcopy(repo_params())
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    node[last] = value
    return raw


CASES = [
    ("base.sede", 1, "base.sede: unknown key; valid keys are seed, device, precision"),
    (
        "base",
        {"seed": 0, 7: 1, "x": 2},
        "base.7: unknown key; valid keys are seed, device, precision",
    ),  # YAML number keys
    (
        "base",
        {"seed": 0, "a\nb": 1},
        "base.a\\nb: unknown key; valid keys are seed, device, precision",
    ),  # shown escaped
    ("base.device", "gpu", "base.device: 'gpu' is not valid; choose one of auto, cpu, cuda"),
    ("experiments.ae_digits.train.epochs", "ten", "experiments.ae_digits.train.epochs: expected an integer"),
    ("experiments.ae_digits.train.epoch", 3, "experiments.ae_digits.train.epoch: unknown key; valid keys are epochs"),
    (
        "experiments.ae_digits.dataset",
        "digitz",
        "experiments.ae_digits.dataset: unknown dataset 'digitz'; choose one of",
    ),
    (
        "experiments.ae_digits.model",
        {"name": "vae"},
        f"experiments.ae_digits.model.name: unknown name 'vae'; choose one of {', '.join(sorted(MODEL_NAMES))}",
    ),
    ("experiments.vae_digits.update", {"beta": "high"}, "experiments.vae_digits.update.beta: expected a number"),
    (
        "experiments.pca_digits.update",
        {"lr": 0.1},
        "experiments.pca_digits.update.lr: unknown key; valid keys are none",
    ),
    (
        "experiments.ae_digits.model",
        {"name": "conv_ae", "latent": 3},
        "experiments.ae_digits.model.latent: unknown key; valid keys are depth, ",
    ),
    (
        "experiments.ae_digits.model",
        {"name": "conv_ae", "latent_dim": 2.5},
        "experiments.ae_digits.model.latent_dim: expected an integer",
    ),
    (
        "experiments.ae_digits.task",
        {"name": "dream"},
        "experiments.ae_digits.task.name: unknown name 'dream'; choose one of colorize, denoise, generate, "
        "reconstruct, restore, transfer, translate",
    ),
    ("experiments.ae_digits.update", {"lr": "fast"}, "experiments.ae_digits.update.lr: expected a number, got 'fast'"),
    (
        "experiments.ae_digits.update",
        {"loss": "huber"},
        "experiments.ae_digits.update.loss: 'huber' is not valid; choose one of mse, l1, bce",
    ),
    ("experiments.ae_digits.study", "nope", "experiments.ae_digits.study: unknown study 'nope'"),
    (
        "datasets.digits.source",
        "digitz",
        "datasets.digits.source: 'digitz' is not valid; choose one of digits, lfw_faces",
    ),
    (
        "datasets.digits.views",
        ["edge"],
        "datasets.digits.views[0]: 'edge' is not valid; choose one of gray, edges, lab",
    ),
    ("datasets.digits.forward", {"drop_pixels": {}}, "datasets.digits.forward: unknown name 'drop_pixels'"),
    (
        "datasets.digits.forward",
        {"drop_patch": {"size": 28}},
        "datasets.digits.forward.drop_patch.size: 28 does not fit",
    ),
    ("datasets.digits.views", ["lab"], "datasets.digits.views: the lab view needs colour images; set channels: 3"),
    ("datasets.digits.channels", True, "datasets.digits.channels: True is not valid; choose one of 1, 3"),
    ("datasets.digits.limit", 1, "datasets.digits.limit: must be at least 2"),
    (
        "experiments.ae_digits.model",
        {"name": "conv_ae", "depth": 3},
        "experiments.ae_digits.model: image_size 28 must be divisible by 2**depth = 8",
    ),
    ("experiments.ae_digits.update", {"betas": [0.9]}, "experiments.ae_digits.update.betas: expected 2 values, got 1"),
    (
        "experiments.dae_digits.task",
        {"name": "denoise", "sigma": -1},
        "experiments.dae_digits.task.sigma: must be above 0, got -1",
    ),
    ("figures.frames", 1, "figures.frames: must be at least 2, got 1"),
    (
        "experiments.ae_digits.model",
        {"name": "conv_ae", "width": 0},
        "experiments.ae_digits.model.width: must be at least 1, got 0",
    ),
    (
        "experiments.ae_digits.model",
        {"name": "conv_ae", "latent_dim": 0},
        "experiments.ae_digits.model.latent_dim: must be at least 1, got 0",
    ),
    ("base.seed", -1, "base.seed: must be at least 0, got -1"),
    (
        "experiments.ae_digits.update",
        {"lr": float("nan")},
        "experiments.ae_digits.update.lr: expected a finite number, got nan",
    ),
    ("experiments.ae_digits.update", {"lr": 0}, "experiments.ae_digits.update.lr: must be above 0, got 0"),
    (
        "experiments.ae_digits.update",
        {"betas": [0.5, 1.5]},
        "experiments.ae_digits.update.betas[1]: must be at most 1, got 1.5",
    ),
    ("datasets.digits.image_size", 10**6, "datasets.digits.image_size: must be at most 4096, got 1000000"),
    ("datasets.digits.edge_sigma", 10**400, "datasets.digits.edge_sigma: expected a finite number"),
]


@pytest.mark.parametrize(("path", "value", "expected"), CASES)
def test_bad_values_name_the_key_path_and_the_choices(path, value, expected):
    with pytest.raises(ConfigError) as error:
        checked(_with(path, value))
    assert str(error.value).startswith(expected), str(error.value)
    assert "\n" not in str(error.value)


def _needs_the_library(expected: str) -> bool:
    """Whether the error's key path is one only a constructor can judge (update, model and task arguments, a
    forward model's settings)."""
    key = expected.split(":")[0]
    return any(part in key for part in (".update", ".model", ".task", ".forward."))


# What params.yaml alone can judge fails at load, before any library code: a stage that loads a config with a
# typo fails in a fraction of a second, and download, prepare and report never import the models to say so.
@pytest.mark.parametrize(("path", "value", "expected"), [case for case in CASES if not _needs_the_library(case[2])])
def test_what_params_alone_can_judge_fails_at_load(path, value, expected):
    with pytest.raises(ConfigError) as error:
        parse_params(_with(path, value))
    assert str(error.value).startswith(expected), str(error.value)


def test_a_setting_only_the_library_can_judge_passes_the_load_and_fails_the_check():
    raw = _with("experiments.ae_digits.model", {"name": "conv_ae", "depth": 3})
    parse_params(raw)  # the structure is right: a conv_ae may have a depth
    with pytest.raises(
        ConfigError, match=re.escape("experiments.ae_digits.model: image_size 28 must be divisible by 2")
    ):
        checked(raw)


def test_loading_params_imports_neither_torch_nor_the_library():
    code = (
        "import sys; from pipeline.config import load_params; load_params('params.yaml'); "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('pipeline')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert (
        result.stdout.strip()
        == "['pipeline', 'pipeline.checks', 'pipeline.config', 'pipeline.errors', 'pipeline.schema']"
    )


def test_the_names_config_knows_are_the_registries_names():
    from pipeline.forward import FORWARD_MODELS
    from pipeline.models import MODELS
    from pipeline.tasks import TASKS

    assert set(MODELS) == MODEL_NAMES and set(TASKS) == TASK_NAMES and set(FORWARD_MODELS) == FORWARD_NAMES


def test_every_experiment_of_the_repository_checks_out_against_the_library():
    params = checked(repo_params())  # every model and update rule built on the meta device
    assert len(params.experiments) == len(repo_params()["experiments"])


def test_yaml_exponent_without_dot_is_a_number():
    from pipeline.experiment import resolve
    from pipeline.training.run import check_update

    params = parse_params(_with("experiments.ae_digits.update", {"lr": "1e-3", "betas": [0.5, 0.999]}))
    update = check_update(resolve(params, "ae_digits"))
    assert update["lr"] == 0.001
    assert update["betas"] == (0.5, 0.999)


def test_model_shape_comes_from_the_dataset_not_params():
    with pytest.raises(ConfigError, match=re.escape("model.image_size: set by the dataset and task, remove it here")):
        parse_params(_with("experiments.ae_digits.model", {"name": "conv_ae", "image_size": 32}))
    from pipeline.experiment import resolve

    shape = resolve(parse_params(repo_params()), "ae_digits").model_args
    assert {key: shape[key] for key in ("in_channels", "out_channels", "image_size")} == {
        "in_channels": 1,
        "out_channels": 1,
        "image_size": 28,
    }


def test_flatten_uses_dotted_paths_and_component_names():
    params = load_params(ROOT / "params.yaml")
    flat = flatten(params.experiment("ae_digits").model, "model.")
    assert flat == {"model.name": "conv_ae", "model.latent_dim": 32, "model.width": 32, "model.depth": 2}


def test_missing_file_and_broken_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found; run from the project root"):
        load_params(tmp_path / "params.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("base:\n  seed: [1\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML at line \d"):
        load_params(broken)


def _doc_blocks(study: str, heading: str) -> list[dict]:
    """The YAML blocks of the section under `heading` of the study's page (docs/studies/<study>.md), parsed."""
    text = (ROOT / "docs" / "studies" / f"{study}.md").read_text().split(heading, 1)[1].split("\n#", 1)[0]
    return [yaml.safe_load(block.split("```", 1)[0]) for block in text.split("```yaml\n")[1:]]


def test_the_study_page_blocks_for_fashion_mnist_and_celeba_parse_and_build_at_full_size():
    import torch

    from pipeline.models import build_model

    blocks = _doc_blocks("vae_gan", "## On the seed's datasets")
    assert [list(block["datasets"]) for block in blocks] == [["fashion_mnist"], ["celeba", "celeba_128"]]
    for block in blocks:
        raw = copy.deepcopy(repo_params())
        raw["datasets"].update(block["datasets"])
        raw["experiments"].update(block["experiments"])
        params = checked(raw)  # builds every model, weightless, with its dataset's shape
        models = {params.experiment(name).model.name for name in block["experiments"]}
        assert models == {
            "linear_ae",
            "linear_vae",
            "linear_gan",
            "linear_wgan",
            "conv_vae",
            "dcgan",
            "wgan_gp",
            "vae_wgan",
        }
    with torch.device("meta"):  # the seed's CelebA autoencoder: 49152-2048-1024-512-256-128-20 and back
        model = build_model(
            "linear_ae", in_channels=3, out_channels=3, image_size=128, hidden=(2048, 1024, 512, 256, 128)
        )
    sizes = [49152, 2048, 1024, 512, 256, 128, 20]
    layers = list(itertools.pairwise(sizes)) + list(zip(sizes[::-1], sizes[::-1][1:]))
    assert sum(p.numel() for p in model.parameters()) == sum(a * b + b for a, b in layers)


def _with_block(block: dict):
    """The repository's params with a study page block's datasets and experiments merged in, checked (which
    builds every model, weightless, with its dataset's shape)."""
    raw = copy.deepcopy(repo_params())
    raw["datasets"].update(block["datasets"])
    raw["experiments"].update(block["experiments"])
    return checked(raw)


def test_the_study_page_block_for_mnist_and_celeba_transfer_parses_and_builds():
    (block,) = _doc_blocks("feature_subtraction", "## On MNIST, as the seed, and on CelebA")
    params = _with_block(block)
    seed = params.experiment("aegan_mnist")
    assert (
        seed.model.args == {} and seed.update == {"lr": 1.0e-4} and seed.train.epochs == 20
    )  # the seed's sizes are the defaults
    assert {params.experiment(name).task.args.get("condition") for name in block["experiments"]} == {
        "label",
        "gray",
        "edges",
        None,
    }


@pytest.mark.parametrize(
    ("task", "model", "expected"),
    [
        (
            "reconstruct",
            {"name": "dcgan"},
            "experiments.ae_digits.task.name: dcgan maps noise to images, not images to images; use task generate",
        ),
        (
            "generate",
            {"name": "conv_ae"},
            "experiments.ae_digits.task.name: conv_ae cannot sample; use task reconstruct",
        ),
    ],
)
def test_a_task_the_model_cannot_do_is_refused(task, model, expected):
    raw = _with("experiments.ae_digits.task", {"name": task})
    raw["experiments"]["ae_digits"]["model"] = model
    raw["experiments"]["ae_digits"]["update"] = {}
    with pytest.raises(ConfigError) as error:
        checked(raw)
    assert str(error.value) == expected


def test_the_wasserstein_constraint_and_classifier_settings_are_checked_up_front():
    raw = _with("experiments.wgan_gp_digits.update", {"penalty": 0.0})
    with pytest.raises(
        ConfigError, match=r"experiments.wgan_gp_digits.update: set exactly one of penalty and clip above 0"
    ):
        checked(raw)
    with pytest.raises(ConfigError, match=r"classifier.samples: must be at least 2"):
        parse_params(_with("classifier.samples", 1))
    with pytest.raises(ConfigError, match=r"classifier.lr: must be above 0"):
        parse_params(_with("classifier.lr", -1.0))
    with pytest.raises(ConfigError, match=r"experiments.wgan_gp_digits.update.clip: must be at least 0, got -0.01"):
        checked(_with("experiments.wgan_gp_digits.update", {"penalty": 10.0, "clip": -0.01}))
    for reserved in ("classifiers", "comparison"):
        raw = repo_params()
        raw["experiments"][reserved] = raw["experiments"]["ae_digits"]
        with pytest.raises(ConfigError, match=rf"experiments.{reserved}: the name is reserved"):
            parse_params(raw)
    raw = repo_params()
    with pytest.raises(ConfigError, match=r"studies: 'classifiers' is reserved"):
        parse_params({**raw, "studies": [*raw["studies"], "classifiers"]})


def test_the_study_page_block_for_other_photographs_parses_and_builds_at_full_size():
    block = _doc_blocks("translation", "## On other photographs")
    assert len(block) == 1 and set(block[0]["datasets"]) == {"lego", "celeba"}
    raw = copy.deepcopy(repo_params())
    raw["datasets"].update(block[0]["datasets"])
    raw["experiments"].update(block[0]["experiments"])
    params = checked(raw)  # builds every model, weightless, with its dataset's shape
    assert params.dataset("lego").image_size == 256 and params.experiment("pix2pix_lego").model.args["depth"] == 8


def test_the_study_page_block_for_the_seeds_ambient_datasets_parses_and_builds_at_full_size():
    (block,) = _doc_blocks("ambient", "## On CelebA and MNIST, as the seed")
    params = _with_block(block)
    assert params.dataset("celeba").forward == {
        "drop_independent": {"p": 0.9},
        "drop_patch": {"size": 32},
        "add_noise": {"sigma": 0.2},
    }
    seed = params.experiment("ambient_drop_celeba")
    assert seed.update == {} and seed.model.args == {}  # the seed's sizes and losses are the defaults
    assert {params.experiment(name).task.args.get("forward") for name in block["experiments"]} == {
        "drop_independent",
        "drop_patch",
        "add_noise",
    }


SEED_PAGES = {  # each study page's section of params blocks at the seeds' scale
    "vae_gan": "## On the seed's datasets",
    "feature_subtraction": "## On MNIST, as the seed, and on CelebA",
    "translation": "## On other photographs",
    "ambient": "## On CelebA and MNIST, as the seed",
}


def test_the_seed_scale_params_check_out_and_build_every_model_at_full_size():
    import torch

    from pipeline.experiment import resolve
    from pipeline.training.run import check_all

    raw = yaml.safe_load((ROOT / "params-seed.yaml").read_text())
    params = load_params(ROOT / "params-seed.yaml")
    check_all(params)  # every model and update rule built, weightless, on the meta device, as `aegan check`
    assert list(params.studies) == repo_params()["studies"]
    assert {experiment.study for experiment in params.experiments.values()} == set(params.studies)
    sizes = {name: (dataset.source, dataset.image_size) for name, dataset in params.datasets.items()}
    assert sizes == {
        "mnist": ("mnist", 28),
        "fashion_mnist": ("fashion_mnist", 28),
        "celeba": ("celeba", 64),
        "celeba_128": ("celeba", 128),
        "celeba_ambient": ("celeba", 64),
        "utrecht": ("folder", 128),
        "utrecht_rgb": ("folder", 128),
        "lego": ("folder", 256),
    }
    assert params.dataset("celeba_ambient").forward == {
        "drop_independent": {"p": 0.9},
        "drop_patch": {"size": 32},
        "add_noise": {"sigma": 0.2},
    }
    with torch.device("meta"):  # the GAN-AE seed's linear AE on 128×128×3 CelebA: 49,152 inputs
        model = resolve(params, "linear_ae_celeba").build_model()
    assert next(model.parameters()).shape == (2048, 128 * 128 * 3)
    assert params.experiment("pix2pix_lego").train.batch_size == 1 and params.dataset("lego").image_size == 256

    for study, heading in SEED_PAGES.items():  # the pages' blocks are this file's experiments, not a second copy
        for block in _doc_blocks(study, heading):
            for name, entry in block["experiments"].items():
                ours = raw["experiments"][name]
                assert {**ours, "dataset": None} == {**entry, "dataset": None}, name
                theirs, mine = block["datasets"][entry["dataset"]], raw["datasets"][ours["dataset"]]
                assert (mine["source"], mine["image_size"]) == (theirs["source"], theirs["image_size"]), name


@pytest.mark.parametrize("key", ["../outside", "a/b", "/etc", ".hidden", "", "two words", "dots.in.it"])
@pytest.mark.parametrize("section", ["datasets", "experiments", "studies"])
def test_a_key_that_becomes_a_folder_must_be_a_plain_name(section, key):
    raw = repo_params()
    if section == "studies":
        raw["studies"] = [*raw["studies"], key]
        raw["experiments"]["ae_digits"]["study"] = key
    elif section == "datasets":
        raw["datasets"][key] = raw["datasets"]["digits"]
    else:
        raw["experiments"][key] = raw["experiments"]["ae_digits"]
    with pytest.raises(ConfigError) as error:
        parse_params(raw)
    assert str(error.value) == (
        f"{section}: {key!r} is not a plain name; a name that becomes a folder may hold only letters, digits, _ and -"
    )


def _paths(node, prefix=()) -> list[tuple]:
    """Every key path of a parsed params mapping, lists' items included, parents before children."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


_PATHS = _paths(repo_params())
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    st.lists(st.integers(-2, 40), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-2, 9), max_size=2),
)
_KEYS = st.one_of(st.text(max_size=6), st.integers(-2, 3), st.sampled_from(["..", "../x", "a/b", ".hidden", "", "x y"]))
_EDITS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(_PATHS), _VALUES),
    st.tuples(st.just("drop"), st.sampled_from(_PATHS), st.none()),
    st.tuples(st.just("add"), st.sampled_from(_PATHS), st.tuples(_KEYS, _VALUES)),
    st.tuples(st.just("rename"), st.sampled_from(_PATHS), _KEYS),
)


def _edit(raw: dict, edit: tuple) -> None:
    kind, path, value = edit
    *parents, last = path
    node = raw
    for key in parents:
        node = node[key]
    if kind == "set":
        node[last] = value
    elif kind == "drop":
        node.pop(last)
    elif kind == "add" and isinstance(node[last], dict):
        node[last][value[0]] = value[1]
    elif kind == "rename" and isinstance(node, dict):
        node[value] = node.pop(last)


@given(edits=st.lists(_EDITS, min_size=1, max_size=3))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_edit_of_params_yaml_is_one_line_or_checks_out_and_writes_nothing(edits):
    """Random edits of the repository's params.yaml (values of every type, dropped, added and renamed keys), read
    from the file as a stage reads it and checked as the stage about to run would: a one-line error, or success."""
    raw = copy.deepcopy(repo_params())
    for edit in edits:
        # an earlier edit may have removed or replaced what this one names
        with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
            _edit(raw, edit)
    from pipeline.forward import check_forward
    from pipeline.training.run import check_experiment

    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        try:
            params = load_params("params.yaml")
            # what the edits reach: the experiments and datasets they name, and the experiments on those datasets
            named = {(path[0], path[1]) for _, path, _ in edits if len(path) > 1}
            for name, dataset in params.datasets.items():
                if ("datasets", name) in named:
                    check_forward(dataset, f"datasets.{name}.forward")
            for name, experiment in params.experiments.items():
                if ("experiments", name) in named or ("datasets", experiment.dataset) in named:
                    check_experiment(params, name)
        except AeganError as error:
            assert str(error) and "\n" not in str(error), str(error)
        assert [item.name for item in Path(folder).iterdir()] == ["params.yaml"]
