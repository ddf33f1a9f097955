"""The only module that imports mlflow: one run per trained model, in one MLflow experiment per study.

Only the stages that must open the store do: train (its live run), classify, and report@<study>, which brings
each of its experiments' evaluations into their training runs through one opening of the store."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

# MLflow 3 reports usage to its makers from a background thread unless told not to: an offline pipeline has no
# business doing so, and the attempt cost each stage that logs 1 to 2 s here. A user's own setting wins.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelOutput, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.config import ExperimentConfig, Params
from pipeline.schema import flatten

if TYPE_CHECKING:
    from pipeline.tasks.base import Task

BATCH = 100  # MLflow accepts at most 100 params and 1000 metrics per log_batch call
EVALUATION_TAG = "aegan.evaluation"  # the digest of the evaluation last brought into a run
# MLflow 3's UI opens an experiment without this tag as a GenAI one (traces, tokens); with it, on its runs.
KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
KIND = {KIND_TAG: MODEL_TRAINING}

logging.getLogger("alembic").setLevel(logging.WARNING)  # schema migrations on a new SQLite store are not news


SQLITE = "sqlite:///"


def run_params(params: Params, experiment: ExperimentConfig, name: str) -> dict[str, Any]:
    """What an MLflow run records as params: the experiment's sections (typed, defaults filled in where the
    library has checked them), its dataset and `base`, flattened."""
    return {
        "experiment": name,
        **flatten({key: getattr(experiment, key) for key in ("study", "task", "model", "update", "train")}),
        "dataset": experiment.dataset,
        **flatten(params.dataset(experiment.dataset), "dataset."),
        **flatten(params.base, "base."),
    }


def logged_params(params: Params, experiment: ExperimentConfig, name: str, task: Task) -> dict[str, Any]:
    """`run_params` as an MLflow run shows them: of the dataset's settings, only those that apply to its source
    and to the experiment's task: the edge detector's σ where the task reads edges, and of the forward models
    only the one a restore task measures through."""
    everything = run_params(params, experiment, name)
    applying = params.dataset(experiment.dataset).applying()
    if "edges" not in task.views:
        applying.pop("edge_sigma", None)
    forward = applying.pop("forward", {})
    if task.restores and task.forward in forward:
        applying["forward"] = {task.forward: forward[task.forward]}
    kept = {key: value for key, value in everything.items() if not key.startswith("dataset.")}
    return kept | flatten(applying, "dataset.")


def resolve_uri(configured: str) -> str:
    """MLFLOW_TRACKING_URI wins over params.yaml's tracking.uri. A relative SQLite path is the project's: under
    `dvc exp run --queue` (or `--temp`) a stage runs in a copy under .dvc/tmp/exps/, and DVC sets DVC_ROOT to the
    project the copy came from, so every experiment's runs land in the one store that `mlflow ui` reads."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured
    path = Path(uri.removeprefix(SQLITE))
    if uri.startswith(SQLITE) and not path.is_absolute():
        uri = SQLITE + str((Path(os.environ.get("DVC_ROOT") or ".") / path).resolve())
    return uri


def dvc_experiment() -> dict[str, str]:
    """The DVC experiment a stage runs in, as run tags: `dvc exp run` sets these variables for its stages."""
    names = {"DVC_EXP_NAME": "dvc.exp_name", "DVC_EXP_BASELINE_REV": "dvc.exp_baseline_rev"}
    return {tag: os.environ[variable] for variable, tag in names.items() if os.environ.get(variable)}


def git_commit() -> str:
    """The commit the run's code came from, with `-dirty` when the work tree has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout
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

    def log_dataset(self, name: str, manifest: dict[str, Any], source: Path) -> None:
        """The prepared dataset as the run's training input (the run's Datasets): its manifest, which holds
        every array's sha256, gives the digest, so two versions of one dataset tell apart."""
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]
        dataset = Dataset(name=name, digest=digest, source_type="local", source=source.as_posix())
        self.client.log_inputs(self.run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])

    def log_model(self, folder: Path, name: str, kind: str) -> str:
        """`folder` (the weights and the settings that rebuild the model, no pickled code) as a logged model
        of this run, the UI's Models tab; returns its id."""
        experiment_id = self.client.get_run(self.run_id).info.experiment_id
        model = self.client.create_logged_model(experiment_id, name=name, source_run_id=self.run_id, model_type=kind)
        self.client.log_model_artifacts(model.model_id, str(folder))
        self.client.finalize_logged_model(model.model_id, "READY")
        self.client.log_outputs(self.run_id, [LoggedModelOutput(model.model_id, step=0)])
        return model.model_id

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        """A run ends FINISHED, FAILED on any error or KILLED on Ctrl-C: never left RUNNING."""
        self.finish("FINISHED" if kind is None else "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")


class Store:
    """One opened tracking store. Opening one costs about a second (MLflow checks a SQLite store's schema), so a
    stage opens it once and reaches every run it touches through it."""

    def __init__(self, uri: str) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        # a local store keeps its experiments' artifacts beside it (MLflow's default is ./mlruns of whichever
        # folder first creates the experiment: for a queued DVC experiment, a copy that DVC then deletes)
        local = uri.startswith(SQLITE) and uri != SQLITE + ":memory:"
        self.artifacts = Path(uri.removeprefix(SQLITE)).parent / "mlruns" if local else None

    def start_run(self, *, experiment: str, name: str, tags: dict[str, str], run_id: str | None = None) -> Run:
        """Open run `run_id` again (a resumed training) or create a new one named `name` in `experiment`."""
        if run_id:
            try:
                if self.client.get_run(run_id).info.lifecycle_stage == "active":
                    self.client.update_run(run_id, status="RUNNING")
                    return Run(self.client, run_id)
            except MlflowException:
                pass  # gone from the store (another database, or purged): start a fresh run rather than fail
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self._create(experiment)
        if found and found.tags.get(KIND_TAG) != MODEL_TRAINING:  # a store made before the tag was set
            self.client.set_experiment_tag(experiment_id, KIND_TAG, MODEL_TRAINING)
        run = self.client.create_run(
            experiment_id, run_name=name, tags={**tags, "mlflow.source.git.commit": git_commit()}
        )
        return Run(self.client, run.info.run_id, created=True)

    def _create(self, experiment: str) -> str:
        location = str(self.artifacts / experiment) if self.artifacts else None
        return self.client.create_experiment(experiment, artifact_location=location, tags=KIND)

    def log_evaluation(self, record: dict[str, Any], scores: dict[str, float], files: dict[str, list[Path]]) -> bool:
        """Bring an experiment's evaluation into the run it was trained in: `scores` as `test/<name>` metrics and
        `files` as artifacts by folder ("" for the run's artifact root), once per distinct evaluation (a tag
        keeps its digest, so a report that runs again re-sends nothing). False when the run is not in this store
        (results pulled from a DVC remote, a store deleted since): the evaluation then stays in DVC's outputs
        alone."""
        run_id = record["run_id"]
        layout = {folder: [path.name for path in paths] for folder, paths in files.items()}
        text = json.dumps({"record": record, "scores": scores, "layout": layout}, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()
        try:
            if self.client.get_run(run_id).data.tags.get(EVALUATION_TAG) == digest:
                return True
        except MlflowException:
            return False
        run = Run(self.client, run_id)
        run.log_metrics([(0, {f"test/{key}": value for key, value in scores.items() if key != "train_seconds"})])
        for folder, paths in files.items():
            for path in paths:
                run.log_artifact(path, folder or None)
        self.client.set_tag(run_id, EVALUATION_TAG, digest)
        return True
