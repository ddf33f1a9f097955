"""report@<study>: the study's side-by-side table from its experiments' metrics files."""

from __future__ import annotations

import json
from pathlib import Path

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


def log_table(params: Params, study: str, paths: list[Path]) -> str:
    """Attach the study's table files to a run named `<study> table` in the study's MLflow experiment."""
    from pipeline import tracking

    uri = tracking.resolve_uri(params.tracking.uri)
    run = tracking.start_run(uri, experiment=study, name=f"{study} table", tags={"dvc.stage": f"report@{study}"})
    for path in paths:
        run.log_artifact(path, "table")
    run.finish()
    return run.run_id


def to_markdown(table: pd.DataFrame, title: str) -> str:
    """The table for reading: each score as "mean ± std", then FCD and train time where present;
    per-component and spread columns stay in the CSV."""
    shown = table[["experiment", "model", "dataset", "task", "latent_dim"]].copy()
    for column in [c for c in table.columns if c.endswith("_mean")]:
        score = column.removesuffix("_mean")
        mean, spread = table[column], table[f"{score}_std"]
        shown[score] = [f"{m:.4g} ± {s:.2g}" if pd.notna(m) else "" for m, s in zip(mean, spread)]
    if "explained_variance_total" in table:
        shown["explained variance"] = [f"{v:.3f}" if pd.notna(v) else "" for v in table["explained_variance_total"]]
    if "fcd" in table:
        shown["FCD"] = [f"{v:.3g}" if pd.notna(v) else "" for v in table["fcd"]]
    if "train_seconds" in table:
        shown["train s"] = [f"{v:.1f}" if pd.notna(v) else "" for v in table["train_seconds"]]
    if "images" in table:
        shown["images"] = [f"{v:.0f}" if pd.notna(v) else "" for v in table["images"]]
    return f"# {title}\n\n{shown.to_markdown(index=False)}\n"
