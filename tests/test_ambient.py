"""Study `ambient` end to end: restore training that never reaches a clean image, remeasuring, and the
study table setting every method side by side. Its parts are tested with their modules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.config import parse_params
from pipeline.data.store import load_split
from pipeline.evaluation.evaluate import evaluate_experiment
from pipeline.experiment import Experiment
from pipeline.report import load_preview, study_table
from pipeline.studies.ambient import Ambient
from pipeline.tasks import Restore
from pipeline.training import run as training_run
from tests.builders import ambient_params, train_ambient


def _clean_images_replaced(monkeypatch, seen: list[torch.Tensor]) -> None:
    """Make training load the train split with its clean images swapped for noise; keep the real ones in `seen`."""
    real_load = training_run.load_tensors

    def load(folder, split, task, device):
        arrays = real_load(folder, split, task, device)
        seen.append(arrays["images"].clone())
        arrays["images"] = torch.randint(
            0, 256, arrays["images"].shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(5)
        )
        return arrays

    monkeypatch.setattr(training_run, "load_tensors", load)


@pytest.mark.parametrize("forward", ["drop_independent", "add_noise"])
def test_ambient_training_never_reaches_a_clean_image(tmp_path, prepared_digits, monkeypatch, forward):
    """Trained with the clean training images replaced by noise, the ambient model comes out identical to
    the ambient model trained normally, and nothing its encoder or discriminator is handed is a clean image.
    The supervised model, which learns from them, comes out different: the swap is felt where it can be."""
    settings = {"task": {"name": "restore", "forward": forward}}
    supervised = {"task": {"name": "restore", "forward": forward, "supervised": True}}
    params = ambient_params(ambient=settings, supervised=supervised)
    root = {"prepared": prepared_digits / "digits", "out": tmp_path / "normal"}
    normal = {name: train_ambient(params, name, root) for name in ("ambient", "supervised")}

    clean: list[torch.Tensor] = []
    _clean_images_replaced(monkeypatch, clean)
    handed: list[torch.Tensor] = []
    record = lambda module, inputs: handed.append(inputs[0].detach().clone())  # noqa: E731
    real_build = Experiment.build_model

    def build(experiment):
        model = real_build(experiment)
        model.encoder.register_forward_pre_hook(record)
        model.critic.body.register_forward_pre_hook(record)  # every call, logit or features
        return model

    monkeypatch.setattr(Experiment, "build_model", build)
    root = {"prepared": prepared_digits / "digits", "out": tmp_path / "swapped"}
    ambient = train_ambient(params, "ambient", root)
    assert all(torch.equal(ambient[key], normal["ambient"][key]) for key in ambient)

    images = clean[0].permute(0, 3, 1, 2).float().flatten(1) / 255  # (N, H·W)
    assert len(handed) > 10
    for tensor in handed:  # the encoder's inputs, the critic's real and measured fakes
        distance = torch.cdist(tensor.flatten(1).float(), images).min()
        assert distance > 0.5, "a clean training image reached the model"

    swapped = train_ambient(params, "supervised", root)
    assert not all(torch.equal(swapped[key], normal["supervised"][key]) for key in swapped)


def test_remeasuring_reads_the_clean_images_but_hands_over_measurements(tmp_path, prepared_digits):
    raw = ambient_params(ambient={"task": {"name": "restore", "forward": "add_noise", "remeasure": True}})
    params = parse_params(raw)
    task = Restore(forward="add_noise", remeasure=True)
    arrays = training_run.load_tensors(prepared_digits / "digits", "train", task, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    index = torch.arange(8)
    first, second = task.training_batch(arrays, index, generator), task.training_batch(arrays, index, generator)
    clean = arrays["images"][index].permute(0, 3, 1, 2).float() / 255
    assert first.target is None and first.measure is not None
    assert not torch.equal(first.input, second.input)  # a fresh θ on every pass
    assert abs(float((first.input - clean).std()) - 0.2) < 0.02  # y = x + 0.2 n
    fixed = Restore(forward="add_noise")
    fixed.bind({"sigma": 0.2})
    prepared = fixed.training_batch(arrays, index, generator).input
    assert torch.equal(prepared, fixed.training_batch(arrays, index, generator).input)  # the one prepared measurement
    assert params.experiment("ambient").task.args["remeasure"] is True


def test_the_study_table_sets_the_methods_side_by_side(tmp_path, prepared_digits, digit_classifier):
    search = {"feature_weight": 0.0, "pixel_weight": 1.0, "theta": "observed", "steps": 20}
    raw = ambient_params(
        ambient={"task": {"name": "restore"}},
        supervised={"task": {"name": "restore", "supervised": True}},
        acsg={
            "task": {"name": "restore", "search": search},
            "model": {"name": "ambient_gan", "width": 4, "latent_dim": 8},
            "update": {"lr_generator": 1.0e-3, "lr_critic": 1.0e-3},
        },
    )
    params = parse_params(raw)
    root = {"prepared": prepared_digits / "digits", "out": tmp_path}
    metrics = tmp_path / "metrics"
    for name in params.experiments:
        train_ambient(raw, name, root)
        summary, table, preview, record = evaluate_experiment(
            params,
            name,
            prepared_dir=root["prepared"],
            model_dir=tmp_path / name,
            classifier_dir=digit_classifier[0],
            figures_dir=tmp_path / "figures" / name,
        )
        (metrics / "ambient").mkdir(parents=True, exist_ok=True)
        (metrics / "ambient" / f"{name}.json").write_text(json.dumps(summary))
        (metrics / "ambient" / f"{name}.run.json").write_text(json.dumps(record))
        np.savez(metrics / "ambient" / f"{name}.npz", **preview)
        assert len(table) == 60 and summary["seconds_per_image"] > 0
        assert summary["fcd"] > digit_classifier[1]["fcd_train"]  # a few epochs are far from the real digits
        assert summary["baseline_psnr_mean"] > summary["input_psnr_mean"]
    assert preview["search_curve"].shape == (21, 2)
    assert preview["baseline"].dtype == np.uint8 and preview["baseline"].shape == preview["truth"].shape
    (metrics / "classifiers").mkdir()
    (metrics / "classifiers" / "digits.json").write_text(json.dumps(digit_classifier[1]))  # the FCD floors
    table = study_table(params, "ambient", metrics)
    rows = table.set_index("experiment")
    assert list(rows["method"].iloc[:5]) == ["ambient", "supervised", "ACSG", "distorted input", "non-learned"]
    ambient = json.loads((metrics / "ambient" / "ambient.json").read_text())
    # the ratio is the search against the encoder on one batch in one process (evaluate's `search_race`),
    # not the ACSG row's time against the ambient row's
    assert rows.loc["ambient", "acsg_time_ratio"] == pytest.approx(
        ambient["race_search_seconds_per_image"] / ambient["race_encoder_seconds_per_image"]
    )
    assert rows.loc["ambient", "acsg_time_ratio"] > 20  # 100 search steps cost far more than one encoder pass
    assert rows.loc["supervised", "acsg_time_ratio"] > 20
    assert pd.isna(rows.loc["acsg", "acsg_time_ratio"])  # the search itself has nothing to race
    assert rows.loc["non-learned (drop_independent)", "psnr_mean"] == ambient["baseline_psnr_mean"]
    assert rows.loc["distorted input (drop_independent)", "psnr_mean"] == ambient["input_psnr_mean"]
    curves = Ambient().curves(table, lambda name: load_preview(metrics / "ambient" / f"{name}.npz", name))
    curves = curves["digits_drop_independent"]
    assert len(curves["ACSG (acsg)"][0]) == 21 and len(curves["non-learned"][0]) == 1
    assert "seed_psnr" not in table.columns  # digits is not CelebA
    images = load_split(prepared_digits / "digits", "test")["images"]
    assert preview["truth"].shape[1:] == images.shape[1:]
