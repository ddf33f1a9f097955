"""The translation study's parts: the colorize and translate tasks, pix2pix's update, `aegan apply`, the
report's side-by-side figures, and both tasks trained on a folder of real faces."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color
from typer.testing import CliRunner

from pipeline.config import parse_params
from pipeline.data.store import load_split
from pipeline.data.views import edges, encode_lab
from pipeline.evaluation.evaluate import evaluate_experiment
from pipeline.evaluation.metrics import psnr
from pipeline.images import to_numpy
from pipeline.models import build_model
from pipeline.report import comparisons
from pipeline.schema import ConfigError
from pipeline.tasks import Batch, build_task
from pipeline.training import updates
from tests.conftest import UTRECHT, build_project, checked, needs_faces, repo_params, utrecht_faces


def colour_images(count: int = 6, size: int = 16) -> np.ndarray:
    """Smooth random colour images, (N, S, S, 3) uint8."""
    rng = np.random.default_rng(0)
    small = rng.random((count, 4, 4, 3))
    return (np.kron(small, np.ones((1, size // 4, size // 4, 1))) * 255).round().astype(np.uint8)


def arrays_of(images: np.ndarray) -> dict[str, torch.Tensor]:
    return {
        "images": torch.from_numpy(images),
        "lab": torch.from_numpy(encode_lab(images)),
        "edges": torch.from_numpy(edges(images, sigma=1.0)),
        "labels": torch.zeros(len(images), dtype=torch.long),
    }


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


def test_pix2pix_update_teaches_the_critic_pairs_and_the_generator_the_target():
    torch.manual_seed(0)
    model = build_model(
        "pix2pix", in_channels=1, out_channels=3, image_size=16, width=8, depth=3, critic_width=8, critic_layers=2
    )
    update = updates.ConditionalAdversarialUpdate(model, lr=2e-3)
    images = torch.from_numpy(colour_images(8)).permute(0, 3, 1, 2) / 255.0
    batch = Batch(input=images.mean(1, keepdim=True), target=images, label=torch.zeros(8, dtype=torch.long))
    logs = [update(batch) for _ in range(100)]
    assert set(logs[0]) == {"loss_critic", "adversarial", "l1"}
    # The critic's loss is the mean of its two cross-entropies (pix2pix halves their sum): ln 2 at chance.
    assert logs[0]["loss_critic"].item() == pytest.approx(np.log(2), abs=0.15)
    assert logs[-1]["l1"] < 0.5 * logs[0]["l1"]  # the weighted L1 term pulls the outputs to the targets
    with torch.no_grad():
        fake = model.generator(batch.input).image
        assert (
            model.critic(batch.input, images).mean() > model.critic(batch.input, fake).mean() + 1
        )  # and the critic tells them apart


def test_the_report_sets_models_side_by_side_per_dataset_and_task(tmp_path):
    params = parse_params(repo_params())
    folder = tmp_path / "translation"
    folder.mkdir()
    for index, (name, experiment) in enumerate(params.experiments.items()):
        if experiment.study == "translation":
            part = np.full((2, 4, 4, 3), index, np.uint8)
            np.savez(folder / f"{name}.npz", input=part + 100, output=part, truth=part + 200)
    figures = comparisons(params, "translation", tmp_path)
    names, rows = figures["photos_translate"]
    assert names == ["input", "unet_edges_photos", "pix2pix_edges_photos", "truth"]
    first = list(params.experiments).index("unet_edges_photos")
    second = list(params.experiments).index("pix2pix_edges_photos")
    assert [row[0, 0, 0, 0] * 255 for row in rows] == pytest.approx([first + 100, first, second, first + 200])
    assert figures["photos_colorize"][0] == ["input", "colorizer_photos", "colorizer_unet_photos", "truth"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory):
    """The Utrecht faces through the generic folder source at 32 px, with the lab and edges views."""
    root = tmp_path_factory.mktemp("faces")
    raw = repo_params()
    raw["datasets"] = {"faces": utrecht_faces(["lab", "edges"])}
    raw["studies"] = ["translation"]
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
    assert len(table) == summary["images"] == 31  # the seed's 91 / 31 split of the 122 faces
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
