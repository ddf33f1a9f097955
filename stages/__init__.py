"""One Typer command per DVC stage; `aegan` (stages.cli) gathers them. Heavy imports happen inside commands."""
