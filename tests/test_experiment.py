"""pipeline.experiment: the cross-checks of a model, a task and a dataset that params.yaml alone cannot make."""

from __future__ import annotations

import copy

import pytest

from pipeline.schema import ConfigError
from tests.conftest import checked, repo_params


@pytest.mark.parametrize(
    ("model", "task", "message"),
    [
        (
            {"name": "conv_ae"},
            {"name": "transfer"},
            "conv_ae reads no condition; label conditions need one of conditional_aegan",
        ),
        (
            {"name": "conditional_aegan"},
            {"name": "reconstruct"},
            "conditional_aegan is conditioned on labels; use task transfer",
        ),
        (
            {"name": "image_conditional_aegan"},
            {"name": "transfer", "condition": "label"},
            "image_conditional_aegan is conditioned on images; label conditions need one of conditional_aegan",
        ),
        (
            {"name": "conditional_aegan"},
            {"name": "transfer", "condition": "edges"},
            "conditional_aegan is conditioned on labels; image conditions need one of image_conditional_aegan",
        ),
        (
            {"name": "conditional_aegan", "condition_channels": 3},
            {"name": "transfer"},
            "condition_channels: set by the dataset and task",
        ),
    ],
)
def test_the_config_pairs_conditions_with_models_that_read_them(model, task, message):
    raw = copy.deepcopy(repo_params())
    raw["experiments"]["aegan_digits"] |= {"model": model, "task": task}
    with pytest.raises(ConfigError, match=message):
        checked(raw)


def test_the_config_refuses_a_model_that_cannot_reach_the_tasks_targets():
    raw = repo_params()
    bad = copy.deepcopy(raw)
    bad["experiments"]["colorizer_photos"]["model"] = {"name": "conv_ae", "latent_dim": 8, "width": 8}
    with pytest.raises(
        ConfigError, match=r"colorizer_photos.model.name: conv_ae's outputs lie in \[0.0, 1.0\] but task colorize"
    ):
        checked(bad)
    bad = copy.deepcopy(raw)
    bad["experiments"]["pix2pix_edges_photos"]["model"] = {"name": "dcgan", "latent_dim": 8, "width": 8}
    bad["experiments"]["pix2pix_edges_photos"]["update"] = {}
    with pytest.raises(ConfigError, match="dcgan maps noise to images, not images to images; use task generate"):
        checked(bad)
    bad = copy.deepcopy(raw)
    bad["experiments"]["pix2pix_edges_photos"]["update"] = {"l1_weight": -1.0}
    with pytest.raises(ConfigError, match=r"pix2pix_edges_photos.update.l1_weight: must be at least 0, got -1.0"):
        checked(bad)
