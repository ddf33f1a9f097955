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
