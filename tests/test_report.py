"""pipeline.report: the study table and side-by-side figures, and the one logging of evaluations into MLflow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import tracking
from pipeline.config import parse_params
from pipeline.errors import DataError
from pipeline.evaluation.evaluate import evaluate_experiment
from pipeline.report import comparisons, loss_curves, study_table, to_markdown
from pipeline.scores import write_scores
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
    assert names == ["input", "l1_only_edges_photos", "pix2pix_edges_photos", "truth"]
    first = list(params.experiments).index("l1_only_edges_photos")
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
    assert store.log_evaluation(record, summary, {"": figures})
    client = MlflowClient()
    logged = client.get_run(run["run_id"]).data.metrics
    assert logged["test/psnr_mean"] == pytest.approx(summary["psnr_mean"]) and "test/train_seconds" not in logged
    # files at the artifact root, where MLflow's compare view looks for what two runs have in common
    root = [a for a in client.list_artifacts(run["run_id"]) if not a.is_dir]
    assert sorted(a.path for a in root) == ["grid.png", "interpolation.png"]
    assert store.log_evaluation(record, summary, {"": figures})  # the same evaluation again: nothing re-sent
    assert len(client.get_metric_history(run["run_id"], "test/psnr_mean")) == 1
    changed = {**summary, "psnr_mean": summary["psnr_mean"] + 1}  # a new evaluation of the same run is sent
    assert store.log_evaluation(record, changed, {"": figures})
    assert client.get_run(run["run_id"]).data.metrics["test/psnr_mean"] == pytest.approx(changed["psnr_mean"])
    assert not store.log_evaluation({**record, "run_id": "0" * 32}, summary, {})  # a run this store never saw


def fake_study(metrics, params, study: str, scores: dict[str, dict], references: dict[str, dict]) -> None:
    """What evaluate@<name> writes for each of `study`'s experiments, with the given scores and references."""
    (metrics / study).mkdir(parents=True, exist_ok=True)
    for name, experiment in params.experiments.items():
        if experiment.study == study:
            write_scores(metrics / study / name, scores[name])
            record = {"run_id": "0" * 32, "experiment": name, "references": references.get(name, {})}
            (metrics / study / f"{name}.run.json").write_text(json.dumps(record))


def test_each_reference_an_experiment_is_scored_against_is_a_row_named_after_it(tmp_path):
    params = parse_params(repo_params())
    names = [name for name, experiment in params.experiments.items() if experiment.study == "autoencoders"]
    scores = {name: {"psnr_mean": 20.0 + i, "psnr_std": 1.0, "seconds_per_image": 0.5} for i, name in enumerate(names)}
    scores["dae_digits"] |= {
        "input_psnr_mean": 15.6,
        "input_psnr_std": 0.3,
        "baseline_psnr_mean": 20.5,
        "baseline_psnr_std": 0.4,
        "baseline_seconds_per_image": 0.003,
    }
    references = {"dae_digits": {"input_": "noisy input", "baseline_": "total-variation denoiser"}}
    fake_study(tmp_path, params, "autoencoders", scores, references)
    table = study_table(params, "autoencoders", tmp_path)
    rows = table.set_index("experiment")
    assert list(rows.index[len(names) :]) == ["noisy input (digits)", "total-variation denoiser (digits)"]
    assert rows.loc["noisy input (digits)", ["psnr_mean", "task"]].tolist() == [15.6, "denoise"]
    assert rows.loc["total-variation denoiser (digits)", ["psnr_mean", "seconds_per_image"]].tolist() == [20.5, 0.003]
    assert "references" not in table
    shown = to_markdown(table, "autoencoders")
    assert "input_psnr" not in shown and "baseline_psnr" not in shown  # the rows show them
    assert "| total-variation denoiser (digits) | total-variation denoiser | digits    | denoise" in shown


def test_the_study_losses_gather_every_experiments_curves_in_one_long_table(tmp_path):
    params = parse_params(tiny_params())
    for name, losses in {"ae_tiny": ["loss"]}.items():
        folder = tmp_path / "autoencoders" / name
        folder.mkdir(parents=True)
        for index, loss in enumerate(losses):
            (folder / f"{loss}.csv").write_text(f"epoch,{loss}\n1,{index + 0.5}\n2,{index + 0.25}\n")
    curves = loss_curves(params, "autoencoders", tmp_path)
    assert curves.to_dict("list") == {
        "experiment": ["ae_tiny", "ae_tiny"],
        "loss": ["loss", "loss"],
        "epoch": [1, 2],
        "value": [0.5, 0.25],
    }
    (tmp_path / "autoencoders" / "ae_tiny" / "loss.csv").unlink()
    (tmp_path / "autoencoders" / "ae_tiny").rmdir()
    with pytest.raises(DataError, match=r"train@ae_tiny"):
        loss_curves(params, "autoencoders", tmp_path)
