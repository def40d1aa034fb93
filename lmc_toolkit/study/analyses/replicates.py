"""Method-level replication: each pruning method's mask found again by independent runs (IMP's
data order, another draw of the synthetic set, another random mask), each mask trained into a
ticket, so that a verdict comparing methods reads the spread between mask-finding runs and
not only the SGD noise of training one mask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lmc_toolkit.pruning.mask import Mask
from lmc_toolkit.pruning.tickets import evaluate_tickets
from lmc_toolkit.study.runs import Study


@dataclass(frozen=True)
class MaskReplicate:
    """One method's ticket at one round from mask-finding run `mask_seed`, trained from θ0
    with `data_seed`, and its test accuracy."""

    method: str
    round: int
    sparsity: float
    mask_seed: int
    data_seed: int
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mask_replicates(study: Study, mask_seeds: Sequence[int] | None = None) -> list[MaskReplicate]:
    """`MaskReplicate` of every pruned method (IMP, distilled, random) at every ticket round for
    each of `mask_seeds` (default: the study's `replicates`, one per data seed unless the preset
    says otherwise; seed 0 is the study's own run), each ticket trained with the study's first
    data seed. The trainings are kept in the store."""
    c = study.config
    seeds = list(c.replicates if mask_seeds is None else mask_seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"mask_seeds must be distinct ints, got {mask_seeds!r}")
    data_seed = c.data_seeds[0]
    rows = []
    for method in c.methods[1:]:
        for seed in seeds:
            masks = [study.replicate_mask(method, r, seed) for r in c.ticket_rounds]
            table = evaluate_tickets(
                study.model0,
                {method: masks},
                study.train_data,
                study.test_data,
                c.train,
                data_seeds=(data_seed,),
                store=study.store,
                progress=study.progress,
            )
            for r, mask, entry in zip(c.ticket_rounds, masks, table.entries, strict=True):
                rows.append(
                    MaskReplicate(method, r, _sparsity(mask), seed, data_seed, entry.accuracy)
                )
    return rows


def _sparsity(mask: Mask | None) -> float:
    """The fraction of weights `mask` prunes (none for the dense round's None)."""
    return 0.0 if mask is None else mask.sparsity
