"""pipeline.forward: each operator matches the seeds' definition, draws θ from the generator it is given."""

from __future__ import annotations

import torch

from pipeline.forward import AddNoise, BlurAddNoise, DropIndependent, DropPatch, KeepPatch


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_drop_independent_zeroes_about_p_and_scales_the_rest():
    x = torch.full((4, 3, 32, 32), 0.25)
    y = DropIndependent(p=0.75)(x, _generator())
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.75) < 0.02
    assert torch.allclose(y[y != 0], torch.tensor(1.0))  # 0.25 / (1 - 0.75)
    # per channel: the three channels of one pixel are dropped independently
    assert not torch.equal(y[:, 0] == 0, y[:, 1] == 0)


def test_drop_patch_zeroes_one_square_on_every_channel_inside_the_seed_range():
    x = torch.ones(64, 3, 28, 28)
    y = DropPatch(size=12)(x, _generator())
    zero = y == 0
    assert torch.equal(zero[:, 0], zero[:, 2])
    assert torch.all(zero.sum(dim=(2, 3))[:, 0] == 144)
    rows = zero[:, 0].any(dim=2).float().argmax(dim=1)  # first dropped row per image
    assert rows.max() <= 28 - 12 - 1  # np.random.choice(h - k) never picks the last position
    assert len(set(rows.tolist())) > 5  # positions vary across the batch


def test_keep_patch_is_the_complement_of_drop_patch():
    x = torch.ones(8, 1, 28, 28)
    dropped = DropPatch(size=10)(x, _generator(3))
    kept = KeepPatch(size=10)(x, _generator(3))
    assert torch.equal(dropped + kept, x)


def test_add_noise_has_the_asked_spread_and_no_clipping():
    x = torch.zeros(16, 1, 32, 32)
    y = AddNoise(sigma=0.2)(x, _generator())
    assert abs(y.std().item() - 0.2) < 0.01
    assert y.min() < 0  # linear operator: values below 0 are kept


def test_blur_add_noise_blurs_a_point_into_the_normalised_gaussian():
    x = torch.zeros(1, 1, 11, 11)
    x[0, 0, 5, 5] = 1.0
    y = BlurAddNoise(sigma=0.0, radius=1.0, size=5)(x, _generator())
    assert abs(y.sum().item() - 1.0) < 1e-6
    assert abs(y[0, 0, 5, 5].item() - 1 / (2 * torch.pi) / 0.98) < 0.02  # centre of a unit-radius Gaussian
    assert y[0, 0, 5, 6] < y[0, 0, 5, 5]


def test_same_generator_state_gives_the_same_theta_and_a_new_draw_differs():
    x = torch.rand(4, 1, 16, 16)
    operator = DropIndependent(p=0.5)
    generator = _generator(7)
    first = operator(x, generator)
    second = operator(x, generator)
    assert torch.equal(first, operator(x, _generator(7)))
    assert not torch.equal(first, second)


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
