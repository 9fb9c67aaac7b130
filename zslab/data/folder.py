"""``folder``: class-named image folders, some classes held out as novel (LAAT-style zero-shot).

Layout (that of a CIFAR-10 copy exported to PNG folders, e.g. ``$ZSLAB_DATA/cifar10``)::

    root/train/<class>/*.jpg|*.jpeg|*.png|*.bmp|*.webp
    root/test/<class>/*.jpg|...

Each sub-folder of ``train`` and ``test`` is one class; both must hold the same class
folders. The global class order is the sorted folder names (as torchvision's
``ImageFolder``). ``class_names`` are the folder names as they are on disk (e.g.
``"pickup_truck"``, the spelling of anchor class lists such as the LAAT files);
``meta["text_names"]`` has underscores turned into spaces (:func:`text_name`), the text a
prompt is built from ("This is a photo of a pickup truck", LAAT §3.2).

Class roles and the five :class:`~zslab.data.base.ZSLData` splits
-----------------------------------------------------------------
* ``novel`` classes (``unseen_classes``) are never seen in training (LAAT §3.7: zero-shot
  recognition of novel categories); ``val_classes`` are validation (pseudo-novel) classes,
  which choose the checkpoint (LAAT's ``val_zs``) and the GZSL calibration; every other
  class is a seen (train) class.
* ``val_classes="auto"`` (the default, also when it is None): a seeded hold-out of the seen
  (non-novel) classes. Of the ``n`` non-novel classes, ``k = max(2, round(auto_val_fraction
  · n))`` (``auto_val_fraction`` = 0.2, halves rounded up) are drawn at random with ``seed``,
  at most ``n - 2`` so that two training classes remain. Two validation classes at least,
  because LAAT chooses its checkpoint on N-way episodes over them (a 1-class episode is always
  right); so ``n < 4`` is a :class:`~zslab.ZSLabError` (name the classes yourself). E.g.
  CIFAR-10 with 3 novel classes: 2 validation and 5 training classes; 20 non-novel classes:
  4 and 16. The choice is announced with an :class:`AutoValClassesWarning` naming
  the classes and how to set them (``--set data.val_classes=a,b``), and recorded in
  ``meta["val_classes_auto"]`` (absent when the classes were given). An explicit empty list
  (``[]``, ``""``) is an error: LAAT selects on validation classes.
* ``train`` / ``val_seen``: the ``train/`` images of the seen classes, a seeded per-class
  ``val_seen_fraction`` of them held out as ``val_seen`` (at least one per class when a
  class has two or more images);
* ``test_seen``: the ``test/`` images of the seen classes;
* ``val_unseen``: the ``test/`` images of the validation classes;
* ``test_unseen``: the ``test/`` images of the novel classes.

The ``train/`` images of validation and novel classes are never used (so no image of a
novel class can leak into training). ``max_per_class`` caps the images per class of every
split (an int) or of named splits (a dict ``{"train": 100, "test_unseen": 50}``; keys: the
five split names ``train``, ``val_seen``, ``val_unseen``, ``test_seen``, ``test_unseen``,
unnamed splits stay whole), keeping a seeded random subset in file order, drawn after the
splits are formed — for quick runs. Every dataset loader that reads files (``folder``,
``cub``/``awa1``/``awa2``/``sun``/``apy``, ``cifar-fs``, ``miniimagenet``) takes this option
with the same keys (:func:`resolve_max_per_class`, :func:`apply_caps`). Images are decoded
lazily, one at a time, by :class:`~zslab.data.xlsa17.ImageListDataset` (nothing is decoded
up front except one image to find ``image_size`` when it is not given).

Class-attribute matrix: none (``class_attributes is None``); anchors come from the class
names through a text encoder.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from zslab import ZSLabError
from zslab.data.base import SPLITS, ZSLData
from zslab.data.images import ImageListDataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".gif", ".tif", ".tiff")

__all__ = ["IMAGE_EXTENSIONS", "AutoValClassesWarning", "auto_val_classes", "text_name", "parse_class_list",
           "scan_class_folders", "cap_per_class", "split_per_class", "class_split_pools", "apply_caps",
           "check_fraction", "first_image_size", "resolve_max_per_class", "load_folder"]


class AutoValClassesWarning(UserWarning):
    """Issued when ``folder`` picks its validation classes itself (``val_classes="auto"``)."""


def auto_val_classes(seen: Sequence[int], *, fraction: float = 0.2, seed: int = 0) -> list[int]:
    """The automatic validation hold-out of ``folder`` (module docstring): ``k = max(2,
    round(fraction · n))`` of the ``n`` seen classes (halves rounded up), at most ``n - 2`` so
    that two training classes remain, drawn with a generator seeded by ``seed`` only (the
    draw does not depend on, nor shift, the other seeded draws of the loader). Returns the
    sorted chosen class indices; ``[]`` when ``n < 4`` (two validation and two training
    classes are the least)."""
    seen = sorted(int(c) for c in seen)
    n = len(seen)
    k = min(max(2, int(math.floor(float(fraction) * n + 0.5))), n - 2)
    if k < 2:
        return []
    rng = np.random.default_rng([int(seed), 0x5A11])
    return sorted(int(c) for c in rng.choice(np.asarray(seen, dtype=np.int64), size=k, replace=False))


def text_name(name: str) -> str:
    """The text form of a class name: underscores become spaces (``"pickup_truck"`` →
    ``"pickup truck"``), the convention of LAAT's prompts (§3.2)."""
    return " ".join(str(name).replace("_", " ").split())


def parse_class_list(value, what: str) -> list[str]:
    """``None`` → ``[]``; ``"cat,dog"`` → ``["cat", "dog"]``; a sequence of names → list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Sequence) or isinstance(value, (set, frozenset)):
        out = [str(v).strip() for v in value]
        if any(not v for v in out):
            raise ZSLabError(f"{what}: empty class name in {list(value)!r}")
        return out
    raise ZSLabError(f"{what} must be a list of class names or a comma-separated string; got {value!r}")


def scan_class_folders(directory: str | os.PathLike, what: str, hint: str = "") -> dict[str, list[str]]:
    """``{class folder name: sorted image paths}`` for every sub-folder of ``directory``.

    Raises :class:`ZSLabError` naming the folder when it is missing, has no class folders, or
    a class folder holds no image files (extensions :data:`IMAGE_EXTENSIONS`).
    """
    d = Path(directory)
    if not d.is_dir():
        raise ZSLabError(f"{what}: folder {d} not found{hint}")
    out: dict[str, list[str]] = {}
    empty = []
    with os.scandir(d) as it:
        entries = sorted((e for e in it if e.is_dir() and not e.name.startswith(".")), key=lambda e: e.name)
    for e in entries:
        with os.scandir(e.path) as files:
            paths = sorted(f.path for f in files
                           if f.is_file() and os.path.splitext(f.name)[1].lower() in IMAGE_EXTENSIONS)
        if not paths:
            empty.append(e.name)
        out[e.name] = paths
    if not out:
        raise ZSLabError(f"{what}: {d} has no class sub-folders (expected {d}/<class>/*.jpg){hint}")
    if empty:
        raise ZSLabError(f"{what}: class folders without image files ({', '.join(IMAGE_EXTENSIONS)}) in {d}: "
                         f"{empty[:5]}{hint}")
    return out


def resolve_max_per_class(max_per_class, splits: Sequence[str] = SPLITS) -> dict[str, int | None]:
    """Normalise ``max_per_class`` (None, an int for every split, or ``{split: int}``)."""
    if max_per_class is None:
        return {s: None for s in splits}
    if isinstance(max_per_class, Mapping):
        unknown = [k for k in max_per_class if k not in splits]
        if unknown:
            raise ZSLabError(f"max_per_class: unknown splits {unknown}; valid: {list(splits)}")
        out = {s: max_per_class.get(s) for s in splits}
    else:
        out = {s: max_per_class for s in splits}
    for s, v in out.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise ZSLabError(f"max_per_class for '{s}' must be a positive integer or None; got {v!r}")
    return {s: (None if v is None else int(v)) for s, v in out.items()}


def cap_per_class(items: np.ndarray, labels: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """A seeded random subset of at most ``cap`` entries per label (all when ``cap`` is None),
    returned in the original order."""
    items = np.asarray(items)
    if cap is None:
        return np.arange(items.shape[0])
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(np.sort(rng.permutation(idx)[:cap]) if idx.size > cap else idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def split_per_class(labels: np.ndarray, fraction: float | None = None, count: int | None = None,
                    rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split positions per label into ``(kept, held_out)``: per class hold out ``count``
    images, or ``round(fraction·n)`` of them (at least one when ``n >= 2``, never all)."""
    rng = np.random.default_rng(0) if rng is None else rng
    kept, held = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = idx.size
        if count is not None:
            k = min(int(count), max(n - 1, 0))
        else:
            k = min(max(int(round(float(fraction) * n)), 1), n - 1) if n >= 2 and fraction else 0
        perm = rng.permutation(idx)
        held.append(perm[:k])
        kept.append(perm[k:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)  # noqa: E731
    return cat(kept), cat(held)


def apply_caps(pools: dict[str, np.ndarray], labels: np.ndarray, caps: dict[str, int | None],
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Apply :func:`cap_per_class` to every split's positions (``pools[split]`` index ``labels``)."""
    return {s: v[cap_per_class(v, labels[v], caps.get(s), rng)] for s, v in pools.items()}


def class_split_pools(labels: np.ndarray, train_classes, val_classes, novel_classes, *,
                      val_seen_fraction: float, test_seen_per_class: int, caps: dict[str, int | None],
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The five splits of a few-shot class split (CIFAR-FS R2D2 folders, MiniImageNet), as
    positions into ``labels``: all images of validation / novel classes go to ``val_unseen`` /
    ``test_unseen``; per train class ``test_seen_per_class`` images to ``test_seen``, a
    ``val_seen_fraction`` of the rest to ``val_seen``, the remainder to ``train``; then the
    per-split caps."""
    seen = np.flatnonzero(np.isin(labels, train_classes))
    rest, test_seen = split_per_class(labels[seen], count=int(test_seen_per_class), rng=rng)
    rest = seen[rest]
    kept, held = split_per_class(labels[rest], fraction=val_seen_fraction, rng=rng)
    pools = {"train": rest[kept], "val_seen": rest[held], "test_seen": seen[test_seen],
             "val_unseen": np.flatnonzero(np.isin(labels, val_classes)),
             "test_unseen": np.flatnonzero(np.isin(labels, novel_classes))}
    return apply_caps(pools, labels, caps, rng)


def first_image_size(path: str) -> int:
    """The shorter side of one image (used when ``image_size`` is not given)."""
    try:
        with Image.open(path) as img:
            return int(min(img.size))
    except (OSError, ValueError) as e:
        raise ZSLabError(f"cannot read image {path} ({e.__class__.__name__}): replace the file") from None


def check_seed(seed, what: str = "seed") -> int:
    """``seed`` as a non-negative int (numpy's generators refuse negative seeds), else a ZSLabError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ZSLabError(f"{what} must be an integer >= 0; got {seed!r}")
    return int(seed)


def check_fraction(val_seen_fraction) -> float:
    """``val_seen_fraction`` as a float in [0, 1), else a ZSLabError."""
    f = float(val_seen_fraction)
    if not 0.0 <= f < 1.0:
        raise ZSLabError(f"val_seen_fraction must be in [0, 1); got {val_seen_fraction!r}")
    return f


def load_folder(root: str | os.PathLike, novel=None, val_classes="auto", *, image_size: int | None = None,
                max_per_class: int | Mapping[str, int] | None = None, val_seen_fraction: float = 0.1,
                seed: int = 0, transform: Callable | None = None, name: str = "folder",
                auto_val_fraction: float = 0.2) -> ZSLData:
    """Load ``root/{train,test}/<class>/*`` as a zero-shot :class:`ZSLData` (see module doc).

    Args:
        root: folder holding ``train/`` and ``test/``.
        novel: classes held out as novel (``unseen_classes``, split ``test_unseen``): folder
            names or their text form (``"pickup truck"``), a list or ``"cat,dog,ship"``.
            At least one is required.
        val_classes: validation classes (split ``val_unseen``), same forms; ``"auto"`` (default)
            or None: a seeded hold-out of the seen classes (module docstring), announced with
            an :class:`AutoValClassesWarning` and recorded in ``meta["val_classes_auto"]``.
            An empty list is an error.
        image_size: square side of the loaded images (shorter side resized, centre crop);
            default the shorter side of the first training image (32 for CIFAR-10).
        max_per_class: per-class image cap, for every split (int) or per split (dict).
        val_seen_fraction: per-class share of the seen classes' ``train/`` images held out
            as ``val_seen``.
        seed: seed of the automatic validation classes, of the ``val_seen`` hold-out and of
            the ``max_per_class`` subsets.
        transform: optional PIL → tensor transform (replaces resize + crop).
        name: the dataset name stored in ``ZSLData.name``.
        auto_val_fraction: share of the seen classes held out by ``val_classes="auto"``.
    """
    root = Path(root).expanduser()
    seed = check_seed(seed)
    hint = (" — the folder dataset expects root/train/<class>/*.jpg and root/test/<class>/*.jpg "
            "(e.g. the CIFAR-10 image folders); pass --set data.root=/path/to/root")
    if not root.is_dir():
        raise ZSLabError(f"dataset '{name}': root folder {root} not found{hint}")
    train_dirs = scan_class_folders(root / "train", f"dataset '{name}'", hint)
    test_dirs = scan_class_folders(root / "test", f"dataset '{name}'", hint)
    if set(train_dirs) != set(test_dirs):
        only_tr = sorted(set(train_dirs) - set(test_dirs))
        only_te = sorted(set(test_dirs) - set(train_dirs))
        raise ZSLabError(f"dataset '{name}': {root}/train and {root}/test must hold the same class folders; "
                         f"only in train: {only_tr[:5]}, only in test: {only_te[:5]}")
    class_names = sorted(train_dirs)
    lookup = {c: i for i, c in enumerate(class_names)}
    for i, c in enumerate(class_names):
        lookup.setdefault(text_name(c), i)

    def resolve(names: list[str], what: str) -> list[int]:
        unknown = [n for n in names if n not in lookup and text_name(n) not in lookup]
        if unknown:
            raise ZSLabError(f"dataset '{name}': {what} classes {unknown} are not class folders of {root}; "
                             f"available: {class_names}")
        ids = [lookup[n] if n in lookup else lookup[text_name(n)] for n in names]
        dup = sorted({class_names[i] for i in ids if ids.count(i) > 1})
        if dup:
            raise ZSLabError(f"dataset '{name}': {what} classes listed twice: {dup}")
        return ids

    U = resolve(parse_class_list(novel, "novel"), "novel")
    if not U:
        raise ZSLabError(f"dataset '{name}' needs novel classes held out for zero-shot evaluation: pass "
                         f"novel=[...] (CLI: --set data.novel=a,b,c); classes: {class_names}")
    auto = val_classes is None or (isinstance(val_classes, str) and val_classes.strip().lower() == "auto")
    if auto:
        f = float(auto_val_fraction)
        if not 0.0 < f < 1.0:
            raise ZSLabError(f"dataset '{name}': auto_val_fraction must be in (0, 1); got {auto_val_fraction!r}")
        seen = [i for i in range(len(class_names)) if i not in set(U)]
        V = auto_val_classes(seen, fraction=f, seed=seed)
        if not V:
            raise ZSLabError(f"dataset '{name}': cannot hold out validation classes automatically: {len(seen)} "
                             f"non-novel classes ({[class_names[i] for i in seen]}), but two training and two "
                             f"validation classes are needed. Use fewer novel classes, or set data.val_classes "
                             f"explicitly (--set data.val_classes=a,b; LAAT's validation episodes need 2)")
        chosen = [class_names[i] for i in V]
        warnings.warn(f"dataset '{name}': no val_classes given; held out {len(V)} of the {len(seen)} seen classes "
                      f"as validation (pseudo-novel) classes, chosen with seed={seed}: {','.join(chosen)}. "
                      f"To choose them yourself: --set data.val_classes={','.join(chosen)}",
                      AutoValClassesWarning, stacklevel=2)
    else:
        V = resolve(parse_class_list(val_classes, "val_classes"), "val_classes")
        if not V:
            raise ZSLabError(f"dataset '{name}': data.val_classes is empty ({val_classes!r}); LAAT selects its "
                             f"checkpoint on validation classes, so name at least one non-novel class "
                             f"(--set data.val_classes=a,b) or leave it unset (\"auto\": a seeded hold-out of "
                             f"the seen classes); classes: {class_names}")
    both = sorted(set(U) & set(V))
    if both:
        raise ZSLabError(f"dataset '{name}': classes both novel and validation: {[class_names[i] for i in both]}")
    T = [i for i in range(len(class_names)) if i not in set(U) | set(V)]
    if len(T) < 2:
        raise ZSLabError(f"dataset '{name}': at least two seen (train) classes are needed; "
                         f"{len(class_names)} classes, {len(U)} novel, {len(V)} validation: list fewer classes "
                         f"in data.val_classes (--set data.val_classes=a,b) or in data.novel")
    caps = resolve_max_per_class(max_per_class)
    frac = check_fraction(val_seen_fraction)
    rng = np.random.default_rng(seed)

    def listing(dirs: dict[str, list[str]], classes: list[int]) -> tuple[list[str], np.ndarray]:
        paths, labels = [], []
        for c in sorted(classes):
            files = dirs[class_names[c]]
            paths.extend(files)
            labels.extend([c] * len(files))
        return paths, np.asarray(labels, dtype=np.int64)

    lists: dict[str, tuple[list[str], np.ndarray]] = {}
    tr_paths, tr_labels = listing(train_dirs, T)
    kept, held = split_per_class(tr_labels, fraction=frac, rng=rng)
    lists["train"] = ([tr_paths[i] for i in kept], tr_labels[kept])
    lists["val_seen"] = ([tr_paths[i] for i in held], tr_labels[held])
    lists["test_seen"] = listing(test_dirs, T)
    lists["val_unseen"] = listing(test_dirs, V)
    lists["test_unseen"] = listing(test_dirs, U)
    for s in SPLITS:
        paths, labels = lists[s]
        keep = cap_per_class(np.arange(len(paths)), labels, caps[s], rng)
        lists[s] = ([paths[i] for i in keep], labels[keep])

    if image_size is None:
        image_size = first_image_size(lists["train"][0][0])
    splits = {s: ImageListDataset(p, lab, image_size, transform=transform, check_files=False)
              for s, (p, lab) in lists.items()}
    meta: dict[str, Any] = {
        "format": "folder", "root": str(root), "text_names": [text_name(c) for c in class_names],
        "image_size": int(image_size), "seed": seed, "val_seen_fraction": frac,
        "max_per_class": caps, "counts": {s: len(p) for s, (p, _) in lists.items()},
        "novel": [class_names[i] for i in sorted(U)], "val": [class_names[i] for i in sorted(V)],
        **({"val_classes_auto": [class_names[i] for i in sorted(V)]} if auto else {}),
        "unused": "train/ images of validation and novel classes",
    }
    try:
        return ZSLData(name=name, class_names=class_names, attribute_names=[], class_attributes=None,
                       train_classes=torch.tensor(T, dtype=torch.long),
                       val_classes=torch.tensor(sorted(V), dtype=torch.long),
                       unseen_classes=torch.tensor(sorted(U), dtype=torch.long), splits=splits, meta=meta)
    except ValueError as e:
        raise ZSLabError(f"dataset '{name}': {e}") from None
