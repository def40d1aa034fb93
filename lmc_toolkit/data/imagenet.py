"""A subset of ImageNet from class folders (for `imagenet10`/`imagenet100`): read lazily,
image by image, as a `Stream` (the default: ImageNet-100's 130k training images would be
about 78 GB as float tensors at 224×224), or all at once into tensors for small subsets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils import data as tud
from tqdm.auto import tqdm

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class ImageFolderSubset(tud.Dataset):
    """The images of `folder/<synset>/*` for the given synsets, decoded on demand.

    Item i is (pixels, label): pixels in [0, 1], 3×size×size, normalized by `mean`/`std` when
    given; label j is `synsets[j]`. Each image is resized so its shorter side is `size`, then
    centre-cropped to size×size, as IDC does for its ImageNet subsets. Files are listed once, in
    sorted order, so the item order is the same on every pass and every machine."""

    def __init__(
        self,
        folder: Path,
        synsets: Sequence[str],
        size: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.files = list_images(folder, synsets)
        self.size = size
        self.classes = list(synsets)
        self.mean = None if mean is None else torch.tensor(mean).view(3, 1, 1)
        self.std = None if std is None else torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from PIL import Image
        from torchvision.transforms import v2

        path, label = self.files[i]
        resize = v2.Compose(
            [v2.PILToTensor(), v2.Resize(self.size, antialias=True), v2.CenterCrop(self.size)]
        )
        with Image.open(path) as img:
            pixels = resize(img.convert("RGB")).float().div_(255.0)
        if self.mean is not None and self.std is not None:
            pixels = (pixels - self.mean) / self.std
        return pixels, label


def list_images(folder: Path, synsets: Sequence[str]) -> list[tuple[Path, int]]:
    """(file, label) of every image under `folder/<synset>/`, synset by synset, sorted."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist: expected <root>/train and <root>/val")
    missing = [s for s in synsets if not (folder / s).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {len(missing)} of the {len(synsets)} class folders, "
            f"e.g. {', '.join(missing[:5])}"
        )
    files = [
        (path, label)
        for label, synset in enumerate(synsets)
        for path in sorted((folder / synset).iterdir())
        if path.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not files:
        raise FileNotFoundError(f"no images under {folder}/<synset>/")
    return files


def read_image_folder(
    folder: Path, synsets: Sequence[str], size: int, progress: bool = True
) -> tuple[Tensor, Tensor]:
    """All pixels in [0, 1] (N×3×size×size) and labels of `folder/<synset>/*`, in memory."""
    images = ImageFolderSubset(folder, synsets, size)
    pixels = torch.empty(len(images), 3, size, size)
    for i in tqdm(range(len(images)), desc=folder.name, disable=not progress):
        pixels[i] = images[i][0]
    labels = torch.tensor([label for _, label in images.files], dtype=torch.long)
    return pixels, labels
