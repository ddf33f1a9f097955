"""pipeline.data.prepare, views and store: split, views and distorted copies on disk, reproducible and atomic."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from pipeline.config import parse_params
from pipeline.data import views
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import fetch
from pipeline.data.store import load_split
from tests.conftest import UTRECHT, UTRECHT_PERSON, needs_faces, tiny_params


def test_prepared_digits_have_the_promised_layout(prepared_digits):
    folder = prepared_digits / "digits"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 240, "test": 60}
    assert manifest["class_names"] == [str(d) for d in range(10)]
    train = load_split(folder, "train")
    assert train["images"].shape == (240, 28, 28, 1) and train["images"].dtype == np.uint8
    assert train["edges"].shape == (240, 28, 28, 1) and set(np.unique(train["edges"])) <= {0, 255}
    assert train["add_noise"].dtype == np.float16
    assert manifest["arrays"]["train/images"]["sha256"] and manifest["arrays"]["test/labels"]["shape"] == [60]
    # distorted copies are the forward models applied to exactly these images
    clean = train["images"].astype(np.float32) / 255.0
    dropped = train["drop_independent"].astype(np.float32)
    kept = dropped != 0
    assert manifest["forward"]["drop_independent"] == {"p": 0.9}
    # float16 keeps about three digits of the 10× gain: 5e-3 of the largest value
    assert np.allclose(dropped[kept], clean[kept] * 10.0, atol=5e-3)  # p = 0.9 -> kept pixels ×10
    assert (dropped[clean > 0] == 0).mean() == pytest.approx(0.9, abs=0.01)
    patch = train["drop_patch"].astype(np.float32)
    assert np.all((patch == 0).sum(axis=(1, 2, 3)) >= 196)  # a 14×14 square zeroed (maybe more where already black)
    noise = train["add_noise"].astype(np.float32) - clean
    assert abs(noise.std() - 0.2) < 0.01


def test_the_split_is_fixed_by_the_seed_and_disjoint(tmp_path, prepared_digits):
    config = parse_params(tiny_params()).dataset("digits")
    fetch("digits", config, tmp_path / "raw", tmp_path / "downloads")
    again = prepare_dataset("digits", config, tmp_path / "raw", tmp_path / "same", seed=0)
    other = prepare_dataset("digits", config, tmp_path / "raw", tmp_path / "other", seed=1)
    first = json.loads((prepared_digits / "digits" / "manifest.json").read_text())
    assert again["arrays"] == first["arrays"]  # byte-identical arrays, views and distortions
    assert other["arrays"]["train/images"]["sha256"] != first["arrays"]["train/images"]["sha256"]
    train = load_split(tmp_path / "same", "train")["images"].reshape(240, -1)
    test = load_split(tmp_path / "same", "test")["images"].reshape(60, -1)
    shared = {row.tobytes() for row in train} & {row.tobytes() for row in test}
    assert len(shared) <= 2  # only digits that happen to be pixel-identical duplicates


def test_an_interrupted_prepare_leaves_no_output(tmp_path, monkeypatch):
    config = parse_params(tiny_params()).dataset("digits")
    fetch("digits", config, tmp_path / "raw", tmp_path / "downloads")

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(views, "edges", broken)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("digits", config, tmp_path / "raw", tmp_path / "prepared", seed=0)
    assert not (tmp_path / "prepared").exists()
    assert not list(tmp_path.glob(".*partial"))  # no staging folder left behind


def test_standardise_crops_the_centre_and_resizes():
    wide = np.zeros((20, 40, 3), dtype=np.uint8)
    wide[:, 10:30] = 255  # the centred 20×20 square is white, the sides black
    out = views.standardise([wide, np.full((8, 8), 128, np.uint8)], size=10, channels=3)
    assert out.shape == (2, 10, 10, 3)
    assert out[0].min() == 255
    assert np.all(out[1] == 128)  # gray -> three equal channels


def test_gray_edges_and_lab_views():
    image = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    image[0, 8:24, 8:24] = (255, 0, 0)
    assert views.gray(image)[0, 16, 16, 0] == round(0.2125 * 255)  # Rec. 709 luminance of pure red
    edge_map = views.edges(image, sigma=1.0)[0, :, :, 0]
    assert edge_map[16, 16] == 0 and edge_map[8:24, 7:9].any()  # the square's border, not its inside
    code = views.encode_lab(image)
    lab = views.decode_lab(code)
    assert abs(lab[0, 16, 16, 0] - 53.24) < 0.5 and abs(lab[0, 16, 16, 1] - 80.1) < 0.6  # red in CIE Lab
    assert abs(lab[0, 0, 0, 0]) < 0.5  # black


def test_a_prepared_dataset_changed_after_prepare_is_named_on_load_or_by_verify(prepared_digits, tmp_path):
    import shutil

    from pipeline.data.store import verify
    from pipeline.errors import DataError

    folder = tmp_path / "digits"
    shutil.copytree(prepared_digits / "digits", folder)
    assert verify(folder) == 12
    labels = np.load(folder / "test" / "labels.npy")
    np.save(folder / "test" / "labels.npy", labels[:-1])  # one row short: the header says so, loading catches it
    with pytest.raises(
        DataError, match=r"labels.npy holds int64 \[59\] where its manifest says int64 \[60\]; prepare it again"
    ):
        load_split(folder, "test")
    assert set(load_split(folder, "train")) >= {"images", "labels"}  # the other split is untouched
    flipped = labels.copy()
    flipped[0] = (flipped[0] + 1) % 10
    np.save(folder / "test" / "labels.npy", flipped)  # same shape, other values: only the hash check sees it
    assert load_split(folder, "test")["labels"][0] == flipped[0]
    with pytest.raises(DataError, match=r"test/labels.npy has changed since prepare wrote it \(sha256 differs\)"):
        verify(folder)
    (folder / "test" / "labels.npy").write_bytes(b"not an array")
    with pytest.raises(DataError, match=r"labels.npy cannot be read"):
        load_split(folder, "test")


def _prepare_folder(root, path, **settings):
    raw = {
        **tiny_params(),
        "datasets": {"faces": {"source": "folder", "path": str(path), "image_size": 16, "channels": 1, **settings}},
    }
    raw["experiments"]["ae_tiny"]["dataset"] = "faces"
    config = parse_params(raw).dataset("faces")
    fetch("faces", config, root / "raw", root / "downloads")
    return prepare_dataset("faces", config, root / "raw", root / "prepared", seed=0)


@needs_faces
def test_a_person_grouped_split_keeps_each_utrecht_face_on_one_side(tmp_path):
    person = re.compile(UTRECHT_PERSON)
    plain = _prepare_folder(tmp_path / "plain", UTRECHT, test_fraction=0.25)
    people = {split: {person.match(name).group(1) for name in plain["files"][split]} for split in ("train", "test")}
    assert len(people["train"] & people["test"]) > len(people["test"]) // 2  # a random split puts most in both

    grouped = _prepare_folder(tmp_path / "grouped", UTRECHT, test_fraction=0.25, split_group=UTRECHT_PERSON)
    files = grouped["files"]
    assert sorted(files["train"] + files["test"]) == sorted(path.name for path in UTRECHT.glob("*.jpg"))
    people = {split: {person.match(name).group(1) for name in files[split]} for split in ("train", "test")}
    assert not people["train"] & people["test"]  # every person (neutral and smiling) on one side
    assert grouped["counts"] == {"train": len(files["train"]), "test": len(files["test"])}
    assert len(files["test"]) >= 0.25 * 122 and len(files["test"]) < 0.25 * 122 + 2  # one person more at most


def test_a_group_pattern_that_misses_a_file_or_names_one_group_stops_in_one_line(tmp_path):
    from pipeline.errors import DataError

    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a1.png", "a1s.png", "b2.png", "odd.png"):
        Image.fromarray(np.full((20, 20), 128, np.uint8)).save(folder / name)
    with pytest.raises(DataError, match=r"^datasets.faces.split_group: odd.png does not match '\^\(\[ab\]\\d\)'; fix"):
        _prepare_folder(tmp_path / "missing", folder, split_group=r"^([ab]\d)")
    with pytest.raises(DataError, match=r"every image is in group .\.png.; a split needs two groups"):
        _prepare_folder(tmp_path / "one", folder, split_group=r"(\.png)$")
    split = _prepare_folder(tmp_path / "good", folder, split_group=r"^([a-z])", test_fraction=0.3)["files"]
    groups = {side: {name[0] for name in split[side]} for side in ("train", "test")}
    assert len(split["test"]) >= 2 and split["train"] and not groups["train"] & groups["test"]  # ceil(0.3 × 4)


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ({"source": "digits", "split_group": "(x)"}, "only a folder dataset is split by group; digits has its own"),
        ({"source": "folder", "path": "x", "split_group": "(x"}, "'(x' is not a regular expression"),
        ({"source": "folder", "path": "x", "split_group": "x"}, "'x' has no (group) naming a file's group"),
    ],
)
def test_a_bad_group_pattern_is_one_line_naming_the_key(dataset, message):
    from pipeline.schema import ConfigError

    raw = {**tiny_params(), "datasets": {"digits": dataset}}
    with pytest.raises(ConfigError, match=re.escape(f"datasets.digits.split_group: {message}")):
        parse_params(raw)
