"""``folder`` and ``miniimagenet`` datasets on generated on-disk fixtures, plus the real CIFAR-10."""
import csv
from pathlib import Path

import pytest
import torch
from PIL import Image

from zslab import ZSLabError
from zslab.data import DATASETS, load_dataset
from zslab.data.folder import load_folder, text_name
from zslab.data.miniimagenet import MINIIMAGENET_CLASSES, MINIIMAGENET_SPLITS, WNID_TO_NAME

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLASSES = ["apple", "cat", "dog", "pickup_truck", "sea", "tulip"]


def _colour(c: int) -> tuple[int, int, int]:
    return (40 * c + 20, 255 - 40 * c, 128)


def _write(path: Path, c: int, size=(12, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, _colour(c)).save(path)


@pytest.fixture
def folder_root(tmp_path):
    root = tmp_path / "imgs"
    for c, name in enumerate(CLASSES):
        for i in range(6):
            _write(root / "train" / name / f"{i:04d}.png", c)
        for i in range(4):
            _write(root / "test" / name / f"{i:04d}{'.jpg' if i % 2 else '.png'}", c)
    return root


def test_folder_splits_roles_and_pixels(folder_root):
    d = load_dataset("folder", root=folder_root, novel="cat,dog", val_classes=["sea"], val_seen_fraction=0.34)
    assert d.class_names == CLASSES and "folder" in DATASETS
    assert d.meta["text_names"][3] == "pickup truck" and text_name("a__b_c") == "a b c"
    assert not d.has_attributes and d.class_attributes is None and d.num_attributes == 0
    assert d.unseen_classes.tolist() == [1, 2] and d.val_classes.tolist() == [4]
    assert d.train_classes.tolist() == [0, 3, 5]
    c = d.meta["counts"]
    assert c == {"train": 12, "val_seen": 6, "test_seen": 12, "val_unseen": 4, "test_unseen": 8}
    tr, vs = d.splits["train"], d.splits["val_seen"]
    assert set(tr.labels.tolist()) == {0, 3, 5} and not set(tr.paths) & set(vs.paths)
    assert set(d.splits["test_unseen"].labels.tolist()) == {1, 2}
    assert all("/test/" in p for p in d.splits["test_unseen"].paths)
    assert not any(("/cat/" in p or "/dog/" in p) for p in tr.paths + vs.paths)  # novel never in training
    assert d.image_size == 12
    for split in ("train", "test_unseen"):
        x, y = d.splits[split][0]
        assert x.shape == (3, 12, 12) and 0 <= float(x.min()) and float(x.max()) <= 1
        expect = torch.tensor(_colour(int(y)), dtype=torch.float32) / 255
        assert torch.allclose(x[:, 6, 6], expect, atol=4 / 255)  # right image for its label
    # text form of a class name is accepted; image_size resizes
    d2 = load_folder(folder_root, novel=["pickup truck"], image_size=8)
    assert d2.unseen_classes.tolist() == [3] and d2.splits["test_unseen"][0][0].shape == (3, 8, 8)
    # no val_classes: 2 of the 5 seen classes are held out automatically (zslab.data.folder docstring)
    assert d2.meta["val_classes_auto"] == [d2.class_names[c] for c in d2.val_classes.tolist()]
    assert len(d2.val_classes) == 2 and len(d2.splits["val_unseen"]) == 8


def test_folder_max_per_class_and_seed(folder_root):
    d = load_folder(folder_root, novel="cat", max_per_class=2, seed=1)
    assert all(v <= 2 * 5 for v in d.meta["counts"].values())
    assert d.meta["counts"]["test_unseen"] == 2 and d.meta["counts"]["train"] == 6  # 3 train + 2 auto val classes
    e = load_folder(folder_root, novel="cat", max_per_class={"train": 3}, seed=1)
    assert e.meta["counts"]["train"] == 9 and e.meta["counts"]["test_unseen"] == 4
    again = load_folder(folder_root, novel="cat", max_per_class=2, seed=1)
    assert again.splits["train"].paths == d.splits["train"].paths
    with pytest.raises(ZSLabError, match="max_per_class"):
        load_folder(folder_root, novel="cat", max_per_class=0)


def test_folder_is_lazy(folder_root, monkeypatch):
    import PIL.Image

    opened = []
    real_open = PIL.Image.open
    monkeypatch.setattr(PIL.Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    d = load_folder(folder_root, novel="cat", image_size=12)
    assert opened == []
    d.splits["train"][3]
    assert len(opened) == 1


def test_folder_errors(folder_root, tmp_path):
    with pytest.raises(ZSLabError, match=r"not found.*root/train/<class>"):
        load_dataset("folder", root=tmp_path / "nowhere", novel="cat")
    with pytest.raises(ZSLabError, match="needs its data folder"):
        load_dataset("folder", novel="cat")
    with pytest.raises(ZSLabError, match=r"\['zebra'\].*available"):
        load_folder(folder_root, novel="cat,zebra")
    with pytest.raises(ZSLabError, match="needs novel classes"):
        load_folder(folder_root)
    with pytest.raises(ZSLabError, match="both novel and validation"):
        load_folder(folder_root, novel="cat", val_classes="cat")
    (folder_root / "test" / "extra").mkdir()
    _write(folder_root / "test" / "extra" / "a.png", 0)
    with pytest.raises(ZSLabError, match="same class folders.*only in test: \\['extra'\\]"):
        load_folder(folder_root, novel="cat")
    bad = tmp_path / "bad"
    (bad / "train" / "a").mkdir(parents=True)
    (bad / "test" / "a").mkdir(parents=True)
    with pytest.raises(ZSLabError, match="without image files"):
        load_folder(bad, novel="a")
    # a corrupt image is reported when it is read, with its path
    root2 = tmp_path / "c"
    for name in ("a", "b", "c", "d", "e"):  # 4 seen classes: 2 train + 2 automatic validation classes
        for split in ("train", "test"):
            _write(root2 / split / name / "0.png", 1)
    (root2 / "test" / "c" / "0.png").write_bytes(b"not an image")
    d = load_folder(root2, novel="c", image_size=12)
    with pytest.raises(ZSLabError, match="cannot read image .*0.png"):
        d.splits["test_unseen"][0]


@pytest.mark.skipif(not (SHARED / "cifar10" / "train").is_dir(),
                    reason="real CIFAR-10 folders (../shared/data/cifar10) not present")
def test_real_cifar10_with_novel_classes():
    d = load_dataset("folder", root=SHARED / "cifar10", novel=["cat", "dog", "ship"], max_per_class=20)
    assert len(d.class_names) == 10 and d.class_names[0] == "airplane"
    novel = {d.class_names.index(c) for c in ("cat", "dog", "ship")}
    assert set(d.unseen_classes.tolist()) == novel
    assert d.meta["counts"] == {"train": 100, "val_seen": 100, "test_seen": 100, "val_unseen": 40,
                                "test_unseen": 60}  # 5 train + 2 automatic validation classes
    assert not novel & set(d.splits["train"].labels.tolist())
    x, y = d.splits["test_unseen"][5]
    assert x.shape == (3, 32, 32) and int(y) in novel and float(x.std()) > 0.01
    assert d.image_size == 32


# --------------------------------------------------------------------------- MiniImageNet

def test_miniimagenet_class_lists():
    assert [len(MINIIMAGENET_SPLITS[s]) for s in ("train", "val", "test")] == [64, 16, 20]
    assert len(set(WNID_TO_NAME)) == 100 and len(set(MINIIMAGENET_CLASSES)) == 100
    for s in MINIIMAGENET_SPLITS.values():
        wnids = [w for w, _ in s]
        assert wnids == sorted(wnids) and all(w.startswith("n") and len(w) == 9 for w in wnids)
    assert WNID_TO_NAME["n01532829"] == "house_finch" and WNID_TO_NAME["n07613480"] == "trifle"
    f = SHARED / "clip_text_anchors" / "miniimagenet_classes.txt"
    if f.is_file():  # the LAAT authors' class list, rows in split order
        assert list(MINIIMAGENET_CLASSES) == [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]


def _mini_folders(root: Path, per_class=3):
    k = 0
    for split, classes in MINIIMAGENET_SPLITS.items():
        for wnid, _ in classes:
            for i in range(per_class):
                p = root / split / wnid / f"{wnid}{i:08d}.jpg"
                p.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (10, 10), (k % 256, 0, 0)).save(p, quality=95)
            k += 1


def test_miniimagenet_folders(tmp_path):
    _mini_folders(tmp_path)
    d = load_dataset("miniimagenet", root=tmp_path, image_size=8, test_seen_per_class=1, val_seen_fraction=0.5)
    assert d.class_names[:2] == ["house_finch", "robin"] and d.meta["wnids"][0] == "n01532829"
    assert d.meta["text_names"][8] == "Walker hound"
    assert d.meta["counts"] == {"train": 64, "val_seen": 64, "test_seen": 64, "val_unseen": 48, "test_unseen": 60}
    assert d.train_classes.tolist() == list(range(64)) and d.unseen_classes.tolist() == list(range(80, 100))
    x, y = d.splits["test_unseen"][0]
    assert x.shape == (3, 8, 8) and int(y) == 80
    assert all(f"/test/{d.meta['wnids'][int(c)]}/" in p
               for p, c in zip(d.splits["test_unseen"].paths, d.splits["test_unseen"].labels))
    # a class in the wrong split folder, a missing class
    (tmp_path / "train" / "n07613480").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "train" / "n07613480" / "a.jpg")
    with pytest.raises(ZSLabError, match="not MiniImageNet train classes"):
        load_dataset("miniimagenet", root=tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "train" / "n07613480")
    shutil.rmtree(tmp_path / "val" / "n01855672")
    with pytest.raises(ZSLabError, match=r"lacks the class folders \['n01855672'\]"):
        load_dataset("miniimagenet", root=tmp_path)


def test_miniimagenet_csv_layout_and_errors(tmp_path):
    (tmp_path / "images").mkdir()
    for split, classes in MINIIMAGENET_SPLITS.items():
        with open(tmp_path / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["filename", "label"])
            for wnid, _ in classes:
                for i in range(2):
                    name = f"{wnid}{i:08d}.jpg"
                    Image.new("RGB", (6, 6)).save(tmp_path / "images" / name)
                    w.writerow([name, wnid])
    d = load_dataset("mini-imagenet", root=tmp_path, test_seen_per_class=1, max_per_class={"test_unseen": 1})
    assert d.meta["format"] == "miniimagenet/csv" and d.meta["counts"]["test_unseen"] == 20
    assert d.meta["counts"]["test_seen"] == 64 and d.splits["train"][0][0].shape == (3, 84, 84)
    (tmp_path / "images" / "n0153282900000000.jpg").unlink()
    with pytest.raises(ZSLabError, match="1 of 200 MiniImageNet images .* missing"):
        load_dataset("miniimagenet", root=tmp_path)
    with pytest.raises(ZSLabError, match=r"neither .*train/ nor .*train.csv.*ROOT|neither"):
        load_dataset("miniimagenet", root=tmp_path / "images")
    with pytest.raises(ZSLabError, match="not found"):
        load_dataset("miniimagenet", root=tmp_path / "nope")
