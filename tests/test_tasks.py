"""pipeline.tasks: what each task hands the model, what it compares, and the settings it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color

from pipeline.config import parse_params
from pipeline.errors import DataError
from pipeline.images import to_numpy
from pipeline.schema import ConfigError
from pipeline.tasks import Restore, build_task
from tests.builders import ambient_params, arrays_of, colour_images, digit_arrays
from tests.conftest import checked, repo_params


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


def test_the_transfer_task_hands_in_the_label_one_hot_or_the_images_own_view(tmp_path):
    arrays = digit_arrays()
    index = torch.tensor([3, 14])
    label = build_task("transfer", condition="label")
    batch = label.batch(arrays, index, torch.Generator())
    assert torch.equal(batch.condition, torch.eye(10)[[3, 4]]) and torch.equal(batch.input, batch.target)
    assert (
        label.views == ("images",)
        and label.model_shape(parse_params(repo_params()).dataset("digits"))["condition_channels"] == 10
    )
    decoded_as = label.conditions(arrays, index, torch.tensor([7, 7]))
    assert torch.equal(decoded_as, torch.eye(10)[[7, 7]])
    gray = build_task("transfer", condition="gray")
    batch = gray.batch(arrays, index, torch.Generator())
    assert gray.views == ("images", "gray") and torch.equal(batch.condition, 1 - batch.input)
    unlabelled = {**arrays, "labels": torch.full((20,), -1)}
    with pytest.raises(DataError, match="has no labels; a label condition needs labels 0 to 9"):
        label.check(unlabelled, tmp_path)
    with pytest.raises(DataError, match="has labels up to 9; a label condition needs labels 0 to 4"):
        build_task("transfer", condition="label", classes=5).check(arrays, tmp_path)
    gray.check(unlabelled, tmp_path)  # an image condition needs no labels
    with pytest.raises(DataError, match="needs each image's class"):
        label.given(arrays, index)


def test_colorize_reads_lightness_and_learns_signed_chroma_whose_rgb_is_the_image():
    images = colour_images()
    task = build_task("colorize")
    batch = task.batch(arrays_of(images), torch.arange(len(images)), torch.Generator())
    lab = color.rgb2lab(images / 255.0)
    assert batch.input.shape == (6, 1, 16, 16) and batch.target.shape == (6, 2, 16, 16)
    assert np.allclose(batch.input[:, 0].numpy(), lab[..., 0] / 100, atol=0.5 / 255)  # L/100, to the 8-bit code
    assert np.allclose(batch.target.permute(0, 2, 3, 1).numpy(), lab[..., 1:] / 128, atol=0.5 / 128)  # ab/128
    assert batch.target.min() < 0  # signed: a tanh output can reach it, a sigmoid could not
    truth = to_numpy(task.truth(batch))
    # The true Lab back in RGB is the image, to the 8-bit Lab code's rounding (steepest in dark, saturated colours).
    assert np.abs(truth - images / 255.0).mean() < 1 / 255 and np.abs(truth - images / 255.0).max() < 8 / 255


def test_the_gray_baseline_keeps_the_lightness_and_drops_the_colour():
    images = colour_images()
    task = build_task("colorize")
    batch = task.batch(arrays_of(images), torch.arange(len(images)), torch.Generator())
    gray = task.baseline(to_numpy(batch.input))  # (N, H, W, 3)
    lab = color.rgb2lab(gray)
    assert np.abs(lab[..., 1:]).max() < 0.5  # neutral
    assert np.allclose(lab[..., 0] / 100, batch.input[:, 0].numpy(), atol=0.01)
    scores = task.scores(gray, to_numpy(task.truth(batch)))
    # Gray is as far from the truth in ab as the truth's own chroma is from 0.
    chroma = np.linalg.norm(color.rgb2lab(to_numpy(task.truth(batch)))[..., 1:], axis=-1).mean(axis=(1, 2))
    assert np.allclose(scores["ab_error"], chroma, rtol=0.02, atol=0.3)
    perfect = task.scores(to_numpy(task.truth(batch)), to_numpy(task.truth(batch)))
    assert np.all(perfect["ab_error"] == 0) and np.all(perfect["psnr"] == np.inf)


def test_translate_reads_edge_maps_and_scores_sharpness():
    images = colour_images()
    task = build_task("translate")
    batch = task.batch(arrays_of(images), torch.arange(len(images)), torch.Generator())
    assert batch.input.shape == (6, 1, 16, 16) and set(batch.input.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(batch.target, torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0)
    truth = to_numpy(batch.target)
    blurred = np.repeat(truth.mean(axis=(1, 2), keepdims=True), 16, 1).repeat(16, 2)  # flat: no gradient at all
    assert np.allclose(task.scores(truth, truth)["gradient_ratio"], 1.0)
    assert np.allclose(task.scores(blurred, truth)["gradient_ratio"], 0.0)
