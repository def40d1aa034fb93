"""F1 and F7: how the distilled inner loop's mask converges, and what finding each mask cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lmc_toolkit.study.analyses.cache import cached
from lmc_toolkit.study.runs import StudyRuns


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
    study: StudyRuns, source: str, sparsity: float = 0.8, checkpoints: int = 8
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
    """The training it took to find one method's mask at one round: sample-gradient
    evaluations (images through forward and backward) and seconds, all earlier rounds included."""

    method: str
    round: int
    sparsity: float
    samples: int
    seconds: float
    prune_images: int


def mask_costs(study: StudyRuns) -> list[MaskCost]:
    """`MaskCost` of every pruned method at every ticket round (random pruning costs nothing)."""
    rows = []
    for method in study.config.methods[1:-1]:
        run = study.run_of(method)
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
                )
            )
    return rows
