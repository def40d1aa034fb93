"""Datasets as tensors: `load(name)` (embedded MNIST, digits, Fashion-MNIST, torchvision sets,
ImageNet folders), splits, and batching with an explicit `torch.Generator`."""

from lmc_toolkit.data.dataset import AUGMENTATIONS, Dataset, batches, num_batches
from lmc_toolkit.data.sources import known_datasets, load

__all__ = ["AUGMENTATIONS", "Dataset", "batches", "known_datasets", "load", "num_batches"]
