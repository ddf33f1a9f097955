"""pipeline.models: every registered model builds from tiny kwargs, keeps shapes and trains."""

from __future__ import annotations

import pytest
import torch

from pipeline.models import MODELS, build_model

TINY = {
    "conv_ae": {"latent_dim": 4, "width": 4},
    "conv_vae": {"latent_dim": 4, "width": 4},
    "pca": {"latent_dim": 4},
    "seed_conv_ae": {},
    "linear_ae": {"latent_dim": 4, "hidden": (16, 8)},
    "linear_vae": {"latent_dim": 4, "hidden": (16, 8)},
    "linear_gan": {"latent_dim": 4, "generator_hidden": (8, 16), "critic_hidden": (16, 8)},
    "linear_wgan": {"latent_dim": 4, "generator_hidden": (8, 16), "critic_hidden": (16, 8)},
    "dcgan": {"latent_dim": 4, "width": 4},
    "wgan_gp": {"latent_dim": 4, "width": 4},
    "vae_wgan": {"latent_dim": 4, "width": 4},
}
RECONSTRUCTING = sorted(name for name, model in MODELS.items() if hasattr(model, "encode"))
SAMPLING = sorted(name for name, model in MODELS.items() if hasattr(model, "sample"))


def test_every_model_has_a_tiny_config():
    assert set(TINY) == set(MODELS)


def test_every_model_reconstructs_or_samples():
    assert set(RECONSTRUCTING) | set(SAMPLING) == set(MODELS)
    assert set(SAMPLING) - set(RECONSTRUCTING) == {"linear_gan", "linear_wgan", "dcgan", "wgan_gp"}


@pytest.mark.parametrize("name", RECONSTRUCTING)
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_forward_shapes_and_range(name, channels, size):
    model = build_model(name, in_channels=channels, out_channels=channels, image_size=size, **TINY[name])
    output = model(torch.rand(5, channels, size, size))
    assert output.image.shape == (5, channels, size, size)
    latent = TINY[name].get("latent_dim")
    assert output.latent.shape == ((5, latent) if latent else (5, 32, size, size))
    if name != "pca":  # PCA is linear and unclipped; the others end in a sigmoid
        assert 0.0 <= output.image.min() and output.image.max() <= 1.0
        output.image.mean().backward()
        assert all(p.grad is not None for name, p in model.named_parameters() if not name.startswith("critic."))


@pytest.mark.parametrize("name", SAMPLING)
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_samples_have_the_image_shape_and_range_and_follow_the_seed(name, channels, size):
    model = build_model(name, in_channels=channels, out_channels=channels, image_size=size, **TINY[name]).eval()
    first = model.sample(5, torch.Generator().manual_seed(3))
    assert first.shape == (5, channels, size, size)
    assert 0.0 <= first.min() and first.max() <= 1.0
    assert torch.equal(first, model.sample(5, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, model.sample(5, torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("name", ["linear_gan", "linear_wgan", "dcgan", "wgan_gp", "vae_wgan"])
def test_critics_score_each_image_once(name):
    model = build_model(name, in_channels=3, out_channels=3, image_size=16, **TINY[name])
    assert model.critic(torch.rand(6, 3, 16, 16)).shape == (6,)


def test_the_conv_generator_is_the_conv_vae_decoder_layer_for_layer():
    kwargs = {"in_channels": 1, "out_channels": 1, "image_size": 28, "latent_dim": 8, "width": 8}
    decoder = build_model("conv_vae", **kwargs)
    generator = build_model("dcgan", **kwargs).generator
    shapes = [p.shape for p in [*decoder.project.parameters(), *decoder.decoder.parameters()]]
    assert shapes == [p.shape for p in generator.parameters()]


def test_only_the_wasserstein_critics_drop_batch_norm():
    kwargs = {"in_channels": 1, "out_channels": 1, "image_size": 16, "latent_dim": 4, "width": 4}
    def norms(model):
        return sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.critic.modules())
    assert norms(build_model("dcgan", **kwargs)) == 2
    assert norms(build_model("wgan_gp", **kwargs)) == norms(build_model("vae_wgan", **kwargs)) == 0


def test_linear_models_have_the_seeds_fashion_mnist_sizes():
    def count(name):
        return sum(p.numel() for p in build_model(name, in_channels=1, out_channels=1, image_size=28).parameters())
    # encoder 784-512-256-128-20 and decoder 20-128-256-512-784, weights and biases
    layers = [(784, 512), (512, 256), (256, 128), (128, 20), (20, 128), (128, 256), (256, 512), (512, 784)]
    assert count("linear_ae") == sum(a * b + b for a, b in layers)
    # generator z(100)-128-256-256-512-784 and discriminator 784-512-512-256-128-64-1
    gan = [(100, 128), (128, 256), (256, 256), (256, 512), (512, 784),
           (784, 512), (512, 512), (512, 256), (256, 128), (128, 64), (64, 1)]  # fmt: skip
    assert count("linear_gan") == count("linear_wgan") == sum(a * b + b for a, b in gan)


def test_unknown_model_lists_the_names():
    with pytest.raises(ValueError, match="unknown model 'vae'; choose one of conv_ae, conv_vae, dcgan, linear_ae, "):
        build_model("vae")


def test_seed_port_has_the_seeds_weight_counts():
    for channels, expected in ((1, 32_697), (3, 33_099)):  # the seed notebook's model summaries
        model = build_model("seed_conv_ae", in_channels=channels, out_channels=channels, image_size=128)
        assert sum(p.numel() for p in model.parameters()) == expected


def test_vae_samples_from_the_prior_and_uses_the_mean_in_eval_mode():
    model = build_model("conv_vae", in_channels=1, out_channels=1, image_size=16, latent_dim=3, width=4)
    generator = torch.Generator().manual_seed(0)
    assert model.sample(6, generator).shape == (6, 1, 16, 16)
    x = torch.rand(2, 1, 16, 16)
    model.eval()
    first, second = model(x), model(x)
    assert torch.equal(first.image, second.image) and torch.equal(first.latent, first.mean)
    model.train()
    assert not torch.equal(model(x).image, model(x).image)  # a fresh posterior sample each call


def test_conv_ae_rejects_a_size_its_depth_cannot_halve():
    with pytest.raises(ValueError, match="image_size 30 must be divisible by 2\\*\\*depth = 4"):
        build_model("conv_ae", in_channels=1, out_channels=1, image_size=30)
