"""pipeline.files: outputs are whole or absent, one process writes an output at a time, and nothing is written or
removed outside the project."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import AeganError
from pipeline.files import BusyError, claim, inside, staged_dir, write_arrays, write_text
from tests.conftest import ROOT


def hold_in_other_process(target: Path) -> subprocess.Popen:
    """A second process that claims `target` and keeps it until its stdin closes."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from pipeline.files import claim
        with claim(Path({str(target)!r})):
            print("held", flush=True)
            sys.stdin.read()
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_claim_held_by_another_process_is_one_line_until_it_ends(tmp_path: Path) -> None:
    target = tmp_path / "prepared"
    holder = hold_in_other_process(target)
    try:
        with (
            pytest.raises(
                BusyError, match=r"^another run is writing .*prepared \(it holds .*\.prepared\.lock\)"
            ) as caught,
            claim(target),
        ):
            pass
        assert "\n" not in str(caught.value)
        with pytest.raises(BusyError):  # staged_dir claims too, and stops before it makes anything
            with staged_dir(target):
                pass
        assert not target.exists() and not list(tmp_path.glob("*.partial"))
    finally:
        holder.stdin.close()
        holder.wait()
    with claim(target), claim(target):  # released with its process; re-entrant within one
        with staged_dir(target) as staging:
            (staging / "a").write_text("a")
    assert (target / "a").read_text() == "a"


def test_staged_dir_replaces_the_old_folder_whole_and_clears_a_killed_runs_staging(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old").write_text("old")
    killed = tmp_path / ".out.x1y2.partial"  # what a run killed mid-write leaves
    killed.mkdir()
    (killed / "half").write_text("half")
    unrelated = tmp_path / ".other.x1y2.partial"
    unrelated.mkdir()
    with staged_dir(target) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".out.") and not list(staging.iterdir())
        assert not killed.exists()
        (staging / "new").write_text("new")
        assert (target / "old").exists()  # a reader sees the old folder until the new one is complete
    assert sorted(path.name for path in target.iterdir()) == ["new"]
    assert unrelated.exists()  # another output's staging is not ours to remove
    assert sorted(path.name for path in tmp_path.iterdir()) == [".other.x1y2.partial", ".out.lock", "out"]


def test_a_failed_stage_leaves_the_old_output(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with staged_dir(target) as staging:
        (staging / "a").write_text("first")
    with pytest.raises(KeyboardInterrupt), staged_dir(target) as staging:
        (staging / "a").write_text("second, half")
        raise KeyboardInterrupt
    assert (target / "a").read_text() == "first"
    assert not list(tmp_path.glob(".*partial"))


def test_staged_dir_refuses_a_link_or_a_file_rather_than_replace_what_it_points_at(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("keep")
    project = tmp_path / "project"
    project.mkdir()
    (project / "out").symlink_to(elsewhere)
    (project / "file").write_text("not a folder")
    for target in (project / "out", project / "file"):
        with pytest.raises(AeganError, match=r"exists and is not a folder aegan wrote; move it away"):
            with staged_dir(target) as staging:
                (staging / "x").write_text("x")
    assert [path.name for path in elsewhere.iterdir()] == ["precious"]
    assert (project / "out").is_symlink() and (project / "file").read_text() == "not a folder"


def test_inside_refuses_paths_that_leave_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "link").symlink_to(tmp_path)
    assert inside(project / "models" / "new", project) == project / "models" / "new"
    for path in (project / ".." / "x", project / "models" / "link" / "x", Path("/etc/x"), project / "models" / "link"):
        with pytest.raises(
            AeganError, match=r"lies outside the project .*; aegan writes only inside the project folder"
        ):
            inside(path, project)


def test_files_are_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "scores.json"
    write_text(path, "one")
    write_text(path, "two")
    assert path.read_text() == "two" and path.stat().st_mode & 0o777 == 0o644
    write_arrays(tmp_path / "preview.npz", {"a": np.arange(3)})
    assert np.load(tmp_path / "preview.npz")["a"].tolist() == [0, 1, 2]

    class Unwritable:
        def __array__(self, *args, **kwargs):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_arrays(tmp_path / "preview.npz", {"a": Unwritable()})
    assert np.load(tmp_path / "preview.npz")["a"].tolist() == [0, 1, 2]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["preview.npz", "scores.json"]


def test_a_lock_file_linked_elsewhere_is_refused_and_its_target_left_alone(tmp_path: Path) -> None:
    victim = tmp_path / "authorized_keys"
    victim.write_text("keep")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / ".exp.lock").symlink_to(victim)  # what a crafted checkout could hold
    with pytest.raises(AeganError, match=r"cannot use .*\.exp\.lock as a lock file .*; remove it and run again"):
        with claim(tmp_path / "models" / "exp"):
            pass
    assert victim.read_text() == "keep"


def test_a_published_folder_is_an_ordinary_one(tmp_path: Path) -> None:
    with staged_dir(tmp_path / "out") as staging:
        (staging / "a").write_text("a")
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
