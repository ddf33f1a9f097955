"""pipeline.figures and pipeline.evaluation.figures: grids and interpolation strips."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import DataError
from pipeline.evaluation.figures import comparison_rows, interpolate
from pipeline.figures import grid
from pipeline.models import build_model


def test_grid_tiles_rows_with_gaps_and_enlarges_small_images():
    inputs = torch.zeros(3, 1, 16, 16)
    outputs = torch.ones(3, 1, 16, 16)
    image = grid(comparison_rows(inputs, outputs, inputs, columns=3, blocks=1))
    assert image.shape == (2 * (64 + 2) + 2, 3 * (64 + 2) + 2, 3)  # 16-pixel cells enlarged 4×
    assert image[2 + 10, 2 + 10].tolist() == [0, 0, 0]  # first row: inputs (black)
    assert image[2 + 66 + 10, 2 + 10].tolist() == [255, 255, 255]  # second row: outputs (white)


def test_interpolation_strip_starts_and_ends_at_the_pair():
    model = build_model("conv_ae", in_channels=1, out_channels=1, image_size=16, latent_dim=4, width=4).eval()
    images = torch.rand(5, 1, 16, 16)
    strip = interpolate(model, images, (1, 3), frames=16, name="x")
    assert strip.shape == (16, 1, 16, 16)
    assert torch.allclose(strip[0], model(images[1:2]).image[0], atol=1e-6)
    assert torch.allclose(strip[-1], model(images[3:4]).image[0], atol=1e-6)
    with pytest.raises(DataError, match="index 7 is beyond the 5 test images"):
        interpolate(model, images, (0, 7), frames=16, name="x")
