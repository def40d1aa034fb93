"""`Sweeps`: a scheduler (a process pool or a Dask cluster) that trains a `Study`'s runs as
sweeps (`lmc_toolkit.study.units`) before the study reads them from the store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmc_toolkit.study.runs import Study
from lmc_toolkit.study.units import instability_sweep, study_sweep
from lmc_toolkit.sweep.schedulers import scheduler_kind


class Sweeps:
    """Hands a study's trainings out as sweeps: pass it as `Study(..., sweeps=Sweeps(scheduler))`.
    The same units are swept once per study configuration.

    Args:
        scheduler: `"local"`, `"processes:N"`, `"cluster:N"`, a Dask `Client` or a scheduler's
            address (checked at once).
    """

    def __init__(self, scheduler: Any):
        scheduler_kind(scheduler)  # refuse a bad value before any work
        self.scheduler = scheduler
        self._swept: set[tuple[Any, ...]] = set()

    @classmethod
    def of(cls, scheduler: Any) -> Sweeps | None:
        """`Sweeps(scheduler)`, or None for no scheduler (a notebook's `scheduler = None`)."""
        return None if scheduler is None else cls(scheduler)

    def __repr__(self) -> str:
        return f"Sweeps({self.scheduler!r})"

    def prefetch(
        self,
        study: Study,
        methods: Sequence[str] | None,
        rounds: Sequence[int] | None,
        data_seeds: Sequence[int] | None,
    ) -> Any:
        """Train `study`'s pruning runs, then the tickets of `methods` × `rounds` × `data_seeds`
        (None: the config's), unless this object swept the same units before."""
        what = (
            study.config,
            *(None if v is None else tuple(v) for v in (methods, rounds, data_seeds)),
        )
        if what in self._swept:
            return None
        report = study_sweep(
            study.config,
            study.store,
            self.scheduler,
            methods=methods,
            rounds=rounds,
            data_seeds=data_seeds,
            device=study.requested_device,
            progress=study.progress,
        ).raise_for_failures()
        self._swept.add(what)
        return report

    def prefetch_instability(
        self,
        study: Study,
        method: str,
        round: int,
        ks: Sequence[int],
        data_seeds: Sequence[int] | None,
    ) -> Any:
        """Train the spawn points and children of F3's instability analysis of `method` at
        `round`."""
        return instability_sweep(
            study.config,
            study.store,
            self.scheduler,
            method,
            round,
            ks,
            1,
            data_seeds,
            device=study.requested_device,
            progress=study.progress,
        ).raise_for_failures()
