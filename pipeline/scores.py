"""A stage's scores on disk, clock readings apart.

`<stem>.json` holds what DVC compares as metrics; `<stem>.timing.json` the clock readings (training seconds,
seconds per image), a plain output. A faithful re-run then shows no metrics change in `dvc metrics diff` or
`dvc exp show`, and the timings are still there for the report's table and MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.files import write_text


def is_timing(key: str) -> bool:
    return key.endswith(("seconds", "seconds_per_image"))


def write_scores(stem: Path, summary: dict[str, Any]) -> None:
    """Write `stem`.json (everything but clock readings) and `stem`.timing.json (the clock readings)."""
    scores = {key: value for key, value in summary.items() if not is_timing(key)}
    timings = {key: value for key, value in summary.items() if is_timing(key)}
    write_text(stem.with_suffix(".json"), json.dumps(scores, indent=2) + "\n")
    write_text(stem.with_suffix(".timing.json"), json.dumps(timings, indent=2) + "\n")


def read_scores(stem: Path) -> dict[str, Any]:
    """The scores and clock readings `write_scores` wrote, as one mapping; a missing timing file adds none."""
    scores = json.loads(stem.with_suffix(".json").read_text())
    timing = stem.with_suffix(".timing.json")
    return scores | (json.loads(timing.read_text()) if timing.exists() else {})
