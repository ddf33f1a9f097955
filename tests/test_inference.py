"""pipeline.inference through `aegan apply`: output where the user runs it, never over the input; a file scaled
as prepare scaled its copies; a huge photo decoded small, a decompression bomb refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from pipeline.config import parse_params
from pipeline.experiment import load_trained
from pipeline.tasks import Restore
from tests.builders import ambient_params, train_ambient
from tests.conftest import build_project, tiny_params


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away project with params.yaml and a trained `ae_tiny` (a conv autoencoder on 28 px digits)."""
    root = tmp_path_factory.mktemp("apply")
    build_project(tiny_params(), root)
    return root


def apply(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    from stages.cli import app

    monkeypatch.chdir(project)
    return CliRunner().invoke(app, ["apply", "ae_tiny", *args])


def test_the_output_lands_in_the_working_directory_and_never_replaces_the_input(project, tmp_path, monkeypatch):
    digit = tmp_path / "inputs" / "digit.png"
    digit.parent.mkdir()
    Image.fromarray(np.tile(np.linspace(0, 255, 28, dtype=np.uint8), (28, 1))).save(digit)
    before = digit.read_bytes()
    result = apply(project, monkeypatch, str(digit))
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(project / "digit_ae_tiny.png")).shape == (28, 28)
    assert sorted(path.name for path in digit.parent.iterdir()) == ["digit.png"]  # nothing beside the input
    for same in (digit, tmp_path / "inputs" / ".." / "inputs" / "digit.png"):
        result = apply(project, monkeypatch, str(digit), "--out", str(same))
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [
            f"error: {same} is the input image; give another --out so the input stays as it is"
        ]
    assert digit.read_bytes() == before


def test_a_huge_photo_is_decoded_small_and_a_bomb_is_refused(project, tmp_path, monkeypatch):
    from pipeline.data import views

    photo = tmp_path / "photo.jpg"
    ramp = np.linspace(0, 255, 6000, dtype=np.uint8)
    Image.fromarray(np.broadcast_to(ramp, (4000, 6000))).save(photo, quality=90)  # 24 megapixels
    seen = []
    resize = views.standardise

    def spy(images, size, channels):
        seen.append(images[0].shape)
        return resize(images, size, channels)

    monkeypatch.setattr("pipeline.inference.standardise", spy)
    result = apply(project, monkeypatch, str(photo))
    assert result.exit_code == 0, result.output
    assert 56 <= min(seen[0][:2]) < 112  # an eighth-size decode (500 × 750), not 4000 × 6000
    assert np.asarray(Image.open(project / "photo_ae_tiny.png")).shape == (28, 28)

    bomb = tmp_path / "bomb.png"
    Image.new("L", (10_000, 9_000)).save(bomb)  # 90 megapixels, a few hundred kilobytes
    result = apply(project, monkeypatch, str(bomb))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "more than 89,478,485 pixels: refused as a possible decompression bomb" in result.output
    assert not (project / "bomb_ae_tiny.png").exists()


def test_apply_scales_a_drop_independent_file_as_prepare_scaled_its_copies(tmp_path, prepared_digits):
    from PIL import Image

    from pipeline.data.tensors import load_tensors
    from pipeline.inference import apply_to_file

    raw = ambient_params(ambient={"task": {"name": "restore"}})
    params = parse_params(raw)
    train_ambient(raw, "ambient", {"prepared": prepared_digits / "digits", "out": tmp_path})
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
