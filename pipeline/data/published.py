"""The published datasets aegan downloads: MNIST and FashionMNIST (IDX files) and CelebA (aligned crops).

Each file is fetched from the first mirror that answers and kept only when its checksum matches the one
published with the set; `DatasetConfig.url` puts the user's own mirror first.
"""

from __future__ import annotations

import gzip
import io
import math
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from pipeline.config import DatasetConfig
from pipeline.data.decode import decode_image
from pipeline.data.download import fetch_file
from pipeline.data.raw import RawImages, Source, link
from pipeline.errors import DataError

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


def _fetch_idx(name: str, config: DatasetConfig, raw_dir: Path, cache_dir: Path) -> None:
    bases = [config.url] if config.url else MIRRORS[config.source]
    for file, checksum in CHECKSUMS[config.source].items():
        mirrors = [f"{base.rstrip('/')}/{file}" for base in bases]
        link(fetch_file(mirrors, checksum, cache_dir / config.source / file), raw_dir / file)


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
        link(fetch_file(mirrors, checksum, cache_dir / "celeba" / file), raw_dir / file)


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


IDX = Source(_fetch_idx, _open_idx)
CELEBA = Source(_fetch_celeba, _open_celeba)
