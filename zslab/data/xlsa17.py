"""Real attribute datasets (CUB, AwA1, AwA2, SUN, aPY) in the xlsa17 "proposed split" format.

The format
----------
Xian, Lampert, Schiele and Akata, "Zero-Shot Learning — A Comprehensive Evaluation of the
Good, the Bad and the Ugly" (TPAMI 2018) released, per dataset, a folder
``xlsa17/data/<NAME>/`` holding

``att_splits.mat``
    ``allclasses_names``  C×1 cell of class names. **Its order defines the global class
                          index** used everywhere in zslab (0-based here).
    ``att``               K×C class-attribute matrix, one column per class, each column
                          L2-normalised (what zslab uses by default, as float32 C×K).
    ``original_att``      K×C raw attributes (CUB: 0..100 percentages; AwA: 0..100 with -1
                          for missing values; SUN/aPY: 0..1). ``attribute_key`` selects it.
    ``trainval_loc``      images of the seen classes used for training;
    ``test_seen_loc``     held-out images of the seen classes (GZSL "S");
    ``test_unseen_loc``   images of the unseen classes (ZSL / GZSL "U");
    ``train_loc``, ``val_loc``  (AwA1, AwA2, SUN releases; absent from some re-saved CUB and
                          aPY files) images of the *train* classes and of the *validation*
                          classes (a class split of the seen classes).
    Every ``*_loc`` holds **1-based** indices into the image list of ``res101.mat``.
``res101.mat``
    ``image_files`` N×1 cell of image paths, ``labels`` N×1 1-based indices into
    ``allclasses_names``, ``features`` 2048×N ResNet-101 features (never loaded here).
    The paths are absolute paths on the authors' machines, e.g.
    ``/BS/xian/work/data/CUB_200_2011/images/001.Black_footed_Albatross/x.jpg``.
``trainclasses{1,2,3}.txt``, ``valclasses{1,2,3}.txt``, ``trainvalclasses.txt``,
``testclasses.txt``
    class-name lists; split 1 is the one ``train_loc``/``val_loc`` follow.

Where the files go
------------------
``root`` is the dataset's own root folder, the one that holds its image folder:

====== ======================================================================================
CUB    ``root/images/<class>/<file>.jpg`` (the ``CUB_200_2011`` folder; its ``images.txt``,
       ``image_class_labels.txt``, ``classes.txt`` make ``res101.mat`` optional)
AWA2   ``root/JPEGImages/<class>/<file>.jpg`` (the ``Animals_with_Attributes2`` folder)
AWA1   ``root/JPEGImages/...`` or ``root/images/...`` (AwA1 images are no longer distributed)
SUN    ``root/images/<letter>/<class...>/<file>.jpg`` (the SUN attribute images)
APY    ``root/VOCdevkit/VOC2008/JPEGImages/<file>.jpg`` (aPascal) and
       ``root/ayahoo_test_images/<file>.jpg`` (aYahoo)
====== ======================================================================================

``split_dir`` (default: ``root``) holds ``att_splits.mat``, ``res101.mat`` and the class
lists, i.e. copy the content of ``xlsa17/data/<NAME>/`` into ``root`` or pass
``split_dir=".../xlsa17/data/<NAME>"``. An image path from ``res101.mat`` is mapped onto
``root`` by its part from the dataset's image folder on (``images/``, ``JPEGImages/``,
``VOCdevkit/``, ``ayahoo_test_images/``; override with ``path_markers``); relative paths
are taken relative to ``root``.

Without ``res101.mat`` only CUB can be loaded: xlsa17's CUB image order is the order of
CUB's ``images.txt`` (verified: with it, the classes of ``trainval_loc`` and
``test_unseen_loc`` are exactly ``trainvalclasses.txt`` / ``testclasses.txt``); CUB class
ids are mapped to global indices by *name*, because ``allclasses_names`` need not follow
CUB's id order (some re-saved copies list the 150 trainval classes first).

Split protocol (what zslab's five splits are made of)
-----------------------------------------------------
The released ``train_loc``/``val_loc`` cover the images of ``trainval_loc`` *and*
``test_seen_loc`` (checked on AwA1/AwA2/SUN: ``train ∪ val = trainval ∪ test_seen``), so
training on ``train_loc`` as-is would train on test images. zslab therefore works from the
image labels:

* seen classes = classes of ``trainval_loc``; unseen classes = classes of
  ``test_unseen_loc`` (must be disjoint);
* validation classes V (``val_classes``): ``'xlsa17'`` = the classes of ``val_loc`` when
  the file has it, else ``valclasses1.txt``; ``1``/``2``/``3`` = ``valclassesN.txt``; or an
  explicit list of class names. Train classes T = seen − V;
* ``train`` + ``val_seen`` = ``trainval_loc`` images of T; ``val_seen`` is a seeded,
  per-class ``val_seen_fraction`` of them (at least one image per class);
* ``val_unseen`` = all images of V in ``trainval_loc ∪ test_seen_loc`` (= ``val_loc``);
* ``test_seen`` = ``test_seen_loc`` images of T; its images of V went to ``val_unseen``
  (their count is ``meta['test_seen_moved_to_val_unseen']``);
* ``test_unseen`` = ``test_unseen_loc``;
* ``max_per_class`` (optional, for quick runs such as the ``smoke`` presets): then at most
  that many images per class in each split — an int for every split or a dict naming splits
  (``{"train": 24, "val_seen": 4, "val_unseen": 12, "test_seen": 8, "test_unseen": 12}``;
  keys: the five split names, unnamed splits stay whole) — a seeded random subset kept in
  image-list order, drawn after the splits above are formed (so a class's images never move
  between splits). Same option and key names as ``folder``, ``cifar-fs`` and
  ``miniimagenet`` (:func:`zslab.data.folder.resolve_max_per_class`).

This is the class-disjoint train / validation / test protocol of the paper with no image
used twice, which is what :class:`~zslab.data.base.ZSLData` requires. Numbers are therefore
"train on T" numbers (fewer classes than the papers' final "train on trainval" runs).

Images are loaded lazily by :class:`ImageListDataset` (PIL, RGB, shorter side resized to
``image_size`` then centre-cropped). aPascal objects are not cropped to their boxes (the
boxes are not part of xlsa17): the whole VOC image is loaded.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import torch

from zslab import ZSLabError
from zslab.data.base import ZSLData
from zslab.data.folder import apply_caps, check_seed, resolve_max_per_class
from zslab.data.images import ImageListDataset, check_files_exist

XLSA17_DATASETS = ("CUB", "AWA1", "AWA2", "SUN", "APY")

#: folder names from which a res101.mat image path is kept and re-rooted onto ``root``
PATH_MARKERS: dict[str, tuple[str, ...]] = {
    "CUB": ("images",),
    "AWA1": ("JPEGImages", "images"),
    "AWA2": ("JPEGImages",),
    "SUN": ("images",),
    "APY": ("VOCdevkit", "ayahoo_test_images"),
}

#: candidate attribute-name files (relative to root, then split_dir): "<id> <name>" or "<name>" lines
_ATTRIBUTE_FILES: dict[str, tuple[str, ...]] = {
    "CUB": ("attributes.txt", "attributes/attributes.txt", "../attributes.txt"),
    "AWA1": ("predicates.txt",),
    "AWA2": ("predicates.txt",),
    "SUN": ("SUNAttributeDB/attributes.mat", "attributes.mat"),
    "APY": ("attribute_names.txt", "attribute_data/attribute_names.txt"),
}

_SPLIT_KEYS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")
_LOC_KEYS = ("trainval_loc", "test_seen_loc", "test_unseen_loc", "train_loc", "val_loc")


# --------------------------------------------------------------------------- .mat helpers

def _loadmat(path: Path, what: str, variable_names=None) -> dict:
    try:
        return scipy.io.loadmat(str(path), variable_names=variable_names)
    except NotImplementedError:
        raise ZSLabError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save {what} "
                         f"with MATLAB's save(..., '-v7') or scipy.io.savemat") from None
    except Exception as e:  # scipy raises ValueError/TypeError/OSError on damaged files
        raise ZSLabError(f"cannot read {what} {path}: {e.__class__.__name__}: {e}") from None


def _mat_str(x) -> str:
    """A MATLAB char array / cell entry as a Python str."""
    if isinstance(x, np.ndarray) and x.dtype.kind == "U" and x.size == 1:  # the usual cell entry
        return str(x.item()).strip()
    while isinstance(x, np.ndarray):
        if x.dtype.kind in "US":
            return "".join(str(c) for c in x.ravel()).strip()
        if x.size != 1:
            raise ValueError(f"expected one string, got an array of shape {x.shape}")
        x = x.ravel()[0]
    return str(x).strip()


def _mat_strings(arr, key: str, path: Path) -> list[str]:
    try:
        arr = np.asarray(arr)
        if arr.dtype.kind in "US":  # char matrix (one row per string)
            return [str(s).strip() for s in np.atleast_1d(arr).ravel()]
        return [_mat_str(x) for x in arr.ravel()]
    except ValueError as e:
        raise ZSLabError(f"{path}: '{key}' is not a list of strings ({e})") from None


def _read_names(path: Path) -> list[str]:
    """Lines of a list file; a leading integer id column ("12 name", "  12\\tname") is dropped."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split(None, 1)
        if not parts:
            continue
        out.append(parts[1].strip() if len(parts) == 2 and parts[0].isdigit() else line.strip())
    return out


# --------------------------------------------------------------------------- image lists

def map_image_path(path: str, root: str | os.PathLike, markers: Sequence[str]) -> str | None:
    """Re-root an image path of res101.mat onto ``root``: keep its part from the last folder
    named one of ``markers``; relative paths are joined to ``root``; None when no marker."""
    parts = [p for p in str(path).replace("\\", "/").split("/") if p not in ("", ".")]
    best = -1
    for i, p in enumerate(parts[:-1]):
        if p in markers:
            best = i
    if best >= 0:
        return os.path.join(str(root), *parts[best:])
    if parts and not str(path).startswith(("/", "\\")) and not (len(path) > 1 and path[1] == ":"):
        return os.path.join(str(root), *parts)
    return None


def _image_list_res101(name: str, res101: Path, root: Path, n_classes: int,
                       markers: Sequence[str]) -> tuple[list[str], np.ndarray]:
    m = _loadmat(res101, "res101.mat", variable_names=["image_files", "labels"])
    for key in ("image_files", "labels"):
        if key not in m:
            raise ZSLabError(f"{res101}: no '{key}' variable; expected xlsa17's res101.mat "
                             f"(image_files, labels, features)")
    files = _mat_strings(m["image_files"], "image_files", res101)
    labels = np.asarray(m["labels"]).ravel()
    if len(files) != labels.shape[0]:
        raise ZSLabError(f"{res101}: {len(files)} image_files but {labels.shape[0]} labels")
    if labels.size and (not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels))
                        or labels.min() < 1 or labels.max() > n_classes):
        raise ZSLabError(f"{res101}: labels must be 1-based class indices in 1..{n_classes} "
                         f"(att_splits.mat has {n_classes} classes); got range "
                         f"{labels.min()}..{labels.max()}")
    paths, unmapped, dirs = [], [], {}
    for f in files:  # map each folder once (many images share one)
        d, _, base = f.replace("\\", "/").rpartition("/")
        if d not in dirs:
            md = map_image_path(f, root, markers)  # ends with base
            dirs[d] = None if md is None else md[:len(md) - len(base)]
        md = dirs[d]
        if md is None:
            unmapped.append(f)
        else:
            paths.append(md + base)
    if unmapped:
        raise ZSLabError(f"{name}: {len(unmapped)} image paths in {res101} contain none of the folders "
                         f"{list(markers)}, so they cannot be placed under root={root}; e.g. "
                         f"{unmapped[0]!r}. Pass path_markers=[...] naming the image folder.")
    return paths, labels.astype(np.int64) - 1


def _image_list_cub_metadata(root: Path, class_names: list[str]) -> tuple[list[str], np.ndarray]:
    files = {k: root / k for k in ("images.txt", "image_class_labels.txt", "classes.txt")}
    for k, p in files.items():
        if not p.is_file():
            raise ZSLabError(f"CUB: {p} not found (CUB_200_2011 metadata, used when there is no res101.mat)")

    def table(p: Path) -> list[tuple[int, str]]:
        rows = []
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                parts = line.split(None, 1)
                if len(parts) != 2 or not parts[0].isdigit():
                    raise ZSLabError(f"{p}:{n}: expected '<id> <value>', got {line!r}")
                rows.append((int(parts[0]), parts[1].strip()))
        return rows

    images = table(files["images.txt"])
    img_labels = dict(table(files["image_class_labels.txt"]))
    cub_classes = dict(table(files["classes.txt"]))
    index = {c: i for i, c in enumerate(class_names)}
    base = os.path.join(str(root), "images")
    missing = sorted(set(cub_classes.values()) - set(index))
    if missing:
        raise ZSLabError(f"CUB: classes in {files['classes.txt']} not in att_splits.mat's allclasses_names: "
                         f"{missing[:5]}")
    if [i for i, _ in images] != list(range(1, len(images) + 1)):
        raise ZSLabError(f"{files['images.txt']}: image ids must be 1..N in order")
    paths, labels = [], []
    for img_id, rel in images:
        if img_id not in img_labels:
            raise ZSLabError(f"{files['image_class_labels.txt']}: no label for image {img_id}")
        cid = int(img_labels[img_id])
        if cid not in cub_classes:
            raise ZSLabError(f"{files['image_class_labels.txt']}: image {img_id} has unknown class id {cid}")
        paths.append(os.path.join(base, *rel.split("/")))
        labels.append(index[cub_classes[cid]])
    return paths, np.asarray(labels, dtype=np.int64)


def _check_label_folders(name: str, paths: list[str], labels: np.ndarray, class_names: list[str],
                         root: Path, markers: Sequence[str]) -> str:
    """Where the image folders name the classes (CUB, AwA: ``<class>/<file>``; SUN:
    ``<letter>/<class parts>/<file>``), check that each label agrees with its folder. Catches
    a res101.mat whose labels follow another class order than att_splits.mat."""
    names = set(class_names)
    prefix = str(root) + os.sep
    skip = tuple(markers) + ("VOC2008",)
    keys = []
    for p in paths:
        if not p.startswith(prefix):
            return "skipped"
        dirs = p[len(prefix):].split(os.sep)[:-1]
        while dirs and dirs[0] in skip:  # drop the image folder, keep <dirs>/<file>
            dirs = dirs[1:]
        if name == "SUN" and dirs and len(dirs[0]) == 1:
            key = "_".join(dirs[1:])
        else:
            key = dirs[-1] if dirs else ""
        keys.append(key)
    if not keys or not all(k in names for k in keys):
        return "skipped"
    bad = [(p, class_names[y], k) for p, y, k in zip(paths, labels, keys) if class_names[y] != k]
    if bad:
        ex = "; ".join(f"{p} labelled '{c}'" for p, c, _ in bad[:3])
        raise ZSLabError(f"{name}: {len(bad)} of {len(paths)} image labels disagree with the class folder "
                         f"they lie in (e.g. {ex}): res101.mat and att_splits.mat must come from the same "
                         f"xlsa17 release (same class order)")
    return "ok"


# --------------------------------------------------------------------------- main entry

def _canonical(name: str) -> str:
    key = str(name).strip().upper().replace("-", "").replace("_", "")
    if key not in XLSA17_DATASETS:
        raise ZSLabError(f"unknown xlsa17 dataset '{name}'; available: {', '.join(XLSA17_DATASETS)}")
    return key


def _attribute_names(name: str, K: int, root: Path, split_dir: Path) -> tuple[list[str], str]:
    for base in (root, split_dir):
        for rel in _ATTRIBUTE_FILES[name]:
            p = (base / rel)
            if not p.is_file():
                continue
            if p.suffix == ".mat":
                m = _loadmat(p, "attribute names")
                key = next((k for k in ("attributes", "attribute_names") if k in m), None)
                if key is None:
                    continue
                names = _mat_strings(m[key], key, p)
            else:
                names = _read_names(p)
            if len(names) != K:
                raise ZSLabError(f"{p} lists {len(names)} attribute names but att_splits.mat has K={K} "
                                 f"attributes; remove or fix the file")
            return names, str(p)
    return [f"attr_{k}" for k in range(K)], "generated"


def load_xlsa17(name: str, root: str | os.PathLike, split_dir: str | os.PathLike | None = None, *,
                image_size: int = 224, res101: str | os.PathLike | None = None,
                val_classes: str | int | Sequence[str] = "xlsa17", val_seen_fraction: float = 0.1,
                seed: int = 0, attribute_key: str = "att", check_files: bool = True,
                path_markers: Sequence[str] | None = None, transform: Callable | None = None,
                max_per_class: int | Mapping[str, int] | None = None) -> ZSLData:
    """Load CUB / AWA1 / AWA2 / SUN / APY in the xlsa17 proposed split as a :class:`ZSLData`.

    ``root``: the dataset folder holding the images (layout in the module docstring).
    ``split_dir``: folder with ``att_splits.mat`` (+ ``res101.mat``, class lists); default ``root``.
    ``res101``: path of ``res101.mat``; default ``split_dir/res101.mat``. Required except for
    CUB, which falls back to ``root/images.txt`` + ``image_class_labels.txt`` + ``classes.txt``.
    ``val_classes``: ``'xlsa17'``, ``1``/``2``/``3`` or a list of class names (see module doc).
    ``val_seen_fraction``: per-class share of the train-class images held out as ``val_seen``.
    ``seed``: seeds that hold-out (the result is deterministic). ``attribute_key``: ``'att'``
    (L2-normalised, default) or ``'original_att'``. ``check_files``: check at load time that
    every image exists. ``path_markers``: image-folder names used to re-root res101.mat paths.
    ``transform``: optional PIL → tensor callable replacing the default resize + centre crop.
    ``max_per_class``: per-class image cap of every split (int) or of the named splits (dict
    ``{"train": 24, "test_unseen": 12}``), a seeded subset taken after the splits are formed
    (module docstring); ``meta["counts"]`` are the capped sizes, ``meta["uncapped_counts"]``
    the sizes before. Only the kept images are checked on disk (``check_files``).
    """

    name = _canonical(name)
    caps = resolve_max_per_class(max_per_class)
    seed = check_seed(seed)
    if root is None:
        raise ZSLabError(f"{name}: root is required: the folder that holds the {name} images")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ZSLabError(f"{name}: dataset root {root} does not exist or is not a folder; "
                         f"pass root= the folder holding the {name} images")
    split_dir = root if split_dir is None else Path(split_dir).expanduser()
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ZSLabError(f"image_size must be a positive integer, got {image_size!r}")
    if not (isinstance(val_seen_fraction, (int, float)) and 0.0 < float(val_seen_fraction) < 1.0):
        raise ZSLabError(f"val_seen_fraction must be in (0, 1), got {val_seen_fraction!r}")
    if attribute_key not in ("att", "original_att"):
        raise ZSLabError(f"attribute_key must be 'att' or 'original_att', got {attribute_key!r}")
    markers = tuple(path_markers) if path_markers is not None else PATH_MARKERS[name]

    # ---- att_splits.mat
    att_path = split_dir / "att_splits.mat"
    if not att_path.is_file():
        raise ZSLabError(f"{name}: {att_path} not found. Put the xlsa17 proposed-split file "
                         f"xlsa17/data/{name}/att_splits.mat there (with res101.mat and the class lists), "
                         f"or pass split_dir= the folder that holds it "
                         f"(CLI: --set data.split_dir=/path/to/xlsa17/{name})")
    m = _loadmat(att_path, "att_splits.mat")
    for key in ("allclasses_names", attribute_key) + _SPLIT_KEYS:
        if key not in m:
            raise ZSLabError(f"{att_path}: no '{key}' variable; is it an xlsa17 att_splits.mat?")
    class_names = _mat_strings(m["allclasses_names"], "allclasses_names", att_path)
    C = len(class_names)
    if len(set(class_names)) != C:
        raise ZSLabError(f"{att_path}: allclasses_names has duplicate names")
    att = np.asarray(m[attribute_key], dtype=np.float64)
    if att.ndim != 2 or att.shape[1] != C:
        raise ZSLabError(f"{att_path}: '{attribute_key}' must be K x C with C={C} classes, got {att.shape}")
    A = att.T.astype(np.float32)
    bad = ~np.isfinite(A).all(1)
    if bad.any():
        raise ZSLabError(f"{att_path}: '{attribute_key}' has NaN/inf values for classes "
                         f"{[class_names[i] for i in np.flatnonzero(bad)[:5]]} ({int(bad.sum())} classes)")
    zero = np.abs(A).sum(1) == 0
    if zero.any():
        raise ZSLabError(f"{att_path}: '{attribute_key}' is all zero for classes "
                         f"{[class_names[i] for i in np.flatnonzero(zero)[:5]]} ({int(zero.sum())} classes)")

    # ---- image list (res101.mat, else CUB metadata)
    res_path = Path(res101).expanduser() if res101 is not None else split_dir / "res101.mat"
    if res101 is not None and not res_path.is_file():
        raise ZSLabError(f"{name}: res101={res_path} not found")
    if res_path.is_file():
        paths, labels = _image_list_res101(name, res_path, root, C, markers)
        source = str(res_path)
    elif name == "CUB" and (root / "images.txt").is_file():
        paths, labels = _image_list_cub_metadata(root, class_names)
        source = "CUB metadata (images.txt, image_class_labels.txt, classes.txt)"
    else:
        extra = (" or CUB_200_2011's images.txt, image_class_labels.txt and classes.txt in root"
                 if name == "CUB" else "")
        raise ZSLabError(f"{name}: {res_path} not found. The xlsa17 *_loc indices refer to the image list "
                         f"of res101.mat (image_files, labels); put xlsa17/data/{name}/res101.mat next to "
                         f"att_splits.mat{extra}, or pass res101=PATH (CLI: --set data.res101=PATH)")
    N = len(paths)

    locs: dict[str, np.ndarray] = {}
    for key in _LOC_KEYS:
        if key not in m:
            continue
        v = np.asarray(m[key]).ravel().astype(np.int64)
        if v.size and (v.min() < 1 or v.max() > N):
            raise ZSLabError(f"{att_path}: '{key}' has indices outside 1..{N} (the {N} images of {source}); "
                             f"got {v.min()}..{v.max()}: the image list does not match this split file")
        locs[key[:-4]] = v - 1
    for a, b in (("trainval", "test_seen"), ("trainval", "test_unseen"), ("test_seen", "test_unseen")):
        both = np.intersect1d(locs[a], locs[b])
        if both.size:
            raise ZSLabError(f"{att_path}: {a}_loc and {b}_loc share {both.size} images")

    label_check = _check_label_folders(name, paths, labels, class_names, root, markers)

    # ---- class sets
    def classes_of(key: str) -> set[int]:
        return set(labels[locs[key]].tolist())

    seen, unseen = classes_of("trainval"), classes_of("test_unseen")
    if seen & unseen:
        raise ZSLabError(f"{name}: trainval_loc and test_unseen_loc share classes "
                         f"{[class_names[c] for c in sorted(seen & unseen)[:5]]}: the image list ({source}) "
                         f"is not in the order the split file refers to")
    extra_seen = classes_of("test_seen") - seen
    if extra_seen:
        raise ZSLabError(f"{name}: test_seen_loc has classes absent from trainval_loc: "
                         f"{[class_names[c] for c in sorted(extra_seen)[:5]]}")

    index = {c: i for i, c in enumerate(class_names)}
    if isinstance(val_classes, str) and val_classes == "xlsa17":
        if "val" in locs:
            V = classes_of("val")
            val_source = "val_loc"
            if "train" in locs and classes_of("train") & V:
                raise ZSLabError(f"{att_path}: train_loc and val_loc share classes")
        else:
            val_classes, val_source = 1, None
    if isinstance(val_classes, int) and not isinstance(val_classes, bool):
        f = split_dir / f"valclasses{val_classes}.txt"
        if not f.is_file():
            raise ZSLabError(f"{name}: {f} not found; needed for val_classes={val_classes} "
                             f"(copy xlsa17/data/{name}/valclasses*.txt next to att_splits.mat)")
        val_names, val_source = _read_names(f), str(f)
    elif isinstance(val_classes, str):
        if val_classes != "xlsa17":
            raise ZSLabError(f"val_classes must be 'xlsa17', 1, 2, 3 or a list of class names; got {val_classes!r}")
        val_names = None
    else:
        val_names, val_source = [str(v) for v in val_classes], "explicit list"
    if val_names is not None:
        unknown = [v for v in val_names if v not in index]
        if unknown:
            raise ZSLabError(f"{name}: validation classes not in allclasses_names: {unknown[:5]}")
        V = {index[v] for v in val_names}
    if not V <= seen:
        raise ZSLabError(f"{name}: validation classes must be seen (trainval) classes; not seen: "
                         f"{[class_names[c] for c in sorted(V - seen)[:5]]}")
    T = seen - V
    if not V or not T:
        raise ZSLabError(f"{name}: need at least one train and one validation class "
                         f"(got {len(T)} train, {len(V)} validation)")

    # ---- image splits
    T_arr, V_arr = np.array(sorted(T)), np.array(sorted(V))
    tv = locs["trainval"]
    pool = np.sort(tv[np.isin(labels[tv], T_arr)])
    rng = np.random.default_rng(seed)
    held = []
    for c in T_arr:
        idx = pool[labels[pool] == c]
        n = idx.size
        k = min(max(int(round(val_seen_fraction * n)), 1), n - 1) if n >= 2 else 0
        held.append(rng.permutation(idx)[:k])
    val_seen = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    train = np.setdiff1d(pool, val_seen)
    ts = locs["test_seen"]
    ts_in_V = ts[np.isin(labels[ts], V_arr)]
    val_unseen = np.sort(np.concatenate([tv[np.isin(labels[tv], V_arr)], ts_in_V]))
    test_seen = np.sort(ts[np.isin(labels[ts], T_arr)])
    test_unseen = np.sort(locs["test_unseen"])
    index_splits = {"train": train, "val_seen": val_seen, "val_unseen": val_unseen,
                    "test_seen": test_seen, "test_unseen": test_unseen}
    empty = [k for k, v in index_splits.items() if v.size == 0]
    if empty:
        raise ZSLabError(f"{name}: splits {empty} are empty; check val_classes and the split file")
    uncapped = {k: int(v.size) for k, v in index_splits.items()}
    index_splits = apply_caps(index_splits, labels, caps, rng)

    if check_files:
        used = np.unique(np.concatenate(list(index_splits.values())))
        check_files_exist([paths[i] for i in used], what=f"{name} images listed by the split",
                          hint=f" (expected under root={root}; see zslab.data.xlsa17 for the layout)")

    splits = {k: ImageListDataset([paths[i] for i in v], labels[v], image_size, transform=transform,
                                  check_files=False) for k, v in index_splits.items()}
    attr_names, attr_source = _attribute_names(name, A.shape[1], root, split_dir)
    meta: dict[str, Any] = {
        "format": "xlsa17", "root": str(root), "split_dir": str(split_dir), "image_list": source,
        "attribute_key": attribute_key, "attribute_names_from": attr_source, "val_classes_from": val_source,
        "val_seen_fraction": float(val_seen_fraction), "seed": seed, "image_size": image_size,
        "n_images": N, "label_folder_check": label_check,
        "test_seen_moved_to_val_unseen": int(ts_in_V.size),
        # numpy int64 arrays of 0-based positions in the image list (res101.mat / images.txt order)
        "split_indices": {k: v.copy() for k, v in index_splits.items()},
        "counts": {k: int(v.size) for k, v in index_splits.items()},
        "max_per_class": caps, "uncapped_counts": uncapped,
    }
    try:
        return ZSLData(name=name, class_names=class_names, attribute_names=attr_names,
                       class_attributes=torch.from_numpy(A), train_classes=torch.from_numpy(T_arr).long(),
                       val_classes=torch.from_numpy(V_arr).long(),
                       unseen_classes=torch.tensor(sorted(unseen), dtype=torch.long), splits=splits, meta=meta)
    except ValueError as e:
        raise ZSLabError(f"{name}: {e}") from None


__all__ = ["XLSA17_DATASETS", "PATH_MARKERS", "ImageListDataset", "check_files_exist", "load_xlsa17",
           "map_image_path"]
