"""Data-parallel training on CPU with two gloo ranks, for real: `aegan train` under base.processes: 2 against one
process, a GAN killed on one rank and resumed, and every update rule stepping two replicas alike."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from pipeline.config import parse_params
from pipeline.models import build_model
from pipeline.tasks import Batch
from pipeline.training import distributed
from pipeline.training.run import train_experiment
from pipeline.training.updates import UPDATE_RULES, update_rule_for
from tests.builders import tiny_label_model
from tests.conftest import tiny_params

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def make_project(root: Path, prepared_digits: Path, experiments: dict, processes: int) -> Path:
    """A project folder holding the tiny digits (240 train images) and params with `experiments`."""
    raw = tiny_params()
    raw["experiments"] = experiments
    raw["base"]["processes"] = processes
    shutil.copytree(prepared_digits / "digits", root / "data" / "prepared" / "digits")
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return root


def train(project: Path, name: str, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.Popen(
        ["aegan", "train", name],
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def trained(project: Path, name: str) -> dict[str, torch.Tensor]:
    process = train(project, name)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"aegan train {name} failed:\n{out}\n{err}"
    return torch.load(project / "models" / name / "model.pt", weights_only=True)["state_dict"]


LINEAR_AE = {
    "study": "autoencoders",
    "dataset": "digits",
    "task": {"name": "reconstruct"},
    "model": {"name": "linear_ae", "latent_dim": 8},
    "update": {"lr": 3.0e-3},
    "train": {"epochs": 3, "batch_size": 48},  # 240 images: 5 global batches, 24 per rank
}


def test_two_ranks_end_with_the_weights_of_one_process_at_the_same_global_batch(tmp_path, prepared_digits):
    project = make_project(tmp_path, prepared_digits, {"linear": LINEAR_AE}, processes=2)
    ranks = trained(project, "linear")
    one = parse_params({**tiny_params(), "experiments": {"linear": LINEAR_AE}})  # base.processes: 1
    folders = {"model_dir": tmp_path / "alone", "plots_dir": tmp_path / "alone_plots"}
    train_experiment(one, "linear", prepared_dir=prepared_digits / "digits", **folders, checkpoint_path=tmp_path / "ck")
    alone = torch.load(tmp_path / "alone" / "model.pt", weights_only=True)["state_dict"]
    alone_curve = (tmp_path / "alone_plots" / "loss.csv").read_text().splitlines()

    initial = build_model("linear_ae", in_channels=1, out_channels=1, image_size=28, latent_dim=8).state_dict()
    assert set(ranks) == set(alone)
    for key in alone:  # 5e-5 apart at most here (summation order, which Adam magnifies); unaveraged: 0.02
        assert torch.allclose(ranks[key], alone[key], atol=3e-4), (key, (ranks[key] - alone[key]).abs().max())
        assert not torch.allclose(alone[key], initial[key], atol=1e-3), f"{key} did not train"
    curve = (project / "plots/autoencoders/linear/loss.csv").read_text().splitlines()
    assert len(curve) == len(alone_curve) == 4  # the loss, the mean of the ranks' means, is one process's
    for row, alone_row in zip(curve[1:], alone_curve[1:]):
        assert float(row.split(",")[1]) == pytest.approx(float(alone_row.split(",")[1]), rel=1e-4)

    runs = mlflow.search_runs(experiment_names=["autoencoders"], output_format="list")
    ranked = [
        run for run in runs if run.data.params.get("experiment") == "linear" and run.data.tags["aegan.ranks"] == "2"
    ]
    assert len(ranked) == 1  # rank 0 alone logs
    assert ranked[0].data.params["base.processes"] == "2" and ranked[0].info.status == "FINISHED"


def children(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(parent, []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def rank_process(pid: int, rank: int) -> int | None:
    for child in children(pid):
        try:
            environment = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environment:
            return child
    return None


def test_a_gan_killed_on_one_rank_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, prepared_digits):
    gan = {
        "study": "autoencoders",
        "dataset": "digits",
        "task": {"name": "generate"},
        "model": {"name": "linear_wgan", "latent_dim": 8, "generator_hidden": [32], "critic_hidden": [32]},
        # two Adams, three critic steps per generator step, a gradient penalty and an averaged generator
        "update": {"lr": 1.0e-3, "critic_steps": 3, "average": 0.9},
        "train": {"epochs": 100, "batch_size": 48},
    }
    project = make_project(tmp_path, prepared_digits, {"gan": gan}, processes=2)
    uninterrupted = trained(project, "gan")
    shutil.rmtree(project / "models" / "gan")

    checkpoint = project / "checkpoints" / "gan" / "last.pt"
    process = train(project, "gan", AEGAN_CHECKPOINT_SECONDS="0")  # a checkpoint after every epoch
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    victim = rank_process(process.pid, 1)
    assert victim is not None and process.poll() is None, "the run ended before a rank could be killed"
    os.kill(victim, signal.SIGKILL)
    out, err = process.communicate(timeout=120)
    assert process.returncode != 0, out + err
    state = torch.load(checkpoint, weights_only=True)
    assert 0 < state["epoch"] < 100, "the kill came after training"

    resumed = trained(project, "gan")
    assert not checkpoint.exists()
    for key in uninterrupted:
        assert torch.allclose(resumed[key], uninterrupted[key], atol=1e-5), key
    run = mlflow.get_run(state["run_id"])  # the killed run, reopened and finished
    assert run.info.status == "FINISHED" and run.data.tags["aegan.ranks"] == "2"
    history = mlflow.MlflowClient().get_metric_history(state["run_id"], "epoch/loss_critic")
    assert sorted(metric.step for metric in history) == list(range(1, 101))  # each epoch once


def tiny_case(rule: str) -> tuple[torch.nn.Module, Batch]:
    """A small model trained by `rule` and a batch it takes (8 images, random per rank)."""
    images = torch.rand(8, 1, 8, 8)
    plain = Batch(input=images, target=images, label=torch.zeros(8, dtype=torch.long))
    small = {"in_channels": 1, "out_channels": 1, "image_size": 8, "latent_dim": 4}
    if rule == "reconstruction":
        return build_model("conv_ae", **small, width=4, depth=1), plain
    if rule == "variational":
        return build_model("conv_vae", **small, width=4, depth=1), plain
    if rule == "principal_components":
        return build_model("pca", **small), plain
    if rule == "adversarial":
        return build_model("dcgan", **small, width=4, depth=1), plain
    if rule == "wasserstein":
        return build_model("wgan_gp", **small, width=4, depth=1), plain
    if rule == "vae_wasserstein":
        return build_model("vae_wgan", **small, width=4, depth=1), plain
    if rule == "conditional_adversarial":
        shape = {"in_channels": 1, "out_channels": 3, "image_size": 8}
        model = build_model("pix2pix", **shape, width=4, depth=2, critic_width=4, critic_layers=1)
        return model, Batch(input=images, target=torch.rand(8, 3, 8, 8), label=plain.label)
    if rule == "conditional_aegan":
        model, _ = tiny_label_model()
        digits = torch.rand(8, 1, 28, 28)
        condition = torch.nn.functional.one_hot(torch.randint(10, (8,)), 10).float()
        return model, Batch(input=digits, target=digits, label=condition.argmax(1), condition=condition)
    if rule == "ambient_vaegan":
        model = build_model("ambient_vaegan", **{**small, "image_size": 28}, width=4)
        measured = torch.rand(8, 1, 28, 28)
        return model, Batch(input=measured, target=None, label=plain.label, measure=lambda x: 0.5 * x)
    raise AssertionError(f"no tiny case for update rule {rule}")


def _step_every_rule(rank: int, address: str) -> None:
    """One rank: each rule takes three steps on its own random batches; the replicas must stay equal."""
    dist.init_process_group("gloo", init_method=address, rank=rank, world_size=2)
    try:
        for rule in UPDATE_RULES:
            torch.manual_seed(0)  # the same initial weights on both ranks
            model, _ = tiny_case(rule)
            update = update_rule_for(type(model))(model)
            start = [parameter.detach().clone() for parameter in model.parameters()]
            for step in range(3):
                torch.manual_seed(100 * rank + step)  # different images and noise on each rank
                update(tiny_case(rule)[1])
            update.finish()
            distributed.check_replicas(model)  # raises when the ranks' weights differ
            moved = any(not torch.equal(before, after) for before, after in zip(start, model.parameters()))
            buffers_moved = rule == "principal_components" and bool(model.components.abs().sum() > 0)
            assert moved or buffers_moved, f"{rule} changed no weight"
            if rule == "principal_components":  # fitted to both ranks' images, the same components on each
                gathered = [torch.zeros_like(model.components) for _ in range(2)]
                dist.all_gather(gathered, model.components.contiguous())
                assert torch.equal(gathered[0], gathered[1])
    finally:
        dist.destroy_process_group()


def test_every_update_rule_steps_two_replicas_alike_on_different_shards(tmp_path):
    mp.spawn(_step_every_rule, args=(f"file://{tmp_path}/rendezvous",), nprocs=2, join=True)


def test_one_process_keeps_the_old_streams_and_ranks_draw_apart():
    shuffle = torch.Generator().manual_seed(0)
    assert distributed.World().draws(shuffle, epoch=3) is shuffle  # one process: results as before torchrun
    assert distributed.World().shard(torch.arange(5)).tolist() == [0, 1, 2, 3, 4]
    first, second = distributed.World(rank=0, size=2), distributed.World(rank=1, size=2)
    assert first.shard(torch.arange(5)).tolist() == [0, 1, 2] and second.shard(torch.arange(5)).tolist() == [3, 4]
    assert first.shard(torch.arange(1)) is None and second.shard(torch.arange(1)) is None  # skipped on both
    noise = [torch.rand(4, generator=world.draws(shuffle, epoch=3)) for world in (first, second)]
    assert not torch.equal(noise[0], noise[1])
    again = torch.rand(4, generator=first.draws(shuffle, epoch=3))
    assert torch.equal(again, noise[0])  # a resumed epoch draws what it drew
    assert not torch.equal(torch.rand(4, generator=first.draws(shuffle, epoch=4)), noise[0])


def test_the_gpu_bench_runs_on_cpu_and_prints_every_figure():
    bench = Path(__file__).resolve().parents[1] / "bench" / "gpu.py"
    command = [sys.executable, str(bench), "--only", "conv_ae", "--steps", "2", "--workers", "0"]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    row = next(line for line in lines if line.startswith("conv_ae")).split()
    batch, fp32, bf16, plain, ratio = int(row[1]), float(row[2]), row[3], float(row[4]), float(row[5].rstrip("x"))
    assert batch == 64 and fp32 > 0 and plain > 0 and bf16 == "nan"  # bf16 autocast is CUDA only
    assert ratio == pytest.approx(fp32 / plain, abs=0.01)


def test_batch_norm_is_synchronised_on_gpus_and_checkpoints_keep_their_keys(monkeypatch):
    model = build_model("conv_ae", in_channels=1, out_channels=1, image_size=8, latent_dim=4, width=4, depth=1)
    keys = set(model.state_dict())
    assert distributed.prepare(model, torch.device("cpu")) is model  # one process: nothing changes
    monkeypatch.setattr(distributed, "active", lambda: True)  # as under torchrun with two ranks
    on_cpu = distributed.prepare(model, torch.device("cpu"))  # PyTorch's SyncBatchNorm runs on GPUs only
    assert not any(isinstance(module, torch.nn.SyncBatchNorm) for module in on_cpu.modules())
    on_gpu = distributed.prepare(model, torch.device("cuda"))  # converted in place; nothing runs on a GPU here
    kinds = [type(module) for module in on_gpu.modules() if "BatchNorm" in type(module).__name__]
    assert kinds and set(kinds) == {torch.nn.SyncBatchNorm}
    assert set(on_gpu.state_dict()) == keys  # model.pt from a run on GPUs loads into the plain model
