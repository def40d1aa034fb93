"""`Study`: the study's results (`StudyRuns`), with an optional scheduler that trains them
as sweeps (`lmc_toolkit.study.units`) on a process pool or a Dask cluster before they are read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmc_toolkit.store.runs import Store
from lmc_toolkit.study.presets import StudyConfig
from lmc_toolkit.study.runs import StudyRuns
from lmc_toolkit.study.units import instability_sweep, study_sweep
from lmc_toolkit.sweep.schedulers import scheduler_kind


class Study(StudyRuns):
    """Lazily computed, store-cached results of one `StudyConfig`; with a `scheduler`
    (`"local"`, `"processes:N"`, a Dask client or address), the trainings a figure needs are
    handed out as sweeps first, so that what follows only loads them."""

    def __init__(
        self,
        config: StudyConfig,
        store: Store | str | None = None,
        device: Any = None,
        progress: bool = True,
        scheduler: Any = None,
    ):
        if scheduler is not None:
            scheduler_kind(scheduler)  # refuse a bad value before any work
        super().__init__(config, store, device, progress)
        self.scheduler = scheduler
        self._swept: set[tuple[Any, ...]] = set()  # prefetches already done by this object

    def with_init(self, init_seed: int) -> Study:
        """The same study from another initialization (see `StudyRuns.with_init`), with the
        same scheduler and nothing swept yet."""
        other = super().with_init(init_seed)
        other._swept = set()
        return other  # type: ignore[return-value]

    def prefetch(
        self,
        methods: Sequence[str] | None = None,
        rounds: Sequence[int] | None = None,
        data_seeds: Sequence[int] | None = None,
    ) -> Any:
        """With a `scheduler`, train the pruning runs and then the tickets of `methods` ×
        `rounds` × `data_seeds` (defaults: the config's) as a sweep (`lmc_toolkit.sweep`),
        so that what follows only loads them; a failed unit raises `SweepError` naming it.
        Without one, or when this study swept the same units before, nothing happens here:
        tickets are trained (or loaded) when first asked for."""
        what = tuple(None if v is None else tuple(v) for v in (methods, rounds, data_seeds))
        if self.scheduler is None or what in self._swept:
            return None
        report = study_sweep(
            self.config, self.store, self.scheduler, methods=methods, rounds=rounds,
            data_seeds=data_seeds, device=self.requested_device, progress=self.progress,
        ).raise_for_failures()  # fmt: skip
        self._swept.add(what)
        return report

    def prefetch_instability(
        self, method: str, round: int, ks: Sequence[int], data_seeds: Sequence[int] | None = None
    ) -> Any:
        """With a `scheduler`, train the spawn points and children of F3's instability analysis
        of `method` at `round` as a sweep; without one, nothing happens here."""
        if self.scheduler is None:
            return None
        return instability_sweep(
            self.config, self.store, self.scheduler, method, round, ks, 1, data_seeds,
            device=self.requested_device, progress=self.progress,
        ).raise_for_failures()  # fmt: skip
