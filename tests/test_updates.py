"""pipeline.training.updates: each update rule's losses, optimizers and steps, on tiny models and batches."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from pipeline.models import build_model
from pipeline.models.vae import VariationalOutput
from pipeline.tasks import Batch, build_task
from pipeline.training import run as training_run
from pipeline.training import updates
from tests.builders import FAST, colour_images, digit_arrays, tiny_label_model


def test_reconstruction_update_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model("conv_ae", in_channels=1, out_channels=1, image_size=16, latent_dim=8, width=8)
    update = updates.ReconstructionUpdate(model, lr=3e-3)
    images = torch.nn.functional.interpolate(torch.rand(16, 1, 4, 4), size=16, mode="bilinear")  # smooth, learnable
    batch = Batch(input=images, target=images, label=torch.zeros(16, dtype=torch.long))
    losses = [update(batch)["loss"].item() for _ in range(60)]
    assert losses[-1] < 0.3 * losses[0]


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


def test_the_adversarial_generator_takes_generator_steps_per_critic_step():
    torch.manual_seed(0)
    model = build_model("dcgan", in_channels=1, out_channels=1, image_size=8, latent_dim=4, width=4, depth=1)
    update = updates.AdversarialUpdate(model, generator_steps=2)
    for _ in range(3):
        update(_images())
    assert _steps_taken(update.optimizers["critic"]) == 3 and _steps_taken(update.optimizers["generator"]) == 6


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


def test_the_update_gives_the_critic_the_decoder_alone_and_the_autoencoder_each_their_own_adam():
    model, update = tiny_label_model()
    held = {
        name: {id(p) for group in optimizer.param_groups for p in group["params"]}
        for name, optimizer in update.optimizers.items()
    }
    assert held["critic"] == {id(p) for p in model.critic.parameters()}
    assert held["decoder"] == {id(p) for p in model.decoder.parameters()}  # the generator step leaves the encoder alone
    assert held["autoencoder"] == {id(p) for p in [*model.encoder.parameters(), *model.decoder.parameters()]}
    assert update.optimizers["critic"].defaults["lr"] == 1e-4 and update.optimizers["critic"].defaults["betas"] == (
        0.5,
        0.999,
    )
    with pytest.raises(ValueError, match="reconstruction_weight must be above 0, got 0"):
        tiny_label_model(reconstruction_weight=0.0)


def test_the_center_term_pulls_the_latent_towards_zero():
    arrays = digit_arrays(64)
    images = torch.rand(64, 28, 28, 1).mul(255).to(torch.uint8)
    task = build_task("transfer")
    norms = {}
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        _, update = tiny_label_model(lr=3e-3, center_weight=weight)
        for _ in range(30):
            losses = update(task.batch({**arrays, "images": images}, torch.arange(64), torch.Generator()))
        assert set(losses) == {"loss_critic", "loss_generator", "reconstruction", "center"}
        norms[weight] = float(losses["center"])
    assert norms[10.0] < norms[0.0] / 2


def test_pix2pix_update_teaches_the_critic_pairs_and_the_generator_the_target():
    torch.manual_seed(0)
    model = build_model(
        "pix2pix", in_channels=1, out_channels=3, image_size=16, width=8, depth=3, critic_width=8, critic_layers=2
    )
    update = updates.ConditionalAdversarialUpdate(model, lr=2e-3)
    images = torch.from_numpy(colour_images(8)).permute(0, 3, 1, 2) / 255.0
    batch = Batch(input=images.mean(1, keepdim=True), target=images, label=torch.zeros(8, dtype=torch.long))
    logs = [update(batch) for _ in range(100)]
    assert set(logs[0]) == {"loss_critic", "adversarial", "l1"}
    # The critic's loss is the mean of its two cross-entropies (pix2pix halves their sum): ln 2 at chance.
    assert logs[0]["loss_critic"].item() == pytest.approx(np.log(2), abs=0.15)
    assert logs[-1]["l1"] < 0.5 * logs[0]["l1"]  # the weighted L1 term pulls the outputs to the targets
    with torch.no_grad():
        fake = model.generator(batch.input).image
        assert (
            model.critic(batch.input, images).mean() > model.critic(batch.input, fake).mean() + 1
        )  # and the critic tells them apart


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


class _FixedPosterior(torch.nn.Module):
    """A stand-in VAE whose posterior is whatever the test sets, to check the loss arithmetic."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.mean, self.logvar = mean, logvar

    def forward(self, x):
        return VariationalOutput(image=x * 0 + 0.5 + self.weight, latent=self.mean, mean=self.mean, logvar=self.logvar)


class _LinearCritic(torch.nn.Module):
    """score(x) = w·x with w = (3, 0, 4, 0): ‖∇ score‖ = 5 everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([3.0, 0.0, 4.0, 0.0]))

    def forward(self, x):
        return x.flatten(1) @ self.weight
