"""`explorer(...)`: an `Explorer` of two given models, or of the trained tickets a store holds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from torch import Tensor, nn

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.pruning.stored import stored_networks
from lmc_toolkit.store.runs import Store
from lmc_toolkit.widgets.explorer_widget import Explorer, Network


def explorer(
    a: nn.Module | None = None,
    b: nn.Module | None = None,
    data: Dataset | None = None,
    *,
    store: Store | None = None,
    synthetic: Dataset | Mapping[str, Dataset] | None = None,
    labels: tuple[str, str] = ("a", "b"),
    masks: tuple[Mapping[str, Tensor] | None, Mapping[str, Tensor] | None] = (None, None),
    **options: Any,
) -> Explorer:
    """An `Explorer` of two networks on `data`.

    Pass two models `a` and `b`, or a `store` to pick among its trained tickets on `data`'s
    dataset (dense, IMP or distilled, at every sparsity and data seed), or both. `synthetic` adds evaluation sets
    (a `Dataset` or label → `Dataset`) to choose instead of `data`. Other keywords go to
    `Explorer` (alphas, resolution, span, seed, auto, bn_data, evaluator options).
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be an lmc_toolkit Dataset, got {type(data).__name__}")
    if (a is None) != (b is None):
        raise ValueError("pass both models a and b, or neither (then pick from the store)")
    for name, m in (("a", a), ("b", b)):
        if m is not None and not isinstance(m, nn.Module):
            raise TypeError(f"{name} must be a torch nn.Module, got {type(m).__name__}")
    if store is not None and not isinstance(store, Store):
        raise TypeError(f"store must be an lmc_toolkit Store, got {type(store).__name__}")
    networks: dict[str, Network | Callable[[], Network]] = {}
    if a is not None and b is not None:
        for label, model, mask in zip(labels, (a, b), masks, strict=True):
            networks[label] = (model, None if mask is None else Mask(mask))
    if store is not None:
        for entry in stored_networks(store):
            if entry.data == data.name:  # networks trained on other data do not fit `data`
                networks[entry.label] = partial(entry.load, store)
    if len(networks) < 2:
        where = f"the store at {store.root}" if store is not None else "no store"
        raise ValueError(
            f"need two networks: pass a and b, or a store with at least two trained tickets "
            f"({where} holds {len(networks)})"
        )
    datasets = {f"real: {data.name}": data}
    if isinstance(synthetic, Dataset):
        synthetic = {synthetic.name: synthetic}
    for label, d in (synthetic or {}).items():
        datasets[f"synthetic: {label}"] = d
    return Explorer(networks, datasets, **options)
