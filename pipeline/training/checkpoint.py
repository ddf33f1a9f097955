"""Resumable training state on disk: written under a temporary name and renamed, so a kill never leaves half a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import TrainingError


def save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    torch.save(state, partial)
    os.replace(partial, path)


def load(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a file from another version, or damaged by hand
        raise TrainingError(f"checkpoint {path} cannot be read ({error.__class__.__name__}); delete it to start over") from None


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
