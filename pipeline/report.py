"""report@<study>: the study's side-by-side table from its experiments' metrics files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Params
from pipeline.errors import DataError


def study_table(params: Params, study: str, metrics_dir: Path) -> pd.DataFrame:
    """One row per experiment of `study`: model, dataset, task and every summary metric it has.

    Where an experiment has an FCD, two rows of real images follow for its dataset: the test split's two
    halves against each other (the floor; biased upwards by its small samples) and as many
    training images as a model draws samples against the test split (the same sample sizes as a generator's FCD).
    """
    rows = []
    for name, experiment in params.experiments.items():
        if experiment.study != study:
            continue
        path = metrics_dir / study / f"{name}.json"
        if not path.exists():
            raise DataError(f"{path} is missing; run `dvc repro evaluate@{name}` first")
        scores = json.loads(path.read_text())
        rows.append(
            {"experiment": name, "model": experiment.model.name, "dataset": experiment.dataset,
             "task": experiment.task.name, "latent_dim": experiment.model.args.get("latent_dim", ""), **scores}
        )  # fmt: skip
    for dataset in dict.fromkeys(row["dataset"] for row in rows if "fcd" in row):
        path = metrics_dir / "classifiers" / f"{dataset}.json"
        if not path.exists():
            raise DataError(f"{path} is missing; run `dvc repro classify@{dataset}` first")
        floors = json.loads(path.read_text())
        common = {"model": "real images", "dataset": dataset, "task": "", "latent_dim": ""}
        rows.append({"experiment": "test half vs test half", **common, "fcd": floors["fcd_test_halves"]})
        rows.append({"experiment": "train vs test", **common, "fcd": floors["fcd_train"],
                     "fcd_samples": floors["train_images_for_fcd_train"]})  # fmt: skip
    return pd.DataFrame(rows)


def comparisons(params: Params, study: str, metrics_dir: Path) -> dict[str, tuple[list[str], list[np.ndarray]]]:
    """The study's experiments side by side, one figure per dataset and task, from the previews evaluate wrote.

    Models that map images to images share their inputs (the first test images), so their figure's rows are
    the input, each model's output and the truth; generators' rows are their first samples from the same
    noise. Returns {"<dataset>_<task>": (row names, rows of (N, H, W, C) floats in [0, 1])}.
    """
    groups: dict[str, list[str]] = {}
    for name, experiment in params.experiments.items():
        if experiment.study == study:
            groups.setdefault(f"{experiment.dataset}_{experiment.task.name}", []).append(name)
    figures = {}
    for key, names in groups.items():
        previews = {}
        for name in names:
            path = metrics_dir / study / f"{name}.npz"
            if not path.exists():
                raise DataError(f"{path} is missing; run `dvc repro evaluate@{name}` first")
            with np.load(path) as arrays:
                previews[name] = {part: arrays[part].astype(np.float32) / 255.0 for part in arrays.files}
        if "samples" in previews[names[0]]:
            figures[key] = (names, [previews[name]["samples"] for name in names])
        else:
            first = previews[names[0]]
            rows = [first["input"], *(previews[name]["output"] for name in names), first["truth"]]
            figures[key] = (["input", *names, "truth"], rows)
    return figures


def log_table(params: Params, study: str, paths: list[Path]) -> str:
    """Attach the study's table files to a run named `<study> table` in the study's MLflow experiment."""
    from pipeline import tracking

    uri = tracking.resolve_uri(params.tracking.uri)
    run = tracking.start_run(uri, experiment=study, name=f"{study} table", tags={"dvc.stage": f"report@{study}"})
    for path in paths:
        run.log_artifact(path, "table")
    run.finish()
    return run.run_id


def to_markdown(table: pd.DataFrame, title: str, figures: dict[str, list[str]] | None = None) -> str:
    """The table for reading: each score as "mean ± std", then FCD and train time where present;
    per-component and spread columns stay in the CSV. `figures` (file name -> row names) are listed below it."""
    shown = table[["experiment", "model", "dataset", "task", "latent_dim"]].copy()
    for column in [c for c in table.columns if c.endswith("_mean")]:
        score = column.removesuffix("_mean")
        mean, spread = table[column], table[f"{score}_std"]
        shown[score] = [f"{m:.4g} ± {s:.2g}" if pd.notna(m) else "" for m, s in zip(mean, spread)]
    if "explained_variance_total" in table:
        shown["explained variance"] = [f"{v:.3f}" if pd.notna(v) else "" for v in table["explained_variance_total"]]
    if "label_probe_accuracy" in table:  # a linear classifier reading the label off the latent; chance beside it
        shown["label probe"] = [f"{a:.3f} (chance {c:.3f})" if pd.notna(a) else ""
                                for a, c in zip(table["label_probe_accuracy"], table["label_probe_chance"])]  # fmt: skip
    if "fcd" in table:
        shown["FCD"] = [f"{v:.3g}" if pd.notna(v) else "" for v in table["fcd"]]
    if "train_seconds" in table:
        shown["train s"] = [f"{v:.1f}" if pd.notna(v) else "" for v in table["train_seconds"]]
    if "images" in table:
        shown["images"] = [f"{v:.0f}" if pd.notna(v) else "" for v in table["images"]]
    text = f"# {title}\n\n{shown.to_markdown(index=False)}\n"
    if figures:
        text += "\n## Side by side\n\n" + "".join(f"- `{file}`, rows top to bottom: {', '.join(rows)}\n" for file, rows in figures.items())
    return text
