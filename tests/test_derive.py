"""Derived datasets (`derived:` in params.yaml): a trained experiment's reconstructions as another experiment's
data, with the real test images kept as the reference an FCD is measured against."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from pipeline.config import parse_params
from pipeline.data.derive import derive_dataset
from pipeline.data.store import load_split, read_manifest, verify
from pipeline.evaluation.classifier import classify, load_classifier
from pipeline.evaluation.evaluate import evaluate_experiment
from pipeline.evaluation.frechet import frechet_distance
from pipeline.experiment import load_trained
from pipeline.images import to_float, to_numpy, to_uint8
from pipeline.schema import ConfigError
from pipeline.training.run import train_experiment
from tests.conftest import tiny_params

GAN = {
    "study": "autoencoders",
    "dataset": "digits_ae",
    "task": {"name": "generate"},
    "model": {"name": "dcgan", "latent_dim": 8, "width": 4, "depth": 2, "critic_width": 4},
    "update": {"lr_generator": 1.0e-3, "lr_critic": 5.0e-4},
    "train": {"epochs": 1, "batch_size": 32},
}


def derived_params(**derived) -> dict:
    raw = tiny_params()
    raw["derived"] = derived or {
        "digits_ae": {"source": "reconstructions", "experiment": "ae_tiny", "dataset": "digits"}
    }
    raw["experiments"]["gan_on_ae"] = copy.deepcopy(GAN)
    raw["classifier"] = {**raw["classifier"], "samples": 100}
    return raw


def test_a_derived_dataset_takes_its_source_size_and_no_views_or_distorted_copies():
    params = parse_params(derived_params())
    made = params.dataset("digits_ae")
    assert (made.source, made.experiment, made.image_size, made.channels) == ("reconstructions", "ae_tiny", 28, 1)
    assert made.views == () and made.forward == {}
    assert params.dataset("digits").views == ("edges",)  # the source keeps its own
    assert params.origin("digits_ae") == "digits" and params.origin("digits") == "digits"


@pytest.mark.parametrize(
    ("derived", "message"),
    [
        ({"source": "reconstructions", "experiment": "nothing", "dataset": "digits"}, "derived.digits_ae.experiment"),
        ({"source": "reconstructions", "experiment": "ae_tiny", "dataset": "photos"}, "ae_tiny trains on digits"),
        ({"source": "samples", "experiment": "ae_tiny", "dataset": "digits"}, "derived.digits_ae.source"),
        ({"source": "reconstructions", "experiment": "gan_on_ae", "dataset": "digits_ae"}, "task is not reconstruct"),
        ({"source": "reconstructions", "experiment": "ae_tiny"}, "derived.digits_ae.dataset"),
    ],
)
def test_a_derived_dataset_that_cannot_be_made_is_named_in_one_line(derived, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_params(derived_params(digits_ae=derived))


def test_derived_datasets_made_from_each_other_are_refused():
    raw = derived_params()
    raw["experiments"]["ae_tiny"]["dataset"] = "digits_ae"  # ae_tiny would train on its own reconstructions
    raw["derived"]["digits_ae"]["dataset"] = "digits_ae"
    with pytest.raises(ConfigError, match="made from each other"):
        parse_params(raw)


def test_a_dataset_of_reconstructions_belongs_under_derived():
    raw = tiny_params()
    raw["datasets"]["digits"]["source"] = "reconstructions"
    with pytest.raises(ConfigError, match="goes under `derived:`"):
        parse_params(raw)


def train(params, name: str, prepared, model_dir) -> None:
    folders = {"plots_dir": model_dir.parent / f"{name}_plots", "checkpoint_path": model_dir.parent / f"{name}.pt"}
    train_experiment(params, name, prepared_dir=prepared, model_dir=model_dir, **folders)


def test_derive_writes_the_models_reconstructions_and_keeps_labels_and_the_real_test_images(
    tmp_path, prepared_digits, digit_classifier
):
    params = parse_params(derived_params())
    source = prepared_digits / "digits"
    train(params, "ae_tiny", source, tmp_path / "ae_tiny")
    out = tmp_path / "prepared" / "digits_ae"
    classifiers = (digit_classifier[0], tmp_path / "classifiers" / "digits_ae")
    manifest = derive_dataset(
        params, "digits_ae", source_dir=source, model_dir=tmp_path / "ae_tiny", out_dir=out, classifier_dirs=classifiers
    )
    assert verify(out) == 5  # train images and labels, test images, labels and reference
    assert manifest["experiment"] == "ae_tiny" and manifest["from"] == "digits"
    assert manifest["counts"] == read_manifest(source)["counts"]
    model, _ = load_trained(tmp_path / "ae_tiny", torch.device("cpu"))
    for split in ("train", "test"):
        real, made = load_split(source, split), load_split(out, split)
        np.testing.assert_array_equal(made["labels"], real["labels"])
        with torch.no_grad():
            expected = to_uint8(to_numpy(model(to_float(torch.from_numpy(np.array(real["images"])))).image))
        np.testing.assert_array_equal(made["images"], expected)
        assert not np.array_equal(made["images"], real["images"])  # reconstructions, not copies
    np.testing.assert_array_equal(load_split(out, "test")["reference"], load_split(source, "test")["images"])
    assert sorted(p.name for p in classifiers[1].iterdir()) == sorted(p.name for p in classifiers[0].iterdir())

    # a GAN trained on the reconstructions is scored against the real test digits, not the reconstructed ones
    train(params, "gan_on_ae", out, tmp_path / "gan")
    summary, *_ = evaluate_experiment(
        params,
        "gan_on_ae",
        prepared_dir=out,
        model_dir=tmp_path / "gan",
        classifier_dir=classifiers[1],
        figures_dir=tmp_path / "figures",
    )
    classifier = load_classifier(classifiers[1], torch.device("cpu"))
    gan, _ = load_trained(tmp_path / "gan", torch.device("cpu"))
    samples = (gan.sample(100, torch.Generator().manual_seed(0)).float().clamp(0, 1) * 255).round() / 255
    _, generated = classify(classifier, samples)
    _, real = classify(classifier, torch.from_numpy(np.array(load_split(source, "test")["images"])))
    _, reconstructed = classify(classifier, torch.from_numpy(np.array(load_split(out, "test")["images"])))
    assert summary["fcd"] == pytest.approx(frechet_distance(generated, real), rel=1e-4)
    assert summary["fcd"] != pytest.approx(frechet_distance(generated, reconstructed), rel=1e-2)


def test_a_task_that_reads_views_or_distorted_copies_is_sent_back_to_the_source_dataset():
    from pipeline.experiment import resolve

    raw = derived_params()
    raw["experiments"]["edges_on_ae"] = {
        **GAN,
        "task": {"name": "translate"},
        "model": {"name": "unet", "width": 4, "depth": 2},
        "update": {"lr": 1.0e-3},
    }
    raw["experiments"]["restore_on_ae"] = {**GAN, "task": {"name": "restore"}, "model": {"name": "ambient_vaegan"}}
    params = parse_params(raw)
    for name, missing in (("edges_on_ae", "edges"), ("restore_on_ae", "drop_independent")):
        with pytest.raises(
            ConfigError, match=f"derived dataset digits_ae has no {missing}; .* train this experiment on digits"
        ):
            resolve(params, name)
