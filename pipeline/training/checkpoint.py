"""Resumable training state on disk: written under a temporary name and renamed, so a kill never leaves half a file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import TrainingError, first_line
from pipeline.files import new_file

CHECKPOINT_SECONDS = 10.0  # the least time between two checkpoints of a run (see callbacks.Checkpointer)


def interval() -> float:
    """CHECKPOINT_SECONDS, or AEGAN_CHECKPOINT_SECONDS where set: how often a run is checkpointed changes no
    result, so it is a setting of the machine (a preemptible one may want minutes), not of params.yaml."""
    text = os.environ.get("AEGAN_CHECKPOINT_SECONDS", "")
    try:
        seconds = float(text) if text else CHECKPOINT_SECONDS
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise TrainingError(f"AEGAN_CHECKPOINT_SECONDS is {text!r}; set it to a number of seconds (0: every epoch)")
    return seconds


def save(path: Path, state: dict[str, Any]) -> None:
    with new_file(path) as partial:
        torch.save(state, partial)


RESUMES_WITH = ("fingerprint", "epoch", "step", "run_id", "model", "update", "rng", "history", "seconds")


def load(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none, or when the file cannot serve a resume: unreadable,
    holding more than tensors, numbers, strings and containers of them (it is loaded as data,
    `weights_only=True`, so a crafted file runs no code), or lacking what resuming needs. Those are said
    in one line on stderr; training then starts over."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # damaged, from another version, or not data at all
        print(f"{path} cannot be read as a checkpoint ({first_line(error)}); training from scratch", file=sys.stderr)
        return None
    missing = [key for key in RESUMES_WITH if key not in state] if isinstance(state, dict) else list(RESUMES_WITH)
    if missing:
        print(f"{path} lacks what resuming needs ({', '.join(missing)}); training from scratch", file=sys.stderr)
        return None
    kinds = {
        "fingerprint": str,
        "epoch": int,
        "step": int,
        "run_id": (str, type(None)),
        "model": dict,
        "update": dict,
        "rng": dict,
        "history": list,
        "seconds": (int, float),
    }
    wrong = [key for key, kind in kinds.items() if not isinstance(state[key], kind) or isinstance(state[key], bool)]
    if wrong:
        print(f"{path} holds values of the wrong kind ({', '.join(wrong)}); training from scratch", file=sys.stderr)
        return None
    return state


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random stream training draws from: the batch/noise generator and torch's global ones."""
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(generator: torch.Generator, state: dict[str, Any]) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
