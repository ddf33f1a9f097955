"""The dataset registry: how each source fills data/raw/<name>/ and how prepare reads it back.

Embedded sources (digits, lfw_faces, photos) come from the scikit-learn and scikit-image wheels and need no network.
Downloaded sources go through data/downloads/ (outside DVC) so that a verified file is fetched once and a file put
there by hand is used as is.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from pipeline.config import DatasetConfig
from pipeline.data import published
from pipeline.data.decode import decode_image, read_refused, screen, write_refused
from pipeline.data.download import extract, fetch_file
from pipeline.data.raw import RawImages, Source
from pipeline.errors import DataError
from pipeline.files import staged_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
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

    names = tuple(file.relative_to(root).as_posix() for file in files)
    return RawImages(labels, class_names, None, read, tuple(read_refused(raw_dir / REFUSED)), names)


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


SOURCES: dict[str, Source] = {
    "digits": Source(_fetch_digits, _open_arrays),
    "lfw_faces": Source(_fetch_lfw_faces, _open_arrays),
    "photos": Source(_fetch_photos, _open_photos),
    "mnist": published.IDX,
    "fashion_mnist": published.IDX,
    "celeba": published.CELEBA,
    "folder": Source(_fetch_folder, _open_folder),
}
