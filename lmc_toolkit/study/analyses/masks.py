"""F1 and F7: how the distilled inner loop's mask converges, and what finding each mask cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TypedDict

from lmc_toolkit.study.analyses.cache import cached
from lmc_toolkit.study.analyses.timing import RoundTiming
from lmc_toolkit.study.runs import Study


@dataclass(frozen=True)
class MaskConvergence:
    """How the mask that distilled training would prune changes over its epochs: the Hamming
    distance (fraction of prunable weights that differ) of the magnitude mask taken at each
    epoch to the one taken at the end, at one sparsity."""

    source: str
    sparsity: float
    epochs: list[float]
    hamming_to_final: list[float]
    iou_to_final: list[float]


def mask_convergence(
    study: Study, source: str, sparsity: float = 0.8, checkpoints: int = 8
) -> MaskConvergence:
    """Train θ0 on the synthetic set `source` (the distilled inner loop), take a global
    magnitude mask of `sparsity` at `checkpoints` evenly spaced steps, and compare each to the
    final one."""
    from lmc_toolkit.data.dataset import num_batches
    from lmc_toolkit.pruning.compare import hamming, iou
    from lmc_toolkit.pruning.mask import Mask
    from lmc_toolkit.pruning.prune import magnitude
    from lmc_toolkit.training.loop import train

    if not 0 < sparsity < 1:
        raise ValueError(f"sparsity must lie in (0, 1), got {sparsity!r}")

    def compute() -> MaskConvergence:
        data = study.synthetic(source)
        config = study.config.synth_train
        spe = num_batches(len(data), config.batch_size)
        total = config.total_steps(spe)
        steps = sorted({round(total * i / checkpoints) for i in range(1, checkpoints + 1)})
        result = train(study.model0, data, config, 0, checkpoint_steps=steps, progress=False)
        prunable = Mask.ones(study.model0)
        masks = [magnitude(result.checkpoints[s].state, sparsity, prunable) for s in steps]
        final = masks[-1]
        return MaskConvergence(
            source=source,
            sparsity=sparsity,
            epochs=[s / spe for s in steps],
            hamming_to_final=[float(hamming(m, final)) for m in masks],
            iou_to_final=[float(iou(m, final)) for m in masks],
        )

    args = {"source": source, "sparsity": sparsity, "checkpoints": checkpoints}
    return cached(study, "mask-convergence", args, compute, asdict, lambda d: MaskConvergence(**d))


@dataclass(frozen=True)
class MaskCost:
    """The training it took to find one method's mask at one round, three ways: the distinct
    dataset points its pruning rounds train on (`prune_images`, what the study counts),
    sample-gradient evaluations (images through forward and backward, all earlier rounds
    included) and wall seconds as recorded when the rounds were trained (on shared cores:
    noisy). The `distill_*` fields are the synthetic set's own one-off cost (zero for IMP and
    a random real subset): the distinct real images it read, the real images its matching
    loss embedded, and its seconds. `quiet_*` are the same seconds re-timed under control
    (`round_timings`: medians of interleaved repeats; None when not timed)."""

    method: str
    round: int
    sparsity: float
    samples: int
    seconds: float
    prune_images: int
    distill_images: int = 0
    distill_samples: int = 0
    distill_seconds: float = 0.0
    quiet_seconds: float | None = None
    quiet_distill_seconds: float | None = None


def mask_costs(study: Study, timings: Sequence[RoundTiming] = ()) -> list[MaskCost]:
    """`MaskCost` of every pruned method at every ticket round (random pruning costs nothing),
    with the re-timed seconds of `timings` where given."""
    timed = {t.method: t for t in timings}
    rows = []
    for method in study.config.methods[1:-1]:
        run = study.run_of(method)
        distill = distillation_cost(study, method)
        timing = timed.get(method)
        for r in study.config.ticket_rounds:
            rnd = run.rounds[r]
            rows.append(
                MaskCost(
                    method=method,
                    round=r,
                    sparsity=rnd.sparsity,
                    samples=int(rnd.mask_samples),
                    seconds=float(rnd.mask_seconds),
                    prune_images=int(run.prune_size),
                    **distill,
                    quiet_seconds=None if timing is None else timing.mask_seconds(r),
                    quiet_distill_seconds=None if timing is None else timing.distill_seconds,
                )
            )
    return rows


class DistillCost(TypedDict, total=False):
    """A synthetic set's one-off cost, as `MaskCost`'s `distill_*` fields."""

    distill_images: int
    distill_samples: int
    distill_seconds: float


def distillation_cost(study: Study, method: str) -> DistillCost:
    """The one-off cost of the synthetic set behind `method` (none for IMP or a random real
    subset): every real training image read, the real images its matching loss embedded
    (iterations × outer loops × real batch × classes) and its recorded seconds."""
    source = method.removeprefix("distilled-")
    if method == "imp" or source == "random":
        return DistillCost()
    meta = study.synthetic(source).meta
    classes = study.train_data.num_classes
    embedded = (
        int(meta.get("iterations", 0))
        * int(meta.get("outer_loops", 1))
        * int(meta.get("real_batch", 0))
        * classes
    )
    return DistillCost(
        distill_images=len(study.train_data),
        distill_samples=embedded,
        distill_seconds=float(meta.get("seconds", 0.0)),
    )
