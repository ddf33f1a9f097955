"""pipeline.models: every registered model builds from tiny kwargs, keeps shapes and trains."""

from __future__ import annotations

import pytest
import torch

from pipeline.models import MODELS, build_model

TINY = {"conv_ae": {"latent_dim": 4, "width": 4}}


def test_every_model_has_a_tiny_config():
    assert set(TINY) == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_forward_shapes_and_range(name, channels, size):
    model = build_model(name, in_channels=channels, out_channels=channels, image_size=size, **TINY[name])
    output = model(torch.rand(5, channels, size, size))
    assert output.image.shape == (5, channels, size, size)
    assert output.latent.shape == (5, TINY[name]["latent_dim"])
    assert 0.0 <= output.image.min() and output.image.max() <= 1.0
    output.image.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_lists_the_names():
    with pytest.raises(ValueError, match="unknown model 'vae'; choose one of conv_ae"):
        build_model("vae")


def test_conv_ae_rejects_a_size_its_depth_cannot_halve():
    with pytest.raises(ValueError, match="image_size 30 must be divisible by 2\\*\\*depth = 4"):
        build_model("conv_ae", in_channels=1, out_channels=1, image_size=30)
