"""pipeline.capabilities: what each registered model can do is declared once and asked for there only."""

from __future__ import annotations

import re

from pipeline import capabilities
from pipeline.models import MODELS
from tests.conftest import ROOT

EXPECTED = {  # every family: a new one must say here what it can do, which is what it will be scored and drawn by
    "pca": ["encodes", "scores itself", "eigenimages"],
    "conv_ae": ["encodes"],
    "seed_conv_ae": ["encodes"],
    "linear_ae": ["encodes"],
    "conv_vae": ["encodes", "samples"],
    "residual_vae": ["encodes", "samples"],
    "linear_vae": ["encodes", "samples"],
    "vae_wgan": ["encodes", "samples"],
    "linear_gan": ["samples"],
    "linear_wgan": ["samples"],
    "dcgan": ["samples"],
    "wgan_gp": ["samples"],
    "colorizer": [],
    "colorizer_unet": [],
    "unet": [],
    "pix2pix": [],
    "conditional_aegan": ["encodes", "conditioned on label"],
    "image_conditional_aegan": ["encodes", "conditioned on image"],
    "ambient_vaegan": ["encodes", "samples"],
    "ambient_gan": ["samples"],
}  # fmt: skip -- one family per cell reads as the table it is


def test_each_family_declares_what_it_can_do():
    assert sorted(EXPECTED) == sorted(MODELS)
    assert {name: capabilities.abilities(model) for name, model in MODELS.items()} == EXPECTED


def test_a_built_model_answers_as_its_class_does():
    import torch

    with torch.device("meta"):
        model = MODELS["conv_vae"](in_channels=1, out_channels=1, image_size=28)
    assert capabilities.abilities(model) == capabilities.abilities(type(model)) == ["encodes", "samples"]
    assert capabilities.output_range(model) == (0.0, 1.0) and capabilities.condition_of(model) is None


def test_nothing_outside_the_capabilities_module_probes_a_model_with_hasattr():
    probes = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        if path.name == "capabilities.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bhasattr\(", line) or re.search(r"getattr\((model|task|\w+_class)\b", line):
                probes.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert probes == []
