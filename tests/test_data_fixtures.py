"""The format fixtures of zslab.data.fixtures, loaded by every loader; per-class caps on every
format; the ``folder`` dataset's automatic validation classes; ``ZSLData.class_counts``."""
import warnings
from collections import Counter

import numpy as np
import pytest
import torch

from zslab import ZSLabError
from zslab.data import load_dataset
from zslab.data.base import SPLITS
from zslab.data.fixtures import (FIXTURE_DATASETS, class_colour, cli_overrides, write_fixture, write_folder,
                                 write_xlsa17)
from zslab.data.folder import AutoValClassesWarning, auto_val_classes

SMOKE_CAPS = {"train": 24, "val_seen": 4, "val_unseen": 12, "test_seen": 8, "test_unseen": 12}

# (id, dataset name, writer options, class counts, split sizes, image side)
XL_SIZES = {"train": 24, "val_seen": 8, "val_unseen": 18, "test_seen": 16, "test_unseen": 12}
FEW_SHOT = {"train": 64, "val": 16, "unseen": 20}
CASES = [
    ("folder", "folder", {"n_val": 1}, {"train": 3, "val": 1, "unseen": 2},
     {"train": 15, "val_seen": 3, "val_unseen": 3, "test_seen": 9, "test_unseen": 6}, 16),
    ("folder-auto", "folder", {}, {"train": 2, "val": 2, "unseen": 2},
     {"train": 10, "val_seen": 2, "val_unseen": 6, "test_seen": 6, "test_unseen": 6}, 16),
    ("cub", "cub", {}, {"train": 8, "val": 3, "unseen": 3}, XL_SIZES, 16),
    ("cub-metadata", "cub", {"res101": False}, {"train": 8, "val": 3, "unseen": 3}, XL_SIZES, 16),
    ("awa1", "awa1", {}, {"train": 8, "val": 3, "unseen": 3}, XL_SIZES, 16),
    ("awa2", "awa2", {}, {"train": 8, "val": 3, "unseen": 3}, XL_SIZES, 16),
    ("sun", "sun", {}, {"train": 8, "val": 3, "unseen": 3}, XL_SIZES, 16),
    ("apy", "apy", {}, {"train": 8, "val": 3, "unseen": 3}, XL_SIZES, 16),
    ("cifar-fs", "cifar-fs", {}, FEW_SHOT,
     {"train": 64, "val_seen": 64, "val_unseen": 48, "test_seen": 64, "test_unseen": 60}, 32),
    ("cifar-fs-r2d2", "cifar-fs", {"layout": "r2d2"}, FEW_SHOT,
     {"train": 64, "val_seen": 64, "val_unseen": 48, "test_seen": 64, "test_unseen": 60}, 32),
    ("miniimagenet", "miniimagenet", {}, FEW_SHOT,
     {"train": 128, "val_seen": 64, "val_unseen": 64, "test_seen": 64, "test_unseen": 80}, 16),
    ("miniimagenet-csv", "miniimagenet", {"layout": "csv"}, FEW_SHOT,
     {"train": 128, "val_seen": 64, "val_unseen": 64, "test_seen": 64, "test_unseen": 80}, 16),
]
IDS = [c[0] for c in CASES]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Every fixture, written once: id -> (dataset name, load options)."""
    base = tmp_path_factory.mktemp("fixtures")
    out = {}
    for cid, ds, opts, *_ in CASES:
        kw = write_fixture(ds, base / cid, **opts)
        size = sum(f.stat().st_size for f in (base / cid).rglob("*") if f.is_file())
        assert size < 1_000_000, f"{cid}: fixture is {size} bytes"
        out[cid] = (ds, kw)
    return out


def _load(ds, kw, **extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutoValClassesWarning)
        return load_dataset(ds, **kw, **extra)


def _labels(split) -> np.ndarray:
    return np.asarray(split.labels).astype(np.int64)


def _content(split):
    """What identifies a split's images: file paths, or the image tensor for in-memory data."""
    return list(split.paths) if hasattr(split, "paths") else split.images


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_loads_with_its_loader(case, written):
    cid, ds, _, counts, sizes, side = case
    name, kw = written[cid]
    assert all(isinstance(v, (str, int, bool)) for v in kw.values())  # JSON-able, --set friendly
    d = _load(name, kw)
    assert d.class_counts() == counts
    assert d.split_sizes() == sizes == d.meta["counts"]
    T, V, U = (set(t.tolist()) for t in (d.train_classes, d.val_classes, d.unseen_classes))
    want = {"train": T, "val_seen": T, "test_seen": T, "val_unseen": V, "test_unseen": U}
    for s in SPLITS:
        assert set(_labels(d.splits[s]).tolist()) == want[s], s  # every class of its role, no other
        x, y = d.splits[s][len(d.splits[s]) - 1]
        assert x.shape == (3, side, side) and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        colour = torch.tensor(class_colour(int(y)), dtype=torch.float32) / 255
        assert torch.allclose(x.flatten(1).median(dim=1).values, colour, atol=6 / 255), s  # right image
    if d.has_attributes:
        assert d.class_attributes.shape == (len(d.class_names), 12)
        assert torch.allclose(d.class_attributes.norm(dim=1), torch.ones(len(d.class_names)), atol=1e-5)
        assert d.meta["attribute_names_from"] != "generated" and d.meta["label_folder_check"] in ("ok", "skipped")
        if name != "apy":  # class-named image folders: labels were checked against them
            assert d.meta["label_folder_check"] == "ok"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_per_class_caps_every_split(case, written):
    cid = case[0]
    name, kw = written[cid]
    full = _load(name, kw, seed=3)  # the seed also picks folder's automatic validation classes
    per = {s: Counter(_labels(full.splits[s]).tolist()) for s in SPLITS}
    for caps in (1, {"val_unseen": 2, "test_unseen": 1}):
        d = _load(name, kw, max_per_class=caps, seed=3)
        again = _load(name, kw, max_per_class=caps, seed=3)
        for s in SPLITS:
            cap = caps if isinstance(caps, int) else caps.get(s)
            got = Counter(_labels(d.splits[s]).tolist())
            assert set(got) == set(per[s]), s  # no class lost
            assert all(got[c] == (n if cap is None else min(cap, n)) for c, n in per[s].items()), (s, cap)
            a, b = _content(d.splits[s]), _content(again.splits[s])
            assert (a == b) if isinstance(a, list) else torch.equal(a, b)  # seeded
        assert d.meta["counts"] == d.split_sizes()
    # the smoke presets' caps are accepted by every format, with the same key names
    d = _load(name, kw, max_per_class=SMOKE_CAPS)
    for s in SPLITS:
        assert max(Counter(_labels(d.splits[s]).tolist()).values()) <= SMOKE_CAPS[s]
    with pytest.raises(ZSLabError, match="max_per_class: unknown splits"):
        _load(name, kw, max_per_class={"val": 3})


def test_xlsa17_caps_are_drawn_after_the_split(tmp_path):
    kw = write_xlsa17(tmp_path / "awa2", name="AWA2", per_class=6)
    full = load_dataset("awa2", **kw, seed=1)
    d = load_dataset("awa2", **kw, max_per_class={"train": 2, "test_seen": 1}, seed=1)
    assert d.meta["uncapped_counts"] == full.meta["counts"]
    assert d.meta["max_per_class"]["train"] == 2 and d.meta["max_per_class"]["val_seen"] is None
    for s in SPLITS:  # a capped split is a subset of the uncapped one (images never change split)
        assert set(d.meta["split_indices"][s].tolist()) <= set(full.meta["split_indices"][s].tolist())
    assert d.meta["counts"]["train"] == 2 * 8 and d.meta["counts"]["test_seen"] == 8
    assert d.meta["counts"]["val_seen"] == full.meta["counts"]["val_seen"]
    # every class list of the fixture is usable
    for v in (2, 3):
        e = load_dataset("awa2", **kw, val_classes=v)
        assert e.class_counts() == {"train": 8, "val": 3, "unseen": 3}


def test_folder_auto_validation_classes(tmp_path):
    kw = write_folder(tmp_path / "f", n_classes=10, per_class_train=2, per_class_test=1, size=8, n_novel=2)
    novel = set(kw["novel"].split(","))
    with pytest.warns(AutoValClassesWarning) as rec:
        d = load_dataset("folder", **kw, seed=5)
    chosen = d.meta["val_classes_auto"]
    msg = str(rec[0].message)
    assert f"--set data.val_classes={','.join(chosen)}" in msg and "seed=5" in msg
    # rule: 8 non-novel classes -> round(0.2 * 8) = 2 validation classes, 6 training classes
    assert len(chosen) == 2 and d.class_counts() == {"train": 6, "val": 2, "unseen": 2}
    assert chosen == [d.class_names[c] for c in d.val_classes.tolist()] and not set(chosen) & novel
    assert len(d.splits["val_unseen"]) == 2 and set(d.meta["val"]) == set(chosen)
    picks = set()
    for seed in range(8):
        with pytest.warns(AutoValClassesWarning):
            a = load_dataset("folder", **kw, seed=seed)
        with pytest.warns(AutoValClassesWarning):
            b = load_dataset("folder", **kw, seed=seed, val_classes=None)
        assert a.meta["val_classes_auto"] == b.meta["val_classes_auto"]  # deterministic for a seed
        assert not set(a.meta["val_classes_auto"]) & novel
        picks.add(tuple(a.meta["val_classes_auto"]))
    assert len(picks) > 1  # the seed matters
    # explicit classes: used as given, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutoValClassesWarning)
        e = load_dataset("folder", **kw, val_classes=chosen[:1])
    assert "val_classes_auto" not in e.meta and e.class_counts() == {"train": 7, "val": 1, "unseen": 2}
    with pytest.warns(AutoValClassesWarning):  # a wider share
        f = load_dataset("folder", **kw, auto_val_fraction=0.5)
    assert f.class_counts() == {"train": 4, "val": 4, "unseen": 2}


def test_auto_val_classes_rule():
    # k = max(2, round(0.2 n)) validation classes, at most n - 2; none below n = 4
    assert [len(auto_val_classes(range(n))) for n in (0, 2, 3, 4, 5, 7, 12, 13, 20, 64)] == [0, 0, 0, 2, 2, 2, 2,
                                                                                            3, 4, 13]
    assert [len(auto_val_classes(range(n), fraction=0.5)) for n in (3, 4, 5, 6)] == [0, 2, 3, 3]
    assert auto_val_classes([4, 9, 2, 7], seed=1) == auto_val_classes([2, 4, 7, 9], seed=1)
    assert set(auto_val_classes([4, 9, 2, 7], seed=1)) <= {2, 4, 7, 9}


def test_folder_validation_class_errors(tmp_path):
    kw = write_folder(tmp_path / "f", n_classes=5, per_class_train=2, per_class_test=1, size=8, n_novel=1)
    for empty in ([], ""):
        with pytest.raises(ZSLabError, match=r"data\.val_classes is empty.*--set data\.val_classes="):
            load_dataset("folder", **kw, val_classes=empty)
    seen = [c for c in ("apple", "bicycle", "cat", "dog", "maple_tree") if c != kw["novel"]]
    assert len(seen) == 4
    with pytest.raises(ZSLabError, match=r"at least two seen \(train\).*data\.val_classes"):
        load_dataset("folder", **kw, val_classes=seen[:3])
    # 3 non-novel classes: too few for 2 training + 2 validation classes
    with pytest.raises(ZSLabError, match=r"cannot hold out validation classes.*data\.val_classes=a,b"):
        load_dataset("folder", **{**kw, "novel": ",".join([kw["novel"], seen[0]])})
    with pytest.raises(ValueError, match="too few training classes"):
        write_folder(tmp_path / "h", n_classes=5, n_novel=2)


def test_fixture_helpers(tmp_path):
    assert write_fixture("shapes", tmp_path / "s") == {} and not (tmp_path / "s").exists()
    assert set(FIXTURE_DATASETS) >= {"shapes", "folder", "cub", "awa1", "awa2", "sun", "apy", "cifar-fs",
                                     "miniimagenet"}
    assert cli_overrides({"root": "/x", "check_md5": False, "novel": ["a", "b"], "image_size": 16}) == [
        "data.root=/x", "data.check_md5=false", "data.novel=a,b", "data.image_size=16"]
    with pytest.raises(ValueError, match="unknown dataset"):
        write_fixture("imagenet", tmp_path)
    with pytest.raises(ValueError, match="without res101.mat"):
        write_xlsa17(tmp_path / "a", name="AWA2", res101=False)
    # the same arguments write the same files
    a = write_xlsa17(tmp_path / "a1", name="SUN")
    b = write_xlsa17(tmp_path / "a2", name="SUN")
    for rel in ("xlsa17/SUN/att_splits.mat", "xlsa17/SUN/valclasses2.txt",
                "images/a/apartment_building/outdoor/sun_0080000.jpg"):
        assert (tmp_path / "a1" / rel).read_bytes() == (tmp_path / "a2" / rel).read_bytes()
    assert load_dataset("sun", **a).class_names == load_dataset("sun", **b).class_names


def test_few_shot_image_size_none_is_native(written):
    for cid, side in (("cifar-fs-r2d2", 32), ("miniimagenet", 84)):
        name, kw = written[cid]
        d = load_dataset(name, **{**kw, "image_size": None})
        assert d.splits["train"][0][0].shape == (3, side, side)
