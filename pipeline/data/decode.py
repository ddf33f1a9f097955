"""Image files -> uint8 pixels by each format's real range, or the reason a file cannot be used.

Pillow's own `convert("L")` clips 16-bit grey to 255 and drops alpha onto black; here every mode is mapped by
the range its values have: 16-bit grey by 65535 -> 255, float by [0, 1] -> [0, 255], palette through its
colours, CMYK and YCbCr to RGB, transparency composited on white (`BACKGROUND`), EXIF orientation applied.
48-bit RGB is reduced to 8 bits per channel by Pillow itself as it decodes (its high byte: the same range).
Integer and float pixels whose range cannot be known (beyond 0…65535, or outside [0, 1]) are refused.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps

from pipeline.errors import DataError

BACKGROUND = 255  # what transparent pixels become: white, as an image viewer shows them on a page
MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's decompression-bomb threshold (about 89 megapixels)
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
_ALPHA = {"LA", "La", "PA", "RGBA", "RGBa"}


class BadImage(DataError):
    """A file that cannot be used as an image; the message is the reason alone."""


def read_pixels(file: Path | IO[bytes], reduce_to: int | None = None) -> np.ndarray:
    """uint8 (H, W) for grey images, (H, W, 3) for everything else; a BadImage saying why not.

    Args:
        file: a path or an open binary file.
        reduce_to: the smallest side the caller needs; larger images are reduced while decoding (a JPEG's DCT
            scaling, else Pillow's box `reduce`) to no less than that, which is what makes a 36-megapixel photo
            cheap to turn into a small input.
    """
    with _opened(file) as image:
        if reduce_to and image.format == "JPEG":
            image.draft(image.mode, (reduce_to, reduce_to))  # a power-of-two reduction keeping both sides >= reduce_to
        image = ImageOps.exif_transpose(image)  # decodes; portrait photos stand up
        pixels = _to_uint8(image)
        if reduce_to and (factor := min(pixels.shape[:2]) // reduce_to) >= 2:  # on 8 bits: `reduce` takes no palette
            pixels = np.asarray(Image.fromarray(pixels).reduce(factor))
        return pixels


def decode_image(file: Path | IO[bytes], name: str, reduce_to: int | None = None) -> np.ndarray:
    """`read_pixels`, with a failure as a DataError naming the file (`name`) and what to do."""
    try:
        return read_pixels(file, reduce_to)
    except BadImage as error:
        raise DataError(f"cannot use image {name} ({error}); remove or replace it, then rerun") from None


def shape_of(file: Path) -> tuple[int, int]:
    """Width and height as displayed (EXIF orientation applied), from the header only."""
    with _opened(file) as image:
        width, height = image.size
        if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # orientations that swap the sides
            width, height = height, width
        return width, height


def screen(files: list[tuple[Path, str]], min_side: int, max_aspect: float) -> tuple[list[Path], list[tuple[str, str]]]:
    """Decode every file once and sort the usable from the rest, in one pass.

    Args:
        files: (path to read, name to report: the user's own path or `<archive>:<member>`).
        min_side: shorter sides below this are refused (they would be enlarged into blur).
        max_aspect: long side / short side above this is refused (the centre crop would keep a sliver of it).

    Returns:
        The usable paths, and (name, reason) for each refused file.
    """
    usable, refused = [], []
    for path, name in files:
        try:
            width, height = shape_of(path)
            short, long = sorted((width, height))
            if short < min_side:
                raise BadImage(f"{width}×{height}: a side below min_side {min_side}")
            if long / short > max_aspect:
                raise BadImage(f"{width}×{height}: aspect ratio {long / short:.1f} above max_aspect {max_aspect:g}")
            read_pixels(path)  # a truncated file only shows itself when decoded
        except BadImage as error:
            refused.append((name, str(error)))
        else:
            usable.append(path)
    return usable, refused


def write_refused(path: Path, refused: list[tuple[str, str]]) -> None:
    """The refused files as CSV (path, reason), header included when none were."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows(refused)
    path.write_text(buffer.getvalue())


def read_refused(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        return []
    rows = list(csv.reader(io.StringIO(path.read_text())))
    return [(row[0], row[1]) for row in rows[1:]]


@contextmanager
def _opened(file: Path | IO[bytes]) -> Iterator[Image.Image]:
    """`Image.open` whose failures while open, decompression bombs included, are a BadImage with the reason."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # past MAX_PIXELS: refuse, not warn
        try:
            with Image.open(file) as image:
                yield image
        except _DECODE_ERRORS as error:
            raise _reason(error) from None


_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


def _reason(error: BaseException) -> BadImage:
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return BadImage(f"more than {MAX_PIXELS:,} pixels: refused as a possible decompression bomb")
    if isinstance(error, Image.UnidentifiedImageError) or (isinstance(error, OSError) and "identify" in str(error)):
        return BadImage("not an image Pillow can read")
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return BadImage(f"cannot be decoded: {text}")


def _to_uint8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in _SIXTEEN_BIT or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise BadImage(
                f"32-bit integer pixels from {values.min()} to {values.max()}: their range is unknown; "
                "save it as 8- or 16-bit"
            )
        return np.rint(values / 257.0).astype(np.uint8)  # 65535 -> 255
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if values.size and not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
            raise BadImage("floating-point pixels outside [0, 1]: their range is unknown; save it as 8- or 16-bit")
        return np.rint(values * 255.0).astype(np.uint8)
    if "transparency" in image.info and mode in ("P", "L", "RGB"):  # a tRNS colour: transparent like alpha 0
        image = image.convert("LA" if mode == "L" else "RGBA")
    elif mode == "P":
        image = image.convert("RGB")
    elif mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    if image.mode in _ALPHA:
        grey = image.mode in ("LA", "La")
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:] / 255.0
        composited = np.rint(rgba[..., :3] * alpha + BACKGROUND * (1.0 - alpha)).astype(np.uint8)  # (H, W, 3)
        return composited[..., 0] if grey else composited
    return np.asarray(image.convert("RGB"))
