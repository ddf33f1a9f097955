"""stages: the `aegan` CLI starts light, lists every DVC stage, and dvc.yaml calls only commands that exist."""

from __future__ import annotations

import subprocess
import sys

import yaml
from typer.testing import CliRunner

from stages.cli import app
from tests.conftest import ROOT


def test_cli_start_up_imports_neither_torch_nor_mlflow():
    code = "import sys, stages.cli; print(sorted(m for m in ('torch', 'mlflow', 'pandas', 'skimage') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_help_lists_every_stage():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("download", "prepare", "classify", "train", "evaluate", "render", "report"):
        assert command in result.output


def test_every_dvc_stage_calls_an_aegan_command():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    commands = {command.name or command.callback.__name__ for command in app.registered_commands}
    for name, stage in stages.items():
        words = stage["do"]["cmd"].split()
        assert words[0] == "aegan" and words[1] in commands and words[1] == name


def test_a_missing_prepared_dataset_names_the_stage_to_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "ae_digits", "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 1
    assert "data/prepared/digits is not a prepared dataset (no manifest.json); run `dvc repro prepare@digits`" in result.output
