"""One image in, one image out: a trained image-to-image model applied to a file someone gives (`aegan apply`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pipeline.config import Params
from pipeline.data.decode import decode_image
from pipeline.data.prepare import derive_view
from pipeline.data.views import standardise
from pipeline.device import resolve_device
from pipeline.errors import DataError
from pipeline.experiment import load_trained, resolve
from pipeline.files import new_file
from pipeline.images import to_numpy, to_uint8
from pipeline.schema import ConfigError

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def apply_to_file(params: Params, name: str, *, model_dir: Path, image_path: Path, out_path: Path) -> np.ndarray:
    """Run experiment `name`'s trained model on one PNG/JPEG and write its output to `out_path`.

    The image goes through what prepare does to the dataset (centre square, resize to the dataset's size,
    channels, and the view the task reads: lightness for colorize, Canny edges for translate), so the
    output is the dataset's size. A restore model takes the image as the distorted one. Returns it as (S, S, C) uint8.
    """
    experiment = resolve(params, name)
    dataset = params.dataset(experiment.config.dataset)
    task = experiment.task
    if not task.reconstructs:
        raise ConfigError(f"{name} draws images from noise; apply an experiment whose task maps an image to an image")
    if out_path.suffix.lower() not in FORMATS:
        raise ConfigError(f"{out_path}: the output must end in {', '.join(FORMATS)}")
    if not image_path.is_file():
        raise DataError(f"{image_path} not found; give the path of a PNG or JPEG file")
    if out_path.is_dir():
        raise ConfigError(f"{out_path} is a folder; give --out a file name ending in {', '.join(FORMATS)}")
    if out_path.exists() and out_path.samefile(image_path):
        raise DataError(f"{out_path} is the input image; give another --out so the input stays as it is")
    # Decoded at no less than twice the dataset's size (a 36-megapixel JPEG at an eighth of it): the centre
    # square is then resized with anti-aliasing as prepare resizes, from far fewer pixels.
    pixels = decode_image(image_path, str(image_path), reduce_to=2 * dataset.image_size)
    images = standardise([pixels], dataset.image_size, dataset.channels)  # (1, S, S, C)
    views = {view: derive_view(view, images, dataset) for view in task.views if view in ("gray", "edges", "lab")}
    images = task.from_file(images, dataset.forward)  # a restore task reads the file as the distorted image
    device = resolve_device(params.base.device)
    model, _ = load_trained(model_dir, device)
    arrays = {
        key: torch.from_numpy(value).to(device)
        for key, value in {"images": images, "labels": np.array([-1]), **views}.items()
    }
    with torch.no_grad():
        output = task.predict(model, task.given(arrays, torch.arange(1, device=device)))
    result = to_uint8(to_numpy(output))[0]  # (S, S, C)
    with new_file(out_path) as partial:  # nothing half-written stays behind
        Image.fromarray(result[..., 0] if result.shape[-1] == 1 else result).save(
            partial, format=FORMATS[out_path.suffix.lower()]
        )
    return result
