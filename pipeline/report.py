"""report@<study>: the study's side-by-side table from its experiments' evaluations, and those evaluations
brought into their MLflow runs. Reads only what evaluate wrote (metrics/<study>/, reports/<study>/<experiment>/):
no torch, no model code."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Params
from pipeline.errors import DataError
from pipeline.figures import grid, plot_time_curves, save_png
from pipeline.files import staged_dir, write_text

COMPARISON = "comparison"  # reports/<study>/comparison/: the study's models side by side (so no experiment may take the name)


# The seed's table (Ambient VAE-GAN, CelebA 64×64, one tiled batch of 64): (method, forward model) -> (PSNR, SSIM)
SEED_CELEBA = {
    ("supervised", "add_noise"): (20.28, 0.82), ("supervised", "drop_independent"): (18.56, 0.67), ("supervised", "drop_patch"): (18.45, 0.65),
    ("ACSG", "add_noise"): (20.02, 0.81), ("ACSG", "drop_independent"): (17.07, 0.58), ("ACSG", "drop_patch"): (16.10, 0.48),
    ("ambient", "add_noise"): (20.20, 0.83), ("ambient", "drop_independent"): (17.51, 0.60), ("ambient", "drop_patch"): (16.15, 0.49),
    ("non-learned", "add_noise"): (19.54, 0.76), ("non-learned", "drop_independent"): (15.24, 0.42), ("non-learned", "drop_patch"): (16.23, 0.50),
}  # fmt: skip


def write_report(params: Params, study: str, metrics_dir: Path, reports_dir: Path) -> pd.DataFrame:
    """Write reports/<study>/table.csv, table.md and comparison/*.png (the study's models side by side, and for
    restore studies each forward model's time against error), bring each evaluation into its MLflow run and
    attach the table to a `<study> table` run. Returns the table."""
    table = study_table(params, study, metrics_dir)
    figures = comparisons(params, study, metrics_dir)
    curves = time_curves(params, study, metrics_dir, table)
    folder = reports_dir / study / COMPARISON
    with staged_dir(folder) as staging:
        for key, (_, rows) in figures.items():
            save_png(grid(rows), staging / f"{key}.png")
        for key, methods in curves.items():
            plot_time_curves(methods, f"{key}: time against error", staging / f"time_{key}.png")
    shown = {f"{COMPARISON}/{key}.png": names for key, (names, _) in figures.items()}
    shown |= {f"{COMPARISON}/time_{key}.png": list(methods) for key, methods in curves.items()}
    paths = [reports_dir / study / "table.csv", reports_dir / study / "table.md"]
    write_text(paths[0], table.to_csv(index=False))
    write_text(paths[1], to_markdown(table, f"Study `{study}`", shown))
    log_study(params, study, metrics_dir, reports_dir, [*paths, *sorted(folder.iterdir())])
    return table


def load_record(metrics_dir: Path, study: str, name: str) -> dict[str, Any]:
    """The record evaluate@<name> wrote beside its scores (MLflow run, restore role, figures)."""
    path = metrics_dir / study / f"{name}.run.json"
    if not path.exists():
        raise DataError(f"{path} is missing; run `dvc repro evaluate@{name}` first")
    return json.loads(path.read_text())


def study_table(params: Params, study: str, metrics_dir: Path) -> pd.DataFrame:
    """One row per experiment of `study`: model, dataset, task and every summary metric it has.

    Where an experiment has an FCD, two rows of real images follow for its dataset: the test split's two
    halves against each other (the floor; biased upwards by its small samples) and as many
    training images as a model draws samples against the test split (the same sample sizes as a generator's FCD).

    Restore experiments also name their forward model and method, and are followed by two rows per dataset
    and forward model: the non-learned restoration and the distorted input itself (each from the first such
    experiment's `baseline_` and `input_` scores, which every one of them computes on the same images). Each
    gets `acsg_time_ratio`, the ACSG row's seconds per image over its own, and, on CelebA, the seed's numbers.
    """
    rows = []
    for name, experiment in params.experiments.items():
        if experiment.study != study:
            continue
        path = metrics_dir / study / f"{name}.json"
        if not path.exists():
            raise DataError(f"{path} is missing; run `dvc repro evaluate@{name}` first")
        scores = json.loads(path.read_text())
        rows.append(
            {"experiment": name, "model": experiment.model.name, "dataset": experiment.dataset,
             "task": experiment.task.name, "latent_dim": experiment.model.args.get("latent_dim", ""), **scores}
        )  # fmt: skip
        record = load_record(metrics_dir, study, name)
        if "forward" in record:  # a restore experiment: its forward model and method, as evaluate read them off its task
            rows[-1]["forward"], rows[-1]["method"] = record["forward"], record["method"]
    rows += restore_rows(params, rows)
    for dataset in dict.fromkeys(row["dataset"] for row in rows if "fcd" in row):
        path = metrics_dir / "classifiers" / f"{dataset}.json"
        if not path.exists():
            raise DataError(f"{path} is missing; run `dvc repro classify@{dataset}` first")
        floors = json.loads(path.read_text())
        common = {"model": "real images", "dataset": dataset, "task": "", "latent_dim": ""}
        rows.append({"experiment": "test half vs test half", **common, "fcd": floors["fcd_test_halves"]})
        rows.append({"experiment": "train vs test", **common, "fcd": floors["fcd_train"],
                     "fcd_samples": floors["train_images_for_fcd_train"]})  # fmt: skip
    table = pd.DataFrame(rows)
    if "forward" in table:  # the real-image rows have no forward model
        table["forward"] = table["forward"].fillna("")
    return table


def restore_rows(params: Params, rows: list[dict]) -> list[dict]:
    """The non-learned and distorted-input rows of each (dataset, forward model), and the ACSG time ratio and
    the seed's CelebA numbers on the restore rows (in place)."""
    extra = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if "forward" in row:
            groups.setdefault((row["dataset"], row["forward"]), []).append(row)
    for (dataset, forward), members in groups.items():
        def scored(prefix: str, method: str) -> dict:  # a row from the first member's `<prefix>` scores
            scores = {key.removeprefix(prefix): value for key, value in members[0].items() if key.startswith(prefix)}
            return {"experiment": f"{method} ({forward})", "model": method, "dataset": dataset, "task": "restore",
                    "latent_dim": "", "forward": forward, "method": method, **scores}  # fmt: skip

        non_learned, distorted = scored("baseline_", "non-learned"), scored("input_", "distorted input")
        extra += [non_learned, distorted]
        searched = [row["seconds_per_image"] for row in members if row["method"] == "ACSG"]
        for row in [*members, non_learned]:
            if searched:
                row["acsg_time_ratio"] = searched[0] / row["seconds_per_image"]
            seed = SEED_CELEBA.get((row["method"], forward))
            if seed and params.dataset(dataset).source == "celeba":
                row["seed_psnr"], row["seed_ssim"] = seed
    return extra


def comparisons(params: Params, study: str, metrics_dir: Path) -> dict[str, tuple[list[str], list[np.ndarray]]]:
    """The study's experiments side by side, one figure per dataset and task, from the previews evaluate wrote.

    Models that map images to images share their inputs (the first test images), so their figure's rows are
    the input, each model's output and the truth; generators' rows are their first samples from the same
    noise. Returns {"<dataset>_<task>": (row names, rows of (N, H, W, C) floats in [0, 1])}.
    """
    groups: dict[str, list[str]] = {}
    for name, experiment in params.experiments.items():
        if experiment.study == study:
            groups.setdefault(f"{experiment.dataset}_{experiment.task.name}", []).append(name)
    figures = {}
    for key, names in groups.items():
        previews = {name: load_preview(metrics_dir / study / f"{name}.npz", name) for name in names}
        if "samples" in previews[names[0]]:
            figures[key] = (names, [previews[name]["samples"] for name in names])
        elif key.endswith("_restore"):
            figures[key] = restore_blocks(names, previews, {name: load_record(metrics_dir, study, name)["forward"] for name in names})
        else:
            first = previews[names[0]]
            rows = [first["input"], *(previews[name]["output"] for name in names), first["truth"]]
            figures[key] = (["input", *names, "truth"], rows)
    return figures


def load_preview(path: Path, name: str) -> dict[str, np.ndarray]:
    """The images evaluate kept (uint8 -> [0, 1] floats) and any curve (as it is)."""
    if not path.exists():
        raise DataError(f"{path} is missing; run `dvc repro evaluate@{name}` first")
    with np.load(path) as arrays:
        return {part: arrays[part].astype(np.float32) / (255.0 if arrays[part].dtype == np.uint8 else 1.0) for part in arrays.files}


def restore_blocks(
    names: list[str], previews: dict[str, dict[str, np.ndarray]], forwards: dict[str, str]
) -> tuple[list[str], list[np.ndarray]]:
    """The seed's results figure: a block per forward model, its rows original, distorted, every method's
    restoration (in params order) and the non-learned one."""
    by_forward: dict[str, list[str]] = {}
    for name in names:
        by_forward.setdefault(forwards[name], []).append(name)
    labels, rows = [], []
    for forward, members in by_forward.items():
        first = previews[members[0]]
        labels += [f"{forward}: original", f"{forward}: distorted", *(f"{forward}: {name}" for name in members), f"{forward}: non-learned"]
        rows += [first["truth"], first["input"], *(previews[name]["output"] for name in members), first["baseline"]]
    return labels, rows


def time_curves(params: Params, study: str, metrics_dir: Path, table: pd.DataFrame) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
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
            curve = load_preview(metrics_dir / study / f"{row.experiment}.npz", row.experiment)["search_curve"]
            curves.setdefault(key, {})[f"ACSG ({row.experiment})"] = (curve[:, 0], curve[:, 1])
        else:
            curves.setdefault(key, {})[f"{row.method} ({row.experiment})" if row.model != "non-learned" else "non-learned"] = (
                np.array([row.seconds_per_image]), np.array([row.mse_mean]))
    return curves


def log_study(params: Params, study: str, metrics_dir: Path, reports_dir: Path, table_files: list[Path]) -> list[str]:
    """Bring each of the study's evaluations into the MLflow run its model was trained in (scores as
    `test/<name>`, figures, the per-image scores), and attach the table files to a `<study> table` run,
    through one opening of the store. Returns the experiments whose run is not in the store."""
    from pipeline import tracking

    store = tracking.Store(tracking.resolve_uri(params.tracking.uri))
    missing = []
    for name, experiment in params.experiments.items():
        if experiment.study != study:
            continue
        scores = json.loads((metrics_dir / study / f"{name}.json").read_text())
        figures = sorted((reports_dir / study / name).iterdir()) if (reports_dir / study / name).is_dir() else []
        evaluation = [metrics_dir / study / f"{name}{suffix}" for suffix in (".json", ".csv")]
        if not store.log_evaluation(load_record(metrics_dir, study, name), scores, {"figures": figures, "evaluation": evaluation}):
            missing.append(name)
    with store.start_run(experiment=study, name=f"{study} table", tags={"dvc.stage": f"report@{study}"}) as run:
        for path in table_files:
            run.log_artifact(path, "table")
    if missing:
        print(f"note: the MLflow runs of {', '.join(missing)} are not in this tracking store (results pulled from "
              "elsewhere?); their evaluations are in metrics/ and reports/ only", file=sys.stderr)  # fmt: skip
    return missing


def to_markdown(table: pd.DataFrame, title: str, figures: dict[str, list[str]] | None = None) -> str:
    """The table for reading: each score as "mean ± std", then FCD and train time where present;
    per-component and spread columns stay in the CSV. `figures` (file name -> row names) are listed below it."""
    restore = "forward" in table  # restore studies give the non-learned and input scores rows of their own
    shown = table[["experiment", "model", "dataset", "task", "latent_dim", *(["forward"] if restore else [])]].copy()
    for column in [c for c in table.columns if c.endswith("_mean") and not (restore and c.startswith(("input_", "baseline_")))]:
        score = column.removesuffix("_mean")
        mean, spread = table[column], table[f"{score}_std"]
        shown[score] = [f"{m:.4g} ± {s:.2g}" if pd.notna(m) else "" for m, s in zip(mean, spread)]
    if "explained_variance_total" in table:
        shown["explained variance"] = [f"{v:.3f}" if pd.notna(v) else "" for v in table["explained_variance_total"]]
    if "label_probe_accuracy" in table:  # a linear classifier reading the label off the latent; chance beside it
        shown["label probe"] = [f"{a:.3f} (chance {c:.3f})" if pd.notna(a) else ""
                                for a, c in zip(table["label_probe_accuracy"], table["label_probe_chance"])]  # fmt: skip
    if "tiled_psnr" in table:  # the seed's protocol: one 8×8 grid of the first 64 test images, SSIM data_range 2
        shown["tiled PSNR / SSIM"] = [f"{p:.2f} / {q:.2f}" if pd.notna(p) else "" for p, q in zip(table["tiled_psnr"], table["tiled_ssim"])]
    if "seed_psnr" in table:
        shown["seed (CelebA)"] = [f"{p:.2f} / {q:.2f}" if pd.notna(p) else "" for p, q in zip(table["seed_psnr"], table["seed_ssim"])]
    if "fcd" in table:
        shown["FCD"] = [f"{v:.3g}" if pd.notna(v) else "" for v in table["fcd"]]
    if "train_seconds" in table:
        shown["train s"] = [f"{v:.1f}" if pd.notna(v) else "" for v in table["train_seconds"]]
    if "seconds_per_image" in table:
        shown["ms / image"] = [f"{1000 * v:.3g}" if pd.notna(v) else "" for v in table["seconds_per_image"]]
    if "acsg_time_ratio" in table:
        shown["ACSG time ×"] = [f"{v:.0f}" if pd.notna(v) else "" for v in table["acsg_time_ratio"]]
    if "images" in table:
        shown["images"] = [f"{v:.0f}" if pd.notna(v) else "" for v in table["images"]]
    text = f"# {title}\n\n{shown.to_markdown(index=False)}\n"
    if figures:
        text += "\n## Side by side\n\n" + "".join(f"- `{file}`, rows top to bottom: {', '.join(rows)}\n" for file, rows in figures.items())
    return text
