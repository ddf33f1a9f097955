"""Study `ambient`: the seed's networks, restore training that never reaches a clean image, the ACSG search,
the non-learned baselines, the seed's tiled protocol and the study report."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.config import parse_params
from pipeline.data.store import load_split
from pipeline.evaluation.evaluate import evaluate_experiment
from pipeline.evaluation.search import LatentSearch, latent_search
from pipeline.experiment import Experiment, load_trained
from pipeline.forward import AddNoise, DropIndependent, DropPatch
from pipeline.models import build_model
from pipeline.models.ambient import SameConv, SameDeconv
from pipeline.report import load_preview, study_table
from pipeline.schema import ConfigError
from pipeline.studies.ambient import Ambient
from pipeline.tasks import Restore
from pipeline.training import run as training_run
from pipeline.training.run import train_experiment
from tests.conftest import checked, tiny_params

FAST = {"lr": 1.0e-3, "decoder_weight": 1.0, "kl_weight": 0.01}


def ambient_params(**experiments: dict) -> dict:
    raw = tiny_params()
    raw["studies"] = ["ambient"]
    base = {
        "study": "ambient",
        "dataset": "digits",
        "model": {"name": "ambient_vaegan", "width": 4, "latent_dim": 8},
        "update": FAST,
        "train": {"epochs": 2, "batch_size": 32},
    }
    raw["experiments"] = {name: {**copy.deepcopy(base), **settings} for name, settings in experiments.items()}
    return raw


def test_same_padding_convolutions_sample_as_tensorflow_does():
    """A kernel that is 1 at its centre reads TensorFlow's SAME grid: even sides pad after only, so output i
    sits on input 2i + 1; odd sides pad both ends, so on 2i. The transposed convolution puts input i on 2i + 1."""
    conv = SameConv(1, 1)
    with torch.no_grad():
        conv.weight.zero_(), conv.weight[0, 0, 1, 1].fill_(1.0), conv.bias.zero_()
    even = torch.arange(28.0 * 28).view(1, 1, 28, 28)
    assert torch.equal(conv(even), even[..., 1::2, 1::2])  # 28 -> 14
    odd = torch.arange(49.0).view(1, 1, 7, 7)
    assert torch.equal(conv(odd), odd[..., ::2, ::2])  # 7 -> 4
    deconv = SameDeconv(1, 1)
    with torch.no_grad():
        deconv.weight.zero_(), deconv.weight[0, 0, 1, 1].fill_(1.0), deconv.bias.zero_()
    small = torch.arange(1.0, 50.0).view(1, 1, 7, 7)
    big = deconv(small)
    assert big.shape == (1, 1, 14, 14)
    assert torch.equal(big[..., 1::2, 1::2], small) and big[..., ::2, :].abs().sum() == 0


def test_the_seed_networks_at_both_sizes():
    mnist = build_model("ambient_vaegan", in_channels=1, out_channels=1, image_size=28)
    linears = [m for m in mnist.modules() if isinstance(m, torch.nn.Linear)]
    # encoder 4·4·64 -> 2·20 (mean and log-variance), decoder 20 -> 7·7·32, discriminator 4·4·64 -> 1
    assert [(m.in_features, m.out_features) for m in linears] == [(1024, 40), (20, 7 * 7 * 32), (1024, 1)]
    image = torch.rand(3, 1, 28, 28)
    assert mnist.critic.features(image).shape == (3, 64, 4, 4)
    celeba = build_model("ambient_vaegan", in_channels=3, out_channels=3, image_size=64)
    linears = [(m.in_features, m.out_features) for m in celeba.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [(8 * 8 * 256, 1024), (1024, 256), (128, 8 * 8 * 256), (4 * 4 * 256, 256), (256, 1)]
    assert celeba.critic.features(torch.rand(2, 3, 64, 64)).shape == (2, 256, 4, 4)
    gan = build_model("ambient_gan", in_channels=3, out_channels=3, image_size=64)
    assert sum(p.numel() for p in gan.parameters()) == sum(
        p.numel() for name, p in celeba.named_parameters() if not name.startswith("encoder.")
    )  # the AmbientGAN is the VAE-GAN without its encoder


def test_what_a_measurement_shows_of_theta():
    x = torch.rand(4, 3, 16, 16) + 0.1  # no black pixel: every zero was dropped
    generator = torch.Generator().manual_seed(1)
    drop = DropIndependent(p=0.5)
    theta = drop.sample(x.shape, generator)
    assert torch.equal(drop.observed(drop.apply(x, theta)), theta)
    patch = DropPatch(size=5)
    theta = patch.sample(x.shape, generator)
    assert torch.equal(patch.observed(patch.apply(x, theta)), theta)
    assert torch.equal(AddNoise(sigma=0.2).observed(x), torch.zeros_like(x))


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


def _train(params: dict, name: str, root) -> dict[str, torch.Tensor]:
    parsed = parse_params(params)
    train_experiment(
        parsed,
        name,
        prepared_dir=root["prepared"],
        model_dir=root["out"] / name,
        plots_dir=root["out"] / "plots" / name,
        checkpoint_path=root["out"] / "checkpoints" / f"{name}.pt",
    )
    return torch.load(root["out"] / name / "model.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("forward", ["drop_independent", "add_noise"])
def test_ambient_training_never_reaches_a_clean_image(tmp_path, prepared_digits, monkeypatch, forward):
    """Trained with the clean training images replaced by noise, the ambient model comes out identical to
    the ambient model trained normally, and nothing its encoder or discriminator is handed is a clean image.
    The supervised model, which learns from them, comes out different: the swap is felt where it can be."""
    settings = {"task": {"name": "restore", "forward": forward}}
    supervised = {"task": {"name": "restore", "forward": forward, "supervised": True}}
    params = ambient_params(ambient=settings, supervised=supervised)
    root = {"prepared": prepared_digits / "digits", "out": tmp_path / "normal"}
    normal = {name: _train(params, name, root) for name in ("ambient", "supervised")}

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
    ambient = _train(params, "ambient", root)
    assert all(torch.equal(ambient[key], normal["ambient"][key]) for key in ambient)

    images = clean[0].permute(0, 3, 1, 2).float().flatten(1) / 255  # (N, H·W)
    assert len(handed) > 10
    for tensor in handed:  # the encoder's inputs, the critic's real and measured fakes
        distance = torch.cdist(tensor.flatten(1).float(), images).min()
        assert distance > 0.5, "a clean training image reached the model"

    swapped = _train(params, "supervised", root)
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


def test_the_update_measures_everything_the_discriminator_sees():
    model = build_model("ambient_vaegan", in_channels=1, out_channels=1, image_size=28, width=4, latent_dim=4)
    update = training_run.update_rule_for(type(model))(model, **FAST)
    calls: list[torch.Tensor] = []

    def measure(images):
        calls.append(images)
        return images * 0 + 0.25  # a device that hides everything: the critic sees only 0.25 for fakes

    judged: list[torch.Tensor] = []
    model.critic.body.register_forward_pre_hook(lambda module, inputs: judged.append(inputs[0]))
    from pipeline.tasks import Batch

    measured, clean = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)
    losses = update(Batch(input=measured, target=None, label=torch.zeros(6, dtype=torch.long), measure=measure))
    assert len(calls) == 2  # the reconstruction and the prior sample, each measured once
    assert torch.equal(judged[0], measured) and all(torch.all(j == 0.25) for j in judged[1:])
    assert set(losses) >= {"loss_encoder", "loss_decoder", "loss_critic", "pixel", "feature", "kl"}
    judged.clear()
    update(Batch(input=measured, target=clean, label=torch.zeros(6, dtype=torch.long)))  # supervised: real = clean
    assert torch.equal(judged[0], clean) and not any(torch.all(j == 0.25) for j in judged[1:])


class LinearGenerator(torch.nn.Module):
    """G(z) = sigmoid(W z) as 28×28 images: every image it can draw has a latent the search can reach."""

    latent_dim = 6

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(28 * 28, 6, generator=torch.Generator().manual_seed(0)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z @ self.weight.T).view(-1, 1, 28, 28)


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


def test_the_seed_protocol_tiles_64_images_and_scores_ssim_over_range_two():
    truth = np.random.default_rng(0).random((64, 6, 6, 1)).astype(np.float32)
    guess = np.clip(truth + np.random.default_rng(1).normal(0, 0.1, truth.shape), 0, 1).astype(np.float32)
    task = Restore()
    scores = task.tiled_scores(guess, truth)
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    def tiled(images: np.ndarray) -> np.ndarray:  # (64, 6, 6, 1) -> one (48, 48, 1) picture
        return np.concatenate([np.concatenate(list(row), axis=1) for row in images.reshape(8, 8, 6, 6, 1)])

    assert scores["tiled_psnr"] == pytest.approx(peak_signal_noise_ratio(tiled(truth), tiled(guess), data_range=1.0))
    wide = structural_similarity(
        tiled(truth).astype(np.float64), tiled(guess).astype(np.float64), data_range=2.0, channel_axis=-1
    )
    assert scores["tiled_ssim"] == pytest.approx(wide)
    assert scores["tiled_ssim"] > structural_similarity(tiled(truth), tiled(guess), data_range=1.0, channel_axis=-1)
    assert task.tiled_scores(guess[:63], truth[:63]) == {}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"task": {"name": "restore", "forward": "blur_add_noise"}},
            "experiments.bad.task.forward: dataset digits prepares no blur_add_noise",
        ),
        (
            {"task": {"name": "restore"}, "model": {"name": "conv_ae"}, "update": {}},
            "experiments.bad.task.supervised: conv_ae learns from clean targets",
        ),
        (
            {"task": {"name": "restore", "search": {"theta": "known"}}},
            "experiments.bad.task.search.theta: 'known' is not valid",
        ),
        (
            {"task": {"name": "restore", "supervised": True}, "model": {"name": "ambient_gan"}, "update": {}},
            "experiments.bad.task.supervised: ambient_gan has no encoder",
        ),
    ],
)
def test_restore_settings_that_cannot_work_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        checked(ambient_params(bad=settings))
    checked(
        ambient_params(
            good={"task": {"name": "restore", "supervised": True}, "model": {"name": "conv_ae"}, "update": {}}
        )
    )


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
        _train(raw, name, root)
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
        assert len(table) == 60 and summary["seconds_per_image"] > 0 and summary["fcd"] > 0
        assert summary["baseline_psnr_mean"] > summary["input_psnr_mean"]
    assert preview["search_curve"].shape == (21, 2)
    assert preview["baseline"].dtype == np.uint8 and preview["baseline"].shape == preview["truth"].shape
    (metrics / "classifiers").mkdir()
    (metrics / "classifiers" / "digits.json").write_text(json.dumps(digit_classifier[1]))  # the FCD floors
    table = study_table(params, "ambient", metrics)
    rows = table.set_index("experiment")
    assert list(rows["method"].iloc[:5]) == ["ambient", "supervised", "ACSG", "non-learned", "distorted input"]
    ambient = json.loads((metrics / "ambient" / "ambient.json").read_text())
    acsg = json.loads((metrics / "ambient" / "acsg.json").read_text())
    assert rows.loc["ambient", "acsg_time_ratio"] == pytest.approx(
        acsg["seconds_per_image"] / ambient["seconds_per_image"]
    )
    assert rows.loc["ambient", "acsg_time_ratio"] > 5  # 20 search steps cost far more than one encoder pass
    assert rows.loc["non-learned (drop_independent)", "psnr_mean"] == ambient["baseline_psnr_mean"]
    assert rows.loc["distorted input (drop_independent)", "psnr_mean"] == ambient["input_psnr_mean"]
    curves = Ambient().curves(table, lambda name: load_preview(metrics / "ambient" / f"{name}.npz", name))
    curves = curves["digits_drop_independent"]
    assert len(curves["ACSG (acsg)"][0]) == 21 and len(curves["non-learned"][0]) == 1
    assert isinstance(table, pd.DataFrame) and "seed_psnr" not in table  # digits is not CelebA
    images = load_split(prepared_digits / "digits", "test")["images"]
    assert preview["truth"].shape[1:] == images.shape[1:]


def _towards(score: torch.Tensor, label: float) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy_with_logits(score, torch.full_like(score, label))


def test_the_ambient_losses_are_the_seeds_and_each_part_takes_only_its_own_gradient():
    from pipeline.tasks import Batch

    torch.manual_seed(0)
    model = build_model("ambient_vaegan", in_channels=1, out_channels=1, image_size=28, width=4, latent_dim=4)
    before = copy.deepcopy(model)
    weights = {"decoder_weight": 0.5, "kl_weight": 0.1}
    update = training_run.update_rule_for(type(model))(model, **weights)
    measured = torch.rand(6, 1, 28, 28)
    halve = lambda images: 0.5 * images  # noqa: E731  a deterministic "forward model"
    torch.manual_seed(1)
    losses = update(Batch(input=measured, target=None, label=torch.zeros(6, dtype=torch.long), measure=halve))

    torch.manual_seed(1)  # the same draws: the posterior sample, then the prior's noise
    output = before(measured)
    prior = before.decode(torch.randn(6, 4))
    real_score, real_features = before.critic.judge(measured)
    reconstruction_score, reconstruction_features = before.critic.judge(halve(output.image))
    prior_score = before.critic(halve(prior))
    pixel = 0.5 * (output.image - measured).pow(2).mean()  # the unmeasured term, the seed's default
    feature = 0.5 * (reconstruction_features - real_features).pow(2).mean()
    kl = -0.5 * torch.mean(1 + output.logvar - output.mean.pow(2) - output.logvar.exp())
    similarity = 10 * pixel + feature  # α = 10, β = 1
    expected = {
        "encoder": 0.1 * kl + similarity,
        "decoder": _towards(prior_score, 0.375) + _towards(reconstruction_score, 0.375) + 0.5 * similarity,
        "critic": _towards(real_score, 0.75) + _towards(prior_score, 0.0) + _towards(reconstruction_score, 0.0),
    }
    for name, value in expected.items():
        assert losses[f"loss_{name}"] == pytest.approx(float(value), rel=1e-5)
        own = torch.autograd.grad(value, list(getattr(before, name).parameters()), retain_graph=True)
        used = [p.grad for p in getattr(model, name).parameters()]
        assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(own, used)), f"{name} stepped on another loss"


def test_the_ambient_update_resumes_its_learning_rate_schedule():
    model = build_model("ambient_vaegan", in_channels=1, out_channels=1, image_size=28, width=4, latent_dim=4)
    rule = training_run.update_rule_for(type(model))
    update = rule(model, lr=3e-4)
    update.steps = 10_000
    assert update.learning_rate() == pytest.approx(3e-4 * 0.98)
    resumed = rule(model, lr=3e-4)
    resumed.load_state_dict(update.state_dict())
    assert resumed.steps == 10_000 and resumed.learning_rate() == update.learning_rate()
    update.steps = 10**9  # far past the floor: the seed stops decaying at 5e-5
    assert update.learning_rate() == pytest.approx(5e-5)


def test_apply_scales_a_drop_independent_file_as_prepare_scaled_its_copies(tmp_path, prepared_digits):
    from PIL import Image

    from pipeline.data.tensors import load_tensors
    from pipeline.inference import apply_to_file

    raw = ambient_params(ambient={"task": {"name": "restore"}})
    params = parse_params(raw)
    _train(raw, "ambient", {"prepared": prepared_digits / "digits", "out": tmp_path})
    task = Restore()
    test = load_tensors(prepared_digits / "digits", "test", task, torch.device("cpu"))
    copy_ = test["drop_independent"][:1].float()  # (1, 28, 28, 1): kept pixels scaled by 1/(1 − 0.5)
    pixels = (copy_[0, ..., 0] * 0.5 * 255).round().clamp(0, 255).to(torch.uint8).numpy()  # what a file can hold
    Image.fromarray(pixels).save(tmp_path / "measured.png")
    written = apply_to_file(
        params,
        "ambient",
        model_dir=tmp_path / "ambient",
        image_path=tmp_path / "measured.png",
        out_path=tmp_path / "restored.png",
    )
    model, _ = load_trained(tmp_path / "ambient", torch.device("cpu"))
    with torch.no_grad():
        direct = model(torch.from_numpy(pixels).float()[None, None] / 255 / 0.5).image
    assert np.abs(written.astype(int) - (direct[0, 0].numpy() * 255).round()[..., None]).max() <= 1
