"""derive@<name>'s work: a dataset a trained experiment makes, here its reconstructions of its own dataset.

The seed GAN-AE's sequential pipeline filters the training images through a VAE before a GAN learns from them.
A derived dataset holds, per split, the experiment's reconstruction of every image of its dataset with the
image's label, in the prepared layout any experiment reads; the test split also keeps the real test images as
`reference`, which an FCD is computed against (`pipeline.evaluation.evaluate`), so a GAN trained on filtered
digits is judged by how close it comes to real ones. The source's classifier is copied beside it, unchanged,
so an experiment on a derived dataset has the same stage dependencies as one on a prepared dataset.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from pipeline.config import Params
from pipeline.data.store import PreparedWriter, load_split, read_manifest
from pipeline.device import resolve_device
from pipeline.errors import DataError
from pipeline.experiment import load_trained, resolve
from pipeline.files import staged_dir
from pipeline.images import to_numpy, to_uint8

CHUNK = 256  # images reconstructed at a time


@torch.no_grad()
def derive_dataset(
    params: Params, name: str, *, source_dir: Path, model_dir: Path, out_dir: Path, classifier_dirs: tuple[Path, Path]
) -> dict:
    """Write data/prepared/<name>/ from the experiment's model and its dataset's prepared folder, and copy the
    source's classifier folder (`classifier_dirs`: from, to); returns the manifest."""
    made = params.derived[name]
    experiment = resolve(params, made.experiment)  # `pipeline.config` has checked that its task reconstructs
    if not classifier_dirs[0].is_dir():  # before any work: the copy must not fail after the data is published
        raise DataError(f"{classifier_dirs[0]} is missing; run `dvc repro classify@{made.dataset}` first")
    device = resolve_device(params.base.device)
    task, generator = experiment.task, torch.Generator(device).manual_seed(params.base.seed)
    model, run = load_trained(model_dir, device)
    source = read_manifest(source_dir)
    with staged_dir(out_dir) as staging, staged_dir(classifier_dirs[1]) as copied:  # published together
        shutil.copytree(classifier_dirs[0], copied, dirs_exist_ok=True)
        writer = PreparedWriter(staging)
        for split in ("train", "test"):
            arrays = load_split(source_dir, split)
            images, labels = arrays["images"], arrays["labels"]
            writer.allocate(split, "images", images.shape, np.uint8)
            writer.write_whole(split, "labels", labels)
            for start in range(0, len(images), CHUNK):
                chunk = {
                    key: torch.from_numpy(np.array(value[start : start + CHUNK])).to(device)
                    for key, value in (("images", images), ("labels", labels))
                }
                batch = task.batch(chunk, torch.arange(len(chunk["labels"]), device=device), generator)
                writer.write(split, "images", start, to_uint8(to_numpy(task.predict(model, batch).float())))
        real = arrays.get("reference", arrays["images"])  # a dataset derived from a derived one keeps the real images
        writer.write_whole("test", "reference", real)
        manifest = writer.finish(
            {
                **{key: source[key] for key in ("image_size", "channels", "seed", "counts", "class_names")},
                "dataset": name,
                "source": "reconstructions",
                "experiment": made.experiment,
                "run_id": run["run_id"],  # the MLflow run of the model that made them
                "from": made.dataset,
                "views": [],
                "forward": {},
            }
        )
    return manifest
