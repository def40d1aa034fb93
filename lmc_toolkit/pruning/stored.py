"""The trained networks a run store holds, listed for picking: dense, IMP or distilled tickets.

Every trained ticket is a `ticket-*` run (see `lmc_toolkit.pruning.tickets`); its key names the data,
the model, the data seed and the mask's digest. The method that found the mask is read from the
`imp-*` runs of the same store: a mask found by IMP on the ticket's own training data is "IMP",
one found on other (synthetic) pruning data is "distilled (<that data>)".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.store.files import StoreError, safe_json_load, safe_torch_load
from lmc_toolkit.store.runs import Store
from lmc_toolkit.training.results import TrainResult


@dataclass(frozen=True)
class StoredNetwork:
    """One trained ticket in a store: its run folder and what it is."""

    run: str
    data: str
    model: str
    data_seed: int
    method: str
    sparsity: float
    mask_digest: str = ""

    @property
    def label(self) -> str:
        return (
            f"{self.method} · {100 * self.sparsity:.1f}% sparse · seed {self.data_seed} · "
            f"{self.model} on {self.data} ({self.run[-6:]})"
        )

    def load(self, store: Store) -> tuple[nn.Module, Mask | None]:
        """The trained network (built from its stored spec) and its mask (None when dense)."""
        folder = store.root / self.run
        result = TrainResult.from_dict(_load_pt(folder / "result.pt"))
        mask_file = folder / "mask.pt"
        mask = Mask.from_dict(_load_pt(mask_file)) if mask_file.exists() else None
        return result.model(), mask


def _load_pt(path: Any) -> Any:
    return safe_torch_load(path)


def _config(store: Store, run: str) -> Mapping[str, Any] | None:
    path = store.root / run / "config.json"
    try:
        record = safe_json_load(path)
    except (FileNotFoundError, StoreError):
        return None
    return record.get("config") if isinstance(record, Mapping) else None


def mask_methods(store: Store) -> dict[tuple[str, str], str]:
    """(mask digest, ticket data name) → method, from the rounds of every `imp-*` run."""
    out: dict[tuple[str, str], str] = {}
    for run in store.runs("imp-"):
        config = _config(store, run)
        if config is None:
            continue
        prune_data = str(config.get("prune_data", ""))
        for path in sorted((store.root / run).glob("round-*.pt")):
            try:
                digest = Mask.from_dict(_load_pt(path)["mask"]).digest()
            except (StoreError, KeyError, ValueError, TypeError):
                continue
            out.setdefault((digest, prune_data), "IMP")
            out.setdefault((digest, "*"), f"distilled ({prune_data})")
    return out


def stored_networks(store: Store) -> list[StoredNetwork]:
    """The trained tickets in `store` (runs with a `result.pt`).

    Args:
        store: A run store.

    Returns:
        One `StoredNetwork` per ticket, sorted by method, sparsity and seed.
    """
    if not isinstance(store, Store):
        raise TypeError(f"store must be an lmc_toolkit Store, got {type(store).__name__}")
    methods: dict[tuple[str, str], str] | None = None
    found = []
    for run in store.runs("ticket-"):
        config = _config(store, run)
        if config is None or not (store.root / run / "result.pt").exists():
            continue
        digest = str(config.get("mask", ""))
        sparsity = 0.0
        if digest:
            if methods is None:
                methods = mask_methods(store)
            data = str(config.get("data", ""))
            method = methods.get((digest, data)) or methods.get((digest, "*"), "masked")
            try:
                sparsity = Mask.from_dict(_load_pt(store.root / run / "mask.pt")).sparsity
            except (FileNotFoundError, StoreError, ValueError):
                method = "masked (mask file missing)"
        else:
            method = "dense"
        found.append(
            StoredNetwork(
                run=run,
                data=str(config.get("data", "")),
                model=str(config.get("model", "")),
                data_seed=int(config.get("data_seed", 0)),
                method=method,
                sparsity=float(sparsity),
                mask_digest=digest,
            )
        )
    return sorted(found, key=lambda n: (n.method != "dense", n.method, n.sparsity, n.data_seed))
