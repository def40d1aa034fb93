"""Synthetic data as a pluggable, cached input: real subsets, coresets, distilled sets, files.

Every maker returns a `Dataset` whose `meta` records how it was made (method, ipc, iterations,
seeds, settings, source dataset) and is cached in the run store when given `store=`:

- `random_subset(data, ipc, seed)`: ipc real images per class, the same-size real control;
- `herding(data, ipc, embed=...)`: a greedy coreset tracking each class's feature mean;
- `distribution_matching(...)` (Zhao & Bilen 2023) and `gradient_matching(...)` (Zhao et al.
  2021, with IDC's multi-formation `factor`): images optimized through random networks;
- `load_distilled(path, ...)`: sets saved by the public IDC, DC/DSA/DM and MTT code bases.

A set saved with `Dataset.save` loads back with `Dataset.load` (weights-only). The modules:
`subsets` (random, herding), `distribution_matching`, `gradient_matching` (DC/IDC), `common`
(the caching and seeding they share), `augment` (differentiable siamese augmentation),
`multiformation` (IDC's encoding) and `files` (the loaders).
"""

from __future__ import annotations

from lmc_toolkit.synth.augment import SiameseAugment, default_augment
from lmc_toolkit.synth.distribution_matching import distribution_matching
from lmc_toolkit.synth.files import load_distilled
from lmc_toolkit.synth.gradient_matching import gradient_matching
from lmc_toolkit.synth.multiformation import decode, encode
from lmc_toolkit.synth.subsets import herd, herding, random_subset

__all__ = [
    "SiameseAugment",
    "decode",
    "default_augment",
    "distribution_matching",
    "encode",
    "gradient_matching",
    "herd",
    "herding",
    "load_distilled",
    "random_subset",
]
