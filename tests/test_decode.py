"""pipeline.data.decode, through the folder source: every image mode by its real range, and every file that cannot
be used found in one pass, named by the user's own path, listed in skipped.csv."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from pipeline.config import DatasetConfig
from pipeline.data.decode import BACKGROUND, decode_image, read_pixels
from pipeline.data.prepare import prepare_dataset
from pipeline.data.sources import fetch, open_raw
from pipeline.errors import DataError

RNG = np.random.default_rng(5)
RAMP16 = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64  # 0 … 65472: a 16-bit ramp over its whole range


def save(image: Image.Image, path: Path, **options) -> None:
    image.save(path, **options)


def mixed_folder(folder: Path) -> dict[str, str]:
    """Good images of every mode beside files that cannot be used; returns the refused ones' expected reasons."""
    folder.mkdir()
    rgb = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    save(Image.fromarray(rgb), folder / "rgb.png")
    save(Image.fromarray(rgb[..., 0]), folder / "gray.png")
    save(Image.fromarray(RAMP16), folder / "deep16.png")  # mode I;16
    tifffile.imwrite(folder / "rgb48.tif", np.stack([RAMP16, RAMP16 // 2, 65535 - RAMP16], -1))  # 48-bit RGB
    tifffile.imwrite(folder / "unit_float.tif", RAMP16.astype(np.float32) / 65535)  # mode F, in [0, 1]
    rgba = np.dstack([rgb, np.where(np.arange(32)[None, :] < 16, 0, 255).repeat(32, 0).astype(np.uint8)])
    save(Image.fromarray(rgba, "RGBA"), folder / "alpha.png")  # left half fully transparent
    save(Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), folder / "palette.png")
    save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), folder / "cmyk.jpg", quality=95)  # pure red in ink
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    save(Image.fromarray(rgb[:, :24]), folder / "portrait.jpg", exif=exif, quality=95)  # stored 24 wide, shown 32
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")
    (folder / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("these are notes, not pixels")
    save(Image.fromarray(rgb[:7].repeat(4, 1)[:, :128]), folder / "sliver.png")  # 128 × 7
    save(Image.fromarray(rgb[:8, :8]), folder / "tiny.png")
    tifffile.imwrite(folder / "hdr.tif", RAMP16.astype(np.float32) / 1000)  # floats up to 65: range unknown
    return {
        "truncated.png": "cannot be decoded",
        "empty.jpg": "not an image Pillow can read",
        "notes.png": "not an image Pillow can read",
        "sliver.png": "128×7: a side below min_side 16",
        "tiny.png": "8×8: a side below min_side 16",
        "hdr.tif": "floating-point pixels outside [0, 1]",
    }


def test_a_mixed_folder_is_screened_in_one_pass_and_every_mode_keeps_its_range(tmp_path: Path) -> None:
    refused = mixed_folder(tmp_path / "mine")
    config = DatasetConfig(source="folder", path=str(tmp_path / "mine"), channels=3, image_size=16)
    fetch("mine", config, tmp_path / "raw", tmp_path / "downloads")
    manifest = prepare_dataset("mine", config, tmp_path / "raw", tmp_path / "prepared", seed=0)
    with (tmp_path / "prepared" / "skipped.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert manifest["skipped"] == len(rows) == len(refused)
    for row in rows:
        name = Path(row["path"]).name
        assert row["path"] == str(tmp_path / "mine" / name)  # the user's file, not our copy of it
        assert row["reason"].startswith(refused[name]), row
    kept = sorted(path.name for path in (tmp_path / "raw").iterdir() if not path.name.startswith("."))
    assert kept == [
        "alpha.png",
        "cmyk.jpg",
        "deep16.png",
        "gray.png",
        "palette.png",
        "portrait.jpg",
        "rgb.png",
        "rgb48.tif",
        "unit_float.tif",
    ]
    assert manifest["counts"]["train"] + manifest["counts"]["test"] == len(kept)

    raw = open_raw(config, tmp_path / "raw", seed=0)
    pixels = dict(zip(kept, raw.read(np.arange(len(raw)))))
    expected16 = np.rint(RAMP16 / 257).astype(np.uint8)  # 65535 -> 255: never clipped
    np.testing.assert_array_equal(pixels["deep16.png"], expected16)
    assert len(np.unique(pixels["deep16.png"])) > 200  # Pillow's own I;16 -> L would leave 98% at 255
    assert np.abs(pixels["rgb48.tif"][..., 0].astype(int) - expected16).max() <= 1  # Pillow keeps the high byte
    np.testing.assert_array_equal(pixels["unit_float.tif"], np.rint(RAMP16.astype(np.float32) / 65535 * 255))
    assert (pixels["alpha.png"][:, :16] == BACKGROUND).all()  # transparent: composited on white
    np.testing.assert_array_equal(
        pixels["alpha.png"][:, 16:], np.asarray(Image.open(tmp_path / "mine/rgb.png"))[:, 16:]
    )
    assert (
        pixels["palette.png"].shape == (32, 32, 3)
        and len(np.unique(pixels["palette.png"].reshape(-1, 3), axis=0)) <= 16
    )
    red = pixels["cmyk.jpg"].reshape(-1, 3).mean(0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60, red
    assert pixels["portrait.jpg"].shape == (24, 32, 3)  # turned as the EXIF tag says


def test_on_bad_image_fail_stops_the_download_naming_the_files(tmp_path: Path) -> None:
    mixed_folder(tmp_path / "mine")
    config = DatasetConfig(source="folder", path=str(tmp_path / "mine"), on_bad_image="fail")
    with pytest.raises(
        DataError,
        match=r"^datasets.mine: 6 images cannot be used \(.*empty.jpg: not an image .*; "
        r"fix or remove them, or set datasets.mine.on_bad_image: skip",
    ):
        fetch("mine", config, tmp_path / "raw", tmp_path / "downloads")
    assert not (tmp_path / "raw").exists()


def test_a_folder_with_nothing_usable_says_so(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.png").write_text("no")
    with pytest.raises(
        DataError, match=r"datasets.mine: none of the 1 images can be used \(first: .*a.png: not an image"
    ):
        fetch(
            "mine",
            DatasetConfig(source="folder", path=str(tmp_path / "mine")),
            tmp_path / "raw",
            tmp_path / "downloads",
        )


def test_a_decompression_bomb_is_refused_in_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 9_000)).save(bomb)  # 90 megapixels of one colour: a few kilobytes on disk
    assert bomb.stat().st_size < 100_000
    with pytest.raises(
        DataError,
        match=r"^cannot use image .*bomb.png \(more than 89,478,485 pixels: refused as a "
        r"possible decompression bomb\); remove or replace it",
    ):
        decode_image(bomb, str(bomb))


def test_a_large_jpeg_is_reduced_while_decoding_to_no_less_than_asked(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    Image.fromarray(RNG.integers(0, 256, (600, 800, 3), dtype=np.uint8)).save(photo)
    assert read_pixels(photo).shape == (600, 800, 3)
    reduced = read_pixels(photo, reduce_to=64)
    assert 64 <= min(reduced.shape[:2]) < 128 and reduced.shape[2] == 3
    png = tmp_path / "photo.png"
    Image.open(photo).save(png)
    assert 64 <= min(read_pixels(png, reduce_to=64).shape[:2]) < 128  # not a JPEG: Pillow's box reduce after decoding


@pytest.mark.parametrize("mode", ["P", "1", "I;16", "L"])
def test_every_mode_can_be_reduced_while_decoding(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "big.png"
    image = Image.fromarray(RNG.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    (image.convert(mode) if mode != "I;16" else Image.fromarray(np.tile(RAMP16, (8, 8)))).save(path)
    reduced = read_pixels(path, reduce_to=50)
    assert 50 <= min(reduced.shape[:2]) < 100 and reduced.dtype == np.uint8


def test_a_transparent_colour_key_is_composited_on_white_too(tmp_path: Path) -> None:
    gray = np.full((20, 20), 90, np.uint8)
    gray[:5] = 0
    Image.fromarray(gray).save(tmp_path / "keyed.png", transparency=0)  # a tRNS chunk, no alpha channel
    pixels = read_pixels(tmp_path / "keyed.png")
    assert (pixels[:5] == BACKGROUND).all() and (pixels[5:] == 90).all()
