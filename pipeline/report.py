"""report@<study>: the study's side-by-side table from its experiments' metrics files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.config import Params
from pipeline.errors import DataError


def study_table(params: Params, study: str, metrics_dir: Path) -> pd.DataFrame:
    """One row per experiment of `study`: model, dataset, task and every summary metric it has."""
    rows = []
    for name, experiment in params.experiments.items():
        if experiment.study != study:
            continue
        path = metrics_dir / f"{name}.json"
        if not path.exists():
            raise DataError(f"{path} is missing; run `dvc repro evaluate@{name}` first")
        scores = json.loads(path.read_text())
        rows.append(
            {"experiment": name, "model": experiment.model.name, "dataset": experiment.dataset,
             "task": experiment.task.name, **scores}
        )  # fmt: skip
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, title: str) -> str:
    return f"# {title}\n\n{table.to_markdown(index=False, floatfmt='.4g')}\n"
