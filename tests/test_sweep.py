"""The opt-in drop-probability sweep (`sweep:` in params.yaml, sweep@<experiment>-<percent>): each point
trains and scores a restore experiment at another p, and report@ambient draws PSNR against p."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipeline.config import parse_params
from pipeline.data.store import load_split, read_manifest
from pipeline.errors import DataError
from pipeline.report import sweep_points
from pipeline.schema import ConfigError
from pipeline.studies.ambient import Ambient, sweep_lines
from pipeline.sweep import run_point
from tests.builders import ambient_params


def sweep_params(*percent: int) -> dict:
    raw = ambient_params(
        ambient={"task": {"name": "restore"}}, noise={"task": {"name": "restore", "forward": "add_noise"}}
    )
    raw["sweep"] = {"study": "ambient", "dataset": "digits", "experiments": ["ambient"], "percent": list(percent)}
    return raw


def test_a_sweep_point_trains_and_scores_the_experiment_at_its_drop_probability(
    tmp_path, prepared_digits, digit_classifier
):
    params = parse_params(sweep_params(30, 80))
    points = {}
    for percent in params.sweep.percent:
        out = tmp_path / "models" / "sweep" / f"ambient-p{percent}"
        p = percent / 100
        points[p] = run_point(
            params,
            "ambient",
            percent,
            prepared_dir=prepared_digits / "digits",
            classifier_dir=digit_classifier[0],
            out_dir=out,
            checkpoint_path=tmp_path / "checkpoints" / f"{percent}.pt",
        )
        assert sorted(path.name for path in out.iterdir()) == ["data", "figures", "losses", "model"]
        assert read_manifest(out / "data")["forward"] == {"drop_independent": {"p": p}}
        test = load_split(out / "data", "test")
        np.testing.assert_array_equal(test["images"], load_split(prepared_digits / "digits", "test")["images"])
        lit = test["images"] > 0  # a black pixel reads 0 whether dropped or not
        dropped = (test["drop_independent"][lit] == 0).mean()
        assert dropped == pytest.approx(p, abs=0.03)  # the copies are drawn at this point's p
        runs = mlflow.search_runs(experiment_names=["ambient"], output_format="list")
        (run,) = [run for run in runs if run.info.run_name.startswith(f"ambient-p{percent} (")]  # "<name> (<label>)"
        assert run.data.params["dataset.forward.drop_independent.p"] == str(p)
        assert run.data.metrics["test/psnr_mean"] == pytest.approx(points[p]["psnr_mean"])
        assert points[p]["method"] == "ambient" and points[p]["experiment"] == "ambient"
    # the same inputs restored without learning get worse as more pixels are dropped
    assert points[0.3]["baseline_psnr_mean"] > points[0.8]["baseline_psnr_mean"] + 3
    assert points[0.3]["input_psnr_mean"] > points[0.8]["input_psnr_mean"]

    metrics = tmp_path / "metrics"
    (metrics / "ambient" / "sweep").mkdir(parents=True)
    for p, scores in points.items():
        (metrics / "ambient" / "sweep" / f"ambient-p{round(p * 100)}.json").write_text(json.dumps(scores))
    read = sweep_points(params, "ambient", metrics)
    lines = sweep_lines(read)
    assert list(lines) == ["ambient (ambient)", "non-learned"]
    np.testing.assert_array_equal(lines["ambient (ambient)"][0], [0.3, 0.8])
    assert list(lines["non-learned"][1]) == [points[0.3]["baseline_psnr_mean"], points[0.8]["baseline_psnr_mean"]]
    shown = Ambient().figures(pd.DataFrame(), lambda name: {}, tmp_path, read)
    assert shown == {"sweep.png": ["ambient (ambient)", "non-learned"]} and (tmp_path / "sweep.png").stat().st_size > 0
    # a point params.yaml no longer lists is not drawn, one it lists but that has not run is named
    assert len(sweep_points(parse_params(sweep_params(30)), "ambient", metrics)) == 1
    with pytest.raises(DataError, match="sweep@ambient-50"):
        sweep_points(parse_params(sweep_params(30, 50)), "ambient", metrics)
    assert sweep_points(params, "vae_gan", metrics) == []


def test_the_sweep_takes_only_drop_independent_restore_experiments_of_its_study():
    raw = sweep_params(50)
    raw["sweep"]["experiments"] = ["noise"]
    with pytest.raises(ConfigError, match="does not restore through drop_independent"):
        parse_params(raw)
    raw["sweep"] = {"dataset": "photos", "experiments": ["ambient"], "percent": [50]}
    with pytest.raises(ConfigError, match=r"set sweep\.study and sweep\.dataset"):
        parse_params(raw)
    raw["sweep"] = {"experiments": ["ambient"], "percent": [100]}
    with pytest.raises(ConfigError, match=r"sweep\.percent\[0\]"):
        parse_params(raw)


def test_a_sweep_lists_each_entry_once_and_no_experiment_takes_its_folder():
    raw = sweep_params(50, 50)
    with pytest.raises(ConfigError, match=r"sweep\.percent: lists an entry twice"):
        parse_params(raw)
    raw = sweep_params(50)
    raw["experiments"]["sweep"] = raw["experiments"]["ambient"]
    with pytest.raises(ConfigError, match=r"experiments\.sweep: the name is reserved"):
        parse_params(raw)
