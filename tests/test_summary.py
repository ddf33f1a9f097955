"""pipeline.summary: the best experiment of each study and task, beside its strongest reference."""

from __future__ import annotations

import json

import pandas as pd

from pipeline.config import parse_params
from pipeline.summary import summary_table, write_summary
from tests.conftest import repo_params
from tests.test_report import fake_study


def test_the_summary_names_the_best_of_each_task_and_its_strongest_reference(tmp_path):
    raw = repo_params()
    raw["studies"] = ["vae_gan", "ambient"]
    raw["experiments"] = {name: e for name, e in raw["experiments"].items() if e["study"] in raw["studies"]}
    params = parse_params(raw)
    scores, references = {}, {}
    for index, (name, experiment) in enumerate(params.experiments.items()):
        if experiment.task.name == "generate":
            scores[name] = {"fcd": 100.0 - index}  # the last generator is the best
        else:
            scores[name] = {"psnr_mean": 10.0 + index % 5, "psnr_std": 1.0, "ssim_mean": 0.5, "seconds_per_image": 0.1}
        if experiment.task.name == "restore":
            scores[name] |= {"input_psnr_mean": 9.0, "input_psnr_std": 0.5, "input_ssim_mean": 0.3}
            scores[name] |= {"baseline_psnr_mean": 35.0, "baseline_psnr_std": 2.0, "baseline_ssim_mean": 0.99}
            references[name] = {"input_": "distorted input", "baseline_": "non-learned"}
    for study in raw["studies"]:
        fake_study(tmp_path, params, study, scores, references)
    for name in params.experiments:  # a restore record names its forward model and method
        path = tmp_path / params.experiments[name].study / f"{name}.run.json"
        record = json.loads(path.read_text())
        if params.experiments[name].task.name == "restore":
            task = params.experiments[name].task
            method = "supervised" if task.args.get("supervised") else "ACSG" if "acsg" in name else "ambient"
            record |= {"forward": task.args.get("forward", "drop_independent"), "method": method}
        path.write_text(json.dumps(record))
    (tmp_path / "classifiers").mkdir()
    floors = {"fcd_test_halves": 16.0, "fcd_train": 2.5, "train_images_for_fcd_train": 1000}
    (tmp_path / "classifiers" / "digits.json").write_text(json.dumps(floors))

    table = summary_table(params, tmp_path).set_index(["study", "task"])
    generators = [n for n, e in params.experiments.items() if e.study == "vae_gan" and e.task.name == "generate"]
    generate = table.loc[("vae_gan", "generate")]
    assert generate["best"].startswith(f"`{generators[-1]}` (") and generate["best"].endswith(
        f"of {len(generators)}, by FCD"
    )
    assert generate["FCD"] == f"{scores[generators[-1]]['fcd']:.1f}" and generate["PSNR (dB)"] == ""
    assert generate["strongest reference"] == "real training images: FCD 2.5"
    reconstruct = table.loc[("vae_gan", "reconstruct")]
    best = max(
        (n for n, e in params.experiments.items() if e.study == "vae_gan" and e.task.name == "reconstruct"),
        key=lambda n: scores[n]["psnr_mean"],
    )
    assert (
        reconstruct["best"].startswith(f"`{best}` (") and reconstruct["PSNR (dB)"] == f"{scores[best]['psnr_mean']:.2f}"
    )
    restore = table.loc[("ambient", "restore (drop_independent)")]
    assert restore["strongest reference"] == "non-learned: 35.00 dB, SSIM 0.990"  # above the distorted input
    assert restore["seed published"].endswith("(CelebA 64×64, tiled)") and reconstruct["seed published"] == ""

    text = (write_summary(params, tmp_path, tmp_path / "summary.md"), (tmp_path / "summary.md").read_text())[1]
    assert text.startswith("# Summary across studies") and "| vae_gan " in text and "| ambient " in text


def test_a_group_with_no_score_names_its_first_experiment_instead_of_failing():
    from pipeline.summary import _best

    unscored = pd.DataFrame({"experiment": ["gan_a", "gan_b"], "model": ["dcgan", "wgan_gp"]})
    best, by = _best(unscored)
    assert (best["experiment"], by) == ("gan_a", "nothing (no score)")
    scored = unscored.assign(fcd=[40.0, 30.0])
    assert _best(scored)[0]["experiment"] == "gan_b"
