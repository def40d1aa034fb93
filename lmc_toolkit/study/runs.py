"""The study's shared, expensive results behind every figure notebook, computed once per store.

A `StudyConfig` fixes the data, the model, its initialization, the training recipes and which
pruning methods are compared; `Study` computes (or loads from the store) the synthetic sets,
the IMP and distilled-pruning runs, the random masks and the trained tickets. The figure
notebooks F1, F2, F5, F6 and F7 all read the same `Study`, so running a second notebook, or a
notebook a second time, only redraws.

Methods are named `"dense"`, `"imp"` (IMP on real data, rewound to init), `"random"` (random
pruning at IMP's sparsities) and `"distilled-<source>"` (IMP whose inner training runs on the
synthetic set `<source>`: one of `SYNTHETIC`).

Every training runs in this process unless the study has `sweeps` (`lmc_toolkit.study.sweeps`),
which train them first as sweep units (`lmc_toolkit.study.units`) on a process pool or a
Dask cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any, Protocol, TypedDict

import torch
from torch import nn

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.sources import load_in_memory
from lmc_toolkit.models import build
from lmc_toolkit.pruning.imp_config import ImpConfig
from lmc_toolkit.pruning.imp_result import ImpResult
from lmc_toolkit.pruning.imp_rounds import distilled_pruning, imp
from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.pruning.prune import random as random_mask
from lmc_toolkit.pruning.ticket_table import TicketTable
from lmc_toolkit.pruning.tickets import evaluate_tickets
from lmc_toolkit.store.runs import Store
from lmc_toolkit.study.presets import SYNTHETIC, StudyConfig
from lmc_toolkit.training.results import TrainResult
from lmc_toolkit.training.runs import default_device


class _Matching(TypedDict, total=False):
    """The keywords distribution and gradient matching take alike from a study's config."""

    lr: float
    real_batch: int
    seed: int
    model_options: dict[str, Any]
    store: Store | None
    progress: bool


class Prefetcher(Protocol):
    """What hands a study's trainings out as sweeps before they are read (`Sweeps`, in
    `lmc_toolkit.study.sweeps`); a study without one trains each run when first asked for."""

    def prefetch(
        self,
        study: Study,
        methods: Sequence[str] | None,
        rounds: Sequence[int] | None,
        data_seeds: Sequence[int] | None,
    ) -> Any: ...

    def prefetch_instability(
        self,
        study: Study,
        method: str,
        round: int,
        ks: Sequence[int],
        data_seeds: Sequence[int] | None,
    ) -> Any: ...


class Study:
    """Lazily computed, store-cached results of one `StudyConfig` (see the module docstring).

    Args:
        config: The study's data, model, recipes and methods.
        store: The run store (a `Store` or its folder; default: the user's store).
        device: Where everything trains (default: CUDA when there is a GPU, else the CPU).
        progress: Show progress bars.
        sweeps: A `Sweeps` (a process pool or a Dask cluster) that trains what a figure needs as
            sweeps first, so that what follows only loads it; None: every training runs in this
            process when first asked for.
    """

    def __init__(
        self,
        config: StudyConfig,
        store: Store | str | None = None,
        device: Any = None,
        progress: bool = True,
        sweeps: Prefetcher | None = None,
    ):
        self.config = config
        self.sweeps = sweeps
        self.store = store if isinstance(store, Store) else Store(store)
        self.requested_device = device  # None: each sweep worker picks its own
        self.device = device or default_device()
        self.progress = progress
        self._runs: dict[tuple[str, int], ImpResult] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.dataset}, {self.config.model}, store={self.store.root})"

    # -- data and the initialization -------------------------------------------------------

    def _load(self, split: str, limit: int | None) -> Dataset:
        """The split, cut to `limit` images by a fixed seed: studies that differ only in their
        initialization (F9 pairs networks from two) see the same images."""
        c = self.config
        data = load_in_memory(c.dataset, split, root=c.data_root)
        return subsample(data, limit, 0).to(self.device)

    @cached_property
    def train_data(self) -> Dataset:
        return self._load("train", self.config.train_limit)

    @cached_property
    def test_data(self) -> Dataset:
        return self._load("test", self.config.test_limit)

    @cached_property
    def model0(self) -> nn.Module:
        """θ0: the network every method prunes, rewinds to and trains."""
        c, d = self.config, self.train_data
        return build(
            c.model, d.num_classes, d.image_shape, c.init_seed, self.device, **dict(c.model_options)
        )

    def synthetic(self, source: str, seed: int = 0, fresh: bool = False) -> Dataset:
        """The synthetic set `source` (ipc images per class), made once and stored; `seed` is
        its own (another draw of the random subset, another start of distillation). `fresh`
        makes it again without the store (to time it)."""
        from lmc_toolkit import synth

        c, real = self.config, self.train_data
        store = None if fresh else self.store
        progress = self.progress and not fresh
        if source == "random":
            data = synth.random_subset(real, c.ipc, seed=seed, store=store)
        elif source == "herding":
            data = synth.herding(
                real,
                c.ipc,
                seed=seed,
                model_options=dict(c.synth_options),
                store=store,
                progress=progress,
            )
        elif source in ("dm", "dc"):
            matching = _Matching(
                real_batch=c.synth_real_batch,
                seed=seed,
                model_options=dict(c.synth_options),
                store=store,
                progress=progress,
            )
            if c.synth_lr is not None:  # else each method's own default
                matching["lr"] = c.synth_lr
            if source == "dm":
                data = synth.distribution_matching(real, c.ipc, c.synth_iterations, **matching)
            else:
                data = synth.gradient_matching(
                    real, c.ipc, iterations=c.synth_iterations, **matching
                )
        else:
            raise ValueError(f"synthetic source {source!r} is not one of {SYNTHETIC}")
        return data.to(self.device)

    # -- pruning ---------------------------------------------------------------------------

    def imp_run(self, mask_seed: int = 0) -> ImpResult:
        """IMP on the real training data, rewound to θ0 each round; `mask_seed` orders its
        inner training's data (another mask-finding run of the same method)."""
        c = self.config
        return imp(
            self.model0,
            self.train_data,
            ImpConfig(rounds=c.rounds, train=c.train),
            eval_data=self.test_data,
            data_seed=mask_seed,
            store=self.store,
            progress=self.progress,
        )

    def distilled_run(self, source: str, mask_seed: int = 0) -> ImpResult:
        """Distilled pruning: IMP whose inner training runs on `self.synthetic(source)`;
        `mask_seed` draws another synthetic set and orders its inner training."""
        c = self.config
        return distilled_pruning(
            self.model0,
            self.train_data,
            self.synthetic(source, mask_seed),
            ImpConfig(rounds=c.rounds, train=c.synth_train),
            eval_data=self.test_data,
            data_seed=mask_seed,
            store=self.store,
            progress=self.progress,
        )

    def run_of(self, method: str, mask_seed: int = 0) -> ImpResult:
        """The IMP run behind a pruned method ("imp" or "distilled-<source>"); `mask_seed`
        picks one of its replicated mask-finding runs (0: the study's own)."""
        key = (method, mask_seed)
        if key not in self._runs:
            if method == "imp":
                self._runs[key] = self.imp_run(mask_seed)
            elif method.startswith("distilled-"):
                source = method.removeprefix("distilled-")
                self._runs[key] = self.distilled_run(source, mask_seed)
            else:
                raise ValueError(f"{method!r} has no IMP run; methods: {self.config.methods}")
        return self._runs[key]

    def replicate_mask(self, method: str, round: int, mask_seed: int) -> Mask | None:
        """`method`'s mask at `round` from its mask-finding run `mask_seed` (0: the study's
        own, `mask`): IMP's data order, the synthetic set's draw, the random mask's seed."""
        c = self.config
        if method == "dense":
            return None
        if method == "random":
            return random_mask(self.model0, c.sparsity(round), seed=c.init_seed + mask_seed)
        return self.run_of(method, mask_seed).rounds[round].mask

    def pruned_masks(self, rounds: tuple[int, ...] | None = None) -> dict[str, list[Mask]]:
        """Each pruned method's masks (every method but dense) at `rounds` (default
        `ticket_rounds`; each ≥ 1, as round 0 prunes nothing)."""
        rounds = self.config.ticket_rounds if rounds is None else rounds
        if any(r < 1 for r in rounds):
            raise ValueError(f"rounds must be ≥ 1 (round 0 prunes nothing), got {rounds}")
        pruned = tuple(m for m in self.config.methods if m != "dense")
        out: dict[str, list[Mask]] = {}
        for method, masks in self.masks(rounds, pruned).items():
            out[method] = [m for m in masks if m is not None]
            if len(out[method]) != len(rounds):
                raise RuntimeError(f"{method}'s run has no mask at some of the rounds {rounds}")
        return out

    def masks(
        self, rounds: tuple[int, ...] | None = None, methods: tuple[str, ...] | None = None
    ) -> dict[str, list[Mask | None]]:
        """Each method's masks at `rounds` (default `ticket_rounds`); dense is `[None]`. Only
        the pruning runs of `methods` (default: all) are computed."""
        c = self.config
        rounds = c.ticket_rounds if rounds is None else rounds
        methods = c.methods if methods is None else methods
        unknown = [m for m in methods if m not in c.methods]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r}; methods: {c.methods}")
        out: dict[str, list[Mask | None]] = {}
        for method in methods:
            if method == "dense":
                out[method] = [None]
            elif method == "random":
                out[method] = [
                    random_mask(self.model0, c.sparsity(r), seed=c.init_seed) if r > 0 else None
                    for r in rounds
                ]
            else:
                run = self.run_of(method)
                out[method] = [run.rounds[r].mask for r in rounds]
        return out

    # -- prefetching: the trainings handed out as sweeps, where the study has `sweeps` -------

    def prefetch(
        self,
        methods: Sequence[str] | None = None,
        rounds: Sequence[int] | None = None,
        data_seeds: Sequence[int] | None = None,
    ) -> Any:
        """With `sweeps`, train the pruning runs and then the tickets of `methods` × `rounds`
        × `data_seeds` (defaults: the config's) as a sweep and return its report (a failed
        unit raises `SweepError` naming it); without, nothing happens here: tickets are
        trained (or loaded) when first asked for."""
        if self.sweeps is None:
            return None
        return self.sweeps.prefetch(self, methods, rounds, data_seeds)

    def prefetch_instability(
        self, method: str, round: int, ks: Sequence[int], data_seeds: Sequence[int] | None = None
    ) -> Any:
        """With `sweeps`, train the spawn points and children of F3's instability analysis of
        `method` at `round` as a sweep; without, nothing happens here."""
        if self.sweeps is None:
            return None
        return self.sweeps.prefetch_instability(self, method, round, ks, data_seeds)

    # -- trained tickets -------------------------------------------------------------------

    def tickets(self) -> TicketTable:
        """Every method's masks trained on real data from θ0 for each data seed (figure F1)."""
        c = self.config
        self.prefetch()
        return evaluate_tickets(
            self.model0,
            self.masks(),
            self.train_data,
            self.test_data,
            c.train,
            data_seeds=c.data_seeds,
            store=self.store,
            progress=self.progress,
        )

    def trained(self, method: str, round: int, data_seed: int) -> TrainResult:
        """The trained ticket of `method` at IMP round `round` for `data_seed`."""
        from lmc_toolkit.pruning.tickets import train_ticket

        c = self.config
        mask = self.mask(method, round)
        return train_ticket(
            self.model0,
            mask,
            self.train_data,
            c.train,
            data_seed,
            store=self.store,
            progress=self.progress,
        )

    def network(self, method: str, round: int, data_seed: int) -> nn.Module:
        """The trained ticket as a network on the study's device."""
        return self.trained(method, round, data_seed).model(self.model0)

    def with_init(self, init_seed: int) -> Study:
        """The same study from another initialization θ0 (the same data, store and device),
        for pairs of networks that share nothing but their recipe (figure F9), with the same
        `sweeps`."""
        other = copy.copy(self)
        other.__dict__.pop("model0", None)  # the data (cut by a fixed seed) is shared
        other.config = replace(self.config, init_seed=init_seed)
        other._runs = {}
        return other

    def mask(self, method: str, round: int) -> Mask | None:
        """The mask `method` trains at IMP round `round` (None for dense)."""
        if method == "dense":
            return None
        return self.masks((round,), (method,))[method][0]


def subsample(data: Dataset, n: int | None, seed: int = 0) -> Dataset:
    """`n` images of `data` drawn at random by a generator seeded with `seed` (all of it when
    `n` is None or not smaller). Dataset files are often sorted by class, so a prefix would
    miss classes; the chosen images keep their file order."""
    if n is None or n >= len(data):
        return data
    g = torch.Generator().manual_seed(seed)
    return data.subset(torch.randperm(len(data), generator=g)[:n].sort().values)
