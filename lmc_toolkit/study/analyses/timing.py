"""F1: the wall seconds of finding each method's mask, timed again under control.

The seconds a pruning run records are those of its first training, on whatever else the cores
were doing then. Here one pruning round of every method (and the making of its synthetic set)
is trained again, interleaved across methods so that a change in the machine's load falls on
all of them alike, and the median of the repeats is kept. Never cached: it measures this
machine now."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from lmc_toolkit.study.runs import Study


@dataclass(frozen=True)
class RoundTiming:
    """One pruned method's re-timed cost: the median wall seconds of training one pruning round
    (`round_seconds`, every repeat in `repeat_seconds`) and of making its synthetic set
    (`distill_seconds`; 0 for IMP and a random real subset)."""

    method: str
    round_seconds: float
    repeat_seconds: list[float]
    distill_seconds: float = 0.0
    distill_repeat_seconds: list[float] = field(default_factory=list)

    def mask_seconds(self, rounds: int) -> float:
        """Seconds to reach the mask of round `rounds`: that many rounds of training (every
        round trains the same recipe on the same data; masked weights cost the same on a CPU)."""
        return rounds * self.round_seconds


def round_timings(study: Study, repeats: int = 3, at_round: int = 1) -> list[RoundTiming]:
    """Train round `at_round` of every pruned method's run (its mask, its data, its recipe) `repeats`
    times, the methods interleaved, and make each synthetic set `repeats` times without the
    store; medians per method."""
    from lmc_toolkit.training.loop import train

    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    c = study.config
    methods = list(c.methods[1:-1])
    jobs = {}
    for method in methods:
        run = study.run_of(method)
        if not 0 <= at_round < len(run.rounds):
            raise ValueError(f"at_round must lie in [0, {len(run.rounds) - 1}], got {at_round!r}")
        source = method.removeprefix("distilled-")
        data = study.train_data if method == "imp" else study.synthetic(source)
        recipe = c.train if method == "imp" else c.synth_train
        jobs[method] = (run.rounds[at_round].mask, data, recipe, source)
    rounds: dict[str, list[float]] = {m: [] for m in methods}
    distills: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(repeats):
        for method, (mask, data, recipe, source) in jobs.items():
            start = time.perf_counter()
            train(study.model0, data, recipe, 0, mask=mask, progress=False)
            rounds[method].append(time.perf_counter() - start)
            if method != "imp" and source != "random":
                start = time.perf_counter()
                study.synthetic(source, fresh=True)
                distills[method].append(time.perf_counter() - start)
    return [
        RoundTiming(
            method=m,
            round_seconds=statistics.median(rounds[m]),
            repeat_seconds=rounds[m],
            distill_seconds=statistics.median(distills[m]) if distills[m] else 0.0,
            distill_repeat_seconds=distills[m],
        )
        for m in methods
    ]
