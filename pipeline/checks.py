"""The checks of `pipeline.config` that judge one section against others or a setting against its source: a
folder's split groups, derived datasets and the sweep. Like the config, no torch and none of the library."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipeline.schema import ConfigError

if TYPE_CHECKING:
    from pipeline.config import DatasetConfig, Params


def check_split_group(dataset: DatasetConfig, where: str) -> None:
    pattern = dataset.split_group
    if dataset.source != "folder":
        raise ConfigError(f"{where}: only a folder dataset is split by group; {dataset.source} has its own split")
    try:
        groups = re.compile(pattern).groups
    except re.error as error:
        raise ConfigError(f"{where}: '{pattern}' is not a regular expression ({error})") from None
    if groups < 1:
        raise ConfigError(f"{where}: '{pattern}' has no (group) naming a file's group, as '^([fm]\\d{{4}})'")


def check_derived(params: Params) -> None:
    for name, made in params.derived.items():
        where, seen = f"derived.{name}", {name}
        if name in params.datasets:
            raise ConfigError(f"{where}: datasets.{name} has the name already; rename one")
        experiment = params.experiments.get(made.experiment)
        if experiment is None:
            raise ConfigError(f"{where}.experiment: no experiment {made.experiment!r}; name one under `experiments`")
        if experiment.task.name != "reconstruct":
            raise ConfigError(f"{where}.experiment: {made.experiment}'s task is not reconstruct; name one whose is")
        if experiment.dataset != made.dataset:
            raise ConfigError(f"{where}.dataset: {made.experiment} trains on {experiment.dataset}; set that")
        while made.dataset in params.derived:  # a chain of derived datasets ends at a prepared one
            if made.dataset in seen:
                raise ConfigError(f"{where}: derived datasets {', '.join(sorted(seen))} are made from each other")
            seen.add(made.dataset)
            made = params.derived[made.dataset]


def check_sweep(params: Params) -> None:
    sweep = params.sweep
    for key, values in (("experiments", sweep.experiments), ("percent", sweep.percent)):
        if len(set(values)) < len(values):  # each pair is a stage name, which DVC wants once
            raise ConfigError(f"sweep.{key}: lists an entry twice; list each once")
    for name in sweep.experiments:
        where = f"sweep.experiments: {name}"
        experiment = params.experiments.get(name)
        if experiment is None:
            raise ConfigError(f"{where} is no experiment; name restore experiments under `experiments`")
        if (
            experiment.task.name != "restore"
            or experiment.task.args.get("forward", "drop_independent") != "drop_independent"
        ):
            raise ConfigError(f"{where} does not restore through drop_independent; the sweep varies its p")
        if (experiment.study, experiment.dataset) != (sweep.study, sweep.dataset):
            raise ConfigError(
                f"{where} is in {experiment.study} on {experiment.dataset}; set sweep.study and sweep.dataset to those"
            )
