"""Reading a subset of ImageNet from class folders into tensors (for `imagenet10`/`imagenet100`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def read_image_folder(
    folder: Path, synsets: Sequence[str], size: int, progress: bool = True
) -> tuple[Tensor, Tensor]:
    """Pixels in [0, 1] (N×3×size×size) and labels of `folder/<synset>/*` for the given synsets.

    Label i is `synsets[i]`. Each image is resized so its shorter side is `size`, then
    centre-cropped to size×size, as IDC does for its ImageNet subsets.
    """
    from PIL import Image
    from torchvision.transforms import v2

    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive int, got {size!r}")
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
    resize = v2.Compose([v2.PILToTensor(), v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    images = torch.empty(len(files), 3, size, size, dtype=torch.uint8)
    for i, (path, _) in enumerate(tqdm(files, desc=folder.name, disable=not progress)):
        with Image.open(path) as img:
            images[i] = resize(img.convert("RGB"))
    labels = torch.tensor([label for _, label in files], dtype=torch.long)
    return images.float().div_(255.0), labels
