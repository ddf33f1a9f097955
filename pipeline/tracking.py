"""The only module that imports mlflow: one run per trained model, in one MLflow experiment per study."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

BATCH = 100  # MLflow accepts at most 100 params and 1000 metrics per log_batch call

logging.getLogger("alembic").setLevel(logging.WARNING)  # schema migrations on a new SQLite store are not news


def resolve_uri(configured: str) -> str:
    """MLFLOW_TRACKING_URI wins over params.yaml's tracking.uri."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def git_commit() -> str:
    """The commit the run's code came from, with `-dirty` when the work tree has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty.strip() else "")


class Run:
    """An open MLflow run, reached through the client API so no global state leaks between stages."""

    def __init__(self, client: MlflowClient, run_id: str, created: bool = False) -> None:
        self.client, self.run_id = client, run_id
        self.created = created  # a new run, which still needs its params

    def log_params(self, params: dict[str, Any]) -> None:
        items = [Param(key, str(value)[:6000]) for key, value in sorted(params.items())]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + BATCH])

    def log_metrics(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Log many (step, {name: value}) rows in as few calls as possible."""
        now = int(time.time() * 1000)
        items = [Metric(name, value, now, step) for step, metrics in rows for name, value in metrics.items()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[start : start + 1000])

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)


def start_run(uri: str, *, experiment: str, name: str, tags: dict[str, str], run_id: str | None = None) -> Run:
    """Open run `run_id` again (a resumed or later stage) or create a new one named `name` in `experiment`."""
    client = MlflowClient(tracking_uri=uri)
    if run_id:
        try:
            if client.get_run(run_id).info.lifecycle_stage == "active":
                client.update_run(run_id, status="RUNNING")
                return Run(client, run_id)
        except MlflowException:
            pass  # gone from the store (another database, or purged): start a fresh run rather than fail
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, run_name=name, tags={**tags, "mlflow.source.git.commit": git_commit()})
    return Run(client, run.info.run_id, created=True)


def reopen(uri: str, run_id: str, *, tags: dict[str, str]) -> Run:
    """Attach a later stage (evaluate, render) to the run its model was trained in."""
    client = MlflowClient(tracking_uri=uri)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    return Run(client, run_id)
