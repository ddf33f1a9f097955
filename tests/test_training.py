"""pipeline.training: the update rule learns, a run writes its outputs and MLflow run, resume is exact, NaN stops."""

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
from pipeline.models import build_model
from pipeline.models.vae import VariationalOutput
from pipeline.tasks import Batch
from pipeline.training import run as training_run
from pipeline.training import updates
from pipeline.training.run import train_experiment
from tests.conftest import tiny_params


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


def test_reconstruction_update_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model("conv_ae", in_channels=1, out_channels=1, image_size=16, latent_dim=8, width=8)
    update = updates.ReconstructionUpdate(model, lr=3e-3)
    images = torch.nn.functional.interpolate(torch.rand(16, 1, 4, 4), size=16, mode="bilinear")  # smooth, learnable
    batch = Batch(input=images, target=images, label=torch.zeros(16, dtype=torch.long))
    losses = [update(batch)["loss"].item() for _ in range(60)]
    assert losses[-1] < 0.3 * losses[0]


def test_a_run_writes_model_curves_and_an_mlflow_run(tmp_path, prepared_digits):
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
    history = MlflowClient().get_metric_history(summary["run_id"], "train/loss")
    assert len(history) == 3 * 8  # every step (7 full batches and one of 16 per epoch), sent in batches
    experiment = MlflowClient().get_experiment(run.info.experiment_id)
    assert experiment.name == "autoencoders"


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
        [experiment], f"attributes.run_name = '{name}'", order_by=["attributes.start_time DESC"], max_results=1
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


def test_step_metrics_reach_the_run_in_few_calls_and_all_of_them_at_the_end():
    from pipeline.training import callbacks

    class Run:
        def __init__(self):
            self.calls = []

        def log_metrics(self, rows):
            self.calls.append(rows)

    run, history = Run(), callbacks.History()
    logger = callbacks.MetricLogger(run, history, seconds=3600.0)
    for step in range(1, 101):
        history.on_step(step, {"loss": 1.0 / step}, 8)
        logger.on_step(step, {"loss": 1.0 / step}, 8)
        if step % 10 == 0:
            history.on_epoch_end(step // 10, step)
            logger.on_epoch_end(step // 10, step)
    assert run.calls == []  # within the interval nothing is sent
    logger.flush()
    (rows,) = run.calls
    assert (
        len(rows) == 110
        and rows[0] == (1, {"train/loss": 1.0})
        and rows[-1][1] == {"epoch/loss": history.rows[-1]["loss"]}
    )


def test_a_batch_larger_than_the_data_is_a_clear_error(tmp_path, prepared_digits):
    with pytest.raises(TrainingError, match=re.escape("fewer than batch_size 512; lower train.batch_size")):
        _train(tmp_path, prepared_digits, tiny_params(train={"epochs": 1, "batch_size": 512}))


class _FixedPosterior(torch.nn.Module):
    """A stand-in VAE whose posterior is whatever the test sets, to check the loss arithmetic."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.mean, self.logvar = mean, logvar

    def forward(self, x):
        return VariationalOutput(image=x * 0 + 0.5 + self.weight, latent=self.mean, mean=self.mean, logvar=self.logvar)


def test_variational_update_reports_reconstruction_and_kl_separately():
    images = torch.ones(4, 1, 2, 2)
    batch = Batch(input=images, target=images, label=torch.zeros(4, dtype=torch.long))
    standard = updates.VariationalUpdate(_FixedPosterior(torch.zeros(4, 3), torch.zeros(4, 3)), loss="mse", beta=2.0)
    losses = standard(batch)
    assert losses["kl"].item() == pytest.approx(0.0)  # q = N(0, I) is the prior
    assert losses["reconstruction"].item() == pytest.approx(4 * 0.25)  # 4 pixels per image, each off by 0.5
    shifted = updates.VariationalUpdate(_FixedPosterior(torch.ones(4, 3), torch.zeros(4, 3)), loss="mse", beta=2.0)
    losses = shifted(batch)
    assert losses["kl"].item() == pytest.approx(3 * 0.5)  # KL(N(1, 1) ‖ N(0, 1)) = 1/2 per dimension
    assert losses["loss"].item() == pytest.approx(1.0 + 2.0 * 1.5)


def test_pca_fit_on_batches_equals_pca_on_the_whole_set():
    generator = torch.Generator().manual_seed(0)
    basis = torch.randn(3, 64, generator=generator)
    data = (torch.randn(40, 3, generator=generator) @ basis).view(40, 1, 8, 8)  # rank 3
    model = build_model("pca", in_channels=1, out_channels=1, image_size=8, latent_dim=3)
    fit = updates.PrincipalComponentsFit(model)
    for part in data.split(16):  # 16 + 16 + 8
        fit(Batch(input=part, target=part, label=torch.zeros(len(part), dtype=torch.long)))
    assert torch.allclose(model(data).image, data, atol=1e-4)  # three components rebuild rank-3 data exactly
    assert model.explained_variance_ratio[:3].sum().item() == pytest.approx(1.0)
    assert torch.allclose(model.mean, data.flatten(1).mean(0), atol=1e-5)
    assert model.scores()["explained_variance_total"] == pytest.approx(1.0)


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


def _images(count=16, size=8, seed=0):
    smooth = torch.nn.functional.interpolate(
        torch.rand(count, 1, 2, 2, generator=torch.Generator().manual_seed(seed)), size=size
    )
    return Batch(input=smooth, target=smooth, label=torch.zeros(count, dtype=torch.long))


def _steps_taken(optimizer):
    return int(next(iter(optimizer.state.values()))["step"]) if optimizer.state else 0


def test_the_generator_steps_once_every_critic_steps_calls():
    model = build_model(
        "linear_wgan",
        in_channels=1,
        out_channels=1,
        image_size=8,
        latent_dim=4,
        generator_hidden=(8,),
        critic_hidden=(8,),
    )
    update = updates.WassersteinUpdate(model, critic_steps=3)
    for _ in range(7):
        losses = update(_images())
    assert _steps_taken(update.optimizers["critic"]) == 7
    assert _steps_taken(update.optimizers["generator"]) == 3  # calls 0, 3 and 6
    assert set(losses) == {"loss_critic", "wasserstein", "loss_generator"}

    resumed = updates.WassersteinUpdate(model, critic_steps=3)
    resumed.load_state_dict(update.state_dict())
    assert resumed.turns.calls == 7 and torch.equal(
        resumed(_images())["loss_generator"], losses["loss_generator"]
    )  # call 7: no generator step


def test_weight_clipping_bounds_every_critic_weight():
    model = build_model("wgan_gp", in_channels=1, out_channels=1, image_size=8, latent_dim=4, width=4)
    update = updates.WassersteinUpdate(model, penalty=0.0, clip=0.01, optimizer="rmsprop", lr=0.1)
    update(_images())
    assert max(p.abs().max().item() for p in model.critic.parameters()) == pytest.approx(0.01)
    assert isinstance(update.optimizers["critic"], torch.optim.RMSprop)


def test_wasserstein_needs_exactly_one_lipschitz_constraint():
    model = build_model("wgan_gp", in_channels=1, out_channels=1, image_size=8, latent_dim=4, width=4)
    with pytest.raises(ValueError, match="set exactly one of penalty and clip above 0"):
        updates.WassersteinUpdate(model, penalty=10.0, clip=0.01)
    with pytest.raises(ValueError, match="set exactly one of penalty and clip above 0"):
        updates.WassersteinUpdate(model, penalty=0.0)
    with pytest.raises(ValueError, match="cannot be negative"):
        updates.WassersteinUpdate(model, penalty=10.0, clip=-0.01)
    with pytest.raises(ValueError, match="penalty must be 0 \\(off\\) or above"):
        updates.AdversarialUpdate(
            build_model("dcgan", in_channels=1, out_channels=1, image_size=8, latent_dim=4, width=4), penalty=-1.0
        )


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_off_by_one():
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))  # ‖∇‖ = 5 everywhere
    real, fake = torch.rand(6, 1, 2, 2), torch.rand(6, 1, 2, 2)
    assert updates.gradient_penalty(critic, real, fake).item() == pytest.approx((5 - 1) ** 2)


def test_the_adversarial_critic_learns_to_tell_real_from_generated():
    torch.manual_seed(0)
    model = build_model("dcgan", in_channels=1, out_channels=1, image_size=8, latent_dim=4, width=4, depth=1)
    update = updates.AdversarialUpdate(model, lr_generator=0.0, lr_critic=1e-2)  # a frozen generator
    first = update(_images())
    for _ in range(40):
        last = update(_images())
    assert first["real_probability"] - first["fake_probability"] < 0.2
    assert last["real_probability"] > 0.9 and last["fake_probability"] < 0.1
    assert last["loss_critic"] < 0.3 * first["loss_critic"]


def test_the_vae_wgan_update_trains_encoder_and_decoder_but_not_the_critic_with_one_optimizer():
    torch.manual_seed(0)
    model = build_model("vae_wgan", in_channels=1, out_channels=1, image_size=8, latent_dim=4, width=4, depth=1)
    update = updates.VAEWassersteinUpdate(model, feature_weight=1.0)
    trained = {id(p) for group in update.optimizers["generator"].param_groups for p in group["params"]}
    assert trained == {id(p) for name, p in model.named_parameters() if not name.startswith("critic.")}
    assert {id(p) for p in model.critic.parameters()}.isdisjoint(trained)
    losses = update(_images())
    assert set(losses) == {"loss_critic", "wasserstein", "loss_generator", "reconstruction", "kl", "adversarial"}
    assert (
        losses["loss_generator"] > losses["reconstruction"] + losses["kl"] + losses["adversarial"]
    )  # + the feature term
    with pytest.raises(ValueError, match="penalty must be above 0"):
        updates.VAEWassersteinUpdate(model, penalty=0.0)


def test_a_diverging_gan_stops_with_a_clear_error_and_writes_no_model(tmp_path, prepared_digits):
    raw = tiny_params(
        task={"name": "generate"}, model={"name": "wgan_gp", "latent_dim": 4, "width": 4}, update={"lr": 1.0e30}
    )
    with pytest.raises(
        TrainingError, match=r"(loss_critic|wasserstein|loss_generator) became (nan|inf|-inf) at epoch 1"
    ):
        _train(tmp_path, prepared_digits, raw)
    assert not (tmp_path / "models" / "ae_tiny").exists() and not (tmp_path / "plots" / "ae_tiny").exists()


class _LinearCritic(torch.nn.Module):
    """score(x) = w·x with w = (3, 0, 4, 0): ‖∇ score‖ = 5 everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([3.0, 0.0, 4.0, 0.0]))

    def forward(self, x):
        return x.flatten(1) @ self.weight


def test_the_r1_penalty_adds_half_the_squared_critic_gradient_on_real_images():
    def critic_loss(penalty):
        torch.manual_seed(0)
        model = build_model(
            "linear_gan",
            in_channels=1,
            out_channels=1,
            image_size=2,
            latent_dim=2,
            generator_hidden=(4,),
            critic_hidden=(4,),
        )
        model.critic = _LinearCritic()
        return updates.AdversarialUpdate(model, penalty=penalty)(_images(size=2))["loss_critic"].item()

    assert critic_loss(2.0) - critic_loss(0.0) == pytest.approx(2.0 / 2 * 25, rel=1e-5)


def test_the_vae_wgan_critic_takes_the_clean_target_as_real_under_denoising(monkeypatch):
    torch.manual_seed(0)
    model = build_model("vae_wgan", in_channels=1, out_channels=1, image_size=8, latent_dim=4, width=4, depth=1)
    update = updates.VAEWassersteinUpdate(model)
    seen = {}

    def critic_step(real, fake):
        seen["real"] = real
        return torch.zeros(()), torch.zeros(())

    monkeypatch.setattr(update.critic, "step", critic_step)
    clean = _images()
    noisy = Batch(input=clean.input + 0.3, target=clean.target, label=clean.label)
    update(noisy)
    assert torch.equal(seen["real"], clean.target)


@pytest.mark.parametrize(("rule", "critic_steps"), [("adversarial", 1), ("wasserstein", 2)])
def test_the_generator_average_is_an_exponential_average_of_its_steps_and_replaces_it_at_the_end(rule, critic_steps):
    torch.manual_seed(0)
    model = build_model(
        "linear_gan",
        in_channels=1,
        out_channels=1,
        image_size=8,
        latent_dim=4,
        generator_hidden=(8,),
        critic_hidden=(8,),
    )
    update = (
        updates.AdversarialUpdate(model, lr_generator=0.05, average=0.75)
        if rule == "adversarial"
        else updates.WassersteinUpdate(model, lr=0.05, critic_steps=critic_steps, average=0.75)
    )
    weight = model.generator[0].weight
    expected = None
    for call in range(6):
        update(_images(size=8))
        if call % critic_steps == 0:  # a generator step: the average moves a quarter of the way to the new weights
            expected = weight.detach().clone() if expected is None else 0.75 * expected + 0.25 * weight.detach()
    last = weight.detach().clone()

    resumed = (
        updates.AdversarialUpdate(model, average=0.75)
        if rule == "adversarial"
        else updates.WassersteinUpdate(model, average=0.75)
    )
    resumed.load_state_dict(update.state_dict())
    resumed.finish()
    assert torch.allclose(weight, expected, atol=1e-6)
    assert not torch.allclose(weight, last, atol=1e-3)  # the average is not the last step's weights


def test_without_an_average_finish_leaves_the_weights_and_a_bad_decay_is_refused():
    model = build_model(
        "linear_gan",
        in_channels=1,
        out_channels=1,
        image_size=8,
        latent_dim=4,
        generator_hidden=(8,),
        critic_hidden=(8,),
    )
    update = updates.AdversarialUpdate(model)
    update(_images(size=8))
    before = {key: value.clone() for key, value in model.state_dict().items()}
    update.finish()
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert "average" not in update.state_dict()
    with pytest.raises(ValueError, match=r"average must be in \[0, 1\)"):
        updates.WassersteinUpdate(model, average=1.0)


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
