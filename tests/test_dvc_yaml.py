"""dvc.yaml: each stage's code deps are exactly the project modules its command imports, found by reading the
imports (module level and inside functions) from the stage's own file, transitively; and report@<study>
depends on its own study's evaluations, not on the whole `experiments` section."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def imported_names(file: Path) -> set[str]:
    """Every `pipeline.…` name `file` imports anywhere but under `if TYPE_CHECKING:` (a module, or a module's member)."""
    tree = ast.parse(file.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}  # fmt: skip
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return {name for name in names if name.split(".")[0] == "pipeline"}


def stage_modules(command: str) -> set[Path]:
    """The project files `aegan <command>` can execute: its stage file, stages/common.py and every pipeline module
    reachable through imports, packages' __init__ included (importing a.b runs a/__init__.py)."""
    start = ROOT / "stages" / f"{command}.py"
    seen = {start, ROOT / "stages" / "common.py"}
    todo = sorted(imported_names(start) | imported_names(ROOT / "stages" / "common.py"))
    while todo:
        parts = todo.pop().split(".")
        for end in range(1, len(parts) + 1):
            file = module_file(".".join(parts[:end]))
            if file is not None and file not in seen:
                seen.add(file)
                todo.extend(imported_names(file))
    return {file.relative_to(ROOT) for file in seen if not _docstring_only(file)}


def _docstring_only(file: Path) -> bool:
    """A package __init__ holding only its docstring, which no output can depend on."""
    body = ast.parse(file.read_text()).body
    return len(body) <= 1 and all(isinstance(node, ast.Expr) for node in body)


def code_deps(stage: str) -> set[Path]:
    return {Path(dep) for dep in STAGES[stage]["do"]["deps"] if dep.startswith(("pipeline", "stages"))}


def covered(module: Path, deps: set[Path]) -> bool:
    return any(module == dep or dep in module.parents for dep in deps)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_depends_on_every_module_it_imports_and_on_no_other(stage):
    modules, deps = stage_modules(stage), code_deps(stage)
    assert not [str(m) for m in sorted(modules) if not covered(m, deps)], f"dvc.yaml's {stage} misses these imports"
    for dep in deps:  # a folder stands for all of its modules, so the stage must import every one of them
        files = {f.relative_to(ROOT) for f in (ROOT / dep).rglob("*.py") if not _docstring_only(f)} if (ROOT / dep).is_dir() else {dep}
        assert files and files <= modules, f"dvc.yaml's {stage} depends on {dep}, but imports only {sorted(map(str, files & modules))} of it"


def test_the_scan_finds_imports_inside_functions():
    assert Path("pipeline/training/run.py") in stage_modules("train")  # imported in the command's body
    assert Path("pipeline/models/gan.py") in stage_modules("evaluate")  # through the registry in pipeline/models/__init__.py
    assert not {m for m in stage_modules("report") if "models" in m.parts or "training" in m.parts}


def test_a_report_depends_on_its_study_and_not_on_every_experiment():
    report = STAGES["report"]["do"]
    assert report["params"] == ["studies"]
    assert "metrics/${item}" in report["deps"]
