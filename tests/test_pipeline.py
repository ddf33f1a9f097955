"""End to end: `dvc repro` in a temporary copy of the project with tiny params, as a user runs it."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import ROOT, tiny_params

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def write_params(project: Path, raw: dict) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def copy_project(project: Path) -> None:
    """What a clone of the repository holds that `dvc repro` runs on (the code, dvc.yaml, DVC's config and
    plot templates), without params.yaml, outputs or DVC cache."""
    for name in ("pipeline", "stages", ".dvc", "dvc.yaml", ".gitignore", ".dvcignore"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__", "cache", "tmp"))
        elif source.exists():
            shutil.copy(source, project / name)


def tiny_project(root: Path, epochs: int) -> Path:
    """A copy of the project whose params train one conv AE on 200 digits for `epochs` epochs, the classifier
    as long: the smallest project every stage runs on."""
    copy_project(root)
    raw = tiny_params(train={"epochs": epochs, "batch_size": 32})
    raw["datasets"]["digits"]["limit"] = 200
    raw["classifier"] = {**raw["classifier"], "epochs": epochs, "samples": 100}
    write_params(root, raw)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC copy of the project with two tiny experiments, after one `dvc repro`."""
    project = tmp_path_factory.mktemp("project")
    copy_project(project)
    raw = tiny_params()
    raw["experiments"]["ae_other"] = {**copy.deepcopy(raw["experiments"]["ae_tiny"]), "update": {"lr": 1.0e-3}}
    raw["experiments"]["gan_tiny"] = {
        **copy.deepcopy(raw["experiments"]["ae_tiny"]),
        "task": {"name": "generate"},
        "model": {"name": "dcgan", "latent_dim": 8, "width": 4},
        "update": {},
        "train": {"epochs": 2, "batch_size": 32},
    }
    raw["classifier"] = {**raw["classifier"], "epochs": 12, "samples": 200}
    write_params(project, raw)
    run(["git", "init", "-q"], project)
    run(["dvc", "repro"], project)
    return project


def test_repro_writes_every_output_and_metrics_show_reads_them(project):
    for path in (
        "models/ae_tiny/model.pt",
        "plots/autoencoders/ae_tiny/loss.csv",
        "reports/autoencoders/losses.csv",
        "reports/summary.md",
        "reports/autoencoders/ae_tiny/grid.png",
        "reports/autoencoders/table.md",
        "metrics/autoencoders/ae_other.csv",
        "dvc.lock",
    ):
        assert (project / path).is_file(), path
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    scores = next(iter(shown.values()))["data"]["metrics/autoencoders/ae_tiny.json"]["data"]
    assert 10 < scores["psnr_mean"] < 60 and scores["images"] == 60
    table = (project / "reports/autoencoders/table.csv").read_text()
    assert "ae_tiny" in table and "ae_other" in table
    classifier = next(iter(shown.values()))["data"]["metrics/classifiers/digits.json"]["data"]
    generator = next(iter(shown.values()))["data"]["metrics/autoencoders/gan_tiny.json"]["data"]
    assert (
        classifier["accuracy"] > 0.8 and generator["fcd"] > classifier["fcd_train"] and generator["fcd_samples"] == 200
    )
    assert "test half vs test half" in table and "train vs test" in table  # the FCD floors beside the generator
    assert (project / "reports/autoencoders/gan_tiny/samples.png").is_file()
    assert not (project / "reports/autoencoders/gan_tiny/grid.png").exists()  # nothing to reconstruct
    assert {path.name for path in (project / "plots/autoencoders/gan_tiny").iterdir()} >= {
        "loss_critic.csv",
        "loss_generator.csv",
    }
    # The report sets the study's models side by side:
    # the two autoencoders on the same test images, the generator alone.
    assert sorted(p.name for p in (project / "reports/autoencoders/comparison").iterdir()) == [
        "digits_generate.png",
        "digits_reconstruct.png",
    ]
    assert (
        "`comparison/digits_reconstruct.png`, rows top to bottom: input, ae_tiny, ae_other, truth"
        in (project / "reports/autoencoders/table.md").read_text()
    )


def test_plots_show_draws_the_loss_curves_with_no_network(project, tmp_path):
    if not (project / ".dvc/plots/offline.html").exists():  # `make test` writes it; a bare pytest may not have
        run([sys.executable, "-m", "pipeline.plots_page", ".dvc/plots/offline.html"], project)
    # dvc.yaml names every study's charts; the tiny params run one study, without its PCA experiments
    listed = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)
    missing = {error["name"] for error in listed["errors"]}
    assert "autoencoders: loss per epoch" in listed["data"] and "reports/autoencoders/comparison" not in missing
    assert all("pca_" in name or not name.startswith(("autoencoders", "reports/autoencoders/")) for name in missing)
    assert "reports/autoencoders/comparison/digits_generate.png" in listed["data"]

    run(["dvc", "plots", "show", "autoencoders: loss per epoch", "-o", str(tmp_path / "shown")], project)
    html = (tmp_path / "shown" / "index.html").read_text()
    assert "<title>aegan plots</title>" in html and html.count("vegaEmbed('#") == 1
    assert not re.search(r"<script[^>]*\bsrc=", html)
    # one chart of the study's loss curves: every experiment, every loss
    assert all(f'"experiment": "{name}"' in html for name in ("ae_tiny", "ae_other", "gan_tiny"))
    assert '"loss": "loss_critic"' in html
    browser, page = shutil.which("chromium"), (tmp_path / "shown" / "index.html").as_uri()
    if browser:  # and drawn, offline: vega-embed leaves its SVG only where its scripts ran
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom", page],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        assert dom.count('class="marks"') == 1 and ">gan_tiny</text>" in dom, dom[-3000:]


def test_a_second_repro_runs_nothing(project):
    output = run(["dvc", "repro"], project).stdout
    assert "Running stage" not in output
    assert "Data and pipelines are up to date" in output


def test_a_faithful_rerun_changes_no_metric(project):
    git = ["git", "-c", "user.name=aegan", "-c", "user.email=aegan@localhost"]
    run([*git, "add", "-A"], project)
    run([*git, "commit", "-qm", "first run"], project)
    run(["dvc", "repro", "--force", "--single-item", "evaluate@ae_tiny"], project)
    assert json.loads(run(["dvc", "metrics", "diff", "--json"], project).stdout) == {}
    moved = run(["git", "status", "--porcelain", "metrics/"], project).stdout.split()
    assert moved == ["M", "metrics/autoencoders/ae_tiny.timing.json"]  # the clocks, and nothing else
    run(["dvc", "repro"], project)  # the study's report reads the new clock readings


def test_changing_one_learning_rate_reruns_only_that_experiment(project):
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["experiments"]["ae_other"]["update"]["lr"] = 2.0e-3
    write_params(project, raw)
    output = run(["dvc", "repro"], project).stdout
    stages = sorted(line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage"))
    assert stages == ["evaluate@ae_other", "report@autoencoders", "summary", "train@ae_other"]


def test_bad_params_fail_in_one_line(project, tmp_path):
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["experiments"]["ae_tiny"]["train"]["epoch"] = 3
    broken = tmp_path / "params.yaml"
    broken.write_text(yaml.safe_dump(raw))
    result = run(["aegan", "train", "ae_tiny", "--params", str(broken)], project, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: experiments.ae_tiny.train.epoch: unknown key; valid keys are epochs, batch_size, log_every"
    ]
    result = run(["aegan", "prepare", "digitz"], project, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: datasets.digitz: no such entry; choose one of digits"


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db",
    }
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def race(args: list[str], project: Path) -> list[tuple[int, str]]:
    """Start the same command twice at once; each one's exit status and stderr."""
    processes = [start(args, project) for _ in range(2)]
    return [(process.wait(), process.communicate()[1]) for process in processes]


def assert_one_line_busy(returncode: int, stderr: str, output: str) -> None:
    assert returncode == 1
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith(f"error: another run is writing {output} (it holds "), stderr


def test_a_stage_whose_output_another_run_holds_stops_in_one_line_before_any_work(project):
    from pipeline.files import claim

    manifest = (project / "data/prepared/digits/manifest.json").read_text()
    with claim(project / "data/prepared/digits"):
        result = run(["aegan", "prepare", "digits"], project, check=False)
    assert_one_line_busy(result.returncode, result.stderr, "data/prepared/digits")
    assert "work:" not in result.stdout
    assert (project / "data/prepared/digits/manifest.json").read_text() == manifest


def test_two_prepares_at_once_never_publish_a_mixed_result(project):
    for _ in range(2):
        outcomes = race(["aegan", "prepare", "digits"], project)
        assert 0 in [code for code, _ in outcomes], outcomes
        for code, stderr in outcomes:
            if code:
                assert_one_line_busy(code, stderr, "data/prepared/digits")
        checked = run(["aegan", "check", "--data"], project)  # every array against its manifest's sha256
        assert "data/prepared/digits: 12 arrays match their manifest" in checked.stdout
        assert not list((project / "data/prepared").glob("*.partial"))


def test_two_trains_of_one_experiment_at_once_leave_one_model_and_no_running_run(project):
    import mlflow

    outcomes = race(["aegan", "train", "ae_other"], project)
    assert 0 in [code for code, _ in outcomes], outcomes
    for code, stderr in outcomes:
        if code:
            assert_one_line_busy(code, stderr, "models/ae_other")
    run(["aegan", "evaluate", "ae_other"], project)  # the model that was published loads and scores
    runs = mlflow.MlflowClient(f"sqlite:///{project}/mlflow.db").search_runs(
        [
            experiment.experiment_id
            for experiment in mlflow.MlflowClient(f"sqlite:///{project}/mlflow.db").search_experiments()
        ]
    )
    assert runs and not [run_.info.run_id for run_ in runs if run_.info.status == "RUNNING"]


def test_an_output_linked_out_of_the_project_is_refused_and_left_alone(project, tmp_path):
    (tmp_path / "precious").write_text("keep")
    plots = project / "plots" / "autoencoders" / "ae_other"
    kept = project / "plots" / "autoencoders" / "ae_other.kept"
    plots.rename(kept)
    plots.symlink_to(tmp_path)
    try:
        result = run(["aegan", "train", "ae_other"], project, check=False)
    finally:
        plots.unlink()
        kept.rename(plots)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: plots/autoencoders/ae_other lies outside the project ({project.resolve()}); aegan writes only "
        "inside the project folder"
    ]
    assert [path.name for path in tmp_path.iterdir()] == ["precious"]


def test_a_killed_training_run_resumes_to_the_same_metrics(project):
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["datasets"]["digits"].pop("limit")  # the full 1,437 training digits: slow enough to kill mid-run
    raw["experiments"]["ae_tiny"]["train"]["epochs"] = 12  # about 6 s here
    write_params(project, raw)
    run(["dvc", "repro", "prepare@digits"], project)
    checkpoint = project / "checkpoints" / "ae_tiny" / "last.pt"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db",
        "AEGAN_CHECKPOINT_SECONDS": "0",  # a checkpoint after every epoch, so it is killed after one
    }
    process = subprocess.Popen(
        ["aegan", "train", "ae_tiny"], cwd=project, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert torch.load(checkpoint, weights_only=True)["epoch"] < 12

    run(["aegan", "train", "ae_tiny"], project)  # resumes from the checkpoint
    run(["aegan", "evaluate", "ae_tiny"], project)
    resumed = json.loads((project / "metrics/autoencoders/ae_tiny.json").read_text())
    assert not checkpoint.exists()

    run(["aegan", "train", "ae_tiny"], project)  # from scratch: no checkpoint is left
    run(["aegan", "evaluate", "ae_tiny"], project)
    uninterrupted = json.loads((project / "metrics/autoencoders/ae_tiny.json").read_text())
    assert resumed == uninterrupted  # the clock readings are apart, in .timing.json
    timing = json.loads((project / "metrics/autoencoders/ae_tiny.timing.json").read_text())
    assert set(timing) == {"train_seconds", "seconds_per_image"} and min(timing.values()) > 0
