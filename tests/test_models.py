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
}


def test_every_model_has_a_tiny_config():
    assert set(TINY) == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
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
        assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_lists_the_names():
    with pytest.raises(ValueError, match="unknown model 'vae'; choose one of conv_ae, conv_vae, pca, seed_conv_ae"):
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
