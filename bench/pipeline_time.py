"""What the default pipeline costs from scratch, stage by stage, at two commits, one after the other:

    python bench/pipeline_time.py --before d432c61     # the last commit with three stages per experiment; ~50 min

Each commit (--before, then --after, HEAD by default) is checked out into a temporary git worktree and run with
`dvc repro --force` there, with this environment's packages and a throw-away MLflow store; the second run starts
when the first has finished, so they do not compete for the CPU. A stage's wall time runs from DVC announcing it
to DVC announcing the next (or finishing), so DVC's hashing and its rewrite of dvc.lock count. Its work is what
the stage reports on a `work: <s> s` line (the time after its imports and params, training time for train); a
commit whose stages report none counts the training time of train stages and nothing else, so its start-up
figures are upper bounds. Fixed cost = wall time − work.

Then, at --after only: a second `dvc repro` (nothing to do), and, once the outputs are compared,
`experiments.<--change>.update.lr` halved followed by `dvc repro`, which must re-run exactly that experiment's
train and evaluate and its study's report.
Between the two, every output both from-scratch runs wrote in metrics/, reports/ and plots/ is compared, clock
readings left out.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE = re.compile(r"Running stage '([^']+)'")
WORK = re.compile(r"^work: ([0-9.]+) s$")
TRAINED = re.compile(r"^trained (\S+) in ([0-9.]+) s")
CLOCK_KEYS = {"train_seconds", "seconds_per_image", "baseline_seconds_per_image", "acsg_time_ratio"}  # clock readings


def environment(tree: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(tree),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tree}/mlflow.db",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }


def repro(tree: Path, *args: str) -> tuple[float, list[tuple[str, float, float | None]]]:
    """Seconds of `dvc repro *args` in `tree`, and (stage, wall seconds, reported work or None) per stage run."""
    command = ["dvc", "repro", *args]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=tree, env=environment(tree), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    marks: list[tuple[str, float]] = []
    work: dict[str, float] = {}
    tail: list[str] = []
    for line in process.stdout:
        now = time.perf_counter()
        tail = [*tail[-40:], line]
        text = line.strip()
        if found := STAGE.search(line):
            marks.append((found.group(1), now))
        elif marks and (found := WORK.match(text)):
            work[marks[-1][0]] = float(found.group(1))
        elif marks and (found := TRAINED.match(text)) and marks[-1][0] not in work:
            work[marks[-1][0]] = float(found.group(2))  # a commit without work lines: its training time
    ended = time.perf_counter()
    if process.wait():
        raise SystemExit(f"{' '.join(command)} failed in {tree}:\n{''.join(tail)}")
    ends = [when for _, when in marks[1:]] + [ended]
    return ended - started, [(stage, end - start, work.get(stage)) for (stage, start), end in zip(marks, ends)]


def summarise(
    label: str, seconds: float, stages: list[tuple[str, float, float | None]], lock: Path
) -> dict[str, float]:
    fixed = [wall - (work or 0.0) for _, wall, work in stages]
    kinds: dict[str, list[float]] = {}
    for stage, wall, work in stages:
        kinds.setdefault(stage.split("@")[0], []).append(wall - (work or 0.0))
    print(
        f"\n{label}: {seconds / 60:.1f} min for {len(stages)} stages; work {sum(w or 0 for _, _, w in stages):.0f} s, "
        f"fixed cost {sum(fixed):.0f} s, median {statistics.median(fixed):.2f} s per stage; dvc.lock "
        f"{lock.stat().st_size / 1024:.0f} KB"
    )
    for kind, values in kinds.items():
        print(
            f"  {kind:<9} {len(values):>3} stages, fixed cost median {statistics.median(values):5.2f} s, sum "
            f"{sum(values):6.0f} s"
        )
    print(f"  {'stage':<36} {'wall s':>7} {'work s':>7} {'fixed s':>8}")
    for stage, wall, work in stages:
        print(f"  {stage:<36} {wall:>7.2f} {'' if work is None else f'{work:.2f}':>7} {wall - (work or 0.0):>8.2f}")
    return {"seconds": seconds, "stages": len(stages), "median_fixed": statistics.median(fixed), "fixed": sum(fixed)}


def clean(path: Path) -> object:
    """A comparable reading of one output: clock readings dropped (JSON keys, table columns, time plots)."""
    if path.suffix == ".json":
        return {key: value for key, value in json.loads(path.read_text()).items() if key not in CLOCK_KEYS}
    if path.name == "table.csv":
        table = pd.read_csv(path)
        return table.drop(columns=[c for c in table if c in CLOCK_KEYS]).to_csv(index=False)
    if path.suffix == ".npz":  # a search curve's first column is seconds per image: a clock reading
        with np.load(path) as arrays:
            return {
                key: (arrays[key][:, 1:] if key == "search_curve" else arrays[key]).tobytes() for key in arrays.files
            }
    return path.read_bytes()


def compare(before: Path, after: Path) -> None:
    """Every output of the two runs side by side: identical, moved, or written by one run only."""

    def outputs(tree: Path) -> set[Path]:
        found = {
            p.relative_to(tree)
            for folder in ("metrics", "reports", "plots")
            for p in (tree / folder).rglob("*")
            if p.is_file()
        }
        return {
            p
            for p in found
            if p.suffix != ".md" and not p.name.startswith(("time_", ".")) and not p.name.endswith(".run.json")
        }

    old, new = outputs(before), outputs(after)
    same, moved = [], []
    for path in sorted(old & new):
        (same if clean(before / path) == clean(after / path) else moved).append(path)
    print(
        f"\noutputs: {len(same)} identical but for clock readings, {len(moved)} differ, "
        f"{len(old - new)} only before, {len(new - old)} only after (table.md, time plots and records left out)"
    )
    for path in moved:
        print(f"  differs: {path}{describe(before / path, after / path)}")
    for path in sorted(old - new):
        print(f"  only before: {path}")
    for path in sorted(new - old):
        print(f"  only after: {path}")


def describe(before: Path, after: Path) -> str:
    if before.suffix == ".json":
        old, new = clean(before), clean(after)
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        return " (" + ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in keys[:4]) + ")"
    if before.suffix == ".npz":
        old, new = clean(before), clean(after)
        return " (arrays " + ", ".join(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)) + ")"
    if before.suffix == ".png":
        from PIL import Image

        first, second = (
            np.asarray(Image.open(io.BytesIO(p.read_bytes())).convert("RGB"), dtype=np.int16) for p in (before, after)
        )
        if first.shape != second.shape:
            return f" (size {first.shape[:2]} -> {second.shape[:2]})"
        changed, largest = int((first != second).any(-1).sum()), int(np.abs(first - second).max())
        return f" ({changed} of {first.shape[0] * first.shape[1]} pixels, largest step {largest})"
    return ""


def change_learning_rate(tree: Path, name: str) -> list[str]:
    """Halve experiments.<name>.update.lr and repro: the stages that ran."""
    path = tree / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["experiments"][name]["update"]["lr"] /= 2
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    _, stages = repro(tree)
    return sorted(stage for stage, _, _ in stages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument(
        "--change", default="ae_digits", help="the experiment whose learning rate is changed at --after"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        trees = {commit: Path(scratch) / label for commit, label in ((args.before, "before"), (args.after, "after"))}
        try:
            figures = {}
            for commit, tree in trees.items():
                subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), commit], cwd=ROOT, check=True)
                seconds, stages = repro(tree, "--force")
                figures[commit] = summarise(f"{commit} ({tree.name})", seconds, stages, tree / "dvc.lock")
            after = trees[args.after]
            started = time.perf_counter()
            _, idle = repro(after)
            noop = time.perf_counter() - started
            compare(trees[args.before], after)  # before the change below retrains one experiment
            ran = change_learning_rate(after, args.change)
        finally:  # never hide the run's own error behind a failed clean-up
            for tree in trees.values():
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False, capture_output=True
                )
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
    old, new = figures[args.before], figures[args.after]
    study = yaml.safe_load((ROOT / "params.yaml").read_text())["experiments"][args.change]["study"]
    expected = sorted([f"train@{args.change}", f"evaluate@{args.change}", f"report@{study}"])
    print(f"\n{'':<34} {'before':>9} {'after':>9} {'ratio':>7} {'target':>8}")
    print(
        f"{'dvc repro --force, minutes':<34} {old['seconds'] / 60:>9.1f} {new['seconds'] / 60:>9.1f} "
        f"{new['seconds'] / old['seconds']:>7.2f} {'<= 12':>8}"
    )
    print(f"{'stages':<34} {old['stages']:>9} {new['stages']:>9}")
    print(
        f"{'fixed cost per stage, median s':<34} {old['median_fixed']:>9.2f} {new['median_fixed']:>9.2f} "
        f"{new['median_fixed'] / old['median_fixed']:>7.2f} {'<= 2.5':>8}"
    )
    print(f"{'fixed cost in all, s':<34} {old['fixed']:>9.0f} {new['fixed']:>9.0f} {new['fixed'] / old['fixed']:>7.2f}")
    print(f"{'no-op dvc repro, s':<34} {'':>9} {noop:>9.2f} {'':>7} {'<= 3':>8}   ({len(idle)} stages ran)")
    print(
        f"lr of {args.change} changed: ran {', '.join(ran)}; "
        + ("exactly as expected" if ran == expected else f"EXPECTED {', '.join(expected)}")
    )


if __name__ == "__main__":
    main()
