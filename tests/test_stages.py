"""stages: the `aegan` CLI starts light, lists every DVC stage, dvc.yaml calls only commands that exist, and a
stage imports what it needs and nothing more."""

from __future__ import annotations

import subprocess
import sys

import yaml
from typer.testing import CliRunner

from pipeline.fingerprint import KINDS
from stages.cli import app
from tests.conftest import ROOT


def test_cli_start_up_imports_neither_torch_nor_mlflow():
    code = (
        "import sys, stages.cli; print(sorted(m for m in ('torch', 'mlflow', 'pandas', 'skimage') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_help_lists_every_stage_and_the_check():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("code", *KINDS, "check", "apply"):  # every stage kind, then the two commands
        assert command in result.output
    assert "render" not in result.output


def test_version_and_the_tasks_apply_serves():
    from importlib.metadata import version

    from pipeline.tasks import TASKS

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"aegan {version('aegan')}\n"
    text = " ".join(CliRunner().invoke(app, ["apply", "--help"]).output.split())
    served = text.split("Serves experiments whose task maps an image to an image:")[1].split("Not generate")[0]
    named = {name for name in TASKS if f" {name}: " in f" {served}"}
    assert named == {name for name, task in TASKS.items() if task.reconstructs}


def test_every_dvc_stage_calls_an_aegan_command():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    commands = {command.name or command.callback.__name__ for command in app.registered_commands}
    assert set(stages) == {"code", *KINDS}
    for name, stage in stages.items():
        words = stage.get("do", stage)["cmd"].split()
        assert words[0] == "aegan" and words[1] in commands and words[1] == name


def test_a_missing_prepared_dataset_names_the_stage_to_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "ae_digits", "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 1
    assert (
        "data/prepared/digits is not a prepared dataset (no manifest.json); run `dvc repro prepare@digits`"
        in result.output
    )


def test_check_runs_every_library_check_and_names_the_first_failure(tmp_path):
    result = CliRunner().invoke(app, ["check", "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 0, result.output
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert f"{len(raw['datasets'])} datasets and {len(raw['experiments'])} experiments check out" in result.output
    # only the update rule's constructor can refuse this
    raw["experiments"]["wgan_gp_digits"]["update"]["penalty"] = 0.0
    broken = tmp_path / "params.yaml"
    broken.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["check", "--params", str(broken)])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == "error: experiments.wgan_gp_digits.update: set exactly one of penalty and clip above 0 "
        "(got penalty 0.0, clip 0.0)"
    )


def _modules_after(command: list[str], cwd) -> set[str]:
    """The modules loaded by the time `aegan <command>` has run in `cwd` (it may fail: a stage with nothing to
    read still imports what it would work with)."""
    code = (
        "import atexit, sys, json\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.__stderr__))\n"
        "from stages.cli import app\n"
        f"app({command!r})"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)
    import json

    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_download_prepare_and_report_import_no_model_code(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    for command, allowed in (
        (["download", "digits"], set()),
        (["prepare", "digits"], {"torch"}),
        (["report", "autoencoders"], set()),
    ):
        loaded = _modules_after(command, tmp_path)
        assert not {
            m for m in loaded if m.startswith(("pipeline.models", "pipeline.training", "pipeline.experiment"))
        }, command
        assert ("torch" in loaded) <= ("torch" in allowed), command  # prepare's distortions are torch operators
    assert "mlflow" not in _modules_after(["evaluate", "ae_digits"], tmp_path)  # evaluate opens no tracking store


def test_derive_and_sweep_name_what_params_yaml_does_not_list(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data may be written: an unlisted name fails before any output is claimed
    params = ["--params", str(ROOT / "params.yaml")]
    result = CliRunner().invoke(app, ["derive", "digits_ae", *params])
    assert result.exit_code == 1
    assert "derived.digits_ae: no such entry; choose one of digits_vae" in result.output
    result = CliRunner().invoke(app, ["sweep", "ambient_drop_digits", "50", *params])
    assert result.exit_code == 1
    assert "sweep: ambient_drop_digits at 50% is not a point" in result.output  # the default sweep is empty
    result = CliRunner().invoke(app, ["derive", "digits_vae", *params])
    assert result.exit_code == 1 and "run `dvc repro classify@digits` first" in result.output
    assert not any(tmp_path.rglob("*.npy"))
