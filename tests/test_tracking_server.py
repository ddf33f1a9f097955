"""End to end: with MLFLOW_TRACKING_URI=http://… every stage that logs does so to a real `mlflow server` on
127.0.0.1 (its own backend store and artifact root), not to the project's SQLite file. The server runs with a
SQLite backend, and with a PostgreSQL one where Debian's postgresql package is installed (the test starts its
own cluster in a temporary folder)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_pipeline import tiny_project

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
POSTGRES = shutil.which("pg_ctl"), shutil.which("initdb")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stage(args: list[str], project: Path, uri: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MLFLOW_TRACKING_URI": uri}
    result = subprocess.run(["aegan", *args], cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"aegan {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project with its digits prepared and its classifier trained (no MLflow store yet)."""
    project = tiny_project(tmp_path_factory.mktemp("project"), epochs=1)
    for args in (["download", "digits"], ["prepare", "digits"]):
        stage(args, project, "http://127.0.0.1:1")  # neither opens a store: an unreachable server is fine
    return project


def postgres_backend() -> Iterator[str]:
    """A PostgreSQL cluster of its own on 127.0.0.1, in a temporary folder under /tmp (run as the `postgres`
    user when the tests run as root: initdb refuses root, and pytest's own folders are root's alone); yields
    its URI, then stops the cluster and removes the folder."""
    pg_ctl, initdb = POSTGRES
    folder = Path(tempfile.mkdtemp(prefix="aegan-postgres-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port, data, quiet = free_port(), folder / "data", {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    try:
        subprocess.run([*run_as, initdb, "-D", str(data), "-U", "mlflow", "--auth=trust"], check=True, **quiet)
        # -l: the server's own output to a file (a pipe would stay open as long as the server runs)
        options = ["-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "-l", str(folder / "log")]
        subprocess.run([*run_as, pg_ctl, "-D", str(data), *options, "-w", "start"], check=True, **quiet)
        try:
            yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "fast", "stop"], **quiet)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A running `mlflow server` on 127.0.0.1 with the given backend store and its own artifact root."""
    if request.param == "sqlite":
        backends: Iterator[str] = iter([f"sqlite:///{tmp_path}/server.db"])
    else:
        if not all(POSTGRES):
            pytest.skip("PostgreSQL is not installed (Debian's postgresql package puts pg_ctl and initdb on PATH)")
        pytest.importorskip("psycopg2", reason="MLflow's PostgreSQL store needs psycopg2 (psycopg2-binary)")
        backends = postgres_backend()
    backend = next(backends)
    port = free_port()
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", backend, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError(f"mlflow server on port {port} did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        for _ in backends:  # stops the PostgreSQL cluster
            pass


def test_every_stage_logs_to_the_tracking_server_and_nothing_to_the_project(project, server, tmp_path):
    from mlflow.tracking import MlflowClient

    for args in (["classify", "digits"], ["train", "ae_tiny"], ["evaluate", "ae_tiny"], ["report", "autoencoders"]):
        stage(args, project, server)
    client = MlflowClient(server)
    study = client.get_experiment_by_name("autoencoders")
    (run,) = client.search_runs([study.experiment_id], "tags.`dvc.stage` = 'train@ae_tiny'")
    assert run.info.run_name.startswith("ae_tiny (") and run.data.params["update.lr"] == "0.003"
    assert run.data.metrics["test/psnr_mean"] > 5  # brought in by report@autoencoders
    root = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"grid.png", "evaluation"} <= root  # served by the server from its own artifact root
    downloaded = client.download_artifacts(run.info.run_id, "grid.png", str(tmp_path))
    assert Path(downloaded).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get_experiment_by_name("classifiers") is not None
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()
