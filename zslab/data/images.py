"""Images listed by path and decoded lazily (the image-folder datasets: xlsa17, class folders, MiniImageNet)."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from zslab import ZSLabError


class ImageListDataset(Dataset):
    """Images listed by path, loaded lazily: ``(float tensor (3, S, S) in [0, 1], label)``.

    Each image is opened with PIL, converted to RGB, its shorter side resized to
    ``image_size`` (bicubic, JPEG draft mode for speed) and centre-cropped to a square.
    ``transform``, when given, replaces this: it receives the RGB PIL image and must return
    the tensor. ``labels`` is a LongTensor of global class indices; ``paths`` the file list.
    There is deliberately no ``images`` attribute (that marks in-memory tensor datasets).
    ``check_files`` checks at construction that every file exists.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], labels, image_size: int = 224,
                 transform: Callable | None = None, check_files: bool = True):
        self.paths = [str(p) for p in paths]
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
        if len(self.paths) != self.labels.shape[0]:
            raise ZSLabError(f"ImageListDataset: {len(self.paths)} paths but {self.labels.shape[0]} labels")
        if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
            raise ZSLabError(f"image_size must be a positive integer, got {image_size!r}")
        self.image_size = image_size
        self.transform = transform
        if check_files:
            check_files_exist(self.paths, what="images")

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> torch.Tensor:
        path = self.paths[i]
        S = self.image_size
        try:
            with Image.open(path) as img:
                if img.format == "JPEG":
                    img.draft("RGB", (S, S))  # decode at a reduced scale that stays >= S
                img = img.convert("RGB")  # forces the decode: errors surface here
        except FileNotFoundError:
            raise ZSLabError(f"image file not found: {path}") from None
        except (OSError, ValueError, SyntaxError) as e:  # PIL.UnidentifiedImageError is an OSError
            detail = e.__class__.__name__ + ("" if path in str(e) else f": {e}")
            raise ZSLabError(f"cannot read image {path} ({detail}): the file is corrupt or not an "
                             f"image; replace it") from None
        if self.transform is not None:
            return self.transform(img)
        img = ImageOps.fit(img, (S, S), method=Image.BICUBIC, centering=(0.5, 0.5))
        arr = np.asarray(img, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)

    def __getitem__(self, i):
        return self.load(i), self.labels[i]


def check_files_exist(paths: Sequence[str], what: str = "files", hint: str = "") -> None:
    """Raise a ZSLabError with the count and first few missing paths, if any are missing."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        shown = "\n  ".join(missing[:5])
        more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ZSLabError(f"{len(missing)} of {len(paths)} {what} are missing on disk{hint}:\n  {shown}{more}")


