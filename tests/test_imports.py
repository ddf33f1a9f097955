"""The library's module-level import graph has no circle: each module can be read, and imported, on its own."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The pipeline modules `path` imports when it is imported (not inside functions, not for type checking)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            while name and name not in modules:  # `from pipeline.tasks import Batch` imports pipeline.tasks
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found - {module_name(path)}


def test_no_import_circle_among_pipeline_modules():
    files = sorted((ROOT / "pipeline").rglob("*.py"))
    modules = {module_name(path) for path in files}
    graph = {module_name(path): module_level_imports(path, modules) for path in files}
    circles, state = [], {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                circles.append(" -> ".join([*trail[trail.index(other) :], other]))
            elif other not in state:
                visit(other, [*trail, other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_no_library_module_is_over_300_lines():
    long = [
        f"{path.relative_to(ROOT)}: {count} lines"
        for path in sorted((ROOT / "pipeline").rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > 300
    ]
    assert long == []
