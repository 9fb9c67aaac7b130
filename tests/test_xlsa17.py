"""Tests of the xlsa17 loaders (zslab.data.xlsa17) on the real split files in shared/data.

The real ``att_splits.mat`` files (class names, attributes, *_loc indices) are used as they
are; the images are generated: tiny solid-colour JPEGs whose colour encodes the class, in
the on-disk layout each dataset expects, under ``tmp_path``. CUB uses its real metadata
(images.txt order, labels); for the other datasets a synthetic ``res101.mat`` (original
authors' absolute paths + labels consistent with the real *_loc sets) is written.
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from zslab import ZSLabError
from zslab.data.base import SPLITS, ZSLData
from zslab.data.xlsa17 import ImageListDataset, load_xlsa17, map_image_path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
XL = SHARED / "xlsa17"

# Facts read from the real files (att_splits.mat, *classes*.txt): seen (trainval) / unseen
# classes, train / validation classes of split 1, attributes K, images in the image list.
FACTS = {
    "CUB": dict(seen=150, unseen=50, train=100, val=50, K=312, N=11788),
    "AWA1": dict(seen=40, unseen=10, train=27, val=13, K=85, N=30475),
    "AWA2": dict(seen=40, unseen=10, train=27, val=13, K=85, N=37322),
    "SUN": dict(seen=645, unseen=72, train=580, val=65, K=102, N=14340),
    "APY": dict(seen=20, unseen=12, train=15, val=5, K=64, N=15339),
}


def _need(*paths: Path):
    for p in paths:
        if not p.exists():
            pytest.skip(f"real xlsa17/CUB data not available: {p} is missing (expected in ../shared/data)")


def _names(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def _mat(ds: str) -> dict:
    return scipy.io.loadmat(str(XL / ds / "att_splits.mat"))


def _class_names(m) -> list[str]:
    return [str(x[0][0]) for x in m["allclasses_names"]]


def _colour(c: int) -> tuple[int, int, int]:
    return ((c * 37) % 200 + 28, (c * 91) % 200 + 28, (c * 151) % 200 + 28)


_JPEG: dict[int, bytes] = {}


def _jpeg(c: int) -> bytes:
    """A 12x8 (non-square) solid JPEG whose colour encodes class c."""
    if c not in _JPEG:
        b = io.BytesIO()
        Image.new("RGB", (12, 8), _colour(c)).save(b, "JPEG", quality=95)
        _JPEG[c] = b.getvalue()
    return _JPEG[c]


def _write(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    """A CUB_200_2011 folder: real metadata; every 10th of the 11788 images is written as a
    tiny JPEG (creating all of them costs seconds on a busy disk), so CUB loads use
    check_files=False; the existence check is tested on aPY."""
    _need(XL / "CUB" / "att_splits.mat", SHARED / "cub" / "images.txt")
    root = tmp_path_factory.mktemp("cub") / "CUB_200_2011"
    root.mkdir()
    for f in ("images.txt", "image_class_labels.txt", "classes.txt", "attributes.txt"):
        shutil.copy(SHARED / "cub" / f, root / f)
    m = _mat("CUB")
    names = _class_names(m)
    cub_cls = {int(a): b for a, b in (ln.split() for ln in (root / "classes.txt").read_text().splitlines())}
    rel = [ln.split()[1] for ln in (root / "images.txt").read_text().splitlines()]
    lab = [names.index(cub_cls[int(ln.split()[1])])
           for ln in (root / "image_class_labels.txt").read_text().splitlines()]
    for d in {r.split("/")[0] for r in rel}:
        (root / "images" / d).mkdir(parents=True)
    for r, y in zip(rel[::10], lab[::10]):
        (root / "images" / r).write_bytes(_jpeg(y))
    return dict(root=root, rel=rel, labels=np.array(lab), m=m, names=names)


@pytest.fixture(scope="module")
def cub_data(cub) -> ZSLData:
    return load_xlsa17("CUB", cub["root"], XL / "CUB", image_size=16, check_files=False)


def make_res101_dataset(ds: str, base: Path, files_per_class: int = 1) -> dict:
    """A dataset root for AWA1/AWA2/SUN/APY with a synthetic res101.mat consistent with the
    real att_splits.mat: images of val_loc get the classes of valclasses1.txt, the other
    seen images those of trainclasses1.txt (or trainvalclasses.txt when the file has no
    val_loc), test_unseen_loc the test classes. Paths are the authors' absolute paths; each
    class has ``files_per_class`` image files that many list entries share (aPY's real list
    also repeats files), which keeps the fixture to a few hundred files."""
    _need(XL / ds / "att_splits.mat")
    m = _mat(ds)
    names = _class_names(m)
    idx = {n: i for i, n in enumerate(names)}
    N = FACTS[ds]["N"]
    labels = np.full(N, -1)
    loc = {k[:-4]: m[k].ravel().astype(int) - 1 for k in m if k.endswith("_loc")}

    def assign(images, class_file):
        cls = [idx[n] for n in _names(XL / ds / class_file)]
        for r, i in enumerate(np.sort(images)):
            labels[i] = cls[r % len(cls)]

    ts = loc["test_seen"]
    if "val" in loc:  # every class gets both trainval and test_seen images, as in the real data
        for key, cf in (("val", "valclasses1.txt"), ("train", "trainclasses1.txt")):
            assign(np.setdiff1d(loc[key], ts), cf)
            assign(np.intersect1d(loc[key], ts), cf)
    else:
        assign(loc["trainval"], "trainvalclasses.txt")
        assign(ts, "trainvalclasses.txt")
    assign(loc["test_unseen"], "testclasses.txt")
    assert (labels >= 0).all()

    root = base / ds
    counter = np.zeros(len(names), int)
    files = []
    for y in labels:
        j = counter[y] % files_per_class
        counter[y] += 1
        c = names[y]
        if ds in ("AWA1", "AWA2"):
            rel = f"JPEGImages/{c}/{c}_{10001 + j}.jpg"
            prefix = "/BS/xian/work/data/Animals_with_Attributes2//"
        elif ds == "SUN":
            rel = f"images/{c[0]}/{c}/sun_{j:04d}.jpg"
            prefix = "/BS/xian/work/data/SUN/"
        else:  # APY: aPascal (VOC) classes first 20, aYahoo the rest
            rel = (f"VOCdevkit/VOC2008/JPEGImages/2008_{y:03d}{j:03d}.jpg" if y < 20
                   else f"ayahoo_test_images/{c}_{j}.jpg")
            prefix = "/BS/xian/work/data/APY/"
        files.append(prefix + rel)
        if counter[y] <= files_per_class:
            _write(root / rel, _jpeg(int(y)))
    res = base / f"{ds}_res101.mat"
    # image_files as a char matrix: saving 37k-entry cell arrays takes seconds (the real
    # files use a cell array, which the CUB res101 test covers; the loader reads both)
    scipy.io.savemat(str(res), {"image_files": np.array(files).reshape(-1, 1),
                                "labels": (labels + 1).astype(np.float64).reshape(-1, 1)})
    return dict(root=root, res101=res, labels=labels, loc=loc, names=names, m=m, files=files)


@pytest.fixture(scope="module")
def awa2(tmp_path_factory):
    d = make_res101_dataset("AWA2", tmp_path_factory.mktemp("awa2"))
    if (SHARED / "awa2" / "predicates.txt").exists():
        shutil.copy(SHARED / "awa2" / "predicates.txt", d["root"] / "predicates.txt")
    return d


def _split_sets(data: ZSLData) -> dict[str, set[int]]:
    return {s: set(data.meta["split_indices"][s].tolist()) for s in SPLITS}


def _check_labels_in_class_sets(data: ZSLData):
    T, V, U = (set(t.tolist()) for t in (data.train_classes, data.val_classes, data.unseen_classes))
    want = {"train": T, "val_seen": T, "test_seen": T, "val_unseen": V, "test_unseen": U}
    for s, cls in want.items():
        got = set(data.splits[s].labels.tolist())
        assert got == cls, f"{s}: labels cover {len(got)} classes, expected {len(cls)}"


# --------------------------------------------------------------------------- CUB

def test_cub_metadata_classes_and_splits(cub, cub_data):
    d, names, m = cub_data, cub["names"], cub["m"]
    f = FACTS["CUB"]
    assert (len(d.train_classes), len(d.val_classes), len(d.unseen_classes)) == (f["train"], f["val"], f["unseen"])
    assert {names[c] for c in d.val_classes.tolist()} == set(_names(XL / "CUB" / "valclasses1.txt"))
    assert {names[c] for c in d.train_classes.tolist()} == set(_names(XL / "CUB" / "trainclasses1.txt"))
    assert {names[c] for c in d.unseen_classes.tolist()} == set(_names(XL / "CUB" / "testclasses.txt"))
    assert d.class_names == names and len(names) == 200
    assert d.class_attributes.dtype == torch.float32 and d.class_attributes.shape == (200, f["K"])
    assert torch.allclose(d.class_attributes, torch.from_numpy(m["att"].T).float())
    assert d.attribute_names[1] == "has_bill_shape::dagger" and len(d.attribute_names) == 312
    _check_labels_in_class_sets(d)

    # image sets, recomputed from the real metadata labels
    lab = cub["labels"]
    loc = {k[:-4]: m[k].ravel().astype(int) - 1 for k in m if k.endswith("_loc")}
    T, V = set(d.train_classes.tolist()), set(d.val_classes.tolist())
    sets = _split_sets(d)
    assert sets["train"] | sets["val_seen"] == {i for i in loc["trainval"] if lab[i] in T}
    assert not sets["train"] & sets["val_seen"]
    assert sets["test_seen"] == {i for i in loc["test_seen"] if lab[i] in T}
    assert sets["val_unseen"] == {i for i in np.r_[loc["trainval"], loc["test_seen"]] if lab[i] in V}
    assert sets["test_unseen"] == set(loc["test_unseen"].tolist()) and len(sets["test_unseen"]) == 2967
    assert d.meta["test_seen_moved_to_val_unseen"] == sum(lab[i] in V for i in loc["test_seen"])
    # val_seen: about 10% of every train class, at least one image each
    vs = d.splits["val_seen"].labels
    tr = d.splits["train"].labels
    for c in d.train_classes.tolist():
        n_v, n_t = int((vs == c).sum()), int((tr == c).sum())
        assert n_v >= 1 and abs(n_v - 0.1 * (n_v + n_t)) <= 1
    # every split's labels are the images' true CUB labels
    for s in SPLITS:
        idx = d.meta["split_indices"][s]
        assert torch.equal(d.splits[s].labels, torch.from_numpy(lab[idx]).long())
        assert d.splits[s].paths[0] == str(cub["root"] / "images" / cub["rel"][idx[0]])


def test_cub_images_are_tensors_of_their_class(cub_data):
    ds = cub_data.splits["test_unseen"]
    assert isinstance(ds, ImageListDataset) and not hasattr(ds, "images")
    assert ds.labels.dtype == torch.long
    present = [i for i, p in enumerate(ds.paths) if Path(p).exists()]
    assert len(present) > 250
    for i in (present[0], present[len(present) // 2], present[-1]):
        x, y = ds[i]
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        colour = torch.tensor(_colour(int(y))) / 255.0
        assert torch.allclose(x.mean((1, 2)), colour, atol=0.03), "image does not show its label's class"


def test_cub_res101_gives_the_same_mapping_as_metadata(cub, cub_data, tmp_path):
    files = ["/BS/Deep_Fragments/work/MSc/CUB_200_2011/CUB_200_2011/images/" + r for r in cub["rel"]]
    res = tmp_path / "res101.mat"
    # image_files as a char matrix: saving 37k-entry cell arrays takes seconds (the real
    # files use a cell array, which the CUB res101 test covers; the loader reads both)
    scipy.io.savemat(str(res), {"image_files": np.array(files).reshape(-1, 1),
                                "labels": (cub["labels"] + 1).reshape(-1, 1).astype(np.float64)})
    d = load_xlsa17("cub", cub["root"], XL / "CUB", image_size=16, res101=res, check_files=False)
    assert d.meta["image_list"] == str(res) and cub_data.meta["image_list"].startswith("CUB metadata")
    for s in SPLITS:
        assert d.splits[s].paths == cub_data.splits[s].paths
        assert torch.equal(d.splits[s].labels, cub_data.splits[s].labels)
    assert d.meta["label_folder_check"] == "ok"

    # labels in another class order than att_splits.mat -> clear error
    shifted = (cub["labels"] + 1) % 200 + 1
    # image_files as a char matrix: saving 37k-entry cell arrays takes seconds (the real
    # files use a cell array, which the CUB res101 test covers; the loader reads both)
    scipy.io.savemat(str(res), {"image_files": np.array(files).reshape(-1, 1),
                                "labels": shifted.reshape(-1, 1).astype(np.float64)})
    with pytest.raises(ZSLabError, match="disagree with the class folder"):
        load_xlsa17("CUB", cub["root"], XL / "CUB", res101=res, check_files=False)


def test_cub_val_classes_options_and_seed(cub, cub_data):
    names = cub["names"]
    d2 = load_xlsa17("CUB", cub["root"], XL / "CUB", check_files=False, val_classes=2, seed=1)
    assert {names[c] for c in d2.val_classes.tolist()} == set(_names(XL / "CUB" / "valclasses2.txt"))
    assert len(d2.train_classes) == 100
    assert np.array_equal(d2.meta["split_indices"]["test_unseen"], cub_data.meta["split_indices"]["test_unseen"])
    # same seed -> identical hold-out; another seed -> another one
    d1 = load_xlsa17("CUB", cub["root"], XL / "CUB", check_files=False, val_classes=1, seed=0)
    assert np.array_equal(d1.meta["split_indices"]["val_seen"], cub_data.meta["split_indices"]["val_seen"])
    d3 = load_xlsa17("CUB", cub["root"], XL / "CUB", check_files=False, val_classes=1, seed=1)
    assert not np.array_equal(d3.meta["split_indices"]["val_seen"], cub_data.meta["split_indices"]["val_seen"])
    with pytest.raises(ZSLabError, match="not in allclasses_names"):
        load_xlsa17("CUB", cub["root"], XL / "CUB", check_files=False, val_classes=["no_such_bird"])
    with pytest.raises(ZSLabError, match="must be seen"):
        load_xlsa17("CUB", cub["root"], XL / "CUB", check_files=False,
                    val_classes=_names(XL / "CUB" / "testclasses.txt")[:2])


# --------------------------------------------------------------------------- AWA1/AWA2/SUN/APY

@pytest.mark.parametrize("ds", ["AWA1", "AWA2", "SUN", "APY"])
def test_res101_datasets_class_counts_and_split_sets(ds, tmp_path, request):
    fx = request.getfixturevalue("awa2") if ds == "AWA2" else make_res101_dataset(ds, tmp_path)
    d = load_xlsa17(ds.lower(), fx["root"], XL / ds, image_size=8, res101=fx["res101"])
    f = FACTS[ds]
    assert d.name == ds
    assert (len(d.train_classes), len(d.val_classes), len(d.unseen_classes)) == (f["train"], f["val"], f["unseen"])
    assert len(d.train_classes) + len(d.val_classes) == f["seen"]
    assert d.class_attributes.shape == (len(d.class_names), f["K"]) and d.meta["n_images"] == f["N"]
    _check_labels_in_class_sets(d)
    sets, loc = _split_sets(d), fx["loc"]
    if "val" in loc:  # the released train_loc/val_loc, with their test_seen images removed
        assert sets["val_unseen"] == set(loc["val"].tolist())
        assert sets["train"] | sets["val_seen"] == set(loc["train"].tolist()) - set(loc["test_seen"].tolist())
        assert sets["test_seen"] == set(loc["test_seen"].tolist()) - set(loc["val"].tolist())
        assert d.meta["val_classes_from"] == "val_loc"
    else:
        assert d.meta["val_classes_from"].endswith("valclasses1.txt")
    assert sets["test_unseen"] == set(loc["test_unseen"].tolist())
    all_idx = np.concatenate([d.meta["split_indices"][s] for s in SPLITS])
    assert len(all_idx) == len(set(all_idx.tolist())), "an image is in two splits"
    x, y = d.splits["val_unseen"][0]
    assert x.shape == (3, 8, 8) and 0 <= x.min() <= x.max() <= 1 and d.image_size == 8
    assert torch.allclose(x.mean((1, 2)), torch.tensor(_colour(int(y))) / 255.0, atol=0.03)
    if ds == "AWA2" and (fx["root"] / "predicates.txt").exists():
        assert d.attribute_names[:2] == ["black", "white"]
    elif ds != "AWA2":
        assert d.attribute_names[0] == "attr_0"


def test_apy_paths_from_both_sources(tmp_path):
    fx = make_res101_dataset("APY", tmp_path)
    d = load_xlsa17("APY", fx["root"], XL / "APY", image_size=8, res101=fx["res101"])
    paths = [p for s in SPLITS for p in d.splits[s].paths]
    assert any("/VOCdevkit/VOC2008/JPEGImages/" in p for p in paths)
    assert any("/ayahoo_test_images/" in p for p in paths)
    assert all(p.startswith(str(fx["root"])) for p in paths)


def test_map_image_path(tmp_path):
    r = str(tmp_path)
    assert map_image_path("/BS/x/CUB_200_2011/images/001.A/b.jpg", r, ("images",)) == f"{r}/images/001.A/b.jpg"
    assert map_image_path("/a//JPEGImages/ox/ox_1.jpg", r, ("JPEGImages",)) == f"{r}/JPEGImages/ox/ox_1.jpg"
    assert map_image_path("JPEGImages/ox/1.jpg", r, ("nothing",)) == f"{r}/JPEGImages/ox/1.jpg"
    assert map_image_path("/abs/elsewhere/1.jpg", r, ("images",)) is None


# --------------------------------------------------------------------------- errors

def test_unknown_name_and_missing_root(tmp_path):
    with pytest.raises(ZSLabError, match="unknown xlsa17 dataset 'imagenet'.*CUB"):
        load_xlsa17("imagenet", tmp_path)
    with pytest.raises(ZSLabError, match="does not exist"):
        load_xlsa17("CUB", tmp_path / "nowhere")


def test_missing_att_splits_names_the_path(tmp_path):
    with pytest.raises(ZSLabError) as e:
        load_xlsa17("SUN", tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "att_splits.mat") in msg and "split_dir" in msg


def test_missing_res101_says_where_to_put_it(tmp_path):
    _need(XL / "AWA2" / "att_splits.mat")
    shutil.copy(XL / "AWA2" / "att_splits.mat", tmp_path / "att_splits.mat")  # split_dir defaults to root
    with pytest.raises(ZSLabError) as e:
        load_xlsa17("AWA2", tmp_path)
    assert str(tmp_path / "res101.mat") in str(e.value) and "res101=" in str(e.value)
    with pytest.raises(ZSLabError, match="not found"):
        load_xlsa17("AWA2", tmp_path, res101=tmp_path / "other.mat")


def test_missing_images_are_listed(tmp_path):
    fx = make_res101_dataset("APY", tmp_path)
    gone = fx["root"] / "ayahoo_test_images" / "mug_0.jpg"
    gone.unlink()
    n_refs = sum(f.endswith("/ayahoo_test_images/mug_0.jpg") for f in fx["files"])
    with pytest.raises(ZSLabError) as e:
        load_xlsa17("APY", fx["root"], XL / "APY", res101=fx["res101"])
    assert f"{n_refs} of " in str(e.value) and str(gone) in str(e.value)
    # check_files=False defers the problem to loading, which names the file
    d = load_xlsa17("APY", fx["root"], XL / "APY", res101=fx["res101"], check_files=False)
    ds = next(d.splits[s] for s in SPLITS if str(gone) in d.splits[s].paths)
    with pytest.raises(ZSLabError, match="not found"):
        ds[ds.paths.index(str(gone))]


def test_corrupt_image_names_the_file(tmp_path):
    p = tmp_path / "bad.jpg"
    p.write_bytes(b"\xff\xd8 this is not a jpeg")
    ok = tmp_path / "ok.png"
    Image.new("RGB", (5, 9), (255, 0, 0)).save(ok)
    ds = ImageListDataset([ok, p], [3, 4], image_size=6)
    x, y = ds[0]
    assert x.shape == (3, 6, 6) and int(y) == 3 and torch.allclose(x[0], torch.ones(6, 6))
    with pytest.raises(ZSLabError, match="bad.jpg.*corrupt"):
        ds[1]
    # shorter side to image_size, then centre crop: a 30x10 green|red|blue image -> all red
    wide = tmp_path / "wide.png"
    im = Image.new("RGB", (30, 10), (0, 255, 0))
    im.paste((255, 0, 0), (10, 0, 20, 10))
    im.paste((0, 0, 255), (20, 0, 30, 10))
    im.save(wide)
    x, _ = ImageListDataset([wide], [0], image_size=6)[0]
    assert x.shape == (3, 6, 6)  # (the bicubic filter may bleed into the border columns)
    assert torch.allclose(x[:, :, 1:-1], torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 6, 4), atol=0.02)
    x, _ = ImageListDataset([wide], [0], transform=lambda im: torch.tensor(im.size))[0]
    assert x.tolist() == [30, 10]
    with pytest.raises(ZSLabError, match="1 of 2 images are missing"):
        ImageListDataset([ok, tmp_path / "gone.jpg"], [0, 1])


def _modified_split_dir(tmp_path: Path, ds: str, **changes) -> Path:
    m = {k: v for k, v in _mat(ds).items() if not k.startswith("__")}
    m.update(changes)
    out = tmp_path / "split"
    out.mkdir(parents=True)
    scipy.io.savemat(str(out / "att_splits.mat"), m)
    for f in (XL / ds).glob("*.txt"):
        shutil.copy(f, out / f.name)
    return out


def test_nan_and_zero_attribute_rows_name_the_class(cub, tmp_path):
    att = _mat("CUB")["att"].copy()
    att[:, 3] = np.nan
    with pytest.raises(ZSLabError, match=f"NaN.*{cub['names'][3]}"):
        load_xlsa17("CUB", cub["root"], _modified_split_dir(tmp_path / "a", "CUB", att=att))
    att = _mat("CUB")["att"].copy()
    att[:, 7] = 0.0
    with pytest.raises(ZSLabError, match=f"all zero.*{cub['names'][7]}"):
        load_xlsa17("CUB", cub["root"], _modified_split_dir(tmp_path / "b", "CUB", att=att))


def test_loc_out_of_range_and_overlapping_splits(cub, tmp_path):
    m = _mat("CUB")
    tv = m["trainval_loc"].astype(np.int64).copy()
    tv[0, 0] = 11789
    with pytest.raises(ZSLabError, match="trainval_loc.*outside 1..11788"):
        load_xlsa17("CUB", cub["root"], _modified_split_dir(tmp_path / "a", "CUB", trainval_loc=tv))
    ts = np.r_[m["test_seen_loc"], m["test_unseen_loc"][:3]]
    with pytest.raises(ZSLabError, match="test_seen_loc and test_unseen_loc share 3 images"):
        load_xlsa17("CUB", cub["root"], _modified_split_dir(tmp_path / "b", "CUB", test_seen_loc=ts))


def test_registry_routes_to_xlsa17_and_names_missing_root(tmp_path):
    from zslab.data import load_dataset
    with pytest.raises(ZSLabError, match="needs its image folder.*data.root"):
        load_dataset("cub")
    with pytest.raises(ZSLabError, match="att_splits.mat"):
        load_dataset("awa2", root=str(tmp_path))
