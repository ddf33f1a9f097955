"""The hooks a study's module fills in; `Study` itself adds nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Params

Figure = tuple[list[str], list[np.ndarray]]  # row names, rows of (N, H, W, C) floats in [0, 1]


class Study:
    """A study with nothing of its own: every hook adds nothing."""

    key_columns: tuple[str, ...] = ()  # shown after experiment, model, dataset, task, latent_dim

    def rows(self, params: Params, rows: list[dict]) -> list[dict]:
        """Rows to add after the experiments' own (which it may annotate in place)."""
        return []

    def comparison(self, key: str, names: list[str], previews: dict, record: Callable[[str], dict]) -> Figure | None:
        """The side-by-side figure of group `key` ("<dataset>_<task>") when the study draws it its own way, from
        each experiment's preview and record (`record(name)`: what evaluate wrote beside its scores)."""
        return None

    def figures(
        self, table: pd.DataFrame, preview: Callable[[str], dict], folder: Path, sweep: list[dict]
    ) -> dict[str, list[str]]:
        """Draw the study's own figures into `folder` (`preview(name)` is what evaluate kept of experiment
        `name`; `sweep` the scores of each sweep@ point of this study, see `pipeline.sweep`); returns file
        name -> what it shows, for the table's notes."""
        return {}

    def score_columns(self, table: pd.DataFrame) -> dict[str, list[str]]:
        """Markdown columns shown after the scores."""
        return {}

    def timing_columns(self, table: pd.DataFrame) -> dict[str, list[str]]:
        """Markdown columns shown after the timings."""
        return {}

    def seed_result(self, row: dict) -> str:
        """The seed's published result for what table row `row` measures, with the data it was measured on;
        "" where the seed published none."""
        return ""
