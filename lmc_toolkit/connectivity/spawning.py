"""The runs behind instability analysis: the step-k spawn point and the children trained from
it, their store keys (frozen config dataclasses that fingerprint the initial weights, the data
and the mask), and the disjoint data-seed pairs of the children.

Two ways to spawn a subnetwork's copies at step k (`SPAWNS`): `"masked"` trains the subnetwork
itself from θ0 ⊙ m to step k; `"dense"` trains the *dense* network to θ_k and starts the copies
from θ_k ⊙ m, as Frankle et al. (2020) analyse IMP subnetworks rewound to iteration k (and as
`ImpConfig(rewind=k)` starts its rounds: momentum reset, the schedule's step k)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from torch import Tensor, nn

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.store.runs import Store
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.identity import tensors_fingerprint
from lmc_toolkit.training.loop import train
from lmc_toolkit.training.params import state_of
from lmc_toolkit.training.results import Checkpoint, TrainResult


@dataclass(frozen=True)
class SpawnRun:
    """The identity of a spawn point: weights, data, mask, recipe, step k and data seed."""

    model: str
    data: str
    mask: str
    train: TrainConfig
    step: int
    data_seed: int

    def run_prefix(self) -> str:
        return f"spawn-k{self.step}"


@dataclass(frozen=True)
class ChildRun:
    """The identity of one child: its spawn point and its own data seed."""

    spawn: SpawnRun
    data_seed: int

    def run_prefix(self) -> str:
        return f"child-k{self.spawn.step}-s{self.data_seed}"


@dataclass(frozen=True)
class RewoundChildRun:
    """The identity of one copy of a subnetwork started from the dense network's step-k
    weights: the dense spawn point, the mask and the copy's own data seed."""

    spawn: SpawnRun
    mask: str
    data_seed: int

    def run_prefix(self) -> str:
        return f"rewound-k{self.spawn.step}-s{self.data_seed}"


SPAWNS = ("masked", "dense")


def child_seeds(data_seeds: Sequence[int], pairs: int) -> tuple[tuple[int, int], ...]:
    """The disjoint seed pairs: `data_seeds`, extended by the next unused integers when
    `pairs` needs more than they give, taken two by two."""
    if not isinstance(pairs, int) or isinstance(pairs, bool) or pairs < 1:
        raise ValueError(f"pairs must be a positive int, got {pairs!r}")
    seeds = [int(s) for s in data_seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"data_seeds needs at least 2 distinct seeds, got {tuple(data_seeds)}")
    nxt = max(seeds) + 1
    while len(seeds) < 2 * pairs:
        seeds.append(nxt)
        nxt += 1
    return tuple((seeds[2 * i], seeds[2 * i + 1]) for i in range(pairs))


def spawn_run(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig,
    k: int,
    seed: int,
    mask: Mapping[str, Tensor] | None,
) -> SpawnRun:
    """The store key of the step-k checkpoint that two copies share."""
    return SpawnRun(
        model=tensors_fingerprint(state_of(model)),
        data=tensors_fingerprint({"x": data.x, "y": data.y}),
        mask=tensors_fingerprint(mask),
        train=config,
        step=int(k),
        data_seed=seed,
    )


def train_spawn(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig,
    key: SpawnRun,
    mask: Mapping[str, Tensor] | None,
    store: Store | None,
    progress: bool,
) -> Checkpoint:
    """The step-k checkpoint: k steps of the recipe (its schedule does not depend on the end)."""

    def compute() -> Checkpoint:
        head = replace(config, steps=key.step)
        result = train(
            model, data, head, key.data_seed, mask=mask, checkpoint_steps=[key.step],
            progress=progress,
        )  # fmt: skip
        return result.checkpoints[key.step]

    if store is None:
        return compute()
    return store.cached(key, compute, encode=Checkpoint.to_dict, decode=Checkpoint.from_dict)


def train_child(
    model: nn.Module,
    data: Dataset,
    spawn: Checkpoint,
    key: ChildRun | RewoundChildRun,
    mask: Mapping[str, Tensor] | None,
    store: Store | None,
    progress: bool,
) -> TrainResult:
    """One copy: trained from the step-k checkpoint `spawn` (for a `RewoundChildRun`, the
    dense one made a subnetwork's start by `rewound`) to the end with its own data order."""

    def compute() -> TrainResult:
        return train(
            model, data, key.spawn.train, key.data_seed, mask=mask,
            resume=copy.deepcopy(spawn), progress=progress,
        )  # fmt: skip

    if store is None:
        return compute()
    return store.cached(key, compute, encode=TrainResult.to_dict, decode=TrainResult.from_dict)


def rewound(spawn: Checkpoint, mask: Mapping[str, Tensor]) -> Checkpoint:
    """The dense step-k checkpoint `spawn` as a subnetwork's start: pruned weights zeroed,
    momentum reset and the learning-rate schedule at step k (how `ImpConfig(rewind=k)` rounds
    start, so a copy with the IMP run's data seed is that run's round, bit for bit)."""
    state = {
        name: value * mask[name].to(device=value.device, dtype=value.dtype)
        if name in mask
        else value
        for name, value in spawn.state.items()
    }
    groups = copy.deepcopy(spawn.optimizer["param_groups"])
    return Checkpoint(step=spawn.step, state=state, optimizer={"state": {}, "param_groups": groups})
