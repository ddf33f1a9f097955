"""Evaluation: per-image image-quality scores and the evaluate stage's work."""
