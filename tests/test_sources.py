"""Every source end to end: fetch into raw_dir (from loopback for downloaded ones), open_raw, read pixels back."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import typing
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.config import DatasetConfig
from pipeline.data import download, published, sources
from pipeline.data.published import CELEBA_PARTITION, CELEBA_ZIP, IDX_FILES
from pipeline.data.raw import RawImages, Source
from pipeline.data.sources import fetch, open_raw
from pipeline.errors import DataError
from tests.conftest import UTRECHT, needs_faces
from tests.loopback import serve


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def read_all(raw: RawImages) -> list[np.ndarray]:
    return raw.read(np.arange(len(raw)))


@pytest.fixture
def tiny_idx() -> tuple[np.ndarray, np.ndarray, dict[str, bytes]]:
    """12 train and 5 test images of 28x28 with distinct pixels, their labels, and the four gzipped IDX files."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(17, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=17).astype(np.uint8)
    arrays = (images[:12], labels[:12], images[12:], labels[12:])
    files = {name: idx_bytes(array, 2051 if array.ndim == 3 else 2049) for name, array in zip(IDX_FILES, arrays)}
    return images, labels, files


def test_registry_covers_exactly_the_configurable_sources() -> None:
    configurable = typing.get_args(typing.get_type_hints(DatasetConfig)["source"])
    assert set(sources.SOURCES) == set(configurable) - {"reconstructions"}  # made by derive@, not downloaded


@pytest.mark.parametrize("source", ["mnist", "fashion_mnist"])
def test_idx_sources_give_exact_pixels_labels_and_official_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_idx: tuple, source: str
) -> None:
    images, labels, files = tiny_idx
    monkeypatch.setitem(published.CHECKSUMS, source, {name: md5(data) for name, data in files.items()})
    with serve({f"mirror/{name}": data for name, data in files.items()}) as server:
        config = DatasetConfig(source=source, url=server.url + "mirror")
        fetch(source, config, tmp_path / "raw", tmp_path / "downloads")
        fetch(source, config, tmp_path / "raw", tmp_path / "downloads")  # the cache answers the second time
    assert len(server.requests) == len(IDX_FILES)
    assert (tmp_path / "downloads" / source / IDX_FILES[0]).read_bytes() == files[IDX_FILES[0]]
    raw = open_raw(config, tmp_path / "raw", seed=0)
    assert len(raw) == 17 and raw.labels.dtype == np.int64
    np.testing.assert_array_equal(raw.labels, labels)
    np.testing.assert_array_equal(raw.split, np.arange(17) >= 12)
    order = np.array([16, 0, 11, 12])
    np.testing.assert_array_equal(np.stack(raw.read(order)), images[order])


@pytest.mark.parametrize(
    ("broken", "damage"),
    [
        ("t10k-images-idx3-ubyte.gz", lambda data: gzip.compress(b"\x00\x00\x08\x01" + gzip.decompress(data)[4:])),
        ("train-images-idx3-ubyte.gz", lambda data: gzip.compress(gzip.decompress(data)[:-5])),
        ("train-labels-idx1-ubyte.gz", lambda data: b"not gzip at all"),
        ("train-images-idx3-ubyte.gz", lambda data: idx_bytes(np.zeros((11, 28, 28)), 2051)),  # count mismatch
    ],
    ids=["bad-magic", "short", "not-gzip", "count-mismatch"],
)
def test_malformed_idx_names_the_file(tmp_path: Path, tiny_idx: tuple, broken: str, damage: typing.Callable) -> None:
    _, _, files = tiny_idx
    for name, data in files.items():
        (tmp_path / name).write_bytes(damage(data) if name == broken else data)
    with pytest.raises(DataError, match=broken):
        open_raw(DatasetConfig(source="mnist"), tmp_path, seed=0)


def test_digits_are_the_scikit_learn_set_as_uint8(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    config = DatasetConfig(source="digits")
    fetch("digits", config, tmp_path / "raw", tmp_path / "downloads")
    raw = open_raw(config, tmp_path / "raw", seed=0)
    reference = load_digits()
    assert len(raw) == 1797 and raw.split is None
    assert raw.class_names == tuple(str(d) for d in range(10))
    np.testing.assert_array_equal(raw.labels, reference.target)
    first, last = raw.read(np.array([0, 1796]))
    assert first.dtype == np.uint8 and first.shape == (8, 8)
    np.testing.assert_array_equal(first, np.round(reference.images[0] * 255 / 16))
    np.testing.assert_array_equal(last, np.round(reference.images[1796] * 255 / 16))


def test_lfw_faces_keeps_only_the_faces(tmp_path: Path) -> None:
    from skimage.data import lfw_subset

    config = DatasetConfig(source="lfw_faces")
    fetch("faces", config, tmp_path / "raw", tmp_path / "downloads")
    raw = open_raw(config, tmp_path / "raw", seed=0)
    images = np.stack(read_all(raw))
    assert images.shape == (100, 25, 25) and images.dtype == np.uint8
    assert raw.class_names == () and set(raw.labels) == {-1}
    np.testing.assert_array_equal(images, np.round(lfw_subset()[:100] * 255))


def test_photo_crops_are_seeded_squares_of_the_right_size(tmp_path: Path) -> None:
    config = DatasetConfig(source="photos", count=40, image_size=32, channels=3)
    fetch("photos", config, tmp_path / "raw", tmp_path / "downloads")
    first, again, other = (open_raw(config, tmp_path / "raw", seed=seed) for seed in (3, 3, 4))
    assert len(first) == 40 and len(first.class_names) == len(sources.PHOTOS)
    crops = read_all(first)
    for crop, label in zip(crops, first.labels):
        with Image.open(tmp_path / "raw" / f"{first.class_names[label]}.png") as photo:
            assert 32 <= crop.shape[0] == crop.shape[1] <= min(photo.size) // 2
        assert crop.shape[2] == 3 and crop.dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(crops, read_all(again)))
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(crops, read_all(other)))


def write_celeba_zip(folder: Path) -> list[np.ndarray]:
    """Three 218x178 "aligned faces" with distinct pixels, as PNG bytes under .jpg names to keep pixels exact."""
    rng = np.random.default_rng(1)
    faces = [rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8) for _ in range(3)]
    with zipfile.ZipFile(folder / CELEBA_ZIP, "w") as bundle:
        for number, face in enumerate(faces, start=1):
            bundle.writestr(f"img_align_celeba/{number:06d}.jpg", png_bytes(face))
    return faces


def test_celeba_reads_centre_crops_and_the_official_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faces = write_celeba_zip(tmp_path)
    partition = b"000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n"
    cache = tmp_path / "downloads"
    (cache / "celeba").mkdir(parents=True)
    (cache / "celeba" / CELEBA_PARTITION).write_bytes(partition)  # as if put there by hand
    zip_bytes = (tmp_path / CELEBA_ZIP).read_bytes()
    monkeypatch.setitem(published.CHECKSUMS, "celeba", {CELEBA_ZIP: md5(zip_bytes), CELEBA_PARTITION: md5(partition)})
    with serve({CELEBA_ZIP: zip_bytes}) as server:
        config = DatasetConfig(source="celeba", url=server.url + CELEBA_ZIP)
        fetch("celeba", config, tmp_path / "raw", cache)
    raw = open_raw(config, tmp_path / "raw", seed=0)
    np.testing.assert_array_equal(raw.split, [False, False, True])
    assert set(raw.labels) == {-1}
    for crop, face in zip(raw.read(np.array([2, 0])), (faces[2], faces[0])):
        np.testing.assert_array_equal(crop, face[55:163, 35:143])


def test_celeba_html_answer_asks_for_the_zip_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "BACKOFF_SECONDS", 0.01)
    cache = tmp_path / "downloads"
    with serve({}, html={"uc"}) as server, pytest.raises(DataError, match="by hand") as caught:
        fetch(
            "celeba",
            DatasetConfig(source="celeba", url=server.url + "uc?id=0B7EVK8r0v71pZjFTYXZWM3FlRnM"),
            tmp_path / "raw",
            cache,
        )
    assert str(cache / "celeba" / CELEBA_ZIP) in str(caught.value)
    assert not (cache / "celeba" / CELEBA_ZIP).exists()


def make_image_tree(root: Path) -> dict[str, np.ndarray]:
    """Small PNGs in two class folders (one nested deeper), by relative path."""
    rng = np.random.default_rng(2)
    tree = {"zebra/a.png": (9, 7, 3), "apple/b.PNG": (6, 6), "apple/deeper/c.png": (5, 8, 3)}
    images = {}
    for relative, shape in tree.items():
        images[relative] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(png_bytes(images[relative]))
    return images


def test_folder_archive_url_is_verified_extracted_and_labelled(tmp_path: Path) -> None:
    images = make_image_tree(tmp_path / "tree" / "wrapper")
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(tmp_path / "tree" / "wrapper", arcname="wrapper")
    checksum = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    with serve({"files/set.tar.gz": archive.read_bytes()}) as server:
        config = DatasetConfig(source="folder", url=server.url + "files/set.tar.gz", checksum=checksum, min_side=1)
        fetch("mine", config, tmp_path / "raw", tmp_path / "downloads")
    assert (tmp_path / "downloads" / "folder" / "mine" / "set.tar.gz").is_file()
    raw = open_raw(config, tmp_path / "raw", seed=0)
    assert raw.class_names == ("apple", "zebra") and raw.split is None
    np.testing.assert_array_equal(raw.labels, [0, 0, 1])  # apple/b.PNG, apple/deeper/c.png, zebra/a.png
    for image, relative in zip(raw.read(np.array([2, 0, 1])), ["zebra/a.png", "apple/b.PNG", "apple/deeper/c.png"]):
        np.testing.assert_array_equal(image, images[relative])


def test_folder_zip_path_without_sub_folders_is_unlabelled(tmp_path: Path) -> None:
    archive = tmp_path / "flat.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for name in ("b.png", "a.png", "notes.txt", "__MACOSX/._a.png"):
            bundle.writestr(name, png_bytes(np.full((4, 4), len(name), np.uint8)) if name != "notes.txt" else b"x")
    config = DatasetConfig(source="folder", path=str(archive), min_side=1)
    fetch("flat", config, tmp_path / "raw", tmp_path / "downloads")
    raw = open_raw(config, tmp_path / "raw", seed=0)
    assert len(raw) == 2 and raw.class_names == () and set(raw.labels) == {-1}


@needs_faces
def test_folder_of_real_faces(tmp_path: Path) -> None:
    config = DatasetConfig(source="folder", path=str(UTRECHT), channels=3)
    fetch("utrecht", config, tmp_path / "raw", tmp_path / "downloads")
    raw = open_raw(config, tmp_path / "raw", seed=0)
    assert len(raw) == 122 and raw.class_names == () and set(raw.labels) == {-1}
    for start in range(0, len(raw), 50):  # in chunks, as prepare reads
        assert {image.shape for image in raw.read(np.arange(start, min(start + 50, len(raw))))} == {(128, 128, 3)}


def test_missing_and_empty_folders_are_reported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        fetch(
            "gone",
            DatasetConfig(source="folder", path=str(tmp_path / "gone")),
            tmp_path / "raw",
            tmp_path / "downloads",
        )
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images"):
        fetch(
            "empty",
            DatasetConfig(source="folder", path=str(tmp_path / "empty")),
            tmp_path / "raw",
            tmp_path / "downloads",
        )


def test_a_failed_fetch_keeps_the_previous_raw_folder_and_leaves_no_partial_one(tmp_path, monkeypatch):
    config = DatasetConfig(source="digits")
    fetch("digits", config, tmp_path / "raw", tmp_path / "downloads")
    before = (tmp_path / "raw" / "images.npz").read_bytes()

    def dies(name, config, raw_dir, cache_dir):
        (raw_dir / "images.npz").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setitem(sources.SOURCES, "digits", Source(fetch=dies, open=sources.SOURCES["digits"].open))
    with pytest.raises(KeyboardInterrupt):
        fetch("digits", config, tmp_path / "raw", tmp_path / "downloads")
    assert (tmp_path / "raw" / "images.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".raw.lock", "raw"]  # no staging folder left behind
