"""Real images as synthetic sets: a seeded random subset (the control) and herding (a coreset).

Both keep `ipc` real images per class, so a network trained on them sees exactly as many images
as one trained on a distilled set of the same ipc: the question "does a tiny real subset do as
well as distilled data?" is answered by swapping one function for another.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.inputs import move
from lmc_toolkit.models import build
from lmc_toolkit.store.runs import Store
from lmc_toolkit.synth.common import (
    Source,
    cached_set,
    check_ipc,
    check_seed,
    class_rows,
    generator,
    module_fingerprint,
    synthetic_dataset,
)


@dataclass(frozen=True)
class RandomSubsetRun:
    """The identity of one random subset in the store."""

    source: Source
    ipc: int
    seed: int = 0

    def run_prefix(self) -> str:
        return f"synth-random-{self.source.name}-ipc{self.ipc}"


def random_subset(
    data: Dataset,
    ipc: int,
    seed: int = 0,
    *,
    store: Store | None = None,
    recompute: bool = False,
) -> Dataset:
    """`ipc` real images per class, drawn without replacement by a generator seeded by `seed`.

    Args:
        data: The real training set.
        ipc: Images per class.
        seed: Seeds the draw.
        store: A run store: the subset is drawn once and reloaded.
        recompute: Draw it again and overwrite the stored one.

    Returns:
        The subset as a `Dataset` in class order (class 0's images first); `meta["indices"]`
        lists the chosen rows of `data`.
    """
    data = check_ipc(data, ipc)
    check_seed(seed)
    config = RandomSubsetRun(Source.of(data), ipc, seed)

    def compute() -> Dataset:
        index = random_rows(data, ipc, seed)
        picked = data.subset(index.to(data.device))
        meta = {"iterations": 0, "seed": seed, "indices": index.tolist()}
        return synthetic_dataset(picked.x, picked.y, data, "random", ipc, meta)

    return cached_set(config, compute, store, data.device, recompute)


def random_rows(data: Dataset, per_class: int, seed: int) -> Tensor:
    """Row indices of `per_class` random images of each class, class by class (CPU).

    Each class draws a permutation of its rows from one generator seeded by `seed`, so the
    first k rows per class are the same for any `per_class` ≥ k: distillation started from
    real images (`init="real"`) starts from exactly the random subset with the same seed.
    """
    g = generator(seed, "random_subset")
    rows_of = class_rows(data)
    return torch.cat([rows[torch.randperm(len(rows), generator=g)[:per_class]] for rows in rows_of])


@dataclass(frozen=True)
class HerdingRun:
    """The identity of one herding coreset in the store."""

    source: Source
    ipc: int
    embed: str = "convnet3"
    model_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    seed: int = 0

    def run_prefix(self) -> str:
        return f"synth-herding-{self.source.name}-ipc{self.ipc}"


def herding(
    data: Dataset,
    ipc: int,
    embed: nn.Module | None = None,
    seed: int = 0,
    *,
    model_options: dict[str, Any] | None = None,
    batch_size: int = 500,
    store: Store | None = None,
    recompute: bool = False,
    progress: bool = True,
) -> Dataset:
    """Per class, greedily pick the `ipc` real images whose running feature mean stays closest to
    the class's feature mean (Welling 2009, as used by Chen et al. and DC's coreset baseline).
    Ties go to the lower row.

    Args:
        data: The real training set.
        ipc: Images per class.
        embed: Any network mapping images to vectors (used in eval mode on a copy); default: the
            penultimate layer of a `convnet3` initialized from `seed`.
        seed: Seeds the default embedding network.
        model_options: The default network's options (e.g. `{"width": 64}`).
        batch_size: Images per forward pass.
        store: A run store: the subset is picked once and reloaded.
        recompute: Pick it again and overwrite the stored one.
        progress: Show a progress bar.

    Returns:
        The subset as a `Dataset`; `meta["indices"]` lists the chosen rows of `data`.
    """
    data = check_ipc(data, ipc)
    check_seed(seed)
    options = dict(model_options or {})
    if embed is not None and not isinstance(embed, nn.Module):
        raise TypeError(f"embed must be an nn.Module or None, got {type(embed).__name__}")
    if embed is not None and options:
        raise ValueError("model_options configure the default convnet3; omit them with embed=")
    if embed is None:
        net = build("convnet3", data.num_classes, data.image_shape, seed, data.device, **options)
        embed = net[:-1]  # everything up to the classifier: the flattened features
        name = "convnet3"
    else:
        name = f"{type(embed).__name__}:{module_fingerprint(embed)}"
    config = HerdingRun(Source.of(data), ipc, name, tuple(sorted(options.items())), seed)

    def compute() -> Dataset:
        start = time.perf_counter()
        feats = _features(embed, data, batch_size)
        picked = []
        rows_of = class_rows(data)
        for c in tqdm(range(data.num_classes), desc="herding", disable=not progress, leave=False):
            rows = rows_of[c].to(feats.device)
            picked.append(rows[herd(feats[rows], ipc)])
        index = torch.cat(picked).cpu()
        chosen = data.subset(index.to(data.device))
        meta = {
            "iterations": 0,
            "seed": seed,
            "embed": name,
            "model_options": options,
            "indices": index.tolist(),
            "seconds": time.perf_counter() - start,
        }
        return synthetic_dataset(chosen.x, chosen.y, data, "herding", ipc, meta)

    return cached_set(config, compute, store, data.device, recompute)


def herd(features: Tensor, k: int) -> Tensor:
    """Indices of `k` rows chosen greedily so the mean of the chosen rows tracks the mean of all:
    step j adds the unchosen row that minimizes ‖μ − (sum of chosen + row) / j‖."""
    if not 1 <= k <= len(features):
        raise ValueError(f"k must lie in [1, {len(features)}], got {k}")
    f = features.double()
    mu = f.mean(0)
    total = torch.zeros_like(mu)
    taken = torch.zeros(len(f), dtype=torch.bool, device=f.device)
    order = []
    for j in range(1, k + 1):
        dist = ((mu - (total + f) / j) ** 2).sum(1)
        dist[taken] = float("inf")
        i = int(torch.argmin(dist))  # the first minimum: ties go to the lower row
        order.append(i)
        taken[i] = True
        total += f[i]
    return torch.tensor(order, device=features.device)


def _features(embed: nn.Module, data: Dataset, batch_size: int) -> Tensor:
    """The flattened embedding of every image, computed on the embedding network's device."""
    net = copy.deepcopy(embed).eval()
    device = next((p.device for p in net.parameters()), data.device)
    out = []
    with torch.no_grad():
        for x, _ in data.batches(batch_size, shuffle=False):
            out.append(net(move(x, device)).flatten(1))
    return torch.cat(out)
