"""Tiny on-disk examples of every dataset format zslab reads, written on demand.

Each ``write_*`` function writes, under the folder it is given, a stand-in of one on-disk
format — the same file names, folder layout, ``.mat`` variables and pickles the loader reads,
filled with a few tiny images and made-up class semantics — and returns the keyword options
that load it with :func:`zslab.data.load_dataset`::

    from zslab.data import load_dataset
    from zslab.data.fixtures import write_xlsa17

    kw = write_xlsa17("/tmp/awa2", name="AWA2")   # {"root": ..., "split_dir": ..., "image_size": 16}
    data = load_dataset("awa2", **kw)

==================================  ===================================  =================================
writer                              dataset name(s)                      returned options
==================================  ===================================  =================================
:func:`write_folder`                ``folder``                           ``root``, ``novel``
                                                                         (+ ``val_classes`` if ``n_val``)
:func:`write_cifar10`               ``cifar10``                          ``root``
:func:`write_xlsa17`                ``cub``, ``awa1``, ``awa2``,         ``root``, ``split_dir``,
                                    ``sun``, ``apy``                     ``image_size``
:func:`write_cifar100_python`       ``cifar-fs`` (torchvision layout)    ``root``, ``check_md5=False``
:func:`write_cifarfs_r2d2`          ``cifar-fs`` (r2d2 layout)           ``root``, ``test_seen_per_class``
:func:`write_miniimagenet`          ``miniimagenet`` (folders or csv)    ``root``, ``image_size``,
                                                                         ``test_seen_per_class``
==================================  ===================================  =================================

:func:`write_fixture` picks the writer by dataset name (``shapes`` is embedded: nothing is
written, ``{}`` is returned) and :func:`cli_overrides` turns the options into ``--set`` arguments
(``["data.root=/tmp/awa2", ...]``) for ``zslab train``. Every value returned is a string, int
or bool, so the options are JSON-able and survive the CLI's ``--set`` parsing.

What the files hold
-------------------
* Images: a solid colour per class (:func:`class_colour`) with a small square of the inverted
  colour whose position varies per image, so a model can learn the classes and a test can
  check that a pixel matches the label. JPEG for class folders, MiniImageNet and xlsa17
  (xlsa17's images are wider than tall, exercising the centre crop), PNG for R2D2 CIFAR-FS,
  raw uint8 rows in the CIFAR-100 pickles (always 32×32, as the format requires).
* Class semantics are made up: xlsa17 attribute matrices are seeded random (every column
  L2-normalised, as the real ``att``; ``original_att`` on the dataset's real scale), the class
  names are real names of each dataset where a short list is embedded here, generic
  (``class_07``) beyond it. CIFAR-FS and MiniImageNet always hold their 100 real classes
  (the loaders check the fixed 64/16/20 splits).
* Everything is seeded (``seed``): the same arguments write the same files. Nothing is read
  from real data or the network. The default sizes write 50-300 files and 0.1-1 MB (the
  CIFAR-100 pickles: 300 uncompressed 32×32 images, 0.9 MB) in well under a second.

xlsa17 specifics (see :mod:`zslab.data.xlsa17` for the format): ``split_dir`` holds
``att_splits.mat`` (``allclasses_names`` C×1 cell, ``att``/``original_att`` K×C, 1-based
``trainval_loc``/``test_seen_loc``/``test_unseen_loc`` and, for AWA1/AWA2/SUN, ``train_loc``/
``val_loc`` covering trainval ∪ test_seen as in the real release), ``res101.mat``
(``image_files`` N×1 cell of the original authors' absolute paths, ``labels`` N×1 1-based;
the 2048×N ``features`` are omitted: zslab never reads them) and the class lists
``trainclasses{1,2,3}.txt``, ``valclasses{1,2,3}.txt``, ``trainvalclasses.txt``,
``testclasses.txt``; ``root`` holds the images in the dataset's own folder scheme
(CUB ``images/<class>/``, AwA ``JPEGImages/<class>/``, SUN ``images/<letter>/<class
parts>/``, aPY ``VOCdevkit/VOC2008/JPEGImages/`` + ``ayahoo_test_images/``) and an
attribute-name file. CUB also gets ``images.txt``, ``image_class_labels.txt`` and
``classes.txt`` (so ``res101=False`` writes a CUB that loads without ``res101.mat``).
"""
from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zslab.data.cifarfs import CIFAR_FS_CLASSES, CIFAR_FS_SPLITS, SUPERCLASSES
from zslab.data.miniimagenet import MINIIMAGENET_SPLITS

__all__ = ["class_colour", "write_folder", "write_cifar10", "write_xlsa17", "write_cifar100_python",
           "write_cifarfs_r2d2", "write_miniimagenet", "write_fixture", "cli_overrides", "FIXTURE_DATASETS",
           "CIFAR10_CLASSES"]

#: dataset names :func:`write_fixture` accepts (the names ``zslab train --dataset`` accepts)
FIXTURE_DATASETS = ("shapes", "folder", "cifar10", "cub", "awa1", "awa2", "sun", "apy", "cifar-fs", "miniimagenet")

#: CIFAR-10's classes (its folder names), the ``cifar10`` fixture's classes
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_FOLDER_NAMES = ("apple", "bicycle", "cat", "dog", "maple_tree", "pickup_truck", "sea", "tulip", "whale",
                 "zebra", "castle", "rocket")
_CUB_NAMES = ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross",
              "004.Groove_billed_Ani", "005.Crested_Auklet", "006.Least_Auklet", "007.Parakeet_Auklet",
              "008.Rhinoceros_Auklet", "009.Brewer_Blackbird", "010.Red_winged_Blackbird",
              "011.Rusty_Blackbird", "012.Yellow_headed_Blackbird", "013.Bobolink", "014.Indigo_Bunting",
              "015.Lazuli_Bunting", "016.Painted_Bunting")
_AWA_NAMES = ("antelope", "grizzly+bear", "killer+whale", "beaver", "dalmatian", "persian+cat", "horse",
              "german+shepherd", "blue+whale", "siamese+cat", "skunk", "mole", "tiger", "hippopotamus",
              "leopard", "moose")
# SUN classes as their folder parts: images/<first letter>/<parts...>/; the class name joins them with "_"
_SUN_PARTS = (("abbey",), ("airplane_cabin",), ("airport_terminal",), ("alley",), ("amphitheater",),
              ("amusement_arcade",), ("amusement_park",), ("anechoic_chamber",),
              ("apartment_building", "outdoor"), ("apse", "indoor"), ("aquarium",), ("aqueduct",), ("arch",),
              ("archive",), ("arrival_gate", "outdoor"), ("art_gallery",))
_VOC_NAMES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
              "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
              "tvmonitor")
_YAHOO_NAMES = ("donkey", "monkey", "goat", "wolf", "jetski", "zebra", "centaur", "mug", "statue", "building",
                "bag", "carriage")
_ATTRIBUTE_WORDS = ("black", "white", "blue", "brown", "gray", "orange", "red", "yellow", "patches", "spots",
                    "stripes", "furry", "metal", "wooden", "small", "big")
# where each xlsa17 release's res101.mat paths pointed (only the part from the image folder on is used)
_AUTHOR_PREFIX = {"CUB": "/BS/xian/work/data/CUB_200_2011/CUB_200_2011/",
                  "AWA1": "/BS/xian/work/data/Animals_with_Attributes/",
                  "AWA2": "/BS/xian/work/data/Animals_with_Attributes2//",
                  "SUN": "/BS/Deep_Fragments/work/MSc/data/SUN/",
                  "APY": "/BS/xian/work/data/aPY/"}


# --------------------------------------------------------------------------- images

def class_colour(c: int) -> tuple[int, int, int]:
    """The background colour of class ``c``'s fixture images (distinct for c < 100)."""
    return ((c * 67 + 40) % 256, (c * 131 + 90) % 256, (c * 199 + 150) % 256)


def _pixels(c: int, i: int, height: int, width: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8: class colour, plus a square of the inverted colour that moves with ``i``."""
    width = height if width is None else width
    img = np.empty((height, width, 3), np.uint8)
    img[:] = class_colour(c)
    p = max(1, min(height, width) // 4)
    y = (3 * i) % max(1, height - p + 1)
    x = (5 * i + 1) % max(1, width - p + 1)
    img[y:y + p, x:x + p] = 255 - img[y, x]
    return img


def _encode(arr: np.ndarray, fmt: str) -> bytes:
    b = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(arr).save(b, "JPEG", quality=92)
    else:
        Image.fromarray(arr).save(b, fmt)
    return b.getvalue()


def _format_of(ext: str) -> str:
    e = ext.lower().lstrip(".")
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WEBP"}.get(e)
    if fmt is None:
        raise ValueError(f"ext must be jpg, jpeg, png, bmp or webp; got {ext!r}")
    return fmt


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _positive(**values) -> None:
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{k} must be a positive integer; got {v!r}")


def _names(base: tuple[str, ...], n: int, generic: str) -> list[str]:
    return [base[i] if i < len(base) else generic.format(i) for i in range(n)]


# --------------------------------------------------------------------------- folder

def write_folder(root: str | os.PathLike, n_classes: int = 6, per_class_train: int = 6, per_class_test: int = 3,
                 size: int = 16, *, n_novel: int = 2, n_val: int = 0, ext: str = "jpg",
                 class_names: list[str] | tuple[str, ...] | None = None, seed: int = 0) -> dict[str, Any]:
    """Write class-named image folders ``root/{train,test}/<class>/<i>.jpg`` (the ``folder``
    dataset, e.g. CIFAR-10's layout) and return ``{"root", "novel"}`` (+ ``"val_classes"``).

    ``n_classes`` classes (real-looking names, one with an underscore: ``pickup_truck``),
    ``per_class_train`` / ``per_class_test`` images of ``size``×``size`` each. ``n_novel``
    classes, drawn with ``seed``, are returned as ``novel`` (comma-separated); ``n_val > 0``
    also returns that many ``val_classes``, else the loader holds out its automatic
    validation classes (``val_classes="auto"``, which needs 4 non-novel classes; with the
    defaults: 2 training, 2 validation, 2 novel classes). ``class_names`` (distinct folder
    names) replaces the built-in names; ``n_classes`` is then their number.
    """
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if len(set(class_names)) != len(class_names) or any(not c or "/" in c or c.startswith(".")
                                                             for c in class_names):
            raise ValueError(f"write_folder: class_names must be distinct folder names; got {class_names!r}")
        n_classes = len(class_names)
    _positive(n_classes=n_classes, per_class_train=per_class_train, per_class_test=per_class_test, size=size,
              n_novel=n_novel)
    if n_val < 0 or n_classes - n_novel - n_val < 2 or (n_val == 0 and n_classes - n_novel < 4):
        raise ValueError(f"write_folder: {n_classes} classes leave too few training classes with n_novel={n_novel}, "
                         f"n_val={n_val} (need 2 training classes, and 4 non-novel ones for the automatic hold-out)")
    fmt = _format_of(ext)
    root = Path(root)
    names = sorted(class_names if class_names is not None else _names(_FOLDER_NAMES, n_classes, "class_{:02d}"))
    for c, name in enumerate(names):
        for part, n, off in (("train", per_class_train, 0), ("test", per_class_test, per_class_train)):
            d = root / part / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                (d / f"{i:04d}.{ext.lstrip('.')}").write_bytes(_encode(_pixels(c, off + i, size), fmt))
    order = np.random.default_rng(seed).permutation(n_classes)
    out: dict[str, Any] = {"root": str(root), "novel": ",".join(sorted(names[i] for i in order[:n_novel]))}
    if n_val:
        out["val_classes"] = ",".join(sorted(names[i] for i in order[n_novel:n_novel + n_val]))
    return out


def write_cifar10(root: str | os.PathLike, per_class_train: int = 6, per_class_test: int = 3, size: int = 16, *,
                  ext: str = "png", seed: int = 0) -> dict[str, Any]:
    """Write CIFAR-10's class folders ``root/{train,test}/<class>/`` (:data:`CIFAR10_CLASSES`,
    the ``cifar10`` dataset: the ``folder`` loader with CIFAR-10's novel classes cat, dog, ship)
    with ``per_class_train`` / ``per_class_test`` ``size``×``size`` PNGs a class, and return
    ``{"root"}``: the ``cifar10`` dataset names its own novel classes."""
    kw = write_folder(root, per_class_train=per_class_train, per_class_test=per_class_test, size=size,
                      ext=ext, class_names=CIFAR10_CLASSES, seed=seed)
    return {"root": kw["root"]}


# --------------------------------------------------------------------------- xlsa17

def _xlsa17_classes(name: str, n_seen: int, n_test: int) -> tuple[list[str], list[tuple[str, ...]]]:
    """Class names in allclasses_names order and each class's folder parts."""
    C = n_seen + n_test
    if name == "CUB":
        names = _names(_CUB_NAMES, C, "")
        names = [n or f"{i + 1:03d}.Bird_{i + 1:03d}" for i, n in enumerate(names)]
        return names, [(n,) for n in names]
    if name in ("AWA1", "AWA2"):
        names = _names(_AWA_NAMES, C, "animal{:02d}")
        return names, [(n,) for n in names]
    if name == "SUN":
        parts = [_SUN_PARTS[i] if i < len(_SUN_PARTS) else (f"scene_{i:03d}",) for i in range(C)]
        return ["_".join(p) for p in parts], parts
    # APY: aPascal (VOC) classes are the seen ones, aYahoo classes the unseen ones, VOC first
    names = _names(_VOC_NAMES, n_seen, "voc_class_{:02d}") + _names(_YAHOO_NAMES, n_test, "yahoo_class_{:02d}")
    return names, [(n,) for n in names]


def _cell(strings: list[str]) -> np.ndarray:
    """An N×1 MATLAB cell array of strings, as scipy.io.savemat writes it."""
    out = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        out[i, 0] = np.array([s])
    return out


def _loc(idx) -> np.ndarray:
    """1-based image positions as the N×1 column the real files hold (uint16 where it fits)."""
    v = np.asarray(idx, dtype=np.int64) + 1
    dtype = np.uint16 if (v.size == 0 or v.max() < 2 ** 16) else np.uint32
    return v.astype(dtype).reshape(-1, 1)


def write_xlsa17(root: str | os.PathLike, name: str = "CUB", *, n_train: int = 8, n_val: int = 3, n_test: int = 3,
                 per_class: int = 4, test_seen_per_class: int = 2, n_attributes: int = 12, size: int = 16,
                 split_dir: str | os.PathLike | None = None, res101: bool = True,
                 seed: int = 0) -> dict[str, Any]:
    """Write a tiny xlsa17 dataset (``name`` = CUB, AWA1, AWA2, SUN or APY; format in the
    module docstring and :mod:`zslab.data.xlsa17`) and return ``{"root", "split_dir",
    "image_size"}`` for ``load_dataset(name.lower(), **options)``.

    ``n_train`` / ``n_val`` / ``n_test`` train, validation (split 1: ``valclasses1.txt``,
    ``val_loc``) and unseen classes; each seen class has ``per_class`` ``trainval_loc`` and
    ``test_seen_per_class`` ``test_seen_loc`` images, each unseen class ``per_class``
    ``test_unseen_loc`` images. Images are JPEGs of (``size`` · 3/2)×``size`` (W×H).
    ``split_dir`` defaults to ``root/xlsa17/<NAME>``. ``res101=False`` (CUB only) writes no
    ``res101.mat``: CUB then loads from ``images.txt``/``image_class_labels.txt``/``classes.txt``.
    With the defaults: 14 classes, 78 images; splits train 24, val_seen 8, val_unseen 18,
    test_seen 16, test_unseen 12.
    """
    import scipy.io  # slow to import (~0.3 s), only the xlsa17 writer writes .mat files

    key = str(name).strip().upper().replace("-", "").replace("_", "")
    if key not in _AUTHOR_PREFIX:
        raise ValueError(f"write_xlsa17: name must be one of {', '.join(_AUTHOR_PREFIX)}; got {name!r}")
    _positive(n_train=n_train, n_val=n_val, n_test=n_test, per_class=per_class,
              test_seen_per_class=test_seen_per_class, n_attributes=n_attributes, size=size)
    if not res101 and key != "CUB":
        raise ValueError(f"write_xlsa17: {key} cannot be loaded without res101.mat (only CUB has image metadata)")
    if key == "APY" and n_train + n_val > len(_VOC_NAMES):
        raise ValueError(f"write_xlsa17: APY has at most {len(_VOC_NAMES)} seen (aPascal) classes")
    root = Path(root)
    split_dir = root / "xlsa17" / key if split_dir is None else Path(split_dir)
    split_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_seen = n_train + n_val
    names, parts = _xlsa17_classes(key, n_seen, n_test)
    C = len(names)
    # class roles: aPY's unseen classes are its aYahoo ones (the last n_test); elsewhere drawn with the seed
    if key == "APY":
        unseen, seen = list(range(n_seen, C)), rng.permutation(n_seen).tolist()
    else:
        perm = rng.permutation(C).tolist()
        unseen, seen = perm[:n_test], perm[n_test:]
    val, train = sorted(seen[:n_val]), sorted(seen[n_val:])
    seen, unseen = sorted(seen), sorted(unseen)

    # image list, grouped by class as in the real lists; image-relative paths under root
    rel, labels, role = [], [], []
    voc_counter = 0
    for c in range(C):
        n_img = per_class + (test_seen_per_class if c in seen else 0)
        for j in range(n_img):
            if key == "CUB":
                r = f"images/{names[c]}/{names[c].split('.', 1)[-1]}_{j + 1:04d}.jpg"
            elif key in ("AWA1", "AWA2"):
                r = f"JPEGImages/{names[c]}/{names[c]}_{10001 + j}.jpg"
            elif key == "SUN":
                r = "images/" + "/".join((parts[c][0][0],) + parts[c]) + f"/sun_{c:03d}{j:04d}.jpg"
            elif c < n_seen:
                voc_counter += 1
                r = f"VOCdevkit/VOC2008/JPEGImages/2008_{voc_counter:06d}.jpg"
            else:
                r = f"ayahoo_test_images/{names[c]}_{j + 1}.jpg"
            rel.append(r)
            labels.append(c)
            role.append("test_unseen" if c in unseen else ("trainval" if j < per_class else "test_seen"))
    labels_arr, role_arr = np.asarray(labels), np.asarray(role)
    w = size + size // 2
    for i, (r, c) in enumerate(zip(rel, labels)):
        _write(root / r, _encode(_pixels(c, i, size, w), "JPEG"))

    # att_splits.mat
    K = n_attributes
    raw = rng.uniform(0.05, 1.0, size=(K, C)) * (rng.uniform(size=(K, C)) < 0.7) + 1e-3
    scale = {"CUB": 100.0, "AWA1": 100.0, "AWA2": 100.0}.get(key, 1.0)
    original = np.round(raw * scale, 4)
    att = original / np.linalg.norm(original, axis=0, keepdims=True)
    locs = {}
    for r in ("trainval", "test_seen", "test_unseen"):
        locs[f"{r}_loc"] = _loc(rng.permutation(np.flatnonzero(role_arr == r)))
    if key in ("AWA1", "AWA2", "SUN"):  # the released train/val locs cover trainval ∪ test_seen
        seen_img = role_arr != "test_unseen"
        locs["train_loc"] = _loc(rng.permutation(np.flatnonzero(seen_img & np.isin(labels_arr, train))))
        locs["val_loc"] = _loc(rng.permutation(np.flatnonzero(seen_img & np.isin(labels_arr, val))))
    scipy.io.savemat(str(split_dir / "att_splits.mat"),
                     {"allclasses_names": _cell(names), "att": att, "original_att": original, **locs})
    if res101:
        scipy.io.savemat(str(split_dir / "res101.mat"),
                         {"image_files": _cell([_AUTHOR_PREFIX[key] + r for r in rel]),
                          "labels": (labels_arr + 1).astype(np.float64).reshape(-1, 1)})

    # class lists (split 1 = the roles above; splits 2, 3: other seeded validation draws)
    def lines(classes) -> str:
        return "".join(f"{names[c]}\n" for c in classes)

    (split_dir / "trainvalclasses.txt").write_text(lines(seen))
    (split_dir / "testclasses.txt").write_text(lines(unseen))
    for k in (1, 2, 3):
        v = val if k == 1 else sorted(rng.permutation(seen)[:n_val].tolist())
        (split_dir / f"valclasses{k}.txt").write_text(lines(v))
        (split_dir / f"trainclasses{k}.txt").write_text(lines([c for c in seen if c not in v]))

    # attribute names where each release keeps them, and CUB_200_2011's image metadata
    attrs = _names(_ATTRIBUTE_WORDS, K, "attribute_{:02d}")
    if key == "CUB":
        (split_dir / "allclasses.txt").write_text(lines(range(C)))
        root.mkdir(parents=True, exist_ok=True)
        (root / "attributes.txt").write_text("".join(f"{k + 1} has_primary_color::{a}\n" for k, a in enumerate(attrs)))
        (root / "classes.txt").write_text("".join(f"{c + 1} {n}\n" for c, n in enumerate(names)))
        (root / "images.txt").write_text("".join(f"{i + 1} {r[len('images/'):]}\n" for i, r in enumerate(rel)))
        (root / "image_class_labels.txt").write_text("".join(f"{i + 1} {c + 1}\n" for i, c in enumerate(labels)))
    elif key in ("AWA1", "AWA2"):
        (root / "predicates.txt").write_text("".join(f"{k + 1:6d}\t{a}\n" for k, a in enumerate(attrs)))
    elif key == "SUN":
        (root / "SUNAttributeDB").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(str(root / "SUNAttributeDB" / "attributes.mat"), {"attributes": _cell(attrs)})
    else:
        (root / "attribute_names.txt").write_text("".join(f"{a}\n" for a in attrs))
    return {"root": str(root), "split_dir": str(split_dir), "image_size": int(size)}


# --------------------------------------------------------------------------- CIFAR-FS

def write_cifar100_python(root: str | os.PathLike, per_class_train: int = 2, per_class_test: int = 1, *,
                          seed: int = 0) -> dict[str, Any]:
    """Write CIFAR-100's python version ``root/cifar-100-python/{train,test,meta}`` (the
    ``cifar-fs`` dataset's ``torchvision`` layout) and return ``{"root", "check_md5": False}``
    (the fixture cannot have the real files' MD5 sums).

    All 100 CIFAR-100 fine classes (alphabetical ``fine_label_names``, as the real ``meta``;
    coarse labels from :data:`zslab.data.cifarfs.SUPERCLASSES`), ``per_class_train`` /
    ``per_class_test`` 32×32 images each, as uint8 rows (N, 3072) in channel-plane order, in a
    seeded order. Defaults: 300 images, 0.9 MB; splits train 64, val_seen 64, test_seen 64,
    val_unseen 48, test_unseen 60.
    """
    _positive(per_class_train=per_class_train, per_class_test=per_class_test)
    fine = sorted(CIFAR_FS_CLASSES)
    coarse = sorted(SUPERCLASSES)
    owner = {c: coarse.index(g) for g, cs in SUPERCLASSES.items() for c in cs}
    base = Path(root) / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    global_index = {c: i for i, c in enumerate(CIFAR_FS_CLASSES)}  # colour by the loader's class index
    for part, n, off in (("train", per_class_train, 0), ("test", per_class_test, per_class_train)):
        labels = rng.permutation(np.repeat(np.arange(100), n))
        seen = np.zeros(100, np.int64)
        rows, files = [], []
        for y in labels:
            k = int(seen[y])
            seen[y] += 1
            rows.append(_pixels(global_index[fine[y]], off + k, 32).transpose(2, 0, 1).reshape(-1))
            files.append(f"{fine[y]}_s_{off + k:06d}.png")
        entry = {"filenames": files, "batch_label": f"{part}ing batch 1 of 1",
                 "fine_labels": [int(y) for y in labels], "coarse_labels": [owner[fine[y]] for y in labels],
                 "data": np.stack(rows).astype(np.uint8)}
        with open(base / part, "wb") as fh:
            pickle.dump(entry, fh, protocol=4)
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": fine, "coarse_label_names": coarse}, fh, protocol=4)
    return {"root": str(Path(root)), "check_md5": False}


def write_cifarfs_r2d2(root: str | os.PathLike, per_class: int = 3, *, split_files: bool = True) -> dict[str, Any]:
    """Write the R2D2 CIFAR-FS folders ``root/data/<class>/<class>_<i>.png`` (32×32 PNGs, all
    100 classes) and, with ``split_files``, ``root/splits/bertinetto/{train,val,test}.txt``;
    return ``{"root", "test_seen_per_class": 1}``. Defaults: 300 images; splits train 64,
    val_seen 64, test_seen 64, val_unseen 48, test_unseen 60."""
    _positive(per_class=per_class)
    if per_class < 3:
        raise ValueError("write_cifarfs_r2d2: per_class must be >= 3 (test_seen, val_seen and train images)")
    root = Path(root)
    for k, c in enumerate(CIFAR_FS_CLASSES):
        d = root / "data" / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (d / f"{c}_{i}.png").write_bytes(_encode(_pixels(k, i, 32), "PNG"))
    if split_files:
        s = root / "splits" / "bertinetto"
        s.mkdir(parents=True, exist_ok=True)
        for split, classes in CIFAR_FS_SPLITS.items():
            (s / f"{split}.txt").write_text("".join(f"{c}\n" for c in classes))
    return {"root": str(root), "test_seen_per_class": 1}


# --------------------------------------------------------------------------- MiniImageNet

def write_miniimagenet(root: str | os.PathLike, per_class: int = 4, size: int = 16, *,
                       layout: str = "folders") -> dict[str, Any]:
    """Write MiniImageNet's 100 classes with ``per_class`` ``size``×``size`` JPEGs each, in the
    ``folders`` layout (``root/{train,val,test}/<wnid>/<wnid><i:08d>.jpg``) or the Ravi &
    Larochelle ``csv`` layout (``root/images/*.jpg`` + ``root/{train,val,test}.csv``); return
    ``{"root", "image_size", "test_seen_per_class": 1}``. Defaults: 400 images (~0.3 MB);
    splits train 128, val_seen 64, test_seen 64, val_unseen 64, test_unseen 80."""
    _positive(per_class=per_class, size=size)
    if per_class < 3:
        raise ValueError("write_miniimagenet: per_class must be >= 3 (test_seen, val_seen and train images)")
    if layout not in ("folders", "csv"):
        raise ValueError(f"write_miniimagenet: layout must be 'folders' or 'csv'; got {layout!r}")
    root = Path(root)
    k = 0
    for split, classes in MINIIMAGENET_SPLITS.items():
        rows = ["filename,label\n"]
        for wnid, _ in classes:
            d = root / split / wnid if layout == "folders" else root / "images"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                fname = f"{wnid}{i + 1:08d}.jpg"
                (d / fname).write_bytes(_encode(_pixels(k, i, size), "JPEG"))
                rows.append(f"{fname},{wnid}\n")
            k += 1
        if layout == "csv":
            (root / f"{split}.csv").write_text("".join(rows))
    return {"root": str(root), "image_size": int(size), "test_seen_per_class": 1}


# --------------------------------------------------------------------------- by name

def write_fixture(dataset: str, root: str | os.PathLike, **options) -> dict[str, Any]:
    """Write the fixture of ``dataset`` (a name ``load_dataset`` accepts, see
    :data:`FIXTURE_DATASETS`) into ``root``; ``options`` go to its writer. ``shapes`` is
    embedded: nothing is written and ``{}`` is returned. ``cifar-fs`` writes the torchvision
    layout (``layout="r2d2"`` for the folders), ``miniimagenet`` the folders layout
    (``layout="csv"`` for the other)."""
    key = str(dataset).strip().lower()
    key = {"cifarfs": "cifar-fs", "cifar_fs": "cifar-fs", "mini-imagenet": "miniimagenet",
           "mini_imagenet": "miniimagenet"}.get(key, key)
    if key == "shapes":
        if options:
            raise ValueError(f"write_fixture('shapes'): no options (nothing is written); got {sorted(options)}")
        return {}
    if key == "folder":
        return write_folder(root, **options)
    if key in ("cifar10", "cifar-10", "cifar_10"):
        return write_cifar10(root, **options)
    if key in ("cub", "awa1", "awa2", "sun", "apy"):
        return write_xlsa17(root, name=key.upper(), **options)
    if key == "cifar-fs":
        layout = options.pop("layout", "torchvision")
        if layout == "r2d2":
            return write_cifarfs_r2d2(root, **options)
        if layout != "torchvision":
            raise ValueError(f"write_fixture('cifar-fs'): layout must be 'torchvision' or 'r2d2'; got {layout!r}")
        return write_cifar100_python(root, **options)
    if key == "miniimagenet":
        return write_miniimagenet(root, **options)
    raise ValueError(f"write_fixture: unknown dataset {dataset!r}; available: {', '.join(FIXTURE_DATASETS)}")


def cli_overrides(options: Mapping[str, Any]) -> list[str]:
    """``["data.root=/tmp/x", "data.check_md5=false", ...]``: a fixture's options as ``--set``
    arguments of ``zslab train`` (lists become comma-separated, booleans ``true``/``false``)."""
    out = []
    for k, v in options.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        out.append(f"data.{k}={v}")
    return out
