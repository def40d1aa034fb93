"""Ticket evaluation: train θ0 ⊙ m on real data for several data seeds, report test accuracy.

`evaluate_tickets` gives figure F1's numbers (accuracy vs sparsity, mean ± std over data seeds)
for any pruning method. Each trained ticket is cached in the store under a `TicketRun`, so the
instability, Hessian and landscape analyses reuse the very same trained networks.

Getting a trained ticket back
-----------------------------
A ticket is identified by the training data, the model (builder name, options, init seed and
a hash of θ0), the `TrainConfig`, the data seed and the mask's content hash (`Mask.digest()`;
"" for the dense network and for a mask that prunes nothing, which trains identically). Three equivalent ways to get it in a later notebook:

- `table.trained("imp", 0.59, data_seed=1, store=store)` on the `TicketTable` that
  `evaluate_tickets` returned (sparsity matched to the nearest row within 0.005), or
  `table.model(...)` for a network;
- `train_ticket(model, mask, train_data, config, data_seed=1, store=store)` with the same
  arguments as the evaluation: it loads the stored `TrainResult` instead of training;
- `store.run(ticket_key(model, mask, train_data, config, data_seed=1)).load("result")`, decoded
  by `TrainResult.from_dict`. The folder is `ticket-<data>-<model>-<hash of the key>` and also
  holds the mask (`mask.pt`) and test metrics per test set (`eval-<fingerprint>.json`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.entrance import as_dataset
from lmc_toolkit.pruning.imp_result import ImpResult
from lmc_toolkit.pruning.mask import Mask, check_compatible
from lmc_toolkit.pruning.ticket_table import TicketEntry, TicketTable
from lmc_toolkit.store.runs import Store
from lmc_toolkit.training.config import TrainConfig
from lmc_toolkit.training.evaluation import evaluate
from lmc_toolkit.training.identity import (
    NetworkKey,
    data_fingerprint,
    model_identity,
    with_init_seed,
)
from lmc_toolkit.training.loop import check_classes, train
from lmc_toolkit.training.params import with_state
from lmc_toolkit.training.probe import check_model_input
from lmc_toolkit.training.results import Metrics, TrainResult


@dataclass(frozen=True)
class TicketRun(NetworkKey):
    """The store identity of one trained ticket (see the module docstring)."""

    data: str = ""
    data_hash: str = ""
    train: TrainConfig = field(default_factory=TrainConfig)
    data_seed: int = 0
    mask: str = ""

    def run_prefix(self) -> str:
        return f"ticket-{self.data}-{self.model}"


def _as_mask(mask: Mapping[str, Tensor] | None) -> Mask | None:
    if mask is None or isinstance(mask, Mask):
        return mask
    return Mask(mask)


def _digest(mask: Mask | None) -> str:
    """The mask part of a ticket's key: "" for the dense network and for masks that keep every
    weight (they train bit for bit alike), else the mask's content hash."""
    return "" if mask is None or mask.pruned == 0 else mask.digest()


def ticket_key(
    model: nn.Module,
    mask: Mapping[str, Tensor] | None,
    train_data: Dataset,
    config: TrainConfig,
    data_seed: int = 0,
    init_seed: int | None = None,
) -> TicketRun:
    """The `TicketRun` under which `train_ticket` stores this ticket."""
    net0 = with_init_seed(model, init_seed)
    mask = _as_mask(mask)
    return TicketRun(
        data=train_data.name,
        data_hash=data_fingerprint(train_data),
        train=config,
        data_seed=int(data_seed),
        mask=_digest(mask),
        **model_identity(net0),
    )


def train_ticket(
    model: nn.Module,
    mask: Mapping[str, Tensor] | None,
    train_data: Dataset,
    config: TrainConfig,
    data_seed: int = 0,
    *,
    init_seed: int | None = None,
    store: Store | None = None,
    progress: bool = True,
    key: TicketRun | None = None,
) -> TrainResult:
    """Train θ0 ⊙ `mask` on `train_data`; with a store, load it when it was trained before.

    Args:
        model: The network at θ0 (not changed).
        mask: The ticket's mask (None: the dense network).
        train_data: What it trains on.
        config: The training recipe.
        data_seed: The data order.
        init_seed: Rebuild θ0 from this seed instead of `model`'s weights.
        store: A run store.
        progress: Show a progress bar.
        key: The run's store key, where the caller has it (default: `ticket_key(...)`).

    Returns:
        The `TrainResult`.
    """
    net0 = with_init_seed(model, init_seed)
    mask = _as_mask(mask)

    def compute() -> TrainResult:
        return train(net0, train_data, config, data_seed, mask=mask, progress=progress)

    if store is None:
        return compute()
    key = key or ticket_key(net0, mask, train_data, config, data_seed)
    result = store.cached(key, compute, encode=TrainResult.to_dict, decode=TrainResult.from_dict)
    run = store.run(key)
    if mask is not None and not run.has("mask", ".pt"):
        run.save("mask", mask.to_dict())
    return result


def _mask_list(method: str, value: Any) -> tuple[Mask | None, ...]:
    if isinstance(value, ImpResult):
        return tuple(value.masks)
    if value is None or isinstance(value, Mapping):
        return (_as_mask(value),)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(_as_mask(m) for m in value)
    raise TypeError(
        f"masks[{method!r}] must be a Mask, None (dense), a list of them or an ImpResult, "
        f"got {type(value).__name__}"
    )


def evaluate_tickets(
    model: nn.Module,
    masks: Mapping[str, Any],
    train_data: Dataset,
    test_data: Dataset,
    config: TrainConfig,
    *,
    init_seed: int | None = None,
    data_seeds: Sequence[int] = (0, 1),
    store: Store | None = None,
    progress: bool = True,
) -> TicketTable:
    """Train every ticket θ0 ⊙ m on `train_data` for each data seed; test on `test_data`.

    Args:
        model: The network at θ0 (not changed).
        masks: Method name → a `Mask`, `None` (the dense network), a list of them, or an
            `ImpResult` (all its rounds).
        train_data: What every ticket trains on.
        test_data: What every trained ticket is tested on.
        config: The training recipe.
        init_seed: Rebuild θ0 from this seed instead of `model`'s weights.
        data_seeds: The data orders each ticket is trained with.
        store: A run store: trained tickets are loaded when present, saved when trained (keys:
            `ticket_key`); test metrics are stored per test set.
        progress: Show progress bars.

    Returns:
        A `TicketTable`: one entry (method, sparsity, data seed, accuracy, loss) per trained
        ticket.
    """
    if not isinstance(masks, Mapping) or not masks:
        raise ValueError("masks must map at least one method name to its masks")
    seeds = tuple(data_seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ValueError(f"data_seeds must be a non-empty list of ints, got {data_seeds!r}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    net0 = with_init_seed(model, init_seed)
    train_data = as_dataset(train_data, "train_data", ordered=True)
    test_data = as_dataset(test_data, "test_data")
    for what, d in (("train_data", train_data), ("test_data", test_data)):
        check_model_input(net0, d, what)
        check_classes(net0, d)
    lists = _mask_lists(masks, net0)
    tickets = _Tickets(net0, train_data, test_data, config, store, progress)
    jobs = [(method, m, s) for method, ms in lists.items() for m in ms for s in seeds]
    entries = []
    start = time.perf_counter()
    bar = tqdm(jobs, desc="tickets", disable=not progress)
    for method, m, seed in bar:
        entries.append(tickets.entry(method, m, seed))
        if progress:
            bar.set_postfix(method=method, acc=f"{entries[-1].accuracy:.3f}")
    bar.close()
    return TicketTable(
        entries=tuple(entries),
        masks=lists,
        test_data=f"{test_data.name}-{tickets.test_id}",
        data_seeds=seeds,
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class _Tickets:
    """What every ticket of one `evaluate_tickets` call shares: θ0, the data, the recipe and
    the store."""

    net0: nn.Module
    train_data: Dataset
    test_data: Dataset
    config: TrainConfig
    store: Store | None
    progress: bool

    @cached_property
    def identity(self) -> dict[str, Any]:
        return model_identity(self.net0)

    @cached_property
    def data_hash(self) -> str:
        return data_fingerprint(self.train_data)

    @cached_property
    def test_id(self) -> str:
        return data_fingerprint(self.test_data)

    def entry(self, method: str, mask: Mask | None, seed: int) -> TicketEntry:
        """The ticket θ0 ⊙ `mask` trained with `seed` (or loaded) and tested."""
        key = TicketRun(
            data=self.train_data.name,
            data_hash=self.data_hash,
            train=self.config,
            data_seed=seed,
            mask=_digest(mask),
            **self.identity,
        )
        run = None if self.store is None else self.store.run(key)
        cached = run is not None and run.has("result", ".pt")
        result = train_ticket(
            self.net0,
            mask,
            self.train_data,
            self.config,
            seed,
            store=self.store,
            progress=self.progress,
            key=key,
        )
        metrics = _test_metrics(result, self.net0, self.test_data, self.test_id, run)
        return TicketEntry(
            method=method,
            sparsity=0.0 if mask is None else mask.sparsity,
            data_seed=seed,
            accuracy=metrics.accuracy,
            loss=metrics.loss,
            seconds=result.seconds,
            cached=cached,
            key=key,
            run=None if run is None else run.path.name,
        )


def _mask_lists(masks: Mapping[str, Any], net0: nn.Module) -> dict[str, tuple[Mask | None, ...]]:
    """Each method's masks as a tuple (None: dense), each checked against the network."""
    lists = {method: _mask_list(method, value) for method, value in masks.items()}
    params = dict(net0.named_parameters())
    for ms in lists.values():
        for m in ms:
            if m is not None:
                check_compatible(m, params)
    return lists


def _test_metrics(
    result: TrainResult, net0: nn.Module, test_data: Dataset, test_id: str, run: Any
) -> Metrics:
    key = f"eval-{test_id}"
    if run is not None and run.has(key, ".json"):
        return Metrics(**run.load_json(key))
    metrics = evaluate(with_state(net0, result.state), test_data)
    if run is not None:
        run.save_json(key, asdict(metrics))
    return metrics
