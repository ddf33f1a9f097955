"""pipeline.evaluation: scikit-image's PSNR/SSIM per image; the evaluate stage's numbers and figures for a
trained model, and how they reach its MLflow run."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from pipeline import tracking
from pipeline.config import parse_params
from pipeline.data.store import load_split
from pipeline.errors import DataError, TrainingError
from pipeline.evaluation.classifier import load_classifier
from pipeline.evaluation.evaluate import draw_samples, evaluate_experiment, predict_split
from pipeline.evaluation.figures import comparison_rows, component_curve, interpolate
from pipeline.evaluation.frechet import frechet_distance
from pipeline.evaluation.metrics import psnr, ssim, summarise
from pipeline.experiment import load_trained, resolve
from pipeline.figures import grid
from pipeline.models import build_model
from pipeline.training.classifier import train_classifier
from pipeline.training.run import train_experiment
from tests.conftest import tiny_params


def test_psnr_of_a_known_error():
    target = np.zeros((2, 8, 8, 1), dtype=np.float32)
    prediction = target + np.array([0.1, 0.01], dtype=np.float32)[:, None, None, None]
    assert np.allclose(psnr(prediction, target), [20.0, 40.0], atol=1e-4)  # 10·log10(1 / mse)


def test_ssim_is_one_for_equal_images_and_falls_with_noise():
    rng = np.random.default_rng(0)
    target = rng.random((2, 16, 16, 3)).astype(np.float32)
    noise = rng.normal(0, 1, target.shape)
    light, heavy = (np.clip(target + sigma * noise, 0, 1).astype(np.float32) for sigma in (0.05, 0.3))
    assert ssim(target, target) == pytest.approx([1.0, 1.0])
    assert np.all(ssim(heavy, target) < ssim(light, target)) and np.all(ssim(light, target) < 0.99)


def test_summary_has_mean_and_std():
    assert summarise({"psnr": np.array([10.0, 20.0])}) == {"psnr_mean": 15.0, "psnr_std": 5.0}


@pytest.mark.parametrize("task", [{"name": "reconstruct"}, {"name": "denoise", "sigma": 0.3}])
def test_evaluate_scores_every_test_image_and_draws_its_figures(tmp_path, prepared_digits, task):
    params = parse_params(tiny_params(task=task, train={"epochs": 6, "batch_size": 32}))
    folders = {"prepared_dir": prepared_digits / "digits", "model_dir": tmp_path / "model"}
    run = train_experiment(
        params, "ae_tiny", **folders, plots_dir=tmp_path / "plots", checkpoint_path=tmp_path / "c.pt"
    )
    folders["classifier_dir"] = tmp_path / "unused"
    summary, table, _, record = evaluate_experiment(params, "ae_tiny", **folders, figures_dir=tmp_path / "figures")
    assert len(table) == summary["images"] == 60
    assert summary["psnr_mean"] == pytest.approx(table["psnr"].mean())
    target = load_split(prepared_digits / "digits", "test")["images"].astype(np.float32) / 255.0
    blank = psnr(np.zeros_like(target), target).mean()
    assert summary["psnr_mean"] > blank + 3  # clearly better than predicting a black image
    if task["name"] == "denoise":
        assert summary["input_psnr_mean"] < summary["psnr_mean"]  # the model removes noise
        # unclipped σ = 0.3 noise gives 10.46 dB; clipping to [0, 1] can only bring the input closer to the target
        assert 10 * np.log10(1 / 0.3**2) < summary["input_psnr_mean"] < 20
    assert sorted(path.name for path in (tmp_path / "figures").iterdir()) == ["grid.png", "interpolation.png"]
    assert record["run_id"] == run["run_id"] and set(record["figures"]) == {"grid.png", "interpolation.png"}
    assert "test/psnr_mean" not in MlflowClient().get_run(run["run_id"]).data.metrics  # evaluate opens no store
    again, _, _, record_again = evaluate_experiment(params, "ae_tiny", **folders, figures_dir=tmp_path / "again")
    assert record_again == record  # the same figures, byte for byte
    assert again.pop("train_seconds") == summary.pop("train_seconds") == run["train_seconds"]
    # fixed noise seed: evaluation is repeatable, but for its clock readings
    timings = [key for key in summary if key.endswith("seconds_per_image")]  # clock readings differ run to run
    assert timings and all(0 < summary[key] < 1 for key in timings)
    assert {k: v for k, v in again.items() if k not in timings} == {
        k: v for k, v in summary.items() if k not in timings
    }


def test_grid_tiles_rows_with_gaps_and_enlarges_small_images():
    inputs = torch.zeros(3, 1, 16, 16)
    outputs = torch.ones(3, 1, 16, 16)
    image = grid(comparison_rows(inputs, outputs, inputs, columns=3, blocks=1))
    assert image.shape == (2 * (64 + 2) + 2, 3 * (64 + 2) + 2, 3)  # 16-pixel cells enlarged 4×
    assert image[2 + 10, 2 + 10].tolist() == [0, 0, 0]  # first row: inputs (black)
    assert image[2 + 66 + 10, 2 + 10].tolist() == [255, 255, 255]  # second row: outputs (white)


def test_interpolation_strip_starts_and_ends_at_the_pair():
    model = build_model("conv_ae", in_channels=1, out_channels=1, image_size=16, latent_dim=4, width=4).eval()
    images = torch.rand(5, 1, 16, 16)
    strip = interpolate(model, images, (1, 3), frames=16, name="x")
    assert strip.shape == (16, 1, 16, 16)
    assert torch.allclose(strip[0], model(images[1:2]).image[0], atol=1e-6)
    assert torch.allclose(strip[-1], model(images[3:4]).image[0], atol=1e-6)
    with pytest.raises(DataError, match="index 7 is beyond the 5 test images"):
        interpolate(model, images, (0, 7), frames=16, name="x")


def test_pca_psnr_rises_with_the_number_of_components(prepared_digits, tmp_path):
    params = parse_params(
        tiny_params(model={"name": "pca", "latent_dim": 8}, update={}, train={"epochs": 1, "batch_size": 64})
    )
    folders = {"prepared_dir": prepared_digits / "digits", "model_dir": tmp_path / "model"}
    train_experiment(params, "ae_tiny", **folders, plots_dir=tmp_path / "plots", checkpoint_path=tmp_path / "c.pt")
    predicted = predict_split(params, resolve(params, "ae_tiny"), **folders)
    rows = [line.split(",") for line in component_curve(predicted.model, predicted.batches).splitlines()[1:]]
    psnr_by_count = [float(value) for _, value in rows]
    assert [int(count) for count, _ in rows] == list(range(1, 65))  # 240 training digits allow all 64
    assert all(later >= earlier - 1e-6 for earlier, later in itertools.pairwise(psnr_by_count))
    summary, _, _, record = evaluate_experiment(
        params, "ae_tiny", **folders, classifier_dir=tmp_path / "unused", figures_dir=tmp_path / "figures"
    )
    assert summary["psnr_mean"] == pytest.approx(psnr_by_count[7], abs=1e-3)  # latent_dim 8 = the 8th point
    assert (tmp_path / "figures" / "psnr_by_components.csv").read_text() == component_curve(
        predicted.model, predicted.batches
    )
    assert set(record["figures"]) == {"eigenimages.png", "grid.png", "interpolation.png", "psnr_by_components.csv"}
    assert 0 < summary["explained_variance_1"] < summary["explained_variance_total"] < 1


def test_frechet_distance_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(20000, 3))
    second = rng.normal(size=(20000, 3)) * 2 + 1  # N(1, 4I): ‖μ‖² = 3, Tr(I + 4I − 2·2I) = 3
    assert frechet_distance(first, second) == pytest.approx(6.0, rel=0.03)
    assert frechet_distance(first, first) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least two feature vectors"):
        frechet_distance(first[:1], second)


def test_the_classifier_learns_the_digits_and_reports_the_fcd_floors(digit_classifier):
    folder, summary = digit_classifier
    assert summary["accuracy"] > 0.9  # 60 test digits after training on 240
    assert summary["fcd_test_halves"] > 0 and summary["fcd_train"] > 0
    assert summary["train_images_for_fcd_train"] == 100
    model = load_classifier(folder, torch.device("cpu"))
    assert not model.training
    run = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("classifiers").experiment_id],
        "attributes.run_name = 'classifier digits'",
    )[0]
    assert run.data.metrics["test/accuracy"] == pytest.approx(summary["accuracy"])


def test_an_unlabelled_dataset_gets_no_classifier(tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "manifest.json").write_text('{"class_names": [], "arrays": {}}')
    params = parse_params(tiny_params())
    assert train_classifier(params, "digits", prepared_dir=prepared, out_dir=tmp_path / "out") == {"labelled": False}
    assert load_classifier(tmp_path / "out", torch.device("cpu")) is None
    with pytest.raises(TrainingError, match=r"run `dvc repro classify@missing` first"):
        load_classifier(tmp_path / "missing", torch.device("cpu"))


def test_a_generator_is_scored_by_fcd_on_fixed_samples(tmp_path, prepared_digits, digit_classifier):
    folder, floors = digit_classifier
    raw = tiny_params(
        task={"name": "generate"},
        model={"name": "dcgan", "latent_dim": 8, "width": 8},
        update={},
        train={"epochs": 2, "batch_size": 32},
    )
    params = parse_params({**raw, "classifier": {"samples": 120}})
    folders = {"prepared_dir": prepared_digits / "digits", "model_dir": tmp_path / "model"}
    train_experiment(params, "ae_tiny", **folders, plots_dir=tmp_path / "plots", checkpoint_path=tmp_path / "c.pt")
    summary, table, preview, record = evaluate_experiment(
        params, "ae_tiny", **folders, classifier_dir=folder, figures_dir=tmp_path / "figures"
    )
    assert "psnr_mean" not in summary and summary["fcd_samples"] == 120
    assert list(record["figures"]) == ["samples.png"] and preview["samples"].shape == (8, 28, 28, 1)
    assert summary["fcd"] > floors["fcd_train"]  # two epochs of a GAN are far from the real digits
    assert list(table.columns) == ["sample", "predicted_class", "confidence"] and len(table) == 120
    assert table["confidence"].between(0.1, 1.0).all()
    again, _, _, _ = evaluate_experiment(
        params, "ae_tiny", **folders, classifier_dir=folder, figures_dir=tmp_path / "again"
    )
    assert again["fcd"] == summary["fcd"]  # the same noise every time
    model, _ = load_trained(tmp_path / "model", torch.device("cpu"))
    samples = draw_samples(model, 300, seed=0)
    assert torch.equal(samples * 255, (samples * 255).round())  # 8-bit, as the real images
    # one draw serves the FCD, the figure and the preview: its first samples are what a smaller draw gives
    assert torch.equal(samples[:10], draw_samples(model, 10, seed=0))
    assert np.array_equal(preview["samples"], (samples[:8].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))


def test_the_report_brings_an_evaluation_into_the_training_run_once(tmp_path, prepared_digits):
    params = parse_params(tiny_params(train={"epochs": 1, "batch_size": 32}))
    folders = {"prepared_dir": prepared_digits / "digits", "model_dir": tmp_path / "model"}
    run = train_experiment(
        params, "ae_tiny", **folders, plots_dir=tmp_path / "plots", checkpoint_path=tmp_path / "c.pt"
    )
    summary, _, _, record = evaluate_experiment(
        params, "ae_tiny", **folders, classifier_dir=tmp_path / "unused", figures_dir=tmp_path / "figures"
    )
    store = tracking.Store(tracking.resolve_uri(params.tracking.uri))
    figures = sorted((tmp_path / "figures").iterdir())
    assert store.log_evaluation(record, summary, {"figures": figures})
    client = MlflowClient()
    logged = client.get_run(run["run_id"]).data.metrics
    assert logged["test/psnr_mean"] == pytest.approx(summary["psnr_mean"]) and "test/train_seconds" not in logged
    assert sorted(a.path for a in client.list_artifacts(run["run_id"], "figures")) == [
        "figures/grid.png",
        "figures/interpolation.png",
    ]
    assert store.log_evaluation(record, summary, {"figures": figures})  # the same evaluation again: nothing re-sent
    assert len(client.get_metric_history(run["run_id"], "test/psnr_mean")) == 1
    changed = {**summary, "psnr_mean": summary["psnr_mean"] + 1}  # a new evaluation of the same run is sent
    assert store.log_evaluation(record, changed, {"figures": figures})
    assert client.get_run(run["run_id"]).data.metrics["test/psnr_mean"] == pytest.approx(changed["psnr_mean"])
    assert not store.log_evaluation({**record, "run_id": "0" * 32}, summary, {})  # a run this store never saw


def test_a_crafted_model_file_runs_no_code_and_is_named(tmp_path):
    from tests.test_training import Payload

    folder = tmp_path / "models" / "ae_tiny"
    folder.mkdir(parents=True)
    marker = tmp_path / "the-payload-ran"
    torch.save({"model": "conv_ae", "model_args": {}, "state_dict": Payload(marker)}, folder / "model.pt")
    with pytest.raises(TrainingError) as error:
        load_trained(folder, torch.device("cpu"))
    assert str(error.value).startswith(f"{folder} does not hold a model this code can load (Weights only load failed")
    assert str(error.value).endswith("run `dvc repro --force train@ae_tiny`") and "\n" not in str(error.value)
    assert not marker.exists()
