"""What a study adds to the default pipeline: `dvc repro --force` timed at two commits, same machine, same run.

    python bench/pipeline_time.py --before dbae014     # the last commit without the vae_gan study

Each commit is checked out into a temporary git worktree and run from scratch (download, prepare, every
stage) with the current environment's packages and that commit's code; the second run starts only after
the first has finished, so they do not compete for the CPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_repro(commit: str, scratch: Path) -> tuple[float, int]:
    """Seconds of `dvc repro --force` at `commit`, and how many stages ran."""
    tree = scratch / commit
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), commit], cwd=ROOT, check=True)
    try:
        env = {**os.environ, "PYTHONPATH": str(tree), "MLFLOW_TRACKING_URI": f"sqlite:///{tree}/mlflow.db",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
        started = time.perf_counter()
        result = subprocess.run(["dvc", "repro", "--force"], cwd=tree, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if result.returncode:
            raise SystemExit(f"dvc repro failed at {commit}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return seconds, result.stdout.count("Running stage")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--after", default="HEAD")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        before, before_stages = timed_repro(args.before, Path(scratch))
        after, after_stages = timed_repro(args.after, Path(scratch))
    print(f"{args.before}: {before:.0f} s for {before_stages} stages")
    print(f"{args.after}: {after:.0f} s for {after_stages} stages")
    print(f"added: {after - before:.0f} s ({after / before:.2f}×) for {after_stages - before_stages} more stages")


if __name__ == "__main__":
    main()
