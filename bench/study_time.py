"""Where a study's share of `dvc repro` goes: each of its stages timed inside one `dvc repro`, split into
training and everything else (process start-up, data, scoring, figures, DVC's own bookkeeping).

    python bench/study_time.py ambient          # about 6 minutes on 2 CPU cores

The commit (HEAD, or --commit) is checked out into a temporary git worktree, with its committed dvc.lock,
and `dvc repro --force report@<study> render@<experiment> …` (the report does not read the figures, so
the render stages are named too) runs there from scratch with this environment's packages and a
throw-away MLflow store: the study's upstream stages (download, prepare, classify) first, then its own.
A stage's time runs from DVC announcing it to DVC announcing the next one, so it includes DVC hashing,
caching and rewriting dvc.lock after the command. Upstream stages are listed but not counted: other
studies share them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE = re.compile(r"Running stage '([^']+)'")
TRAINED = re.compile(r"^trained (\S+) in ([0-9.]+) s")


def timed_stages(tree: Path, targets: list[str]) -> tuple[list[tuple[str, float]], dict[str, float]]:
    """(stage, seconds) in the order DVC ran them, and each trained experiment's training seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree), "MLFLOW_TRACKING_URI": f"sqlite:///{tree}/mlflow.db",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    command = ["dvc", "repro", "--force", *targets]
    process = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marks: list[tuple[str, float]] = []  # (stage, when DVC announced it)
    training: dict[str, float] = {}
    tail: list[str] = []
    for line in process.stdout:
        now = time.perf_counter()
        tail = [*tail[-40:], line]
        if found := STAGE.search(line):
            marks.append((found.group(1), now))
        elif found := TRAINED.match(line.strip()):
            training[found.group(1)] = float(found.group(2))
    ended = time.perf_counter()
    if process.wait():
        raise SystemExit(f"{' '.join(command)} failed:\n{''.join(tail)}")
    ends = [when for _, when in marks[1:]] + [ended]
    return [(stage, end - start) for (stage, start), end in zip(marks, ends)], training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study")
    parser.add_argument("--commit", default="HEAD")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), args.commit], cwd=ROOT, check=True)
        try:
            experiments = yaml.safe_load((tree / "params.yaml").read_text())["experiments"]  # the timed commit's
            names = [name for name, settings in experiments.items() if settings["study"] == args.study]
            if not names:
                raise SystemExit(f"no experiment of {args.commit} has study {args.study!r}")
            stages, training = timed_stages(tree, [f"report@{args.study}", *(f"render@{name}" for name in names)])
        finally:  # never hide the run's own error behind a failed clean-up
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
    own = {f"report@{args.study}"} | {f"{kind}@{name}" for name in names for kind in ("train", "evaluate", "render")}
    print(f"{'stage':<40} {'seconds':>8} {'training':>9}")
    for stage, seconds in stages:
        trained = training.get(stage.removeprefix("train@"), 0.0) if stage.startswith("train@") else 0.0
        mark = "" if stage in own else "   (upstream, not counted)"
        print(f"{stage:<40} {seconds:>8.1f} {trained or '':>9}{mark}")
    counted = [(stage, seconds) for stage, seconds in stages if stage in own]
    total = sum(seconds for _, seconds in counted)
    learning = sum(training.get(stage.removeprefix("train@"), 0.0) for stage, _ in counted if stage.startswith("train@"))
    rest = total - learning
    print(f"\nstudy `{args.study}`: {total:.0f} s for {len(counted)} stages; training {learning:.0f} s; "
          f"everything else {rest:.0f} s ({rest / len(counted):.1f} s per stage)")  # fmt: skip


if __name__ == "__main__":
    main()
