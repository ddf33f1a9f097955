"""The dataset registry: how each source fills data/raw/<name>/ and how prepare reads it back.

Embedded sources (digits, lfw_faces, photos) come from the scikit-learn and scikit-image wheels and need no network.
Downloaded sources go through data/downloads/ (outside DVC) so that a verified file is fetched once and a file put
there by hand is used as is.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from pipeline.config import DatasetConfig
from pipeline.data.decode import decode_image, read_refused, screen, write_refused
from pipeline.data.download import extract, fetch_file
from pipeline.errors import DataError
from pipeline.files import staged_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
IDX_FILES = tuple(f"{part}-{kind}-ubyte.gz" for part in ("train", "t10k") for kind in ("images-idx3", "labels-idx1"))
CELEBA_ZIP = "img_align_celeba.zip"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_CROP = 108  # centre crop the seeds took before resizing to 64
_DRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="

# Mirrors are base URLs for IDX sets and full URLs for CelebA; `DatasetConfig.url` replaces the first kind of list.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    CELEBA_ZIP: (_DRIVE + "0B7EVK8r0v71pZjFTYXZWM3FlRnM", _DRIVE + "1zmsC4yvw-e089uHXj5EdP0BSZ0AlDQRR"),
    CELEBA_PARTITION: (_DRIVE + "0B7EVK8r0v71pY0NSMzRuSXJEVkk", _DRIVE + "1ih_VMokoI774ErNWrb26lDeWlanUBpnX"),
}
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": dict(
        zip(
            IDX_FILES,
            (
                "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "md5:d53e105ee54ea40749a09fcbcd1e9432",
                "md5:9fb629c4189551a2d022fa330f9573f3",
                "md5:ec29112dd5afa0611ce80d1b7f02629c",
            ),
        )
    ),
    "fashion_mnist": dict(
        zip(
            IDX_FILES,
            (
                "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "md5:25c81989df183df01b3e8a0aad5dffbe",
                "md5:bef4ecab320f06d8554ea6380940ec79",
                "md5:bb300cfdad3c16e7a12a480ee83cd310",
            ),
        )
    ),
    "celeba": {
        CELEBA_ZIP: "md5:00d2c5bc6d35e252742224ab0c1e8fcb",
        CELEBA_PARTITION: "md5:d32c9cbf5e040fd4025c592c306e6668",
    },
}
# Colour photographs shipped inside the scikit-image wheel, by name.
PHOTOS = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "immunohistochemistry": "ihc.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "retina": "retina.jpg",
    "motorcycle_left": "motorcycle_left.png",
    "color": "color.png",
}
REFUSED = ".skipped.csv"  # in data/raw/<name>/: the folder files the download refused (hidden: not an image, no class)


@dataclass(frozen=True)
class RawImages:
    """A source's images as prepare sees them: labels and split up front, pixels on demand."""

    labels: np.ndarray  # (N,) int64, -1 where the source has no labels
    class_names: tuple[str, ...]  # label i -> name; () when unlabelled
    split: np.ndarray | None  # (N,) bool, True = test, for official splits; None -> prepare draws a seeded split
    read: Callable[[np.ndarray], list[np.ndarray]]  # indices -> uint8 HxW or HxWx3 images, in the order given
    refused: tuple[tuple[str, str], ...] = ()  # (the user's path, reason) of each file left out

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Source:
    """How one kind of source reaches raw_dir (`fetch`) and is read back from it (`open`)."""

    fetch: Callable[[str, DatasetConfig, Path, Path], None]
    open: Callable[[DatasetConfig, Path, int], RawImages]


def fetch(name: str, config: DatasetConfig, raw_dir: Path, cache_dir: Path) -> None:
    """DVC stage download@<name>: fill raw_dir, created fresh, with the source's raw files.

    Args:
        name: the dataset's key in params.yaml (names the download cache of folder archives and messages).
        config: the dataset's settings.
        raw_dir: data/raw/<name>/, replaced only once the source is complete.
        cache_dir: data/downloads/, persistent; verified files there are reused.

    Raises:
        DataError: when the source cannot be fetched or verified.
    """
    with staged_dir(raw_dir) as staging:  # an interrupted download leaves no half-filled raw_dir
        SOURCES[config.source].fetch(name, config, staging, cache_dir)


def open_raw(config: DatasetConfig, raw_dir: Path, seed: int) -> RawImages:
    """What the prepare stage reads from raw_dir.

    Args:
        config: the dataset's settings.
        raw_dir: a directory filled by `fetch`.
        seed: drives the sources that draw at random (photo crops).

    Raises:
        DataError: when raw_dir holds no usable images.
    """
    return SOURCES[config.source].open(config, raw_dir, seed)


def _fetch_digits(name: str, config: DatasetConfig, raw_dir: Path, cache_dir: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)  # scikit-learn stores 0..16
    np.savez(raw_dir / "images.npz", images=images, labels=digits.target, class_names=digits.target_names.astype(str))


def _fetch_lfw_faces(name: str, config: DatasetConfig, raw_dir: Path, cache_dir: Path) -> None:
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]  # the last 100 of the 200 are non-face patches
    images = np.round(faces * 255).astype(np.uint8)
    np.savez(raw_dir / "images.npz", images=images, labels=np.full(len(images), -1), class_names=np.array([], str))


def _open_arrays(config: DatasetConfig, raw_dir: Path, seed: int) -> RawImages:
    with np.load(raw_dir / "images.npz") as saved:
        images, labels, names = saved["images"], saved["labels"].astype(np.int64), saved["class_names"]
    return RawImages(labels, tuple(str(n) for n in names), None, lambda indices: list(images[np.asarray(indices, int)]))


def _fetch_photos(name: str, config: DatasetConfig, raw_dir: Path, cache_dir: Path) -> None:
    import skimage.data

    bundled = Path(skimage.data.__file__).parent
    for photo, file in PHOTOS.items():
        with Image.open(bundled / file) as image:
            image.convert("RGB").save(raw_dir / f"{photo}.png")


def _open_photos(config: DatasetConfig, raw_dir: Path, seed: int) -> RawImages:
    files = sorted(raw_dir.glob("*.png"))
    if not files:
        raise DataError(f"no photographs in {raw_dir}; rerun the download stage")
    rng = np.random.default_rng(seed)
    labels = rng.integers(len(files), size=config.count)
    crops = [_random_square(rng, _shape(files[label]), config.image_size) for label in labels]

    @functools.cache  # a few photographs, decoded once each rather than once per chunk
    def photo(label: int) -> np.ndarray:
        return decode_image(files[label], files[label].name)

    def read(indices: np.ndarray) -> list[np.ndarray]:
        return [photo(labels[i])[crops[i]].copy() for i in indices]

    return RawImages(labels.astype(np.int64), tuple(f.stem for f in files), None, read)


def _shape(file: Path) -> tuple[int, int]:
    with Image.open(file) as image:  # reads the header only
        return image.height, image.width


def _random_square(rng: np.random.Generator, shape: tuple[int, int], least: int) -> tuple[slice, slice]:
    """A uniformly placed square whose side is uniform between `least` and half the shorter side of `shape`."""
    shorter = min(shape)
    low = min(least, shorter)
    side = int(rng.integers(low, max(low, shorter // 2) + 1))
    top, left = (int(rng.integers(extent - side + 1)) for extent in shape)
    return slice(top, top + side), slice(left, left + side)


def _fetch_idx(name: str, config: DatasetConfig, raw_dir: Path, cache_dir: Path) -> None:
    bases = [config.url] if config.url else MIRRORS[config.source]
    for file, checksum in CHECKSUMS[config.source].items():
        mirrors = [f"{base.rstrip('/')}/{file}" for base in bases]
        _link(fetch_file(mirrors, checksum, cache_dir / config.source / file), raw_dir / file)


def _open_idx(config: DatasetConfig, raw_dir: Path, seed: int) -> RawImages:
    (train_images, train_labels), (test_images, test_labels) = (_read_idx_pair(raw_dir, p) for p in ("train", "t10k"))
    images = np.concatenate([train_images, test_images])
    labels = np.concatenate([train_labels, test_labels]).astype(np.int64)
    split = np.arange(len(labels)) >= len(train_labels)
    return RawImages(labels, tuple(map(str, range(10))), split, lambda indices: list(images[np.asarray(indices, int)]))


def _read_idx_pair(raw_dir: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    images_file, labels_file = raw_dir / f"{part}-images-idx3-ubyte.gz", raw_dir / f"{part}-labels-idx1-ubyte.gz"
    images, labels = _read_idx(images_file, 2051), _read_idx(labels_file, 2049)
    if len(images) != len(labels):
        raise DataError(
            f"{images_file} holds {len(images)} images but {labels_file.name} holds {len(labels)} labels; "
            "delete both here and in the download cache, then fetch again"
        )
    return images, labels


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse a gzipped IDX file: big-endian magic number, one 32-bit size per dimension, then unsigned bytes."""
    try:
        with gzip.open(path) as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a readable gzip file ({error}); delete it and fetch it again") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise DataError(f"{path} is not an IDX file with magic number {magic}; delete it and fetch it again")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(data) - header != math.prod(dims):
        shape = "x".join(map(str, dims))
        raise DataError(
            f"{path} is malformed: its header promises {shape} bytes but {len(data) - header} follow; "
            "delete it and fetch it again"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _fetch_celeba(name: str, config: DatasetConfig, raw_dir: Path, cache_dir: Path) -> None:
    for file, checksum in CHECKSUMS["celeba"].items():
        mirrors = [config.url] if config.url and file == CELEBA_ZIP else MIRRORS[file]
        _link(fetch_file(mirrors, checksum, cache_dir / "celeba" / file), raw_dir / file)


def _open_celeba(config: DatasetConfig, raw_dir: Path, seed: int) -> RawImages:
    lines = [line.split() for line in (raw_dir / CELEBA_PARTITION).read_text().splitlines() if line.strip()]
    names = [fields[0] for fields in lines]
    try:
        # Opened once: the zip index is read here, the images only when asked for, so memory stays flat.
        archive = zipfile.ZipFile(raw_dir / CELEBA_ZIP)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"cannot open {raw_dir / CELEBA_ZIP} ({error}); delete it and fetch it again") from None
    members = {PurePosixPath(member).name: member for member in archive.namelist()}
    missing = [name for name in names if name not in members]
    if missing:
        raise DataError(
            f"{CELEBA_ZIP} lacks {len(missing)} images listed in {CELEBA_PARTITION} (first: {missing[0]}); "
            "delete it from the download cache and fetch it again"
        )

    def read(indices: np.ndarray) -> list[np.ndarray]:
        return [
            _centre_crop(decode_image(io.BytesIO(archive.read(members[names[i]])), f"{CELEBA_ZIP}:{names[i]}"))
            for i in indices
        ]

    split = np.array([fields[1] == "2" for fields in lines], bool)
    return RawImages(np.full(len(names), -1, np.int64), (), split, read)


def _centre_crop(image: np.ndarray) -> np.ndarray:
    top, left = ((extent - CELEBA_CROP) // 2 for extent in image.shape[:2])
    return image[top : top + CELEBA_CROP, left : left + CELEBA_CROP]


def _fetch_folder(name: str, config: DatasetConfig, raw_dir: Path, cache_dir: Path) -> None:
    """Copy or unpack the user's images into raw_dir, decoding each once: the files that cannot be used (unreadable,
    too small, too narrow) are named by the user's own path in raw_dir/.skipped.csv, not copied."""
    where = f"datasets.{name}"
    if config.url or (config.path and Path(config.path).is_file()):
        archive = (
            fetch_file(
                config.url,
                config.checksum or "",
                cache_dir / "folder" / name / (PurePosixPath(config.url.split("?")[0]).name or "archive"),
            )
            if config.url
            else Path(config.path)
        )
        extract(archive, raw_dir)
        files = [
            (file, f"{config.url or archive}:{file.relative_to(raw_dir).as_posix()}")
            for file in _image_files(raw_dir, where)
        ]
        usable, refused = screen(files, config.min_side, config.max_aspect)
        for file in set(file for file, _ in files) - set(usable):
            file.unlink()
    elif config.path and Path(config.path).is_dir():
        source = Path(config.path)
        usable, refused = screen(
            [(file, str(file)) for file in _image_files(source, f"{where}.path")], config.min_side, config.max_aspect
        )
        for file in usable:
            (raw_dir / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, raw_dir / file.relative_to(source))
    else:
        raise DataError(f"{where}.path: {config.path} does not exist; give a directory or archive of images")
    if refused and config.on_bad_image == "fail":
        first = "; ".join(f"{path}: {reason}" for path, reason in refused[:2])
        raise DataError(
            f"{where}: {len(refused)} images cannot be used ({first}); fix or remove them, or set "
            f"{where}.on_bad_image: skip to leave them out"
        )
    if not usable:
        first = f" (first: {refused[0][0]}: {refused[0][1]})" if refused else ""
        raise DataError(f"{where}: none of the {len(refused)} images can be used{first}; see min_side and max_aspect")
    write_refused(raw_dir / REFUSED, refused)


def _open_folder(config: DatasetConfig, raw_dir: Path, seed: int) -> RawImages:
    root = raw_dir
    while len(entries := [e for e in root.iterdir() if _visible(e.name)]) == 1 and entries[0].is_dir():
        root = entries[0]  # archives often wrap everything in one top folder, which is no class
    files = _image_files(root, "folder")
    folders = [file.relative_to(root).parts[0] if len(file.relative_to(root).parts) > 1 else None for file in files]
    class_names = tuple(sorted(set(folders))) if None not in folders else ()
    labels = np.array([class_names.index(f) if class_names else -1 for f in folders], np.int64)

    def read(indices: np.ndarray) -> list[np.ndarray]:
        return [decode_image(files[i], str(files[i])) for i in indices]

    return RawImages(labels, class_names, None, read, tuple(read_refused(raw_dir / REFUSED)))


def _image_files(root: Path, where: str) -> list[Path]:
    files = sorted(
        (
            path
            for path in root.rglob("*")
            if path.suffix.lower() in IMAGE_SUFFIXES
            and path.is_file()
            and all(_visible(part) for part in path.relative_to(root).parts)
        ),
        key=lambda path: path.relative_to(root).as_posix(),
    )
    if not files:
        raise DataError(f"{where}: no images ({' '.join(IMAGE_SUFFIXES)}) found in {root}; add some or fix the path")
    return files


def _visible(name: str) -> bool:
    # Hidden files and macOS resource forks (__MACOSX/, ._x.jpg) look like images but are not.
    return not name.startswith((".", "__MACOSX"))


def _link(cached: Path, target: Path) -> None:
    """Put a cached download into raw_dir without doubling the disk it takes when the file system allows."""
    try:
        os.link(cached, target)
    except OSError:
        shutil.copy2(cached, target)


SOURCES: dict[str, Source] = {
    "digits": Source(_fetch_digits, _open_arrays),
    "lfw_faces": Source(_fetch_lfw_faces, _open_arrays),
    "photos": Source(_fetch_photos, _open_photos),
    "mnist": Source(_fetch_idx, _open_idx),
    "fashion_mnist": Source(_fetch_idx, _open_idx),
    "celeba": Source(_fetch_celeba, _open_celeba),
    "folder": Source(_fetch_folder, _open_folder),
}
