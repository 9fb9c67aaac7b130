"""``cifar-fs``: CIFAR-FS (Bertinetto et al., "Meta-learning with differentiable closed-form
solvers", ICLR 2019), the 64 / 16 / 20 class split of CIFAR-100 used by LAAT (§4.1, Table 2).

Class lists
-----------
The split is a fixed list of CIFAR-100 fine classes, embedded here (:data:`CIFAR_FS_SPLITS`,
with the CIFAR-100 super-class of each class in :data:`SUPERCLASSES`; the same facts as the
torchmeta ``cifar-fs/*.json`` files). The global class order is **the LAAT anchor-file order**
(:data:`CIFAR_FS_CLASSES`: 64 train, 16 validation, 20 test, as in the authors'
``cifarfs_classes.txt``), so row ``i`` of the real CLIP anchor file is class ``i``.
``class_names`` keep CIFAR-100's spelling (``"aquarium_fish"``); ``meta["text_names"]`` has
underscores turned into spaces for prompts.

On-disk layouts (``layout="auto"`` detects them)
------------------------------------------------
``torchvision``
    CIFAR-100's python version, read with ``torchvision.datasets.CIFAR100(root,
    download=False)``: ``root/cifar-100-python/{train,test,meta}`` (``root`` may also be the
    ``cifar-100-python`` folder itself). Get it from
    https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and extract it into ``root``.
    torchvision checks the files' MD5 sums; ``check_md5=False`` skips that check (for
    re-packed copies).
``r2d2``
    The folder layout written by the R2D2 authors' preparation script:
    ``root/data/<class>/*.png`` (600 images per class), with optional
    ``root/splits/bertinetto/{train,val,test}.txt`` class lists, which must then agree with
    the embedded split.

Splits (the five :class:`~zslab.data.base.ZSLData` splits)
-----------------------------------------------------------
* ``val_unseen``: all 600 images of each of the 16 validation classes;
* ``test_unseen``: all 600 images of each of the 20 test (novel) classes — the few-shot
  convention that LAAT's 5-way episodes sample from;
* the 64 train classes: ``test_seen`` = CIFAR-100's test images (100 per class; in the
  ``r2d2`` layout a seeded ``test_seen_per_class`` = 100 per class), held out for GZSL;
  ``val_seen`` = a seeded ``val_seen_fraction`` of the rest; ``train`` = the remainder.

``max_per_class`` caps the images per class of every split (int) or of named splits (dict
``{"train": 24, "val_seen": 4, "val_unseen": 12, "test_seen": 8, "test_unseen": 12}``; keys: the
five split names, unnamed splits stay whole), a seeded subset drawn after the splits are
formed, for quick runs — the same option as every file-based loader
(:func:`zslab.data.folder.resolve_max_per_class`). The
``torchvision`` layout holds all images in memory as uint8 (180 MB); the ``r2d2`` layout
loads PNGs lazily. There is no class-attribute matrix (``class_attributes is None``).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zslab import ZSLabError
from zslab.data.base import TensorImageDataset, ZSLData
from zslab.data.folder import (apply_caps, check_fraction, check_seed, class_split_pools, resolve_max_per_class,
                               scan_class_folders, split_per_class, text_name)
from zslab.data.images import ImageListDataset
from zslab.utils.io import safe_pickle_load

__all__ = ["CIFAR_FS_SPLITS", "CIFAR_FS_CLASSES", "SUPERCLASSES", "superclass_pairs", "load_cifarfs"]

_TRAIN = (
    'train', 'skyscraper', 'turtle', 'raccoon', 'spider', 'orange', 'castle', 'keyboard',
    'clock', 'pear', 'girl', 'seal', 'elephant', 'apple', 'aquarium_fish', 'bus', 'mushroom',
    'possum', 'squirrel', 'chair', 'tank', 'plate', 'wolf', 'road', 'mouse', 'boy', 'shrew',
    'couch', 'sunflower', 'tiger', 'caterpillar', 'lion', 'streetcar', 'lawn_mower', 'tulip',
    'forest', 'dolphin', 'cockroach', 'bear', 'porcupine', 'bee', 'hamster', 'lobster', 'bowl',
    'can', 'bottle', 'trout', 'snake', 'bridge', 'pine_tree', 'skunk', 'lizard', 'cup',
    'kangaroo', 'oak_tree', 'dinosaur', 'rabbit', 'orchid', 'willow_tree', 'ray', 'palm_tree',
    'mountain', 'house', 'cloud',
)
_VAL = (
    'otter', 'motorcycle', 'television', 'lamp', 'crocodile', 'shark', 'butterfly', 'beaver',
    'beetle', 'tractor', 'flatfish', 'maple_tree', 'camel', 'crab', 'sea', 'cattle',
)
_TEST = (
    'baby', 'bed', 'bicycle', 'chimpanzee', 'fox', 'leopard', 'man', 'pickup_truck', 'plain',
    'poppy', 'rocket', 'rose', 'snail', 'sweet_pepper', 'table', 'telephone', 'wardrobe',
    'whale', 'woman', 'worm',
)

#: CIFAR-FS class split (64 / 16 / 20), in the LAAT anchor-file order
CIFAR_FS_SPLITS: dict[str, tuple[str, ...]] = {"train": _TRAIN, "val": _VAL, "test": _TEST}
#: all 100 classes in global-index order (rows of the LAAT CIFAR-FS anchor file)
CIFAR_FS_CLASSES: tuple[str, ...] = _TRAIN + _VAL + _TEST

#: CIFAR-100 super-classes (5 fine classes each), for LAAT Appendix G's consistency metrics
SUPERCLASSES: dict[str, tuple[str, ...]] = {
    'aquatic_mammals': ('beaver', 'dolphin', 'otter', 'seal', 'whale'),
    'fish': ('aquarium_fish', 'flatfish', 'ray', 'shark', 'trout'),
    'flowers': ('orchid', 'poppy', 'rose', 'sunflower', 'tulip'),
    'food_containers': ('bottle', 'bowl', 'can', 'cup', 'plate'),
    'fruit_and_vegetables': ('apple', 'mushroom', 'orange', 'pear', 'sweet_pepper'),
    'household_electrical_devices': ('clock', 'keyboard', 'lamp', 'telephone', 'television'),
    'household_furniture': ('bed', 'chair', 'couch', 'table', 'wardrobe'),
    'insects': ('bee', 'beetle', 'butterfly', 'caterpillar', 'cockroach'),
    'large_carnivores': ('bear', 'leopard', 'lion', 'tiger', 'wolf'),
    'large_man-made_outdoor_things': ('bridge', 'castle', 'house', 'road', 'skyscraper'),
    'large_natural_outdoor_scenes': ('cloud', 'forest', 'mountain', 'plain', 'sea'),
    'large_omnivores_and_herbivores': ('camel', 'cattle', 'chimpanzee', 'elephant', 'kangaroo'),
    'medium_mammals': ('fox', 'porcupine', 'possum', 'raccoon', 'skunk'),
    'non-insect_invertebrates': ('crab', 'lobster', 'snail', 'spider', 'worm'),
    'people': ('baby', 'boy', 'girl', 'man', 'woman'),
    'reptiles': ('crocodile', 'dinosaur', 'lizard', 'snake', 'turtle'),
    'small_mammals': ('hamster', 'mouse', 'rabbit', 'shrew', 'squirrel'),
    'trees': ('maple_tree', 'oak_tree', 'palm_tree', 'pine_tree', 'willow_tree'),
    'vehicles_1': ('bicycle', 'bus', 'motorcycle', 'pickup_truck', 'train'),
    'vehicles_2': ('lawn_mower', 'rocket', 'streetcar', 'tank', 'tractor'),
}

_WHERE = ("put CIFAR-100's python version in ROOT/cifar-100-python/{train,test,meta} (extract "
          "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz into ROOT), or the R2D2 CIFAR-FS "
          "folders in ROOT/data/<class>/*.png; then pass --set data.root=ROOT")


def superclass_pairs(split: str | None = None) -> list[tuple[str, str]]:
    """``[(super-class, class), ...]`` for one split (``"train"``, ``"val"``, ``"test"``) or
    all classes (the format of :func:`zslab.anchors.load_group_pairs`)."""
    classes = CIFAR_FS_CLASSES if split is None else CIFAR_FS_SPLITS[split]
    owner = {c: g for g, cs in SUPERCLASSES.items() for c in cs}
    return [(owner[c], c) for c in classes]


def _detect_layout(root: Path) -> tuple[str, Path]:
    if (root / "cifar-100-python").is_dir():
        return "torchvision", root
    if root.name == "cifar-100-python" and (root / "meta").exists():
        return "torchvision", root.parent
    if (root / "data").is_dir():
        return "r2d2", root
    raise ZSLabError(f"dataset 'cifar-fs': found neither {root / 'cifar-100-python'} (torchvision's CIFAR-100 "
                     f"files) nor {root / 'data'} (R2D2 CIFAR-FS folders); {_WHERE.replace('ROOT', str(root))}")


def _load_torchvision(root: Path, check_md5: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """CIFAR-100 train and test arrays (N, 32, 32, 3) uint8 + fine labels, and class names."""
    from torchvision.datasets import CIFAR100  # torchvision's datasets package: only for this CIFAR-100 layout

    base = root / "cifar-100-python"
    missing = [f for f in ("train", "test", "meta") if not (base / f).is_file()]
    if missing:
        raise ZSLabError(f"dataset 'cifar-fs': {base} lacks {missing}; "
                         f"{_WHERE.replace('ROOT', str(root))}")
    if check_md5:  # torchvision's published MD5 sums of the CIFAR-100 python files
        from torchvision.datasets.utils import check_integrity  # as above: only for this layout

        bad = [f for f, md5 in CIFAR100.train_list + CIFAR100.test_list + [[CIFAR100.meta["filename"],
                                                                            CIFAR100.meta["md5"]]]
               if not check_integrity(str(base / f), md5)]
        if bad:
            raise ZSLabError(f"dataset 'cifar-fs': {base}/{bad[0]} does not match CIFAR-100's MD5 sum: the files are "
                             f"corrupt or re-packed. Re-extract cifar-100-python.tar.gz, or pass "
                             f"check_md5=False (--set data.check_md5=false) for a re-packed copy")
    # read as data (plain values and numpy arrays only), never through pickle's object construction
    with open(base / CIFAR100.meta["filename"], "rb") as fh:
        meta = safe_pickle_load(fh, encoding="latin1", what="CIFAR-100 meta file")
    try:
        names = list(meta[CIFAR100.meta["key"]])
    except (KeyError, TypeError):
        raise ZSLabError(f"dataset 'cifar-fs': {base}/meta lacks '{CIFAR100.meta['key']}'") from None
    out = {}
    for part in ("train", "test"):
        with open(base / part, "rb") as fh:
            entry = safe_pickle_load(fh, allow_numpy=True, encoding="latin1", what=f"CIFAR-100 {part} file")
        try:
            data = np.asarray(entry["data"]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            labels = np.asarray(entry["fine_labels"] if "fine_labels" in entry else entry["labels"], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as e:
            raise ZSLabError(f"dataset 'cifar-fs': cannot read {base}/{part}: {e.__class__.__name__}: {e}") from None
        if data.dtype != np.uint8 or len(data) != len(labels):
            raise ZSLabError(f"dataset 'cifar-fs': {base}/{part} holds {len(data)} images of dtype {data.dtype} and "
                             f"{len(labels)} labels; expected 32x32x3 uint8 images, one label each")
        out[part] = (np.ascontiguousarray(data), labels)
    return out, names


def _check_r2d2_split_files(root: Path) -> str | None:
    d = root / "splits" / "bertinetto"
    if not d.is_dir():
        return None
    for split, classes in CIFAR_FS_SPLITS.items():
        f = d / f"{split}.txt"
        if not f.is_file():
            continue
        listed = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if set(listed) != set(classes):
            raise ZSLabError(f"dataset 'cifar-fs': {f} lists a different {split} split than CIFAR-FS "
                             f"(extra: {sorted(set(listed) - set(classes))[:5]}, "
                             f"missing: {sorted(set(classes) - set(listed))[:5]}); use dataset 'folder' "
                             f"for custom splits")
    return str(d)


def load_cifarfs(root: str | os.PathLike, *, layout: str = "auto", image_size: int | None = 32,
                 val_seen_fraction: float = 0.1, test_seen_per_class: int = 100,
                 max_per_class: int | Mapping[str, int] | None = None, seed: int = 0,
                 check_md5: bool = True, transform: Callable | None = None) -> ZSLData:
    """Load CIFAR-FS as a :class:`ZSLData` (layouts and splits: see the module docstring).

    Args:
        root: folder holding ``cifar-100-python/`` or ``data/<class>/``.
        layout: ``"auto"``, ``"torchvision"`` or ``"r2d2"``.
        image_size: square image side (32 = native, also for None; other sizes are resized
            bilinearly).
        val_seen_fraction: per-class share of the train classes' training images held out as
            ``val_seen``.
        test_seen_per_class: ``r2d2`` layout only: images per train class held out as
            ``test_seen`` (the torchvision layout uses CIFAR-100's own test images).
        max_per_class: per-class cap on every split (int) or on named splits (dict keyed by
            ``train``, ``val_seen``, ``val_unseen``, ``test_seen``, ``test_unseen``).
        seed: seed of the hold-outs and the caps.
        check_md5: let torchvision verify the CIFAR-100 files' MD5 sums.
        transform: ``r2d2`` layout only: PIL → tensor transform.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ZSLabError(f"dataset 'cifar-fs': root folder {root} not found; {_WHERE.replace('ROOT', str(root))}")
    if layout == "auto":
        layout, root = _detect_layout(root)
    elif layout not in ("torchvision", "r2d2"):
        raise ZSLabError(f"dataset 'cifar-fs': layout must be 'auto', 'torchvision' or 'r2d2'; got {layout!r}")
    if image_size is None:  # the native size (the config schema's null)
        image_size = 32
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ZSLabError(f"image_size must be a positive integer, got {image_size!r}")
    frac = check_fraction(val_seen_fraction)
    caps = resolve_max_per_class(max_per_class)
    rng = np.random.default_rng(check_seed(seed))
    index = {c: i for i, c in enumerate(CIFAR_FS_CLASSES)}
    T = np.arange(0, 64)
    V = np.arange(64, 80)
    U = np.arange(80, 100)
    meta: dict[str, Any] = {"format": f"cifar-fs/{layout}", "root": str(root), "seed": seed,
                            "text_names": [text_name(c) for c in CIFAR_FS_CLASSES],
                            "superclasses": {c: g for g, cs in SUPERCLASSES.items() for c in cs},
                            "val_seen_fraction": frac, "max_per_class": caps, "image_size": image_size}

    # ---- index lists per split: positions into one pool of (source, label)
    if layout == "torchvision":
        arrays, names = _load_torchvision(root, check_md5)
        missing = [c for c in CIFAR_FS_CLASSES if c not in names]
        if missing or len(names) != 100:
            raise ZSLabError(f"dataset 'cifar-fs': {root / 'cifar-100-python' / 'meta'} lists {len(names)} fine "
                             f"classes; CIFAR-FS classes missing from it: {missing[:5]}")
        remap = np.array([index[c] for c in names], dtype=np.int64)
        images = np.concatenate([arrays["train"][0], arrays["test"][0]])
        labels = remap[np.concatenate([arrays["train"][1], arrays["test"][1]])]
        is_test = np.r_[np.zeros(len(arrays["train"][1]), bool), np.ones(len(arrays["test"][1]), bool)]
        seen_tr = np.flatnonzero(np.isin(labels, T) & ~is_test)
        kept, held = split_per_class(labels[seen_tr], fraction=frac, rng=rng)
        pools = {"train": seen_tr[kept], "val_seen": seen_tr[held],
                 "test_seen": np.flatnonzero(np.isin(labels, T) & is_test),
                 "val_unseen": np.flatnonzero(np.isin(labels, V)),
                 "test_unseen": np.flatnonzero(np.isin(labels, U))}
        pools = apply_caps(pools, labels, caps, rng)
        meta["test_seen_from"] = "CIFAR-100 test images"
    else:
        hint = f"; {_WHERE.replace('ROOT', str(root))}"
        dirs = scan_class_folders(root / "data", "dataset 'cifar-fs'", hint)
        missing = [c for c in CIFAR_FS_CLASSES if c not in dirs]
        if missing:
            raise ZSLabError(f"dataset 'cifar-fs': class folders missing from {root / 'data'}: {missing[:5]}"
                             f"{' ...' if len(missing) > 5 else ''} ({len(missing)} of 100){hint}")
        meta["split_files"] = _check_r2d2_split_files(root)
        paths, lab = [], []
        for c in CIFAR_FS_CLASSES:
            paths.extend(dirs[c])
            lab.extend([index[c]] * len(dirs[c]))
        labels = np.asarray(lab, dtype=np.int64)
        pools = class_split_pools(labels, T, V, U, val_seen_fraction=frac,
                                  test_seen_per_class=test_seen_per_class, caps=caps, rng=rng)
        meta["test_seen_from"] = f"{int(test_seen_per_class)} held-out images per train class"
    meta["counts"] = {s: int(v.size) for s, v in pools.items()}

    splits = {}
    if layout == "torchvision":
        chw = torch.from_numpy(images).permute(0, 3, 1, 2)
        for s, idx in pools.items():
            x = chw[torch.from_numpy(idx)].contiguous()
            if image_size != 32 and x.shape[0]:
                x = torch.nn.functional.interpolate(x.float(), size=(image_size, image_size), mode="bilinear",
                                                    antialias=True, align_corners=False)
                x = x.round_().clamp_(0, 255).to(torch.uint8)
            splits[s] = TensorImageDataset(x, torch.from_numpy(labels[idx]))
    else:
        for s, idx in pools.items():
            splits[s] = ImageListDataset([paths[i] for i in idx], labels[idx], image_size, transform=transform,
                                         check_files=False)
    try:
        return ZSLData(name="cifar-fs", class_names=list(CIFAR_FS_CLASSES), attribute_names=[],
                       class_attributes=None, train_classes=torch.from_numpy(T), val_classes=torch.from_numpy(V),
                       unseen_classes=torch.from_numpy(U), splits=splits, meta=meta)
    except ValueError as e:
        raise ZSLabError(f"dataset 'cifar-fs': {e}") from None
