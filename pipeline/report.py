"""report@<study>: the study's side-by-side table from its experiments' evaluations, and those evaluations
brought into their MLflow runs. Reads only what evaluate wrote (metrics/<study>/, reports/<study>/<experiment>/):
no torch, no model code."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Params, point_name
from pipeline.errors import DataError
from pipeline.figures import grid, save_png
from pipeline.files import staged_dir, write_text
from pipeline.scores import read_scores
from pipeline.studies import Study, study_for

# the scores of an experiment's references, which the table shows as rows of their own (`reference_rows`)
REFERENCE_PREFIXES = ("input_", "baseline_")
# reports/<study>/comparison/: the study's models side by side (so no experiment may take the name)
COMPARISON = "comparison"


def write_report(params: Params, study: str, metrics_dir: Path, reports_dir: Path, plots_dir: Path) -> pd.DataFrame:
    """Write reports/<study>/table.csv, table.md, losses.csv (every experiment's loss curves, which dvc.yaml
    draws as one chart per loss) and comparison/*.png (the study's models side by side, and for restore studies
    each forward model's time against error), bring each evaluation into its MLflow run and attach the table to
    a `<study> table` run. Returns the table."""
    extras = study_for(study)
    table = study_table(params, study, metrics_dir)
    figures = comparisons(params, study, metrics_dir)
    folder = reports_dir / study / COMPARISON
    with staged_dir(folder) as staging:
        for key, (_, rows) in figures.items():
            save_png(grid(rows), staging / f"{key}.png")
        own = extras.figures(
            table,
            lambda name: load_preview(metrics_dir / study / f"{name}.npz", name),
            staging,
            sweep_points(params, study, metrics_dir),
        )
    shown = {f"{COMPARISON}/{key}.png": names for key, (names, _) in figures.items()}
    shown |= {f"{COMPARISON}/{file}": names for file, names in own.items()}
    paths = [reports_dir / study / name for name in ("table.csv", "table.md", "losses.csv")]
    write_text(paths[0], table.to_csv(index=False))
    write_text(paths[1], to_markdown(table, f"Study `{study}`", shown, extras))
    write_text(paths[2], loss_curves(params, study, plots_dir).to_csv(index=False))
    log_study(params, study, metrics_dir, reports_dir, [*paths, *sorted(folder.iterdir())])
    return table


def sweep_points(params: Params, study: str, metrics_dir: Path) -> list[dict[str, Any]]:
    """What each sweep@<experiment>-<percent> of this study wrote (metrics/<study>/sweep/), for every pair params.yaml
    lists now: a point dropped from the lists is not drawn even while its old output lies there."""
    if params.sweep.study != study:
        return []
    points = []
    for experiment, percent in itertools.product(params.sweep.experiments, params.sweep.percent):
        path = metrics_dir / study / "sweep" / f"{point_name(experiment, percent)}.json"
        if not path.exists():
            raise DataError(f"{path} is missing; run `dvc repro sweep@{experiment}-{percent}` first")
        points.append(json.loads(path.read_text()))
    return points


def loss_curves(params: Params, study: str, plots_dir: Path) -> pd.DataFrame:
    """Every loss curve train@<experiment> wrote for the study's experiments (plots/<study>/<experiment>/<loss>.csv,
    columns epoch and <loss>), in one long table: experiment, loss, epoch, value."""
    curves = []
    for name, experiment in params.experiments.items():
        if experiment.study != study:
            continue
        folder = plots_dir / study / name
        if not folder.is_dir():
            raise DataError(f"{folder} is missing; run `dvc repro train@{name}` first")
        for path in sorted(folder.glob("*.csv")):
            curve = pd.read_csv(path)
            curves.append(
                pd.DataFrame(
                    {"experiment": name, "loss": path.stem, "epoch": curve["epoch"], "value": curve[path.stem]}
                )
            )
    empty = pd.DataFrame(columns=["experiment", "loss", "epoch", "value"])
    return pd.concat(curves, ignore_index=True) if curves else empty


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

    Restore experiments also name their forward model and method. The raw input and the non-learned baseline
    an experiment is scored against become rows of their own (`reference_rows`), and the study's own module
    may add more (`pipeline.studies`: the seed's numbers, the ACSG time ratio).
    """
    rows = []
    for name, experiment in params.experiments.items():
        if experiment.study != study:
            continue
        path = metrics_dir / study / f"{name}.json"
        if not path.exists():
            raise DataError(f"{path} is missing; run `dvc repro evaluate@{name}` first")
        scores = read_scores(path.with_suffix(""))
        rows.append(
            {
                "experiment": name,
                "model": experiment.model.name,
                "dataset": experiment.dataset,
                "task": experiment.task.name,
                "latent_dim": experiment.model.args.get("latent_dim", ""),
                **scores,
            }
        )
        record = load_record(metrics_dir, study, name)
        if "forward" in record:  # a restore experiment: its forward model and method, as evaluate read them
            rows[-1]["forward"], rows[-1]["method"] = record["forward"], record["method"]
        rows[-1]["references"] = record.get("references", {})
    rows += reference_rows(rows)
    extras = study_for(study)
    rows += extras.rows(params, rows)
    for dataset in dict.fromkeys(params.origin(row["dataset"]) for row in rows if "fcd" in row):  # real images
        path = metrics_dir / "classifiers" / f"{dataset}.json"
        if not path.exists():
            raise DataError(f"{path} is missing; run `dvc repro classify@{dataset}` first")
        floors = json.loads(path.read_text())
        common = {"model": "real images", "dataset": dataset, "task": "", "latent_dim": ""}
        rows.append({"experiment": "test half vs test half", **common, "fcd": floors["fcd_test_halves"]})
        rows.append(
            {
                "experiment": "train vs test",
                **common,
                "fcd": floors["fcd_train"],
                "fcd_samples": floors["train_images_for_fcd_train"],
            }
        )
    table = pd.DataFrame(rows)
    for column in extras.key_columns:
        if column in table:  # the real-image rows have none
            table[column] = table[column].fillna("")
    return table


def reference_rows(rows: list[dict]) -> list[dict]:
    """One row per reference an experiment was scored against (its task names them: "noisy input",
    "total-variation denoiser", "gray image", "distorted input", "non-learned"), from its `input_` and
    `baseline_` scores, once per dataset, task and forward model: every experiment of a group computes them on
    the same test images. Takes the `references` entry off each experiment row."""
    references = []
    seen = set()
    for row in rows:
        for prefix, name in row.pop("references", {}).items():
            group = (row["dataset"], row["task"], row.get("forward", ""), prefix)
            if group in seen:
                continue
            seen.add(group)
            scores = {key.removeprefix(prefix): value for key, value in row.items() if key.startswith(prefix)}
            common = {"model": name, "dataset": row["dataset"], "task": row["task"], "latent_dim": ""}
            if "forward" in row:
                common |= {"forward": row["forward"], "method": name}
            references.append({"experiment": f"{name} ({row.get('forward') or row['dataset']})", **common, **scores})
    return references


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
    extras = study_for(study)
    for key, names in groups.items():
        previews = {name: load_preview(metrics_dir / study / f"{name}.npz", name) for name in names}
        if "samples" in previews[names[0]]:
            figures[key] = (names, [previews[name]["samples"] for name in names])
        elif own := extras.comparison(key, names, previews, lambda name: load_record(metrics_dir, study, name)):
            figures[key] = own
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
        return {
            part: arrays[part].astype(np.float32) / (255.0 if arrays[part].dtype == np.uint8 else 1.0)
            for part in arrays.files
        }


def log_study(params: Params, study: str, metrics_dir: Path, reports_dir: Path, table_files: list[Path]) -> list[str]:
    """Bring each of the study's evaluations into the MLflow run its model was trained in (scores as
    `test/<name>`, figures at the artifact root, the per-image scores under evaluation/), and attach the table
    files to a `<study> table` run, through one opening of the store. Returns the experiments whose run is not
    in the store."""
    from pipeline import tracking

    store = tracking.Store(tracking.resolve_uri(params.tracking.uri))
    missing = []
    for name, experiment in params.experiments.items():
        if experiment.study != study:
            continue
        scores = read_scores(metrics_dir / study / name)
        figures = sorted((reports_dir / study / name).iterdir()) if (reports_dir / study / name).is_dir() else []
        suffixes = (".json", ".timing.json", ".csv")
        evaluation = [path for suffix in suffixes if (path := metrics_dir / study / f"{name}{suffix}").exists()]
        files = {"": figures, "evaluation": evaluation}  # "": the run's root, all MLflow's compare view lists
        if not store.log_evaluation(load_record(metrics_dir, study, name), scores, files):
            missing.append(name)
    with store.start_run(experiment=study, name=f"{study} table", tags={"dvc.stage": f"report@{study}"}) as run:
        for path in table_files:
            run.log_artifact(path, "table")
    if missing:
        print(
            f"note: the MLflow runs of {', '.join(missing)} are not in this tracking store (results pulled from "
            "elsewhere?); their evaluations are in metrics/ and reports/ only",
            file=sys.stderr,
        )
    return missing


def to_markdown(
    table: pd.DataFrame, title: str, figures: dict[str, list[str]] | None = None, extras: Study | None = None
) -> str:
    """The table for reading: each score as "mean ± std", then FCD and train time where present;
    per-component and spread columns stay in the CSV. `figures` (file name -> row names) are listed below it;
    `extras` (the study's own module) adds its key and score columns and hides the scores its rows show."""
    extras = extras or Study()
    keys = ["experiment", "model", "dataset", "task", "latent_dim", *(c for c in extras.key_columns if c in table)]
    shown = table[keys].copy()
    for column in [c for c in table.columns if c.endswith("_mean") and not c.startswith(REFERENCE_PREFIXES)]:
        score = column.removesuffix("_mean")
        mean, spread = table[column], table[f"{score}_std"]
        shown[score] = [f"{m:.4g} ± {s:.2g}" if pd.notna(m) else "" for m, s in zip(mean, spread)]
    if "explained_variance_total" in table:
        shown["explained variance"] = [f"{v:.3f}" if pd.notna(v) else "" for v in table["explained_variance_total"]]
    if "label_probe_accuracy" in table:  # a linear classifier reading the label off the latent; chance beside it
        shown["label probe"] = [
            f"{a:.3f} (chance {c:.3f})" if pd.notna(a) else ""
            for a, c in zip(table["label_probe_accuracy"], table["label_probe_chance"])
        ]
    for column, values in extras.score_columns(table).items():
        shown[column] = values
    if "fcd" in table:
        shown["FCD"] = [f"{v:.3g}" if pd.notna(v) else "" for v in table["fcd"]]
    if "train_seconds" in table:
        shown["train s"] = [f"{v:.1f}" if pd.notna(v) else "" for v in table["train_seconds"]]
    if "seconds_per_image" in table:
        shown["ms / image"] = [f"{1000 * v:.3g}" if pd.notna(v) else "" for v in table["seconds_per_image"]]
    for column, values in extras.timing_columns(table).items():
        shown[column] = values
    if "images" in table:
        shown["images"] = [f"{v:.0f}" if pd.notna(v) else "" for v in table["images"]]
    text = f"# {title}\n\n{shown.to_markdown(index=False)}\n"
    if figures:
        text += "\n## Side by side\n\n" + "".join(
            f"- `{file}`, rows top to bottom: {', '.join(rows)}\n" for file, rows in figures.items()
        )
    return text
