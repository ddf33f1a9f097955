"""pipeline.training: a run writes its outputs and MLflow run, resume is exact, checkpoints are judged, NaN stops."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from pipeline.config import parse_params
from pipeline.errors import TrainingError
from pipeline.experiment import load_trained
from pipeline.training import run as training_run
from pipeline.training import updates
from pipeline.training.run import train_experiment
from tests.conftest import repo_params, tiny_params


def _train(tmp_path, prepared, raw=None, name="ae_tiny"):
    params = parse_params(raw or tiny_params())
    return train_experiment(
        params,
        name,
        prepared_dir=prepared / "digits",
        model_dir=tmp_path / "models" / name,
        plots_dir=tmp_path / "plots" / name,
        checkpoint_path=tmp_path / "checkpoints" / name / "last.pt",
    )


def _interrupt_at(monkeypatch, call: int, rule: type = updates.ReconstructionUpdate) -> None:
    """Make the update rule raise KeyboardInterrupt (as Ctrl-C would) on its `call`-th batch."""
    original = rule.__call__
    calls = {"n": 0}

    def dies(self, batch):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(rule, "__call__", dies)


def test_a_run_writes_model_curves_and_an_mlflow_run(tmp_path, prepared_digits, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "lucid-pike")  # as `dvc exp run` sets them for its stages
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0123abc")
    summary = _train(tmp_path, prepared_digits)
    model, run_info = load_trained(tmp_path / "models" / "ae_tiny", torch.device("cpu"))
    assert run_info["run_id"] == summary["run_id"]
    assert not model.training
    curve = (tmp_path / "plots" / "ae_tiny" / "loss.csv").read_text().splitlines()
    assert curve[0] == "epoch,loss" and len(curve) == 4  # header + 3 epochs
    losses = [float(line.split(",")[1]) for line in curve[1:]]
    assert losses[2] < losses[0]
    assert not (tmp_path / "checkpoints" / "ae_tiny" / "last.pt").exists()  # removed once outputs exist

    run = MlflowClient().get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["model.latent_dim"] == "8"
    assert run.data.params["update.lr"] == "0.003"
    assert run.data.params["dataset.source"] == "digits"
    assert run.data.tags["dvc.stage"] == "train@ae_tiny"
    assert run.data.tags["mlflow.source.git.commit"]
    # named and tagged so that two variants of one experiment differ, and described in a line
    assert run.info.run_name == "ae_tiny (lucid-pike)"
    assert run.data.tags["dvc.exp_name"] == "lucid-pike" and run.data.tags["dvc.exp_baseline_rev"] == "0123abc"
    assert run.data.tags["mlflow.note.content"] == "conv_ae on digits, task reconstruct"
    assert len(run.data.tags["aegan.params"]) == 8
    # only the dataset settings that apply to its source and task: no crop count, no folder settings, nothing
    # unset, and for a reconstruction neither the edge detector's σ nor the forward models
    assert sorted(key.removeprefix("dataset.") for key in run.data.params if key.startswith("dataset.")) == [
        "channels",
        "image_size",
        "limit",
        "source",
        "test_fraction",
        "views",
    ]
    history = MlflowClient().get_metric_history(summary["run_id"], "train/loss")
    assert len(history) == 3 * 8  # every step (7 full batches and one of 16 per epoch), sent in batches
    # the prepared dataset is the run's input, the trained model its logged model (weights and settings)
    (given,) = run.inputs.dataset_inputs
    assert given.dataset.name == "digits" and given.dataset.source.endswith("prepared/digits")
    assert len(given.dataset.digest) == 12
    (logged,) = [
        m for m in MlflowClient().search_logged_models([run.info.experiment_id]) if m.source_run_id == run.info.run_id
    ]
    assert logged.name == "ae_tiny" and logged.model_type == "conv_ae" and str(logged.status) == "READY"
    files = {f.path for f in MlflowClient().list_logged_model_artifacts(logged.model_id)}
    assert files == {path.name for path in (tmp_path / "models" / "ae_tiny").iterdir()}
    experiment = MlflowClient().get_experiment(run.info.experiment_id)
    assert experiment.name == "autoencoders"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI's model-training view


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, prepared_digits, monkeypatch):
    reference = _train(tmp_path / "reference", prepared_digits)
    expected, _ = load_trained(tmp_path / "reference" / "models" / "ae_tiny", torch.device("cpu"))

    with monkeypatch.context() as patch:
        _interrupt_at(patch, 8 + 3)  # third batch of epoch two (8 batches of up to 32 per epoch)
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path, prepared_digits)
    saved = torch.load(tmp_path / "checkpoints" / "ae_tiny" / "last.pt", weights_only=True)
    assert saved["epoch"] == 1

    resumed = _train(tmp_path, prepared_digits)
    actual, _ = load_trained(tmp_path / "models" / "ae_tiny", torch.device("cpu"))
    for key, value in expected.state_dict().items():
        assert torch.equal(value, actual.state_dict()[key]), key
    assert resumed["run_id"] == saved["run_id"] != reference["run_id"]  # the same MLflow run went on
    assert MlflowClient().get_run(resumed["run_id"]).info.status == "FINISHED"


def test_a_checkpoint_from_other_settings_is_not_resumed(tmp_path, prepared_digits, monkeypatch, capsys):
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 8 + 1)
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path, prepared_digits)
    summary = _train(tmp_path, prepared_digits, tiny_params(update={"lr": 1.0e-3}))
    assert "written with other settings" in capsys.readouterr().err
    run = MlflowClient().get_run(summary["run_id"])
    assert run.data.params["update.lr"] == "0.001"


def test_a_diverging_loss_stops_with_a_clear_error_and_writes_no_model(tmp_path, prepared_digits):
    with pytest.raises(TrainingError, match=r"loss became nan at epoch \d+, step \d+: training diverged"):
        _train(tmp_path, prepared_digits, tiny_params(update={"lr": 1.0e30}))
    assert not (tmp_path / "models" / "ae_tiny").exists()


def _newest_run(name: str = "ae_tiny"):
    client = MlflowClient()
    experiment = client.get_experiment_by_name("autoencoders").experiment_id
    return client.search_runs(
        [experiment], f"tags.`dvc.stage` = 'train@{name}'", order_by=["attributes.start_time DESC"], max_results=1
    )[0]


def test_a_run_that_fails_after_its_run_opened_is_marked_failed(tmp_path, prepared_digits, monkeypatch):
    with pytest.raises(TrainingError, match="training diverged"):
        _train(tmp_path, prepared_digits, tiny_params(update={"lr": 1.0e30}))
    assert _newest_run().info.status == "FAILED"

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training_run, "_write_curves", full_disk)  # after fit, while the outputs are written
    with pytest.raises(OSError, match="No space left"):
        _train(tmp_path / "second", prepared_digits)
    newest = _newest_run()
    assert newest.info.status == "FAILED" and newest.info.end_time is not None


def test_checkpoints_keep_their_distance_and_skip_the_last_epoch(tmp_path, monkeypatch):
    from pipeline.training import callbacks

    clock = {"now": 100.0}
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock["now"])
    saved = []
    monkeypatch.setattr(callbacks.checkpoint, "save", lambda path, state: saved.append(state["epoch"]))
    saver = callbacks.Checkpointer(tmp_path / "last.pt", lambda epoch, step: {"epoch": epoch}, epochs=6, seconds=10.0)
    for epoch, now in zip(range(1, 7), (104.0, 109.0, 111.0, 115.0, 122.0, 140.0)):
        clock["now"] = now
        saver.on_epoch_end(epoch, 10 * epoch)
    assert saved == [3, 5]  # 11 s after the start, 11 s after that; epoch 6 is the last: its model is written instead


def test_a_batch_larger_than_the_data_is_a_clear_error(tmp_path, prepared_digits):
    with pytest.raises(TrainingError, match=re.escape("fewer than batch_size 512; lower train.batch_size")):
        _train(tmp_path, prepared_digits, tiny_params(train={"epochs": 1, "batch_size": 512}))


def test_a_checkpoint_from_other_model_code_starts_over(tmp_path, prepared_digits, monkeypatch, capsys):
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 8 + 1)
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path, prepared_digits)
    path = tmp_path / "checkpoints" / "ae_tiny" / "last.pt"
    saved = torch.load(path, weights_only=True)
    saved["model"] = {"renamed." + key: value for key, value in saved["model"].items()}  # as after a refactor
    torch.save(saved, path)
    summary = _train(tmp_path, prepared_digits)
    assert "does not fit the current model code; training from scratch" in capsys.readouterr().err
    _train(tmp_path / "reference", prepared_digits)  # the fresh start is the very run a clean start gives
    expected, _ = load_trained(tmp_path / "reference" / "models" / "ae_tiny", torch.device("cpu"))
    actual, _ = load_trained(tmp_path / "models" / "ae_tiny", torch.device("cpu"))
    assert all(torch.equal(value, actual.state_dict()[key]) for key, value in expected.state_dict().items())
    run = MlflowClient().get_run(summary["run_id"])
    assert summary["run_id"] != saved["run_id"] and run.data.params["model.name"] == "conv_ae"
    assert not path.parent.exists()  # the emptied checkpoint folder goes too


class Payload:
    """Unpickling this calls os.makedirs(marker): what a crafted file could do with any function at all."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("payload", "cannot be read as a checkpoint (Weights only load failed"),
        ("keys", "lacks what resuming needs (fingerprint, step, run_id, model, update, rng, history, seconds)"),
        ("kinds", "holds values of the wrong kind (epoch, history)"),
        ("garbage", "cannot be read as a checkpoint ("),
    ],
)
def test_a_crafted_or_broken_checkpoint_runs_no_code_and_training_starts_over(
    tmp_path, prepared_digits, capsys, content, message
):
    _train(tmp_path / "reference", prepared_digits)
    expected, _ = load_trained(tmp_path / "reference" / "models" / "ae_tiny", torch.device("cpu"))
    path = tmp_path / "checkpoints" / "ae_tiny" / "last.pt"
    path.parent.mkdir(parents=True)
    marker = tmp_path / "the-payload-ran"
    whole = {
        "fingerprint": "x",
        "epoch": 1,
        "step": 8,
        "run_id": None,
        "model": {},
        "update": {},
        "rng": {},
        "history": [],
        "seconds": 1.0,
    }
    if content == "payload":
        torch.save({**whole, "model": Payload(marker)}, path)
    elif content == "keys":
        torch.save({"epoch": 1}, path)
    elif content == "kinds":
        torch.save({**whole, "epoch": "1", "history": {}}, path)
    else:
        path.write_bytes(b"PK\x03\x04 not a checkpoint")
    capsys.readouterr()
    _train(tmp_path, prepared_digits)
    errors = capsys.readouterr().err
    assert f"{path} {message}" in errors and errors.count("training from scratch") == 1
    assert not marker.exists()  # loaded as data: the payload never ran
    actual, _ = load_trained(tmp_path / "models" / "ae_tiny", torch.device("cpu"))
    assert all(torch.equal(value, actual.state_dict()[key]) for key, value in expected.state_dict().items())


def test_resuming_into_a_deleted_mlflow_run_opens_a_new_run_with_params(tmp_path, prepared_digits, monkeypatch):
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 8 + 1)
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path, prepared_digits)
    saved = torch.load(tmp_path / "checkpoints" / "ae_tiny" / "last.pt", weights_only=True)
    MlflowClient().delete_run(saved["run_id"])
    summary = _train(tmp_path, prepared_digits)  # resumes the weights, not the deleted run
    assert summary["run_id"] != saved["run_id"]
    assert MlflowClient().get_run(summary["run_id"]).data.params["update.lr"] == "0.003"


def test_a_diverging_gan_stops_with_a_clear_error_and_writes_no_model(tmp_path, prepared_digits):
    raw = tiny_params(
        task={"name": "generate"}, model={"name": "wgan_gp", "latent_dim": 4, "width": 4}, update={"lr": 1.0e30}
    )
    with pytest.raises(
        TrainingError, match=r"(loss_critic|wasserstein|loss_generator) became (nan|inf|-inf) at epoch 1"
    ):
        _train(tmp_path, prepared_digits, raw)
    assert not (tmp_path / "models" / "ae_tiny").exists() and not (tmp_path / "plots" / "ae_tiny").exists()


def test_a_gan_run_saves_the_averaged_generator_and_resumes_its_average(tmp_path, prepared_digits, monkeypatch):
    def raw(average):
        return tiny_params(
            task={"name": "generate"},
            update={"lr_generator": 1e-3, "lr_critic": 1e-3, "average": average},
            model={"name": "linear_gan", "latent_dim": 4, "generator_hidden": [16], "critic_hidden": [16]},
        )

    def trained(folder):
        return load_trained(folder / "models" / "ae_tiny", torch.device("cpu"))[0].state_dict()

    _train(tmp_path / "plain", prepared_digits, raw(0.0))
    _train(tmp_path / "averaged", prepared_digits, raw(0.9))
    plain, averaged = trained(tmp_path / "plain"), trained(tmp_path / "averaged")
    assert all(torch.equal(plain[key], averaged[key]) for key in plain if key.startswith("critic."))  # same training
    assert not torch.allclose(plain["generator.0.weight"], averaged["generator.0.weight"])  # the average was saved

    with monkeypatch.context() as patch:
        _interrupt_at(patch, 8 + 3, updates.AdversarialUpdate)
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path / "resumed", prepared_digits, raw(0.9))
    saved = torch.load(tmp_path / "resumed" / "checkpoints" / "ae_tiny" / "last.pt", weights_only=True)
    assert saved["epoch"] == 1 and "average" in saved["update"]
    summary = _train(tmp_path / "resumed", prepared_digits, raw(0.9))
    assert summary["run_id"] == saved["run_id"]  # resumed, not started over
    resumed = trained(tmp_path / "resumed")
    assert all(torch.equal(value, resumed[key]) for key, value in averaged.items())


def test_a_run_logs_the_edge_sigma_only_where_its_task_reads_edges_and_only_its_own_forward_model():
    from pipeline.experiment import resolve
    from pipeline.tracking import logged_params

    params = parse_params(repo_params())

    def dataset_keys(name: str) -> set[str]:
        experiment = resolve(params, name)
        logged = logged_params(params, experiment.config, name, experiment.task)
        return {key for key in logged if key.startswith(("dataset.edge_sigma", "dataset.forward"))}

    assert dataset_keys("ambient_drop_digits") == {"dataset.forward.drop_independent.p"}
    assert dataset_keys("ambient_noise_digits") == {"dataset.forward.add_noise.sigma"}
    assert dataset_keys("pix2pix_edges_photos") == {"dataset.edge_sigma"}
    assert dataset_keys("ae_digits") == set()


def test_the_time_between_checkpoints_is_the_machines_setting(monkeypatch):
    from pipeline.training import checkpoint

    monkeypatch.setattr(checkpoint, "CHECKPOINT_SECONDS", 10.0)  # what the real pipeline keeps
    monkeypatch.delenv("AEGAN_CHECKPOINT_SECONDS", raising=False)
    assert checkpoint.interval() == 10.0
    monkeypatch.setenv("AEGAN_CHECKPOINT_SECONDS", "0")
    assert checkpoint.interval() == 0.0
    for wrong in ("soon", "-1", "nan"):
        monkeypatch.setenv("AEGAN_CHECKPOINT_SECONDS", wrong)
        with pytest.raises(TrainingError, match=f"AEGAN_CHECKPOINT_SECONDS is '{wrong}'; set it to a number"):
            checkpoint.interval()


def test_a_bad_checkpoint_interval_stops_training_before_a_run_is_opened(tmp_path, prepared_digits, monkeypatch):
    runs_before = len(MlflowClient().search_runs(_experiment_ids()))
    monkeypatch.setenv("AEGAN_CHECKPOINT_SECONDS", "soon")
    with pytest.raises(TrainingError, match="AEGAN_CHECKPOINT_SECONDS is 'soon'"):
        _train(tmp_path, prepared_digits)
    assert len(MlflowClient().search_runs(_experiment_ids())) == runs_before  # no FAILED run left behind
    assert not (tmp_path / "models").exists()


def _experiment_ids() -> list[str]:
    return [experiment.experiment_id for experiment in MlflowClient().search_experiments()]
