"""CIFAR-FS on generated fixtures in the exact on-disk formats (torchvision's CIFAR-100 python
pickles; the R2D2 PNG folders)."""
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zslab import ZSLabError
from zslab.data import load_dataset
from zslab.data.cifarfs import CIFAR_FS_CLASSES, CIFAR_FS_SPLITS, SUPERCLASSES, load_cifarfs, superclass_pairs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FINE = sorted(CIFAR_FS_CLASSES)  # CIFAR-100's fine_label_names are in alphabetical order
COARSE = sorted(SUPERCLASSES)


def _write_cifar100(root: Path, n_train=3, n_test=1):
    """A tiny CIFAR-100 python version: pixel channel 0 = fine label, channel 1 = 0 (train) / 200 (test)."""
    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    owner = {c: g for g, cs in SUPERCLASSES.items() for c in cs}
    for part, n, flag in (("train", n_train, 0), ("test", n_test, 200)):
        labels = np.repeat(np.arange(100), n)
        img = np.zeros((labels.size, 3, 32, 32), np.uint8)
        img[:, 0] = labels[:, None, None]
        img[:, 1] = flag
        img[:, 2, 0, 0] = np.tile(np.arange(n), 100)
        entry = {"batch_label": f"{part} batch", "filenames": [f"{i}.png" for i in range(labels.size)],
                 "fine_labels": labels.tolist(),
                 "coarse_labels": [COARSE.index(owner[FINE[c]]) for c in labels],
                 "data": img.reshape(labels.size, -1)}
        with open(base / part, "wb") as fh:
            pickle.dump(entry, fh)
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": FINE, "coarse_label_names": COARSE}, fh)


def test_split_lists_are_cifar_fs():
    sizes = [len(CIFAR_FS_SPLITS[s]) for s in ("train", "val", "test")]
    assert sizes == [64, 16, 20] and len(set(CIFAR_FS_CLASSES)) == 100
    assert len(SUPERCLASSES) == 20 and all(len(v) == 5 for v in SUPERCLASSES.values())
    assert {c for v in SUPERCLASSES.values() for c in v} == set(CIFAR_FS_CLASSES)
    assert len(superclass_pairs()) == 100 and superclass_pairs("test")[0] == ("people", "baby")
    for split in ("train", "val", "test"):
        f = SHARED / "fewshot_splits" / "cifar-fs" / f"{split}.json"
        if f.is_file():  # torchmeta's copy of the split as [super-class, class] pairs
            assert sorted(map(tuple, json.loads(f.read_text()))) == sorted(superclass_pairs(split))
    f = SHARED / "clip_text_anchors" / "cifarfs_classes.txt"
    if f.is_file():  # rows of the LAAT anchor file = global class order
        assert list(CIFAR_FS_CLASSES) == [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]


def test_torchvision_layout(tmp_path):
    _write_cifar100(tmp_path)
    d = load_dataset("cifar-fs", root=tmp_path, check_md5=False)
    assert d.name == "cifar-fs" and d.class_names == list(CIFAR_FS_CLASSES) and d.class_attributes is None
    assert d.meta["format"] == "cifar-fs/torchvision" and d.meta["text_names"][14] == "aquarium fish"
    assert d.meta["counts"] == {"train": 128, "val_seen": 64, "test_seen": 64, "val_unseen": 64, "test_unseen": 80}
    assert d.train_classes.tolist() == list(range(64)) and d.val_classes.tolist() == list(range(64, 80))
    for split, flags in (("train", {0}), ("val_seen", {0}), ("test_seen", {200}), ("test_unseen", {0, 200})):
        ds = d.splits[split]
        raw = ds.images
        assert raw.dtype == torch.uint8 and raw.shape[1:] == (3, 32, 32)
        # the global label names the same class as the CIFAR-100 fine label stored in the pixels
        assert all(d.class_names[int(y)] == FINE[int(v)] for y, v in zip(ds.labels, raw[:, 0, 0, 0]))
        assert set(raw[:, 1, 0, 0].tolist()) == flags
    x, y = d.splits["train"][0]
    assert x.dtype == torch.float32 and float(x.max()) <= 1.0
    assert not set(d.splits["train"].labels.tolist()) & set(range(64, 100))
    # train and val_seen are disjoint images
    tr = {(int(a), int(b)) for a, b in zip(d.splits["train"].labels, d.splits["train"].images[:, 2, 0, 0])}
    vs = {(int(a), int(b)) for a, b in zip(d.splits["val_seen"].labels, d.splits["val_seen"].images[:, 2, 0, 0])}
    assert not tr & vs and len(tr) == 128
    # resizing and caps
    e = load_cifarfs(tmp_path / "cifar-100-python", check_md5=False, image_size=16, max_per_class={"test_unseen": 2})
    assert e.splits["test_unseen"][0][0].shape == (3, 16, 16) and e.meta["counts"]["test_unseen"] == 40


def test_torchvision_layout_errors(tmp_path):
    _write_cifar100(tmp_path)
    with pytest.raises(ZSLabError, match="MD5 sum: the files are corrupt .*check_md5=False"):
        load_cifarfs(tmp_path)  # the fixture cannot match the real files' MD5 sums
    (tmp_path / "cifar-100-python" / "meta").unlink()
    with pytest.raises(ZSLabError, match=r"lacks \['meta'\].*cifar-100-python.tar.gz"):
        load_cifarfs(tmp_path, check_md5=False)
    with pytest.raises(ZSLabError, match=r"folder .*data not found; .*data/<class>/\*.png"):
        load_cifarfs(tmp_path, layout="r2d2")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ZSLabError, match="found neither .*cifar-100-python.*R2D2"):
        load_dataset("cifar-fs", root=empty)
    with pytest.raises(ZSLabError, match="not found"):
        load_dataset("cifar-fs", root=tmp_path / "missing")
    with pytest.raises(ZSLabError, match="needs its data folder"):
        load_dataset("cifar-fs")


def test_r2d2_layout(tmp_path):
    for k, c in enumerate(CIFAR_FS_CLASSES):
        for i in range(3):
            p = tmp_path / "data" / c / f"{c}_{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), (k, 7 * i, 0)).save(p)
    splits = tmp_path / "splits" / "bertinetto"
    splits.mkdir(parents=True)
    for s, cs in CIFAR_FS_SPLITS.items():
        (splits / f"{s}.txt").write_text("\n".join(reversed(cs)) + "\n")
    d = load_dataset("cifarfs", root=tmp_path, test_seen_per_class=1, val_seen_fraction=0.5)
    assert d.meta["format"] == "cifar-fs/r2d2" and d.meta["split_files"] == str(splits)
    assert d.meta["counts"] == {"train": 64, "val_seen": 64, "test_seen": 64, "val_unseen": 48, "test_unseen": 60}
    for split in ("train", "test_seen", "test_unseen"):
        ds = d.splits[split]
        for j in (0, len(ds) - 1):
            x, y = ds[j]
            assert x.shape == (3, 32, 32) and round(float(x[0, 0, 0]) * 255) == int(y)  # pixel = class index
    parts = [set(d.splits[s].paths) for s in ("train", "val_seen", "test_seen")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    (splits / "test.txt").write_text("baby\nbed\n")
    with pytest.raises(ZSLabError, match="different test split"):
        load_cifarfs(tmp_path)
    (splits / "test.txt").unlink()
    import shutil

    shutil.rmtree(tmp_path / "data" / "worm")
    with pytest.raises(ZSLabError, match=r"class folders missing .*\['worm'\]"):
        load_cifarfs(tmp_path)


def test_a_pickle_payload_in_the_cifar100_files_never_runs(tmp_path):
    """The CIFAR-100 python files are read as data: an object that would run code is refused."""
    import pickle

    _write_cifar100(tmp_path)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    with open(tmp_path / "cifar-100-python" / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": Payload()}, fh)
    with pytest.raises(ZSLabError, match="carries objects other than plain data"):
        load_cifarfs(tmp_path, check_md5=False)
    assert not marker.exists()
