"""dvc.yaml and pipeline.fingerprint: every stage depends on its kind's list of the files it runs, that list holds
every project module the stage's command imports (read statically, and checked against what a running command
loads), and report@<study> depends on its own study's evaluations, not on the whole `experiments` section."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.fingerprint import KINDS, fingerprint, stage_files, write_fingerprints
from tests.conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_stage_depends_on_its_kinds_code_list_and_on_no_code_file():
    assert set(STAGES) == {"code", *KINDS}
    assert STAGES["code"]["deps"] == ["pipeline", "stages"]  # the lists are rewritten when any project file changes
    assert STAGES["code"]["outs"] == [f"data/code/{kind}.txt" for kind in KINDS]
    for kind in KINDS:
        deps = STAGES[kind].get("do", STAGES[kind])["deps"]  # `summary` is one stage, the others a foreach
        assert f"data/code/{kind}.txt" in deps
        assert not [dep for dep in deps if dep.startswith(("pipeline", "stages"))], (
            kind
        )  # one entry in dvc.lock, not twenty


def test_plots_show_draws_each_study_as_one_chart_per_loss_and_its_side_by_side_figures():
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    entries = {next(iter(entry)) if isinstance(entry, dict) else entry: entry for entry in plots}
    studies = yaml.safe_load((ROOT / "params.yaml").read_text())["studies"]
    for study in studies:
        losses = entries[f"{study}: loss per epoch"][f"{study}: loss per epoch"]
        assert (losses["template"], losses["x"], losses["y"]) == (
            "losses",
            "epoch",
            {f"reports/{study}/losses.csv": "value"},
        )
        assert f"reports/{study}/comparison" in entries
    assert not [stage for stage in STAGES.values() if "plots" in stage.get("do", stage)]  # only the grouped ones
    template = json.loads((ROOT / ".dvc/plots/losses.json").read_text())
    assert template["data"]["values"] == "<DVC_METRIC_DATA>" and template["facet"]["field"] == "loss"
    assert template["spec"]["encoding"]["color"]["field"] == "experiment"  # the columns report@<study> writes


def test_the_scan_follows_imports_inside_functions_and_through_packages():
    train, evaluate, report = (set(map(str, stage_files(ROOT, kind))) for kind in ("train", "evaluate", "report"))
    assert "pipeline/training/run.py" in train  # imported in the command's body
    assert "pipeline/models/gan.py" in evaluate  # through the registry in pipeline/models/__init__.py
    assert "pipeline/tracking.py" in report  # imported inside pipeline.report.log_study
    assert not {
        path for path in evaluate if "training" in path or path == "pipeline/tracking.py"
    }  # evaluate runs no training code
    assert not {path for path in report if "/models/" in path or "/training/" in path}


def _loaded_project_files(kind: str, args: list[str], cwd: Path) -> set[str]:
    """The project files a real `aegan <kind> …` had loaded when it ended (it may fail for want of data)."""
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps([m.__file__ for m in list(sys.modules.values()) if getattr(m, "
        "'__file__', None)]), file=sys.__stderr__))\n"
        f"from stages.cli import app\napp({[kind, *args]!r})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": ""}
    )
    files = json.loads(result.stderr.strip().splitlines()[-1])
    project = [Path(f).resolve() for f in files if Path(f).resolve().is_relative_to(ROOT)]
    return {str(f.relative_to(ROOT)) for f in project if f.relative_to(ROOT).parts[0] in ("pipeline", "stages")}


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        ("download", ["digits"]),
        ("prepare", ["digits"]),
        ("evaluate", ["ae_digits"]),
        ("train", ["ae_digits"]),
        ("report", ["autoencoders"]),
    ],
)
def test_what_a_running_stage_loads_is_in_its_list(tmp_path, kind, args):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    loaded = _loaded_project_files(kind, args, tmp_path)
    assert f"stages/{kind}.py" in loaded
    listed = set(map(str, stage_files(ROOT, kind)))
    assert (
        loaded
        - {"stages/cli.py", "stages/__init__.py"}
        - {f"stages/{k}.py" for k in ("apply", "check", "code", *KINDS)}
        <= listed
    )


def test_a_list_changes_exactly_when_a_file_its_stage_runs_does(tmp_path):
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "stages", tmp_path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    before = {kind: fingerprint(tmp_path, kind) for kind in KINDS}
    with (tmp_path / "pipeline" / "report.py").open("a") as file:
        file.write("\n# a comment\n")
    after = {kind: fingerprint(tmp_path, kind) for kind in KINDS}
    assert [kind for kind in KINDS if before[kind] != after[kind]] == ["report", "summary"]  # summary reads its tables
    with (tmp_path / "pipeline" / "models" / "gan.py").open("a") as file:
        file.write("\n# a comment\n")
    paths = write_fingerprints(tmp_path, tmp_path / "code")
    changed = [path.stem for path in paths if path.read_text() != before[path.stem]]
    assert changed == [
        "derive",
        "train",
        "evaluate",
        "sweep",
        "report",
        "summary",
    ]  # report (and summary) for its comment; derive, train, evaluate and sweep build models


def test_a_report_depends_on_its_study_and_not_on_every_experiment():
    report = STAGES["report"]["do"]
    assert report["params"] == ["studies", "sweep"]
    assert "metrics/${item}" in report["deps"]
