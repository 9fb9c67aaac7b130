"""Tests of the embedded generated dataset ``shapes`` (zslab.data.shapes)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from zslab.data import shapes as S
from zslab.data.base import SPLITS, TensorImageDataset, ZSLData
from zslab.data.shapes import GROUPS, PALETTE, PART_NAMES, ShapesConfig, make_shapes, render

TINY = dict(n_train_classes=6, n_val_classes=2, n_unseen_classes=3, train_per_class=12,
            val_seen_per_class=3, test_seen_per_class=4, unseen_per_class=6)
MEDIUM = dict(n_train_classes=12, n_val_classes=4, n_unseen_classes=6, train_per_class=40,
              val_seen_per_class=8, test_seen_per_class=8, unseen_per_class=30)


@pytest.fixture(scope="module")
def medium() -> ZSLData:
    return make_shapes(**MEDIUM)


def _random_values(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, k, (n,), generator=g) for k in S.SLOT_SIZES], dim=1)


def _dominant(A: torch.Tensor) -> torch.Tensor:
    """Dominant value per (part, group) from the class attribute matrix: (C, 8)."""
    return torch.stack([A[:, o:o + k].argmax(1) for o, k in zip(S.SLOT_OFFSETS, S.SLOT_SIZES)], dim=1)


def _all_tensors(d: ZSLData) -> list[torch.Tensor]:
    out = [d.class_attributes, d.train_classes, d.val_classes, d.unseen_classes]
    for s in SPLITS:
        ds = d.splits[s]
        out += [ds.images, ds.labels, ds.extras["attributes"], ds.extras["part_masks"]]
    return out


# --------------------------------------------------------------------------- determinism

def test_same_seed_is_bit_identical_and_other_seed_differs():
    a, b = make_shapes(**TINY, seed=5), make_shapes(**TINY, seed=5)
    for x, y in zip(_all_tensors(a), _all_tensors(b)):
        assert x.dtype == y.dtype and torch.equal(x, y)
    assert a.class_names == b.class_names
    c = make_shapes(**TINY, seed=6)
    assert not torch.equal(a.splits["train"].images, c.splits["train"].images)
    assert not torch.equal(a.class_attributes, c.class_attributes)


def test_render_is_deterministic_given_the_generator():
    v = _random_values(20)
    x1, m1 = render(v, torch.Generator().manual_seed(1), 32)
    x2, m2 = render(v, torch.Generator().manual_seed(1), 32)
    x3, _ = render(v, torch.Generator().manual_seed(2), 32)
    assert torch.equal(x1, x2) and torch.equal(m1, m2)
    assert not torch.equal(x1, x3)


def test_generation_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_shapes(**TINY)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------- images

@pytest.mark.parametrize("size", [32, 64])
def test_images_in_unit_range_with_right_shape(size):
    d = make_shapes(**TINY, image_size=size)
    assert d.image_size == size
    for s in SPLITS:
        ds = d.splits[s]
        assert isinstance(ds, TensorImageDataset)
        assert ds.images.dtype == torch.uint8
        assert ds.images.shape[1:] == (3, size, size)
        x, y = ds[0]
        assert x.dtype == torch.float32 and x.shape == (3, size, size)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert x.std() > 0.05  # not blank
        assert ds.extras["part_masks"].shape == (len(ds), 2, size, size)
        assert ds.extras["attributes"].shape == (len(ds), S.NUM_ATTRIBUTES)


def test_render_output_and_value_validation():
    v = _random_values(7)
    x, m = render(v, torch.Generator().manual_seed(0), 48)
    assert x.dtype == torch.uint8 and x.shape == (7, 3, 48, 48)
    assert m.dtype == torch.bool and m.shape == (7, 2, 48, 48)
    with pytest.raises(ValueError, match="shape"):
        render(v[:, :5], torch.Generator(), 32)
    bad = v.clone()
    bad[0, 1] = 4  # head colour has 4 values: 0..3
    with pytest.raises(ValueError, match="range"):
        render(bad, torch.Generator(), 32)


def test_ten_thousand_images_generate():
    x, m = render(_random_values(10_000), torch.Generator().manual_seed(0), 32)
    assert x.shape == (10_000, 3, 32, 32) and m.shape == (10_000, 2, 32, 32)
    assert (m.flatten(2).sum(2) > 0).all()


def test_default_config_is_about_ten_thousand_images():
    cfg = ShapesConfig()
    assert cfg.image_size == 32 and cfg.seed == 0 and cfg.cache_dir is None
    seen = cfg.n_train_classes * (cfg.train_per_class + cfg.val_seen_per_class + cfg.test_seen_per_class)
    unseen = (cfg.n_val_classes + cfg.n_unseen_classes) * cfg.unseen_per_class
    assert 8000 <= seen + unseen <= 12000
    # the split sizes follow the config (small version of the same arithmetic)
    d = make_shapes(**TINY)
    assert {s: len(d.splits[s]) for s in SPLITS} == {
        "train": 6 * 12, "val_seen": 6 * 3, "test_seen": 6 * 4, "val_unseen": 2 * 6, "test_unseen": 3 * 6}
    assert d.num_attributes == 24 and len(d.class_names) == 11


# --------------------------------------------------------------------------- splits

def test_splits_are_disjoint(medium):
    d = medium
    tr, va, un = (set(t.tolist()) for t in (d.train_classes, d.val_classes, d.unseen_classes))
    assert not (tr & va) and not (tr & un) and not (va & un)
    assert tr | va | un == set(range(len(d.class_names)))
    assert len(tr) == 12 and len(va) == 4 and len(un) == 6
    owner = {"train": tr, "val_seen": tr, "test_seen": tr, "val_unseen": va, "test_unseen": un}
    seen_bytes: set[bytes] = set()
    for s in SPLITS:
        ds = d.splits[s]
        labels = set(ds.labels.tolist())
        assert labels == owner[s], s  # every class of the role present, nothing else
        keys = {img.numpy().tobytes() for img in ds.images}
        assert len(keys) == len(ds), f"duplicate images inside {s}"
        assert not (keys & seen_bytes), f"{s} shares an image with another split"
        seen_bytes |= keys


def test_unseen_classes_are_new_combinations_of_seen_values(medium):
    d = medium
    dom = _dominant(d.class_attributes)
    assert torch.equal(dom, d.meta["dominant"])
    train_dom = dom[d.train_classes]
    for slot, k in enumerate(S.SLOT_SIZES):  # every value is dominant in some train class
        assert set(train_dom[:, slot].tolist()) == set(range(k))
    train_rows = {tuple(r) for r in train_dom.tolist()}
    others = torch.cat([d.val_classes, d.unseen_classes])
    for c in others.tolist():
        assert tuple(dom[c].tolist()) not in train_rows
    assert len({tuple(r) for r in dom.tolist()}) == len(dom)  # all classes distinct


def test_every_value_covered_with_minimal_train_classes():
    d = make_shapes(**{**TINY, "n_train_classes": 4})
    train_dom = _dominant(d.class_attributes)[d.train_classes]
    for slot, k in enumerate(S.SLOT_SIZES):
        assert set(train_dom[:, slot].tolist()) == set(range(k))


# --------------------------------------------------------------------------- attributes

def test_class_attributes_are_continuous_group_probabilities(medium):
    A = medium.class_attributes
    assert A.shape == (22, 24) and A.dtype == torch.float32
    assert (A >= 0).all() and (A <= 1).all()
    for o, k in zip(S.SLOT_OFFSETS, S.SLOT_SIZES):
        torch.testing.assert_close(A[:, o:o + k].sum(1), torch.ones(len(A)), atol=1e-5, rtol=0)
        top = A[:, o:o + k].max(1).values
        assert (top >= 0.75 - 1e-6).all() and (top <= 0.95 + 1e-6).all()
    strictly_between = ((A > 0.01) & (A < 0.99)).float().mean()
    assert strictly_between > 0.5  # continuous, not binary
    assert len(set(A[:, 0].tolist())) > 10  # per-class probabilities differ


def test_image_attributes_one_hot_and_drawn_from_class(medium):
    ds = medium.splits["train"]
    att = ds.extras["attributes"]
    assert att.dtype == torch.float32
    assert set(att.unique().tolist()) <= {0.0, 1.0}
    vals = ds.extras["values"]
    for slot, (o, k) in enumerate(zip(S.SLOT_OFFSETS, S.SLOT_SIZES)):
        assert (att[:, o:o + k].sum(1) == 1).all()
        assert torch.equal(att[:, o:o + k].argmax(1), vals[:, slot])
    # images follow their class's probabilities: mostly dominant, sometimes not
    dom = _dominant(medium.class_attributes)[ds.labels]
    agree = (vals == dom).float().mean()
    assert 0.75 <= agree <= 0.95
    assert (vals != dom).any(1).float().mean() > 0.3
    # empirical frequencies approach the class attribute matrix
    for c in medium.train_classes.tolist()[:3]:
        freq = att[ds.labels == c].mean(0)
        assert (freq - medium.class_attributes[c]).abs().max() < 0.3


def test_meta_describes_attributes(medium):
    m = medium.meta
    names = medium.attribute_names
    assert len(names) == 24 and len(set(names)) == 24
    assert names[0] == "head shape: round" and "body colour: blue" in names
    assert m["part_names"] == ["head", "body"]
    assert len(m["attribute_part"]) == 24 and len(m["attribute_group"]) == 24
    for name, part, group in zip(names, m["attribute_part"], m["attribute_group"]):
        assert name.startswith(group + ": ") and group.startswith(PART_NAMES[part])
    assert m["groups"]["head colour"] == ["red", "green", "blue", "yellow"]
    assert set(m["groups"]) == {f"{p} {g}" for p in PART_NAMES for g, _ in GROUPS}
    assert m["config"]["n_train_classes"] == 12 and m["config"]["image_size"] == 32


def test_class_names_unique_and_built_from_dominant_values(medium):
    names = medium.class_names
    assert len(set(names)) == len(names)
    dom = _dominant(medium.class_attributes)
    for name, row in zip(names, dom.tolist()):
        segs = name.split(", ")
        assert len(segs) == 2
        for p, seg in enumerate(segs):
            words = seg.split()
            assert words[-1] == PART_NAMES[p]
            for g, (_, values) in enumerate(GROUPS):
                assert values[row[p * 4 + g]] in words


# --------------------------------------------------------------------------- rendering follows attributes

def test_part_masks_nonempty_disjoint_and_head_above_body(medium):
    for s in SPLITS:
        m = medium.splits[s].extras["part_masks"]
        area = m.flatten(2).sum(2)
        assert (area > 0).all(), f"empty part mask in {s}"
        assert not (m[:, 0] & m[:, 1]).any()
    m = medium.splits["train"].extras["part_masks"].float()
    rows = torch.arange(m.shape[-2], dtype=torch.float32).view(1, 1, -1, 1)
    cy = (m * rows).flatten(2).sum(2) / m.flatten(2).sum(2)  # (N, 2) row centroids
    assert (cy[:, 0] < cy[:, 1]).all()  # image y grows downwards: head above body


def test_solid_part_colour_matches_colour_attribute(medium):
    ds = medium.splits["train"]
    x = ds.images.float() / 255
    vals, masks = ds.extras["values"], ds.extras["part_masks"]
    checked = 0
    for p in range(2):
        solid = vals[:, p * 4 + S.PATTERN] == 0
        m = masks[:, p].unsqueeze(1).float()
        mean_rgb = (x * m).sum((2, 3)) / m.sum((2, 3))
        nearest = torch.cdist(mean_rgb, PALETTE).argmin(1)
        assert torch.equal(nearest[solid], vals[solid, p * 4 + S.COLOUR])
        checked += int(solid.sum())
    assert checked > 50


def test_size_and_pattern_are_visible_in_pixels(medium):
    ds = medium.splits["train"]
    lum = (ds.images.float() / 255).mean(1)
    vals, masks = ds.extras["values"], ds.extras["part_masks"]
    for p in range(2):
        area = masks[:, p].flatten(1).sum(1).float()
        large = vals[:, p * 4 + S.SIZE] == 1
        assert area[large].mean() > 1.5 * area[~large].mean()
        # interior pixels only (4-neighbour erosion), so the dark outline does not count
        mb = masks[:, p]
        inner = mb.clone()
        inner[:, 1:] &= mb[:, :-1]
        inner[:, :-1] &= mb[:, 1:]
        inner[:, :, 1:] &= mb[:, :, :-1]
        inner[:, :, :-1] &= mb[:, :, 1:]
        m = inner.float()
        n = m.sum((1, 2)).clamp(min=1)
        mu = (lum * m).sum((1, 2)) / n
        std = ((((lum - mu.view(-1, 1, 1)) ** 2) * m).sum((1, 2)) / n).sqrt()
        pat = vals[:, p * 4 + S.PATTERN]
        assert std[pat == 1].mean() > 3 * std[pat == 0].mean()  # stripes
        assert std[pat == 2].mean() > 3 * std[pat == 0].mean()  # dots


def test_shape_attribute_controls_silhouette():
    v = _random_values(300, seed=3)
    _, m = render(v, torch.Generator().manual_seed(0), 64, noise=0.0, clutter=False, rotation=0.0)
    head = m[:, 0]
    area = head.flatten(1).sum(1).float()
    rows, cols = head.any(2).sum(1).float(), head.any(1).sum(1).float()
    fill = area / (rows * cols)  # fraction of the bounding box covered
    shape = v[:, 0]
    assert fill[shape == 1].min() > 0.9                                      # square
    assert 0.65 < fill[shape == 0].mean() < 0.88                             # round (π/4)
    assert fill[shape == 2].max() < 0.65                                     # triangle (1/2)


def test_noise_and_clutter_switches():
    v = _random_values(16)
    clean, _ = render(v, torch.Generator().manual_seed(0), 32, noise=0.0, clutter=False, rotation=0.0)
    busy, _ = render(v, torch.Generator().manual_seed(0), 32, noise=0.1, clutter=True, rotation=0.0)
    # without clutter and noise the corners are flat background
    corner = clean[:, :, :3, :3].float()
    assert (corner.amax((2, 3)) - corner.amin((2, 3))).max() <= 1
    corner = busy[:, :, :3, :3].float()
    assert (corner.amax((2, 3)) - corner.amin((2, 3))).mean() > 5


# --------------------------------------------------------------------------- cache

def test_cache_round_trip_and_corrupt_file(tmp_path, monkeypatch):
    a = make_shapes(**TINY, cache_dir=str(tmp_path))
    files = list(tmp_path.glob("shapes-*.pt"))
    assert len(files) == 1
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]

    def boom(*args, **kwargs):
        raise AssertionError("should have been loaded from the cache")

    with monkeypatch.context() as mp:
        mp.setattr(S, "render", boom)
        b = make_shapes(**TINY, cache_dir=str(tmp_path))
    for x, y in zip(_all_tensors(a), _all_tensors(b)):
        assert torch.equal(x, y)
    assert a.class_names == b.class_names

    # another config gets another file
    make_shapes(**{**TINY, "seed": 1}, cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("shapes-*.pt"))) == 2

    files[0].write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="cache"):
        c = make_shapes(**TINY, cache_dir=str(tmp_path))
    for x, y in zip(_all_tensors(a), _all_tensors(c)):
        assert torch.equal(x, y)
    with monkeypatch.context() as mp:  # the file was rewritten and is good again
        mp.setattr(S, "render", boom)
        make_shapes(**TINY, cache_dir=str(tmp_path))


# --------------------------------------------------------------------------- config validation

@pytest.mark.parametrize("field,value", [
    ("image_size", 8),
    ("image_size", 32.5),
    ("n_train_classes", 0),
    ("n_train_classes", 3),
    ("n_val_classes", 0),
    ("n_unseen_classes", -1),
    ("train_per_class", 0),
    ("val_seen_per_class", 0),
    ("test_seen_per_class", -2),
    ("unseen_per_class", 0),
    ("val_unseen_per_class", 0),
    ("noise", -0.1),
    ("rotation", 400.0),
    ("scale_jitter", 0.9),
    ("dominant_prob", (0.4, 0.9)),
    ("seed", -1),
    ("clutter", "yes"),
])
def test_bad_config_raises_with_field_name(field, value):
    with pytest.raises(ValueError, match=field):
        make_shapes(**{**TINY, field: value})


def test_too_many_classes_and_unknown_field():
    with pytest.raises(ValueError, match="too many classes"):
        make_shapes(n_unseen_classes=6000)
    with pytest.raises(ValueError, match="colour_count") as e:
        make_shapes(colour_count=3)
    assert "image_size" in str(e.value) and "n_train_classes" in str(e.value)


def test_config_object_and_overrides_combine():
    cfg = ShapesConfig(**TINY, seed=3)
    d = make_shapes(cfg, unseen_per_class=2)
    assert len(d.splits["test_unseen"]) == 3 * 2
    assert len(d.splits["val_unseen"]) == 2 * 2  # val_unseen_per_class follows unseen_per_class
    assert d.meta["config"] == dataclasses.asdict(dataclasses.replace(cfg, unseen_per_class=2)) | {
        "dominant_prob": [0.75, 0.95]}
    d2 = make_shapes(cfg, val_unseen_per_class=5)
    assert len(d2.splits["val_unseen"]) == 2 * 5
