"""pipeline.tracking: how training's metrics reach the MLflow run."""

from __future__ import annotations


def test_step_metrics_reach_the_run_in_few_calls_and_all_of_them_at_the_end():
    from pipeline.training import callbacks

    class Run:
        def __init__(self):
            self.calls = []

        def log_metrics(self, rows):
            self.calls.append(rows)

    run, history = Run(), callbacks.History()
    logger = callbacks.MetricLogger(run, history, seconds=3600.0)
    for step in range(1, 101):
        history.on_step(step, {"loss": 1.0 / step}, 8)
        logger.on_step(step, {"loss": 1.0 / step}, 8)
        if step % 10 == 0:
            history.on_epoch_end(step // 10, step)
            logger.on_epoch_end(step // 10, step)
    assert run.calls == []  # within the interval nothing is sent
    logger.flush()
    (rows,) = run.calls
    assert (
        len(rows) == 110
        and rows[0] == (1, {"train/loss": 1.0})
        and rows[-1][1] == {"epoch/loss": history.rows[-1]["loss"]}
    )


def test_a_relative_store_is_the_projects_even_from_a_dvc_experiments_copy(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from pipeline import tracking

    project, copy = tmp_path / "project", tmp_path / "project" / ".dvc" / "tmp" / "exps" / "tmpabc"
    copy.mkdir(parents=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(copy)  # where `dvc queue start` runs a stage, DVC_ROOT naming the project it copied
    monkeypatch.setenv("DVC_ROOT", str(project))
    assert tracking.resolve_uri("sqlite:///mlflow.db") == f"sqlite:///{project.resolve()}/mlflow.db"
    assert tracking.resolve_uri("sqlite:////elsewhere/m.db") == "sqlite:////elsewhere/m.db"
    assert tracking.resolve_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    monkeypatch.delenv("DVC_ROOT")
    assert tracking.resolve_uri("sqlite:///mlflow.db") == f"sqlite:///{copy.resolve()}/mlflow.db"

    store = tracking.Store(f"sqlite:///{project}/mlflow.db")
    (tmp_path / "grid.png").write_bytes(b"figure")
    with store.start_run(experiment="autoencoders", name="ae (x)", tags={}) as run:
        run.log_artifact(tmp_path / "grid.png", "figures")
    found = MlflowClient(f"sqlite:///{project}/mlflow.db").get_experiment_by_name("autoencoders")
    assert found.artifact_location == str(project / "mlruns" / "autoencoders")  # beside the store, not in the copy
    assert (project / "mlruns" / "autoencoders" / run.run_id / "artifacts" / "figures" / "grid.png").is_file()
    assert not (copy / "mlruns").exists()
