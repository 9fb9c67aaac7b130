"""The data contract shared by every zslab dataset.

A :class:`ZSLData` bundles the class-level semantics (attribute matrix, names) with the
image splits in the xlsa17 sense:

* ``train``       images of the *train* seen classes, used for gradient steps;
* ``val_seen``    held-out images of the train classes (pseudo-seen for selection);
* ``val_unseen``  images of the *validation* classes, disjoint from train and test
                  (pseudo-unseen: chooses the checkpoint and the calibration factor mu);
* ``test_seen``   held-out images of the train classes, never used for selection;
* ``test_unseen`` images of the unseen (test) classes.

Labels are always *global* class indices into ``class_names``/``class_attributes``.

Text-anchor datasets (LAAT: ``folder``, ``cifar-fs``, ``miniimagenet``) have no attribute
matrix: their ``class_attributes`` is ``None`` and ``attribute_names`` is empty
(``has_attributes`` is False, ``num_attributes`` is 0); their ``class_names`` are what a text
encoder turns into anchors.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from zslab import ZSLabError

SPLITS = ("train", "val_seen", "val_unseen", "test_seen", "test_unseen")


class LazyRows:
    """A read-only stand-in for a tensor of ``shape`` whose rows are made when indexed:
    ``rows[key]`` (int, slice, index tensor/list, bool mask) calls ``fetch(index_tensor)`` and
    returns a tensor of ``dtype``; ``shape``, ``ndim``, ``dtype`` and ``len`` are those of the full
    tensor. Used for datasets rendered on the fly (``shapes`` with ``on_the_fly=True``), so code
    that slices ``dataset.images[idx]`` works unchanged. ``fetch`` must be picklable for
    DataLoader worker processes."""

    def __init__(self, fetch, shape: tuple[int, ...], dtype: torch.dtype):
        self.fetch, self.shape, self.dtype = fetch, torch.Size(shape), dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        n = self.shape[0]
        if isinstance(key, tuple):
            if not key:
                raise IndexError("LazyRows needs a row index")
            return self[key[0]][(slice(None),) + key[1:]]
        if isinstance(key, (int,)) or (torch.is_tensor(key) and key.ndim == 0 and not key.dtype.is_floating_point):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for {n} rows")
            return self.fetch(torch.tensor([i % n]))[0]
        if isinstance(key, slice):
            idx = torch.arange(n)[key]
        else:
            idx = torch.as_tensor(key)
            if idx.dtype == torch.bool:
                if idx.shape != (n,):
                    raise IndexError(f"boolean row mask must have shape ({n},), got {tuple(idx.shape)}")
                idx = idx.nonzero().flatten()
            idx = idx.long().flatten()
            if idx.numel() and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"row index out of bounds for {n} rows")
            idx = idx % n if n else idx
        if idx.numel() == 0:
            return torch.empty((0,) + tuple(self.shape[1:]), dtype=self.dtype)
        return self.fetch(idx)

    def __repr__(self) -> str:
        return f"LazyRows(shape={tuple(self.shape)}, dtype={self.dtype})"


class TensorImageDataset(Dataset):
    """In-memory images ``(N, 3, H, W)`` in [0, 1] (float or uint8) with global labels.
    ``images`` (and extras) may also be a :class:`LazyRows`, rendered per batch when indexed.

    ``extras`` holds optional per-image tensors (e.g. attribute labels, part masks) indexed
    along the first dimension; they are not returned by ``__getitem__`` but are available
    for metrics and figures.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, extras: dict[str, torch.Tensor] | None = None):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images = images
        self.labels = labels.long()
        self.extras = dict(extras or {})
        for k, v in self.extras.items():
            if v.shape[0] != images.shape[0]:
                raise ValueError(f"extra '{k}' has {v.shape[0]} rows for {images.shape[0]} images")

    def __len__(self) -> int:
        return self.images.shape[0]

    def image(self, i):
        x = self.images[i]
        return x.float().div(255.0) if x.dtype == torch.uint8 else x

    def __getitem__(self, i):
        return self.image(i), self.labels[i]


@dataclass
class ZSLData:
    """Class semantics plus the five splits (see module docstring)."""

    name: str
    class_names: list[str]
    attribute_names: list[str]
    class_attributes: torch.Tensor | None  # (n_classes, K) float, continuous; None: no attributes
    train_classes: torch.Tensor     # global indices of the seen classes trained on
    val_classes: torch.Tensor       # global indices of validation (pseudo-unseen) classes
    unseen_classes: torch.Tensor    # global indices of the test unseen classes
    splits: dict[str, Dataset]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        A = self.class_attributes
        if A is None:  # text-anchor dataset (no attribute matrix)
            if self.attribute_names:
                raise ValueError(f"{self.name}: attribute_names given but class_attributes is None")
            self._check_splits()
            return
        if A.ndim != 2 or A.shape[0] != len(self.class_names):
            raise ValueError(
                f"class_attributes must be (n_classes={len(self.class_names)}, K), got {tuple(A.shape)}")
        if not torch.isfinite(A).all():
            raise ValueError(f"{self.name}: class attribute matrix contains NaN or inf")
        zero = (A.abs().sum(1) == 0).nonzero().flatten().tolist()
        if zero:
            raise ValueError(f"{self.name}: class attribute rows are all zero for classes {zero[:5]}")
        self._check_splits()

    def _check_splits(self):
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"{self.name}: missing splits {missing}")
        sets = [set(self.train_classes.tolist()), set(self.val_classes.tolist()), set(self.unseen_classes.tolist())]
        if sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]:
            raise ValueError(f"{self.name}: train/val/unseen class sets overlap")

    @property
    def has_attributes(self) -> bool:
        """False for text-anchor datasets whose ``class_attributes`` is None."""
        return self.class_attributes is not None

    @property
    def num_attributes(self) -> int:
        return 0 if self.class_attributes is None else self.class_attributes.shape[1]

    @property
    def image_size(self) -> int:
        x, _ = self.splits["train"][0]
        return int(x.shape[-1])

    def class_counts(self) -> dict[str, int]:
        """``{"train": n, "val": n, "unseen": n}``: the number of training (seen), validation
        (pseudo-unseen) and unseen (novel, test) classes. Cheap (no image is read): check an
        evaluation's N-way against it before training, e.g. N-way zero-shot episodes on the
        novel classes need ``N <= class_counts()["unseen"]`` and validation episodes
        ``N <= class_counts()["val"]``."""
        return {"train": int(len(self.train_classes)), "val": int(len(self.val_classes)),
                "unseen": int(len(self.unseen_classes))}

    def split_sizes(self) -> dict[str, int]:
        """``{split: number of images}`` for the five splits (:data:`SPLITS`); reads no image."""
        return {s: len(self.splits[s]) for s in SPLITS}

    def check_image_files(self, limit: int = 5) -> int:
        """Check, without decoding, that every image file the splits list (the splits that read
        images from disk: those with a ``paths`` list, e.g. :class:`~zslab.data.xlsa17.ImageListDataset`)
        exists, is not empty and has an image header PIL recognises; return the number of files
        checked. In-memory splits are skipped.

        Loaders read image files lazily, so a missing, empty or non-image file would otherwise
        surface at the first batch that reads it, after a run folder was created (or, for a
        test image, after training). This reads each file's first bytes only (tens of µs per
        file). Raises :class:`~zslab.ZSLabError` with the number of bad files and the first
        ``limit`` of them, each with its reason."""
        seen: dict[str, None] = {}
        for s in SPLITS:
            for p in getattr(self.splits.get(s), "paths", None) or ():
                seen.setdefault(str(p), None)
        bad: list[str] = []
        for p in seen:
            try:
                if os.path.getsize(p) == 0:
                    bad.append(f"{p} (empty file)")
                    continue
                with Image.open(p):
                    pass
            except FileNotFoundError:
                bad.append(f"{p} (not found)")
            except UnidentifiedImageError:
                bad.append(f"{p} (not an image PIL can read)")
            except (OSError, ValueError, SyntaxError) as e:
                bad.append(f"{p} ({e.__class__.__name__}: {e})")
        if bad:
            shown = "\n  ".join(bad[:limit])
            more = f"\n  ... and {len(bad) - limit} more" if len(bad) > limit else ""
            raise ZSLabError(f"dataset '{self.name}': {len(bad)} of {len(seen)} image files cannot be read; "
                             f"replace or remove them:\n  {shown}{more}")
        return len(seen)
