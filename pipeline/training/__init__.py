"""Training: update rules (steps), the shared loop, its callbacks, checkpoints, and the per-experiment run."""
