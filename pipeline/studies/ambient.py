"""The ambient study (Ambient VAE-GAN against supervised, ACSG and non-learned restoration): the seed's results
figure and time-against-error plot, the seed's published CelebA numbers beside ours, and the ACSG time ratio
(measured by evaluate in one process, see `pipeline.evaluation.evaluate.search_race`).
The non-learned and distorted-input rows are every restore task's references (`report.reference_rows`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Params
from pipeline.figures import plot_curves
from pipeline.studies.base import Figure, Study

# The seed's table (Ambient VAE-GAN, CelebA 64×64, one tiled batch of 64): (method, forward model) -> (PSNR, SSIM)
SEED_CELEBA = {
    ("supervised", "add_noise"): (20.28, 0.82),
    ("supervised", "drop_independent"): (18.56, 0.67),
    ("supervised", "drop_patch"): (18.45, 0.65),
    ("ACSG", "add_noise"): (20.02, 0.81),
    ("ACSG", "drop_independent"): (17.07, 0.58),
    ("ACSG", "drop_patch"): (16.10, 0.48),
    ("ambient", "add_noise"): (20.20, 0.83),
    ("ambient", "drop_independent"): (17.51, 0.60),
    ("ambient", "drop_patch"): (16.15, 0.49),
    ("non-learned", "add_noise"): (19.54, 0.76),
    ("non-learned", "drop_independent"): (15.24, 0.42),
    ("non-learned", "drop_patch"): (16.23, 0.50),
}  # fmt: skip -- the seed's table, one (method, forward model) per cell as it printed them


class Ambient(Study):
    key_columns = ("forward",)

    def rows(self, params: Params, rows: list[dict]) -> list[dict]:
        """No rows of its own (the non-learned and distorted-input rows are every restore task's references);
        on each row with an encoder, in place, how many times longer a latent search through its own decoder
        took than its encoder on the same test batch, in the same process (`search_race`); on CelebA the
        seed's numbers."""
        for row in rows:
            if "race_search_seconds_per_image" in row:
                row["acsg_time_ratio"] = row["race_search_seconds_per_image"] / row["race_encoder_seconds_per_image"]
            seed = SEED_CELEBA.get((row.get("method"), row.get("forward")))
            if seed and params.dataset(row["dataset"]).source == "celeba":
                row["seed_psnr"], row["seed_ssim"] = seed
        return []

    def seed_result(self, row: dict) -> str:
        seed = SEED_CELEBA.get((row.get("method"), row.get("forward")))
        return f"{seed[0]:.2f} dB, SSIM {seed[1]:.2f} (CelebA 64×64, tiled)" if seed else ""

    def comparison(self, key: str, names: list[str], previews: dict, record: Callable[[str], dict]) -> Figure | None:
        """The seed's results figure: a block per forward model, its rows original, distorted, every method's
        restoration (in params order) and the non-learned one."""
        if not key.endswith("_restore"):
            return None
        by_forward: dict[str, list[str]] = {}
        for name in names:
            by_forward.setdefault(record(name)["forward"], []).append(name)
        labels, rows = [], []
        for forward, members in by_forward.items():
            first = previews[members[0]]
            methods = [f"{forward}: {name}" for name in members]
            labels += [f"{forward}: original", f"{forward}: distorted", *methods, f"{forward}: non-learned"]
            rows += [first["truth"], first["input"], *(previews[name]["output"] for name in members), first["baseline"]]
        return labels, rows

    def figures(
        self, table: pd.DataFrame, preview: Callable[[str], dict], folder: Path, sweep: list[dict]
    ) -> dict[str, list[str]]:
        """time_<dataset>_<forward>.png: each forward model's methods, time against error (see `curves`); with a
        sweep, sweep.png: test PSNR against drop probability per method, the non-learned restoration's too."""
        curves = self.curves(table, preview)
        for key, methods in curves.items():
            plot_curves(methods, f"{key}: time against error", folder / f"time_{key}.png")
        shown = {f"time_{key}.png": list(methods) for key, methods in curves.items()}
        if sweep:
            lines = sweep_lines(sweep)
            labels = ("drop probability p (drop_independent)", "test PSNR (dB)")
            plot_curves(lines, "PSNR against drop probability", folder / "sweep.png", axes_labels=labels, log_x=False)
            shown["sweep.png"] = list(lines)
        return shown

    def curves(
        self, table: pd.DataFrame, preview: Callable[[str], dict]
    ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Per "<dataset>_<forward>": method -> (seconds per image, mean squared error), a curve for the latent
        search (its error after each step, on the first 64 test images) and one point for every other method."""
        curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        if "forward" not in table:
            return curves
        for row in table[table["forward"] != ""].itertuples():
            key = f"{row.dataset}_{row.forward}"
            if row.method == "distorted input":
                continue
            if row.method == "ACSG":
                curve = preview(row.experiment)["search_curve"]
                curves.setdefault(key, {})[f"ACSG ({row.experiment})"] = (curve[:, 0], curve[:, 1])
            else:
                label = f"{row.method} ({row.experiment})" if row.model != "non-learned" else "non-learned"
                curves.setdefault(key, {})[label] = (np.array([row.seconds_per_image]), np.array([row.mse_mean]))
        return curves

    def score_columns(self, table: pd.DataFrame) -> dict[str, list[str]]:
        shown = {}
        if "tiled_psnr" in table:  # the seed's protocol: one 8×8 grid of the first 64 test images, SSIM data_range 2
            shown["tiled PSNR / SSIM"] = _pairs(table["tiled_psnr"], table["tiled_ssim"])
        if "seed_psnr" in table:
            shown["seed (CelebA)"] = _pairs(table["seed_psnr"], table["seed_ssim"])
        return shown

    def timing_columns(self, table: pd.DataFrame) -> dict[str, list[str]]:
        if "acsg_time_ratio" not in table:
            return {}
        return {"ACSG time ×": [f"{v:.0f}" if pd.notna(v) else "" for v in table["acsg_time_ratio"]]}


def sweep_lines(points: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Label -> (p, PSNR) in increasing p: one line per swept experiment ("<method> (<experiment>)"), and one for
    the non-learned restoration of the same inputs (read off the first experiment: every one has the same)."""
    points = sorted(points, key=lambda point: point["p"])
    lines: dict[str, list[tuple[float, float]]] = {}
    for point in points:
        lines.setdefault(f"{point['method']} ({point['experiment']})", []).append((point["p"], point["psnr_mean"]))
    first = points[0]["experiment"]
    lines["non-learned"] = [
        (point["p"], point["baseline_psnr_mean"]) for point in points if point["experiment"] == first
    ]
    return {label: (np.array([x for x, _ in xy]), np.array([y for _, y in xy])) for label, xy in lines.items()}


def _pairs(first: pd.Series, second: pd.Series) -> list[str]:
    return [f"{p:.2f} / {q:.2f}" if pd.notna(p) else "" for p, q in zip(first, second)]
