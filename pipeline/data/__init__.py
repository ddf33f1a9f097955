"""Datasets: the source registry, and fetching, verifying and extracting what the sources download."""
