"""Study `translation` end to end: both tasks trained on a folder of the seed's real faces, and `aegan apply` on
them. Its parts are tested with their modules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage import color
from typer.testing import CliRunner

from pipeline.data.store import load_split
from pipeline.evaluation.evaluate import evaluate_experiment
from pipeline.evaluation.metrics import psnr
from tests.conftest import UTRECHT, build_project, needs_faces, repo_params, utrecht_faces


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory):
    """The Utrecht faces through the generic folder source at 32 px, with the lab and edges views."""
    root = tmp_path_factory.mktemp("faces")
    raw = repo_params()
    raw["datasets"] = {"faces": utrecht_faces(["lab", "edges"])}
    raw["studies"] = ["translation"]
    raw["derived"] = {}  # made by experiments left out here
    common = {"study": "translation", "dataset": "faces", "train": {"epochs": 40, "batch_size": 16}}
    raw["experiments"] = {
        "colorizer_faces": {
            **common,
            "task": {"name": "colorize"},
            "model": {"name": "colorizer", "width": 16},
            "update": {"lr": 1e-3},
        },
        "unet_faces": {
            **common,
            "task": {"name": "translate"},
            "model": {"name": "unet", "width": 8, "depth": 5},
            "update": {"lr": 1e-3, "loss": "l1"},
        },
    }
    raw["base"] = {"seed": 0, "device": "cpu", "precision": "fp32"}
    return build_project(raw, root), root


@needs_faces
def test_the_colorizer_beats_gray_on_held_out_faces(faces):
    params, root = faces
    folders = {"prepared_dir": root / "prepared" / "faces", "model_dir": root / "models" / "colorizer_faces"}
    summary, table, preview, _ = evaluate_experiment(
        params, "colorizer_faces", **folders, classifier_dir=root / "none", figures_dir=root / "colorizer_figures"
    )
    held_out = json.loads((root / "prepared" / "faces" / "manifest.json").read_text())["counts"]["test"]
    assert len(table) == summary["images"] == held_out and 31 <= held_out <= 32  # whole people: 91 / 31 or 90 / 32
    assert summary["psnr_mean"] > summary["baseline_psnr_mean"] + 1.0
    assert summary["ab_error_mean"] < summary["baseline_ab_error_mean"]
    assert preview["input"].shape == (8, 32, 32, 1) and preview["output"].shape == preview["truth"].shape == (
        8,
        32,
        32,
        3,
    )


@needs_faces
def test_the_edge_translator_draws_faces_from_edges(faces):
    params, root = faces
    folders = {"prepared_dir": root / "prepared" / "faces", "model_dir": root / "models" / "unet_faces"}
    summary, _, _, _ = evaluate_experiment(
        params, "unet_faces", **folders, classifier_dir=root / "none", figures_dir=root / "unet_figures"
    )
    truth = load_split(root / "prepared" / "faces", "test")["images"].astype(np.float32) / 255.0
    mean_face = np.broadcast_to(truth.mean(axis=0), truth.shape)  # the best a model ignoring its input could do
    assert summary["psnr_mean"] > psnr(mean_face, truth).mean()


@needs_faces
def test_apply_colourises_one_file_and_explains_bad_input(faces, tmp_path, monkeypatch):
    from stages.cli import app

    _, root = faces
    monkeypatch.chdir(root)  # apply reads models/<experiment> and params.yaml from the project root
    face = np.asarray(Image.open(UTRECHT / "f4001.jpg").convert("RGB"))
    Image.fromarray(face).convert("L").save(tmp_path / "gray.png")
    runner = CliRunner()
    result = runner.invoke(app, ["apply", "colorizer_faces", str(tmp_path / "gray.png")])
    assert result.exit_code == 0, result.output
    written = np.asarray(Image.open(root / "gray_colorizer_faces.png"))  # written where apply runs
    assert written.shape == (32, 32, 3)
    assert np.abs(color.rgb2lab(written / 255.0)[..., 1:]).mean() > 2  # a gray face in, a coloured one out
    result = runner.invoke(
        app, ["apply", "unet_faces", str(UTRECHT / "f4001.jpg"), "--out", str(tmp_path / "drawn.jpg")]
    )
    assert result.exit_code == 0 and np.asarray(Image.open(tmp_path / "drawn.jpg")).shape == (32, 32, 3)
    result = runner.invoke(app, ["apply", "colorizer_faces", str(tmp_path / "missing.png")])
    assert result.exit_code == 1 and "missing.png not found; give the path of a PNG or JPEG file" in result.output
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = runner.invoke(app, ["apply", "unet_faces", str(tmp_path / "broken.jpg")])
    assert (
        result.exit_code == 1 and "cannot use image" in result.output and len(result.output.strip().splitlines()) == 1
    )
    assert not list(root.glob("broken_*"))
    result = runner.invoke(app, ["apply", "unet_faces", str(tmp_path / "gray.png"), "--out", str(tmp_path / "x.gif")])
    assert result.exit_code == 1 and "x.gif: the output must end in .png, .jpg, .jpeg" in result.output
