"""Datasets as tensors: `load(name)` (embedded MNIST, digits, Fashion-MNIST, torchvision sets,
ImageNet folders), splits, batching with an explicit `torch.Generator`, `as_dataset`, the
entrance for a user's own data (a DataLoader, an (X, Y) pair, a torch Dataset), and `stream`
for data read batch by batch, never held whole."""

from lmc_toolkit.data.dataset import AUGMENTATIONS, Dataset, batches, num_batches
from lmc_toolkit.data.entrance import DataLike, as_dataset
from lmc_toolkit.data.sources import InMemoryName, known_datasets, load, load_in_memory
from lmc_toolkit.data.stream import Stream, stream

__all__ = [
    "AUGMENTATIONS",
    "DataLike",
    "Dataset",
    "InMemoryName",
    "Stream",
    "as_dataset",
    "batches",
    "known_datasets",
    "load",
    "load_in_memory",
    "num_batches",
    "stream",
]
