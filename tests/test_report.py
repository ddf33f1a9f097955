"""pipeline.report: the study table and side-by-side figures, and the one logging of evaluations into MLflow."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import tracking
from pipeline.config import parse_params
from pipeline.evaluation.evaluate import evaluate_experiment
from pipeline.report import comparisons
from pipeline.training.run import train_experiment
from tests.conftest import repo_params, tiny_params


def test_the_report_sets_models_side_by_side_per_dataset_and_task(tmp_path):
    params = parse_params(repo_params())
    folder = tmp_path / "translation"
    folder.mkdir()
    for index, (name, experiment) in enumerate(params.experiments.items()):
        if experiment.study == "translation":
            part = np.full((2, 4, 4, 3), index, np.uint8)
            np.savez(folder / f"{name}.npz", input=part + 100, output=part, truth=part + 200)
    figures = comparisons(params, "translation", tmp_path)
    names, rows = figures["photos_translate"]
    assert names == ["input", "unet_edges_photos", "pix2pix_edges_photos", "truth"]
    first = list(params.experiments).index("unet_edges_photos")
    second = list(params.experiments).index("pix2pix_edges_photos")
    assert [row[0, 0, 0, 0] * 255 for row in rows] == pytest.approx([first + 100, first, second, first + 200])
    assert figures["photos_colorize"][0] == ["input", "colorizer_photos", "colorizer_unet_photos", "truth"]


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
