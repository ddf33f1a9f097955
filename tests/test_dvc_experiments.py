"""End to end: DVC experiments in a fresh clone of a tiny project, as the README tells a user to run them.
`dvc exp run` without targets and with one, two queued variants run by `dvc queue start -j 2`, and
`dvc exp show --only-changed` setting them side by side; each experiment's MLflow run carries its DVC name."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_pipeline import tiny_project

pytestmark = pytest.mark.slow
GIT = ["git", "-c", "user.name=aegan", "-c", "user.email=aegan@localhost"]
LR = "experiments.ae_tiny.update.lr"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """A command as a user runs it: the project's tools on PATH and params.yaml's own tracking store
    (sqlite:///mlflow.db, relative), which every stage resolves against the project, copies included."""
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project after `dvc repro`, committed with its results as the repository is (dvc.lock, metrics/,
    plots/, reports/), and with a local-folder DVC remote in its committed config."""
    origin = tiny_project(tmp_path_factory.mktemp("origin"), epochs=2)
    run(["git", "init", "-q"], origin)
    run(["dvc", "repro"], origin)
    run(["dvc", "remote", "add", "-d", "results", str(tmp_path_factory.mktemp("remote"))], origin)
    run([*GIT, "add", "-A"], origin)  # the project's .gitignore keeps data/, models/ and the MLflow store out
    run([*GIT, "commit", "-qm", "tiny project and its results"], origin)
    return origin


@pytest.fixture(scope="module")
def clone(origin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `git clone` gives a user: the committed results, but no data, no models and no DVC cache."""
    clone = tmp_path_factory.mktemp("clone") / "project"
    run(["git", "clone", "-q", str(origin), str(clone)], origin)
    return clone


def shown(clone: Path) -> dict[str, dict[str, str]]:
    """`dvc exp show --only-changed` by experiment name (`workspace` and the baseline branch by their rev)."""
    text = run(["dvc", "exp", "show", "--only-changed", "--csv"], clone).stdout
    return {row["Experiment"] or row["rev"]: row for row in csv.DictReader(io.StringIO(text))}


def test_an_experiment_without_targets_runs_the_whole_pipeline_from_a_fresh_clone(clone):
    result = run(["dvc", "exp", "run", "-n", "lr-2e-3", "-S", f"{LR}=0.002"], clone)
    assert "Ran experiment(s): lr-2e-3" in result.stdout + result.stderr
    rows = shown(clone)
    assert rows["lr-2e-3"][LR] == "0.002"
    assert 5 < float(rows["lr-2e-3"]["psnr_mean"]) < 60  # scored: metrics/autoencoders/ae_tiny.json
    assert "lr: 0.002" in (clone / "params.yaml").read_text()  # run in the workspace, which keeps its result


def test_an_experiment_with_a_target_runs_that_stage_and_what_it_needs(clone):
    result = run(["dvc", "exp", "run", "evaluate@ae_tiny", "-n", "lr-3e-3", "-S", f"{LR}=0.003"], clone)
    ran = [line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")]
    assert "train@ae_tiny" in ran and "evaluate@ae_tiny" in ran and "report@autoencoders" not in ran


def test_two_queued_variants_run_at_once_and_show_side_by_side_in_dvc_and_mlflow(clone):
    from mlflow.tracking import MlflowClient

    for name, lr in (("lr-1e-3", "0.001"), ("lr-5e-3", "0.005")):
        run(["dvc", "exp", "run", "--queue", "-n", name, "-S", f"{LR}={lr}"], clone)
    run(["dvc", "queue", "start", "-j", "2"], clone)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], clone).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert status.count("Success") >= 2, status
    rows = shown(clone)
    assert {rows[name][LR] for name in ("lr-1e-3", "lr-5e-3")} == {"0.001", "0.005"}
    assert rows["lr-1e-3"]["psnr_mean"] != rows["lr-5e-3"]["psnr_mean"]
    baseline = run(["git", "branch", "--show-current"], clone).stdout.strip()
    assert rows[baseline]["psnr_mean"] not in ("", "!")  # the committed baseline's scores, beside the variants'
    # --only-changed leaves out what every experiment shares: the other params, the classifier's scores, the code
    columns = set(rows["lr-1e-3"])
    assert not columns & {"experiments.ae_tiny.model.width", "accuracy", "fcd_train", "data/code/train.txt"}

    client = MlflowClient(f"sqlite:///{clone}/mlflow.db")
    study = client.get_experiment_by_name("autoencoders")
    runs = client.search_runs([study.experiment_id], "tags.`dvc.stage` = 'train@ae_tiny'")
    named = {run.data.tags.get("dvc.exp_name"): run for run in runs}
    assert {"lr-1e-3", "lr-5e-3", "lr-2e-3", "lr-3e-3"} <= set(named)  # one run per DVC experiment
    assert named["lr-1e-3"].info.run_name == "ae_tiny (lr-1e-3)"
    assert named["lr-1e-3"].data.params["update.lr"] == "0.001"
    assert len(named["lr-1e-3"].data.tags["dvc.exp_baseline_rev"]) == 40  # the commit the experiment started from
    # the queued runs ran in copies under .dvc/tmp/exps/, yet their figures are in the project's store
    assert study.artifact_location == str(clone / "mlruns" / "autoencoders")
    assert "grid.png" in {artifact.path for artifact in client.list_artifacts(named["lr-5e-3"].info.run_id)}


def test_a_clone_that_pulls_from_the_remote_needs_no_training(origin, tmp_path):
    from skimage import io

    pushed = run(["dvc", "push"], origin).stdout
    assert re.search(r"\d+ files? pushed", pushed), pushed
    second = tmp_path / "second"
    run(["git", "clone", "-q", str(origin), str(second)], tmp_path)
    run(["dvc", "pull"], second)  # prepared data, models and classifiers: everything DVC caches
    assert (second / "models" / "ae_tiny" / "model.pt").is_file()
    status = run(["dvc", "repro"], second).stdout
    assert "Running stage" not in status and "Data and pipelines are up to date" in status
    digit = (np.load(second / "data" / "prepared" / "digits" / "test" / "images.npy")[0]).squeeze()
    io.imsave(second / "digit.png", digit)
    run(["aegan", "apply", "ae_tiny", "digit.png"], second)  # a pulled model, applied without any training
    assert io.imread(second / "digit_ae_tiny.png").shape == digit.shape
    assert not (second / "checkpoints").exists()
