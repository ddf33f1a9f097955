"""pipeline.evaluation: PSNR and SSIM per image, FCD and its floors, the label probe and transfer scores, the
latent search and the non-learned baselines, and the evaluate stage's numbers for a trained model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from pipeline.config import parse_params
from pipeline.data.store import load_split
from pipeline.errors import TrainingError
from pipeline.evaluation.classifier import classify, load_classifier
from pipeline.evaluation.evaluate import draw_samples, evaluate_experiment, predict_split
from pipeline.evaluation.figures import component_curve
from pipeline.evaluation.frechet import frechet_distance
from pipeline.evaluation.latent import colour_source, label_probe, transfer_accuracy
from pipeline.evaluation.metrics import psnr, ssim, summarise
from pipeline.evaluation.search import LatentSearch, latent_search
from pipeline.experiment import load_trained, resolve
from pipeline.forward import DropIndependent
from pipeline.tasks import Batch, Restore, build_task
from pipeline.training.classifier import train_classifier
from pipeline.training.run import train_experiment
from tests.builders import (
    LinearGenerator,
    StubClassifier,
    StubConditional,
    StubEncoder,
    StubImageConditional,
    digit_arrays,
)
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


def test_pca_psnr_rises_with_the_number_of_components(prepared_digits, tmp_path):
    params = parse_params(
        tiny_params(model={"name": "pca", "latent_dim": 8}, update={}, train={"epochs": 1, "batch_size": 64})
    )
    folders = {"prepared_dir": prepared_digits / "digits", "model_dir": tmp_path / "model"}
    train_experiment(params, "ae_tiny", **folders, plots_dir=tmp_path / "plots", checkpoint_path=tmp_path / "c.pt")
    predicted = predict_split(params, resolve(params, "ae_tiny"), **folders)
    lines = component_curve(predicted.model, predicted.batches).splitlines()
    assert lines[0] == "components,psnr,explained_variance"
    rows = [line.split(",") for line in lines[1:]]
    psnr_by_count = [float(value) for _, value, _ in rows]
    variance = [float(share) for _, _, share in rows]
    assert [int(count) for count, _, _ in rows] == list(range(1, 65))  # 240 training digits allow all 64
    assert variance == sorted(variance, reverse=True) and sum(variance) == pytest.approx(1.0, abs=1e-4)
    assert all(later >= earlier - 1e-6 for earlier, later in itertools.pairwise(psnr_by_count))
    summary, _, _, record = evaluate_experiment(
        params, "ae_tiny", **folders, classifier_dir=tmp_path / "unused", figures_dir=tmp_path / "figures"
    )
    assert summary["psnr_mean"] == pytest.approx(psnr_by_count[7], abs=1e-3)  # latent_dim 8 = the 8th point
    assert (tmp_path / "figures" / "psnr_by_components.csv").read_text() == component_curve(
        predicted.model, predicted.batches
    )
    assert set(record["figures"]) == {"eigenimages.png", "grid.png", "interpolation.png", "psnr_by_components.csv"}
    assert summary["explained_variance_total"] == pytest.approx(sum(variance[:8]), abs=1e-4)
    assert not any(key.startswith("explained_variance_") and key[-1].isdigit() for key in summary)


def test_frechet_distance_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(20000, 3))
    second = rng.normal(size=(20000, 3)) * 2 + 1  # N(1, 4I): ‖μ‖² = 3, Tr(I + 4I − 2·2I) = 3
    assert frechet_distance(first, second) == pytest.approx(6.0, rel=0.03)
    assert frechet_distance(first, first) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least two feature vectors"):
        frechet_distance(first[:1], second)


def test_the_classifier_learns_the_digits_and_reports_the_fcd_floors(digit_classifier, prepared_digits):
    folder, summary = digit_classifier
    assert summary["accuracy"] > 0.9  # 60 test digits after training on 240
    assert summary["train_images_for_fcd_train"] == 100
    model = load_classifier(folder, torch.device("cpu"))
    assert not model.training
    test = load_split(prepared_digits / "digits", "test")
    images = torch.from_numpy(np.array(test["images"]))  # uint8 NHWC, as evaluate hands them over
    _, features = classify(model, images)
    halves = np.random.default_rng(0).permutation(len(features))  # base.seed 0
    middle = len(features) // 2
    assert summary["fcd_test_halves"] == pytest.approx(
        frechet_distance(features[halves[:middle]], features[halves[middle:]])
    )
    noise = torch.rand(len(images), 1, 28, 28, generator=torch.Generator().manual_seed(0))
    _, noise = classify(model, noise)
    assert 0 < summary["fcd_train"] < frechet_distance(noise, features) / 10  # real digits are near real digits
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
    # one draw serves the FCD, the figure and the preview: the FCD is that of the draw's first 120 samples
    classifier = load_classifier(folder, torch.device("cpu"))
    test = load_split(prepared_digits / "digits", "test")
    _, real = classify(classifier, torch.from_numpy(np.array(test["images"])))
    _, generated = classify(classifier, samples[:120])
    assert summary["fcd"] == pytest.approx(frechet_distance(generated, real))
    assert np.array_equal(preview["samples"], (samples[:8].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))


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


def test_latent_search_finds_what_the_generator_can_draw():
    model = LinearGenerator()
    with torch.no_grad():
        truth = model.decode(torch.randn(16, 6, generator=torch.Generator().manual_seed(1)))
    drop = DropIndependent(p=0.5)
    measured = drop(truth, torch.Generator().manual_seed(2))
    theta = drop.observed(measured)
    rows: list[tuple[float, float]] = []
    search = LatentSearch(steps=150, lr=0.1, feature_weight=0.0, pixel_weight=1.0, prior_weight=1e-4, theta="observed")
    found = latent_search(
        model,
        measured,
        lambda images: drop.apply(images, theta),
        search,
        trace=lambda seconds, images: rows.append((seconds, float((images - truth).pow(2).mean()))),
    )
    with torch.no_grad():
        random = model.decode(torch.randn(16, 6, generator=torch.Generator().manual_seed(9)))
    error = float((found - truth).pow(2).mean())
    assert error < 0.1 * float((random - truth).pow(2).mean())
    assert len(rows) == 151 and rows[-1][1] == pytest.approx(error, rel=1e-5)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(rows))  # cumulative time
    with pytest.raises(ValueError, match="feature_weight or pixel_weight"):
        LatentSearch(feature_weight=0.0, pixel_weight=0.0)


def test_non_learned_baselines_restore_a_smooth_image():
    side = torch.linspace(-1, 1, 28)
    smooth = (
        torch.exp(-(side[:, None] ** 2 + side[None, :] ** 2) * 2)[None, None].repeat(4, 1, 1, 1) * 0.8 + 0.1
    )  # (4, 1, 28, 28)
    truth = smooth.permute(0, 2, 3, 1).numpy()
    from pipeline.evaluation.metrics import psnr

    gains = {}
    for forward, settings in (
        ("drop_independent", {"p": 0.5}),
        ("add_noise", {"sigma": 0.2}),
        ("blur_add_noise", {"sigma": 0.2}),
    ):
        task = Restore(forward=forward)
        task.bind(settings)
        measured = task.operator(smooth, torch.Generator().manual_seed(3)).permute(0, 2, 3, 1).numpy()
        restored = task.baseline(measured)
        gains[forward] = psnr(restored, truth).mean() - psnr(np.clip(measured, 0, 1), truth).mean()
    assert gains["drop_independent"] > 5 and gains["add_noise"] > 5 and gains["blur_add_noise"] > 1, gains


def test_transfer_accuracy_is_the_share_of_targets_the_classifier_sees():
    task = build_task("transfer")
    arrays = {**digit_arrays(30), "labels": torch.tensor([3] * 15 + [7] * 15)}
    batches = [
        task.batch(arrays, torch.arange(0, 20), torch.Generator()),
        task.batch(arrays, torch.arange(20, 30), torch.Generator()),
    ]
    reached, per_target = transfer_accuracy(task, StubConditional(obeys=True), batches, StubClassifier())
    assert reached.shape == (30,) and np.all(reached == 1.0) and set(per_target.values()) == {1.0}
    # A decoder that ignores the target draws the source digit: each image reaches only its own label.
    reached, per_target = transfer_accuracy(task, StubConditional(obeys=False), batches, StubClassifier())
    assert np.allclose(reached, 0.1)
    assert per_target["transfer_accuracy_to_3"] == per_target["transfer_accuracy_to_7"] == 0.5
    assert per_target["transfer_accuracy_to_0"] == 0.0


def test_the_probe_reads_a_label_the_latent_holds_and_not_one_it_does_not():
    task = build_task("reconstruct")
    train, test = digit_arrays(300), digit_arrays(100)
    test_batches = [task.batch(test, torch.arange(100), torch.Generator())]
    torch.manual_seed(0)
    kept = label_probe(task, StubEncoder(keeps_label=True), lambda: train, test_batches, seed=0)
    lost = label_probe(task, StubEncoder(keeps_label=False), lambda: train, test_batches, seed=0)
    assert kept["label_probe_accuracy"] == 1.0 and kept["label_probe_chance"] == 0.1
    assert lost["label_probe_accuracy"] < 0.3
    assert (
        label_probe(task, StubEncoder(True), lambda: {**train, "labels": torch.full((300,), -1)}, test_batches, seed=0)
        == {}
    )
    unlabelled = [test_batches[0]._replace(label=torch.full((100,), -1))]
    assert (
        label_probe(
            task, StubEncoder(True), lambda: pytest.fail("loaded the train split for nothing"), unlabelled, seed=0
        )
        == {}
    )


def test_colour_from_latent_says_whose_tint_a_transfer_carries():
    images = torch.rand(10, 3, 1, 1).expand(-1, -1, 4, 4)  # flat colours, all different
    batches = [
        Batch(input=images[:6], target=images[:6], label=torch.zeros(6), condition=images[:6]),
        Batch(input=images[6:], target=images[6:], label=torch.zeros(4), condition=images[6:]),
    ]
    assert colour_source(StubImageConditional(from_condition=False), batches).tolist() == [1.0] * 10
    assert colour_source(StubImageConditional(from_condition=True), batches).tolist() == [0.0] * 10
