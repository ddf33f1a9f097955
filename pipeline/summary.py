"""summary: one table across every study, written to reports/summary.md. For each study, dataset, task (and
forward model) it names the best experiment, beside the strongest reference it was scored against (a
non-learned method, the raw input, or for samples the real training images' FCD) and the seed's published
number where the seed published one. Built from the same study tables as report@<study> (`study_table`), so
it reads metrics/ only: no torch, no MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import Params
from pipeline.files import write_text
from pipeline.report import study_table
from pipeline.studies import study_for

GROUP = ["dataset", "task", "forward"]


def summary_table(params: Params, metrics_dir: Path) -> pd.DataFrame:
    """One row per (study, dataset, task, forward model): the best experiment (highest mean PSNR, or lowest FCD
    where nothing is reconstructed), its scores, its strongest reference and the seed's number."""
    rows = []
    for study in params.studies:
        table = study_table(params, study, metrics_dir)
        if "forward" not in table:
            table["forward"] = ""
        table["forward"] = table["forward"].fillna("")
        # samples are scored against their origin's real images: a GAN on a derived dataset competes with the rest
        table["dataset"] = [
            params.origin(dataset) if task == "generate" else dataset
            for dataset, task in zip(table["dataset"], table["task"])
        ]
        ours = table[table["experiment"].isin(params.experiments)]
        references = table[~table["experiment"].isin(params.experiments)]
        for key, members in ours.groupby(GROUP, sort=False):
            best, by = _best(members)
            dataset, task, forward = key
            same = references[(references["dataset"] == dataset) & (references["task"] == task)]
            same = same[same["forward"] == forward]
            rows.append(
                {
                    "study": study,
                    "data": dataset,
                    "task": f"{task} ({forward})" if forward else task,
                    "best": f"`{best['experiment']}` ({best['model']}), of {len(members)}, by {by}",
                    "PSNR (dB)": _number(best.get("psnr_mean"), "{:.2f}"),
                    "SSIM": _number(best.get("ssim_mean"), "{:.3f}"),
                    "FCD": _number(best.get("fcd"), "{:.1f}"),
                    "strongest reference": _reference(same, dataset, table, pd.notna(best.get("fcd"))),
                    "seed published": study_for(study).seed_result(best.to_dict()),
                }
            )
    return pd.DataFrame(rows)


def write_summary(params: Params, metrics_dir: Path, path: Path) -> pd.DataFrame:
    table = summary_table(params, metrics_dir)
    text = (
        "# Summary across studies\n\n"
        "Written by `aegan summary` (the `summary` stage of `dvc repro`) from metrics/: the best experiment of each "
        "study, dataset and task on the test split (mean PSNR and SSIM per image; FCD of 1,000 samples or "
        "reconstructions against the test images, lower is better), beside the strongest reference of its "
        "table. reports/<study>/table.md has every row.\n\n"
        f"{table.to_markdown(index=False)}\n"
    )
    write_text(path, text)
    return table


def _best(members: pd.DataFrame) -> tuple[pd.Series, str]:
    """The row with the highest mean PSNR, or the lowest FCD where no row has a PSNR; and which it was. A group
    with neither (samples of an unlabelled dataset, which no classifier scores) names its first experiment."""
    if "psnr_mean" in members and members["psnr_mean"].notna().any():
        return members.loc[members["psnr_mean"].idxmax()], "PSNR"
    if "fcd" in members and members["fcd"].notna().any():
        return members.loc[members["fcd"].idxmin()], "FCD"
    return members.iloc[0], "nothing (no score)"


def _reference(same: pd.DataFrame, dataset: str, table: pd.DataFrame, has_fcd: bool) -> str:
    """The best-scoring reference row of a group by PSNR; else, where the best has an FCD, the real training
    images' FCD (the floor a model's samples are measured against)."""
    if "psnr_mean" in same and same["psnr_mean"].notna().any():
        row = same.loc[same["psnr_mean"].idxmax()]
        return f"{row['model']}: {row['psnr_mean']:.2f} dB, SSIM {row['ssim_mean']:.3f}"
    floor = table[(table["experiment"] == "train vs test") & (table["dataset"] == dataset)]
    if has_fcd and len(floor):
        return f"real training images: FCD {floor['fcd'].iloc[0]:.1f}"
    return ""


def _number(value: object, form: str) -> str:
    return form.format(value) if value is not None and pd.notna(value) else ""
