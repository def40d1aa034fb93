"""What one study compares: `StudyConfig` (data, model, initialization, training recipes, pruning
methods, synthetic sources) and the presets `smoke`, `cpu`, `fashion` and `paper`.

Methods are named `"dense"`, `"imp"` (IMP on real data, rewound to init), `"random"` (random
pruning at IMP's sparsities) and `"distilled-<source>"` (IMP whose inner training runs on the
synthetic set `<source>`: one of `SYNTHETIC`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from lmc_toolkit.store.naming import canonical
from lmc_toolkit.training.config import TrainConfig

#: The synthetic sets distilled pruning can run on (the same-size real control included).
SYNTHETIC = ("random", "herding", "dm", "dc")


@dataclass(frozen=True)
class StudyConfig:
    """Everything the figure notebooks share. `train` is the real-data recipe (IMP's inner
    loop and every ticket), `synth_train` the inner loop on synthetic data; tickets are trained
    at the masks of `ticket_rounds` (round r has sparsity 1 - 0.8^r) for every data seed."""

    dataset: str = "mnist"
    data_root: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    model: str = "convnet3"
    model_options: tuple[tuple[str, Any], ...] = (("width", 32),)
    init_seed: int = 0
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=4, lr=0.05))
    rounds: int = 5
    ticket_rounds: tuple[int, ...] = (1, 3, 5)
    synthetic: tuple[str, ...] = ("random",)
    ipc: int = 10
    synth_iterations: int = 200
    synth_options: tuple[tuple[str, Any], ...] = ()
    synth_lr: float | None = None
    synth_real_batch: int = 256
    synth_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=100, lr=0.01))
    data_seeds: tuple[int, ...] = (0, 1)
    #: the seeds of each method's independent mask-finding runs (method-level replication,
    #: F1's `mask_replicates`); None: one per data seed. Seed 0 is the study's own run.
    mask_seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        bad = [s for s in self.synthetic if s not in SYNTHETIC]
        if bad:
            raise ValueError(f"synthetic source {bad[0]!r} is not one of {SYNTHETIC}")
        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise ValueError(f"rounds must be an int ≥ 1, got {self.rounds!r}")
        wrong = [r for r in self.ticket_rounds if not 0 <= r <= self.rounds]
        if wrong:
            raise ValueError(
                f"ticket round {wrong[0]} lies outside the IMP run (rounds 0 to {self.rounds})"
            )
        if len(self.data_seeds) < 2 or len(set(self.data_seeds)) != len(self.data_seeds):
            raise ValueError(f"need at least two distinct data seeds, got {self.data_seeds!r}")
        seeds = self.mask_seeds
        if seeds is not None and (not seeds or len(set(seeds)) != len(seeds) or 0 not in seeds):
            raise ValueError(
                f"mask_seeds must be distinct ints including 0 (the study's own run), got {seeds!r}"
            )
        for name in ("model_options", "synth_options"):
            object.__setattr__(self, name, tuple(sorted(dict(getattr(self, name)).items())))

    @property
    def replicates(self) -> tuple[int, ...]:
        """The seeds of the mask-finding runs (`mask_seeds`, default one per data seed)."""
        return self.data_seeds if self.mask_seeds is None else self.mask_seeds

    @property
    def methods(self) -> tuple[str, ...]:
        return ("dense", "imp", *(f"distilled-{s}" for s in self.synthetic), "random")

    def sparsity(self, r: int) -> float:
        """The nominal sparsity after r rounds of pruning 20% of the remaining weights."""
        return 1.0 - 0.8**r


#: The embedded real MNIST on 2 CPU cores. Measured here (convnet3 width 32, 4 epochs, LR
#: x0.2 after epoch 3): at lr 0.1 two dense copies spawned at init are linearly connected
#: (0.25% error barrier, 98% accuracy); at lr 0.3 they are not (28% barrier, 96.5%): the
#: regime the study is about.
CPU = StudyConfig(
    dataset="mnist",
    model_options=(("width", 32),),
    train=TrainConfig(epochs=4, lr=0.3, batch_size=64, milestones=(3,)),
    rounds=9,
    ticket_rounds=(2, 4, 6, 9),
    synthetic=("random", "dm"),
    ipc=10,
    # distribution matching as benchmarks/synth_mnist.py measured it: 100 iterations of a
    # width-32 ConvNet-3, 64 real images per class, image lr 10 (91.9% vs 88.6% for a
    # random subset of the same size)
    synth_iterations=100,
    synth_options=(("width", 32),),
    synth_lr=10.0,
    synth_real_batch=64,
    synth_train=TrainConfig(epochs=100, lr=0.01, batch_size=64, milestones=(67, 84)),
)

#: A harder CPU scale: the cpu preset's network and schedule (lr 0.3) on Fashion-MNIST (Debian's
#: dataset-fashion-mnist, offline), 4000 training and 2000 test images, three data seeds (three
#: pairs, of which one is disjoint: the verdicts' intervals get no SGD-noise estimate from
#: them; `connectivity.intervals`), three mask-finding runs per method. Measured by benchmarks/fashion_calibration.py (benchmarks/README):
#: dense copies spawned at init are within 2 points of each other at lr 0.05 and 0.1, 2.5-5.7
#: points apart at lr 0.2 and 11-25 points apart at lr 0.3 (accuracy 79-84%).
FASHION = replace(
    CPU,
    dataset="fashion-mnist",
    train_limit=4000,
    test_limit=2000,
    data_seeds=(0, 1, 2),
    # one mask-finding run per data seed, as cpu: the two further runs took 17 minutes on
    # 2 cores (each an IMP run, two distilled runs, a DM set and their tickets)
    mask_seeds=None,
)

STUDY_PRESETS: dict[str, StudyConfig] = {
    # seconds per notebook: 8×8 digits, a tiny ConvNet
    "smoke": StudyConfig(
        dataset="digits",
        train_limit=400,
        model_options=(("width", 8), ("depth", 2)),
        train=TrainConfig(epochs=1, lr=0.05, batch_size=32),
        rounds=2,
        ticket_rounds=(1, 2),
        ipc=2,
        synth_iterations=5,
        synth_options=(("width", 8), ("depth", 2)),
        synth_real_batch=16,
        synth_train=TrainConfig(epochs=5, lr=0.01, batch_size=32),
    ),
    "cpu": CPU,
    "fashion": FASHION,
    # the study's settings: CIFAR-10, narrow ResNet-18, IDC-style distilled data
    "paper": StudyConfig(
        dataset="cifar10",
        model="resnet18",
        model_options=(),
        train=TrainConfig(epochs=300, lr=0.01, milestones=(200, 250), augment="crop+flip"),
        rounds=10,
        ticket_rounds=(1, 3, 4, 6, 9, 10),
        synthetic=("dc", "dm", "random"),
        ipc=50,
        synth_iterations=2000,
        synth_train=TrainConfig(epochs=1000, lr=0.01, milestones=(667, 833), augment="crop+flip"),
        # one mask-finding run per method: replicating them doubles F1's ~67 trainings of 300
        # epochs (about 1.7 h each on an H100); pass mask_seeds=(0, 1) to replicate
        mask_seeds=(0,),
    ),
}


#: Schedules a preset can be run at instead of its own: "smoke" keeps the preset's data, model,
#: synthetic sources and augmentation and takes the smoke preset's epochs, rounds, distillation
#: iterations, distillation network (gradient matching through the default width-128 ConvNet
#: took 197 s of the paper preset's ~250 s for F1 on 2 cores; at width 8, depth 2: 16 s) and
#: image counts, so that a whole pipeline (the paper's, say) runs in minutes on a CPU as a check
#: that every figure is produced.
SCALES = ("smoke",)


def at_scale(config: StudyConfig, scale: str | None) -> StudyConfig:
    """`config` on the schedule of `scale` (None: as it is); see `SCALES`."""
    if scale is None:
        return config
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; scales: {list(SCALES)} or None")
    s = STUDY_PRESETS["smoke"]

    def limit(own: int | None, small: int) -> int:
        return small if own is None else min(own, small)

    return replace(
        config,
        train=replace(s.train, augment=config.train.augment),
        synth_train=replace(s.synth_train, augment=config.synth_train.augment),
        rounds=s.rounds,
        ticket_rounds=s.ticket_rounds,
        ipc=s.ipc,
        synth_iterations=s.synth_iterations,
        synth_options=s.synth_options,
        synth_real_batch=s.synth_real_batch,
        train_limit=limit(config.train_limit, s.train_limit or 400),
        test_limit=limit(config.test_limit, 200),
    )


def study_config(preset: str, scale: str | None = None, **overrides: Any) -> StudyConfig:
    """The preset's `StudyConfig`, at another scale and with overrides where asked.

    Args:
        preset: One of the study presets ("smoke", "cpu", "fashion", "paper").
        scale: None (the preset's own schedule) or one of `SCALES` (e.g. "smoke": the preset's
            data and model on a schedule of seconds).
        **overrides: `StudyConfig` fields to replace (None values are ignored).

    Returns:
        The `StudyConfig`.
    """
    if preset not in STUDY_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {list(STUDY_PRESETS)}")
    names = {f.name for f in fields(StudyConfig)}
    given = {k: v for k, v in overrides.items() if v is not None}
    bad = sorted(set(given) - names)
    if bad:
        raise ValueError(f"StudyConfig has no field {bad[0]!r}; fields: {sorted(names)}")
    for key in ("ticket_rounds", "synthetic", "data_seeds", "mask_seeds", "model_options"):
        if key in given:
            given[key] = tuple(
                tuple(v) if isinstance(v, list) else v for v in given[key]
            )  # lists from papermill parameters
    return replace(at_scale(STUDY_PRESETS[preset], scale), **given)


def describe(config: StudyConfig) -> Mapping[str, Any]:
    """The config as plain values, for the JSON beside each figure."""
    return canonical(config)
