"""``miniimagenet``: MiniImageNet (Vinyals et al., 2016) in the Ravi & Larochelle (2017)
64 / 16 / 20 class split, used by LAAT (§4.1, Table 2; 600 images of 84×84 per class).

Class lists
-----------
The 100 WordNet ids and their readable names are embedded (:data:`MINIIMAGENET_SPLITS`);
the names are the ones of the LAAT authors' ``miniimagenet_classes.txt`` and the global class
order is that file's order (64 train, 16 validation, 20 test; WordNet-id order within each
split), so row ``i`` of the real CLIP anchor file is class ``i``. ``class_names`` are these
names (``"house_finch"``); ``meta["wnids"]`` the WordNet ids; ``meta["text_names"]`` the
names with spaces, for prompts.

On-disk layouts (``layout="auto"`` detects them)
------------------------------------------------
``folders``
    ``root/{train,val,test}/<wnid>/*.jpg``: one folder per split, one sub-folder per class,
    named by WordNet id (a folder named by the readable name is accepted too). Each split
    folder must hold exactly its 64 / 16 / 20 classes.
``csv``
    The Ravi & Larochelle release: ``root/images/*.jpg`` and ``root/{train,val,test}.csv``
    with a ``filename,label`` header and rows ``n0153282900000005.jpg,n01532829``.

Splits (the five :class:`~zslab.data.base.ZSLData` splits)
-----------------------------------------------------------
``val_unseen`` = all images of the 16 validation classes; ``test_unseen`` = all images of
the 20 test (novel) classes; for the 64 train classes a seeded ``test_seen_per_class`` (100)
images per class form ``test_seen`` (for GZSL), a ``val_seen_fraction`` of the rest
``val_seen``, the remainder ``train``. ``max_per_class`` caps the images per class of every
split (int) or of named splits (dict keyed by ``train``, ``val_seen``, ``val_unseen``,
``test_seen``, ``test_unseen``), a seeded subset drawn after the splits are formed, for quick
runs (same option as every file-based loader). Images
are decoded lazily (:class:`~zslab.data.xlsa17.ImageListDataset`, shorter side resized to
``image_size`` = 84, centre crop). No class-attribute matrix (``class_attributes is None``).
"""
from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zslab import ZSLabError
from zslab.data.base import ZSLData
from zslab.data.folder import (check_fraction, check_seed, class_split_pools, resolve_max_per_class,
                               scan_class_folders, text_name)
from zslab.data.images import ImageListDataset, check_files_exist

__all__ = ["MINIIMAGENET_SPLITS", "MINIIMAGENET_CLASSES", "WNID_TO_NAME", "load_miniimagenet"]

_TRAIN = (
    ('n01532829', 'house_finch'), ('n01558993', 'robin'), ('n01704323', 'triceratops'),
    ('n01749939', 'green_mamba'), ('n01770081', 'harvestman'), ('n01843383', 'toucan'),
    ('n01910747', 'jellyfish'), ('n02074367', 'dugong'), ('n02089867', 'Walker_hound'),
    ('n02091831', 'Saluki'), ('n02101006', 'Gordon_setter'), ('n02105505', 'komondor'),
    ('n02108089', 'boxer'), ('n02108551', 'Tibetan_mastiff'), ('n02108915', 'French_bulldog'),
    ('n02111277', 'Newfoundland'), ('n02113712', 'miniature_poodle'), ('n02120079', 'Arctic_fox'),
    ('n02165456', 'ladybug'), ('n02457408', 'three-toed_sloth'), ('n02606052', 'rock_beauty'),
    ('n02687172', 'aircraft_carrier'), ('n02747177', 'ashcan'), ('n02795169', 'barrel'),
    ('n02823428', 'beer_bottle'), ('n02966193', 'carousel'), ('n03017168', 'chime'),
    ('n03047690', 'clog'), ('n03062245', 'cocktail_shaker'), ('n03207743', 'dishrag'),
    ('n03220513', 'dome'), ('n03337140', 'file'), ('n03347037', 'fire_screen'),
    ('n03400231', 'frying_pan'), ('n03476684', 'hair_slide'), ('n03527444', 'holster'),
    ('n03676483', 'lipstick'), ('n03838899', 'oboe'), ('n03854065', 'organ'),
    ('n03888605', 'parallel_bars'), ('n03908618', 'pencil_box'), ('n03924679', 'photocopier'),
    ('n03998194', 'prayer_rug'), ('n04067472', 'reel'), ('n04243546', 'slot'),
    ('n04251144', 'snorkel'), ('n04258138', 'solar_dish'), ('n04275548', 'spider_web'),
    ('n04296562', 'stage'), ('n04389033', 'tank'), ('n04435653', 'tile_roof'),
    ('n04443257', 'tobacco_shop'), ('n04509417', 'unicycle'), ('n04515003', 'upright'),
    ('n04596742', 'wok'), ('n04604644', 'worm_fence'), ('n04612504', 'yawl'),
    ('n06794110', 'street_sign'), ('n07584110', 'consomme'), ('n07697537', 'hotdog'),
    ('n07747607', 'orange'), ('n09246464', 'cliff'), ('n13054560', 'bolete'), ('n13133613', 'ear'),
)
_VAL = (
    ('n01855672', 'goose'), ('n02091244', 'Ibizan_hound'), ('n02114548', 'white_wolf'),
    ('n02138441', 'meerkat'), ('n02174001', 'rhinoceros_beetle'), ('n02950826', 'cannon'),
    ('n02971356', 'carton'), ('n02981792', 'catamaran'), ('n03075370', 'combination_lock'),
    ('n03417042', 'garbage_truck'), ('n03535780', 'horizontal_bar'), ('n03584254', 'iPod'),
    ('n03770439', 'miniskirt'), ('n03773504', 'missile'), ('n03980874', 'poncho'),
    ('n09256479', 'coral_reef'),
)
_TEST = (
    ('n01930112', 'nematode'), ('n01981276', 'king_crab'), ('n02099601', 'golden_retriever'),
    ('n02110063', 'malamute'), ('n02110341', 'dalmatian'), ('n02116738', 'African_hunting_dog'),
    ('n02129165', 'lion'), ('n02219486', 'ant'), ('n02443484', 'black-footed_ferret'),
    ('n02871525', 'bookshop'), ('n03127925', 'crate'), ('n03146219', 'cuirass'),
    ('n03272010', 'electric_guitar'), ('n03544143', 'hourglass'), ('n03775546', 'mixing_bowl'),
    ('n04146614', 'school_bus'), ('n04149813', 'scoreboard'), ('n04418357', 'theater_curtain'),
    ('n04522168', 'vase'), ('n07613480', 'trifle'),
)

#: split → ((wnid, readable name), ...), WordNet-id order within each split
MINIIMAGENET_SPLITS: dict[str, tuple[tuple[str, str], ...]] = {"train": _TRAIN, "val": _VAL, "test": _TEST}
#: the 100 readable class names in global-index order (rows of the LAAT anchor file)
MINIIMAGENET_CLASSES: tuple[str, ...] = tuple(n for _, n in _TRAIN + _VAL + _TEST)
WNIDS: tuple[str, ...] = tuple(w for w, _ in _TRAIN + _VAL + _TEST)
WNID_TO_NAME: dict[str, str] = dict(_TRAIN + _VAL + _TEST)

_WHERE = ("put MiniImageNet in ROOT/{train,val,test}/<wnid>/*.jpg (class folders) or as the Ravi & "
          "Larochelle release ROOT/images/*.jpg + ROOT/{train,val,test}.csv; then pass --set data.root=ROOT")


def _from_folders(root: Path, hint: str) -> tuple[list[str], np.ndarray]:
    index = {w: i for i, w in enumerate(WNIDS)}
    by_name = {n: i for i, n in enumerate(MINIIMAGENET_CLASSES)}
    paths, labels = [], []
    for split, classes in MINIIMAGENET_SPLITS.items():
        dirs = scan_class_folders(root / split, "dataset 'miniimagenet'", hint)
        expected = {index[w] for w, _ in classes}
        found = {}
        unknown = []
        for d in dirs:
            c = index.get(d, by_name.get(d))
            if c is None or c not in expected:
                unknown.append(d)
            else:
                found[c] = d
        if unknown:
            raise ZSLabError(f"dataset 'miniimagenet': {root / split} holds class folders that are not "
                             f"MiniImageNet {split} classes: {unknown[:5]} (use dataset 'folder' for other splits)")
        missing = [WNIDS[c] for c in sorted(expected - set(found))]
        if missing:
            raise ZSLabError(f"dataset 'miniimagenet': {root / split} lacks the class folders {missing[:5]}"
                             f"{' ...' if len(missing) > 5 else ''} ({len(missing)} of {len(expected)}){hint}")
        for c in sorted(found):
            files = dirs[found[c]]
            paths.extend(files)
            labels.extend([c] * len(files))
    return paths, np.asarray(labels, dtype=np.int64)


def _from_csv(root: Path, hint: str) -> tuple[list[str], np.ndarray]:
    index = {w: i for i, w in enumerate(WNIDS)}
    paths, labels = [], []
    for split, classes in MINIIMAGENET_SPLITS.items():
        f = root / f"{split}.csv"
        if not f.is_file():
            raise ZSLabError(f"dataset 'miniimagenet': {f} not found{hint}")
        expected = {w for w, _ in classes}
        seen = set()
        with open(f, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        if not rows or [c.strip() for c in rows[0][:2]] != ["filename", "label"]:
            raise ZSLabError(f"dataset 'miniimagenet': {f} must start with the header 'filename,label'")
        for n, row in enumerate(rows[1:], 2):
            if not row:
                continue
            if len(row) < 2:
                raise ZSLabError(f"dataset 'miniimagenet': {f}:{n}: expected 'filename,label', got {row!r}")
            fname, wnid = row[0].strip(), row[1].strip()
            if wnid not in expected:
                raise ZSLabError(f"dataset 'miniimagenet': {f}:{n}: label {wnid!r} is not a MiniImageNet "
                                 f"{split} class")
            seen.add(wnid)
            paths.append(str(root / "images" / fname))
            labels.append(index[wnid])
        missing = sorted(expected - seen)
        if missing:
            raise ZSLabError(f"dataset 'miniimagenet': {f} has no images of {missing[:5]} "
                             f"({len(missing)} of {len(expected)} {split} classes)")
    check_files_exist(paths, what="MiniImageNet images listed in the csv files", hint=f" (under {root / 'images'})")
    return paths, np.asarray(labels, dtype=np.int64)


def load_miniimagenet(root: str | os.PathLike, *, layout: str = "auto", image_size: int | None = 84,
                      val_seen_fraction: float = 0.1, test_seen_per_class: int = 100,
                      max_per_class: int | Mapping[str, int] | None = None, seed: int = 0,
                      transform: Callable | None = None) -> ZSLData:
    """Load MiniImageNet as a :class:`ZSLData` (layouts and splits: see the module docstring).

    Args:
        root: folder holding ``train/ val/ test/`` class folders, or ``images/`` + csv files.
        layout: ``"auto"``, ``"folders"`` or ``"csv"``.
        image_size: square image side (84 = native, also for None).
        val_seen_fraction: per-class share of the train classes' non-test images held out as
            ``val_seen``.
        test_seen_per_class: images per train class held out as ``test_seen``.
        max_per_class: per-class cap on every split (int) or on named splits (dict keyed by
            ``train``, ``val_seen``, ``val_unseen``, ``test_seen``, ``test_unseen``).
        seed: seed of the hold-outs and of the caps.
        transform: optional PIL → tensor transform (replaces resize + crop).
    """
    root = Path(root).expanduser()
    hint = f"; {_WHERE.replace('ROOT', str(root))}"
    if not root.is_dir():
        raise ZSLabError(f"dataset 'miniimagenet': root folder {root} not found{hint}")
    if layout == "auto":
        if (root / "train").is_dir():
            layout = "folders"
        elif (root / "train.csv").is_file():
            layout = "csv"
        else:
            raise ZSLabError(f"dataset 'miniimagenet': found neither {root / 'train'}/ nor {root / 'train.csv'}{hint}")
    if layout == "folders":
        paths, labels = _from_folders(root, hint)
    elif layout == "csv":
        paths, labels = _from_csv(root, hint)
    else:
        raise ZSLabError(f"dataset 'miniimagenet': layout must be 'auto', 'folders' or 'csv'; got {layout!r}")
    frac = check_fraction(val_seen_fraction)
    caps = resolve_max_per_class(max_per_class)
    if image_size is None:  # the native size (the config schema's null)
        image_size = 84
    T, V, U = np.arange(0, 64), np.arange(64, 80), np.arange(80, 100)
    pools = class_split_pools(labels, T, V, U, val_seen_fraction=frac, test_seen_per_class=test_seen_per_class,
                              caps=caps, rng=np.random.default_rng(check_seed(seed)))
    splits = {s: ImageListDataset([paths[i] for i in idx], labels[idx], image_size, transform=transform,
                                  check_files=False) for s, idx in pools.items()}
    meta: dict[str, Any] = {
        "format": f"miniimagenet/{layout}", "root": str(root), "wnids": list(WNIDS),
        "text_names": [text_name(c) for c in MINIIMAGENET_CLASSES], "image_size": image_size, "seed": seed,
        "val_seen_fraction": frac, "test_seen_per_class": int(test_seen_per_class), "max_per_class": caps,
        "counts": {s: int(v.size) for s, v in pools.items()},
    }
    try:
        return ZSLData(name="miniimagenet", class_names=list(MINIIMAGENET_CLASSES), attribute_names=[],
                       class_attributes=None, train_classes=torch.from_numpy(T), val_classes=torch.from_numpy(V),
                       unseen_classes=torch.from_numpy(U), splits=splits, meta=meta)
    except ValueError as e:
        raise ZSLabError(f"dataset 'miniimagenet': {e}") from None
