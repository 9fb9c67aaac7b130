"""zslab.anchors: LAAT expansion (closed form vs. Algorithm 1), MMC anchors, semantic consistency."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from zslab import ZSLabError
from zslab.anchors import (
    AnchorExpansion,
    expand,
    load_anchor_file,
    load_group_pairs,
    mean_pairwise_cosine,
    mmc_anchors,
    normalize,
    rank_matrix,
    semantic_consistency,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def clustered(n, dim, spread=0.35, seed=0):
    """n unit anchors clustered around a random direction (a cap well inside a hemisphere)."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(dim)
    centre /= np.linalg.norm(centre)
    a = centre + spread * rng.standard_normal((n, dim))
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def random_orthogonal(dim, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


# --------------------------------------------------------------------------- explicit Algorithm 1


def _to_hyperspherical(x):
    """Angles phi_1..phi_{n-1} of unit rows x (LAAT Eq. 1 with r = 1)."""
    n = x.shape[1]
    phi = np.empty((x.shape[0], n - 1))
    for k in range(n - 2):
        phi[:, k] = np.arctan2(np.linalg.norm(x[:, k + 1:], axis=1), x[:, k])
    phi[:, n - 2] = np.arctan2(x[:, n - 1], x[:, n - 2])
    return phi


def _from_hyperspherical(phi):
    m, n = phi.shape[0], phi.shape[1] + 1
    x = np.empty((m, n))
    sin_prod = np.ones(m)
    for k in range(n - 1):
        x[:, k] = sin_prod * np.cos(phi[:, k])
        sin_prod = sin_prod * np.sin(phi[:, k])
    x[:, n - 1] = sin_prod
    return x


def explicit_expansion(train, anchors, proper_rotation=False):
    """Algorithm 1 literally: R v = e_1 (Householder), polar angle scaled, other angles kept, R^T back."""
    v = train.sum(0) / np.linalg.norm(train.sum(0))
    n = v.shape[0]
    e1 = np.zeros(n)
    e1[0] = 1.0
    w = v - e1
    R = np.eye(n) - 2.0 * np.outer(w, w) / (w @ w)  # reflection with R v = e_1 (det -1)
    if proper_rotation:  # flip the last axis as well: a proper rotation (det +1) with R v = e_1
        R = np.diag(np.r_[np.ones(n - 1), -1.0]) @ R
    assert np.allclose(R @ v, e1)
    phi0 = np.max(np.arccos(np.clip((train @ R.T)[:, 0], -1, 1)))
    rot = anchors @ R.T
    phi = _to_hyperspherical(rot)
    assert np.allclose(_from_hyperspherical(phi), rot)  # coordinate transform round-trips
    phi[:, 0] = (math.pi / 2) * phi[:, 0] / phi0
    return _from_hyperspherical(phi) @ R  # R^T applied to rows


@pytest.mark.parametrize("proper", [False, True])
@pytest.mark.parametrize("dim", [3, 5])
def test_closed_form_equals_explicit_rotation(dim, proper):
    a = clustered(12, dim, seed=dim)
    ours = expand(a, fit_rows=8)
    ref = explicit_expansion(a[:8], a, proper_rotation=proper)
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    # and the map really moves the anchors (an identity bug would not pass the line above anyway)
    assert np.abs(ours - a).max() > 0.1


def test_training_anchors_fill_hemisphere_and_cosine_drops():
    a = clustered(30, 16, seed=1)
    exp = AnchorExpansion().fit(a)
    out = exp.transform(a)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-12)
    polar = np.arccos(np.clip(out @ exp.center_, -1, 1))
    assert abs(polar.max() - math.pi / 2) < 1e-9
    assert mean_pairwise_cosine(out) < mean_pairwise_cosine(a) - 0.15
    # the centre and theta_0 are what Algorithm 1 lines 1 and 6 say
    v = a.sum(0) / np.linalg.norm(a.sum(0))
    np.testing.assert_allclose(exp.center_, v, atol=1e-12)
    assert abs(exp.theta0_ - np.arccos(a @ v).max()) < 1e-9


def test_polar_angles_scaled_linearly_and_order_preserved():
    a = clustered(40, 8, seed=2)
    exp = AnchorExpansion().fit(a[:25])
    before = exp.polar_angles(a)
    out = exp.transform(a)
    after = np.arctan2(np.linalg.norm(out - np.outer(out @ exp.center_, exp.center_), axis=1), out @ exp.center_)
    np.testing.assert_allclose(after, (math.pi / 2) * before / exp.theta0_, atol=1e-9)
    np.testing.assert_array_equal(np.argsort(after), np.argsort(before))
    # azimuthal directions are kept
    v = exp.center_
    u_in = a - np.outer(a @ v, v)
    u_out = out - np.outer(out @ v, v)
    u_in /= np.linalg.norm(u_in, axis=1, keepdims=True)
    u_out /= np.linalg.norm(u_out, axis=1, keepdims=True)
    np.testing.assert_allclose(u_in, u_out, atol=1e-9)


def test_rotation_equivariance():
    a = clustered(20, 6, seed=3)
    Q = random_orthogonal(6, seed=4)
    np.testing.assert_allclose(expand(a @ Q.T, fit_rows=14), expand(a, fit_rows=14) @ Q.T, atol=1e-10)
    # and scale-invariant per row: anchors are normalised before the centre is taken
    scales = np.random.default_rng(5).uniform(0.1, 10.0, size=(20, 1))
    np.testing.assert_allclose(expand(a * scales, fit_rows=14), expand(a, fit_rows=14), atol=1e-10)


def test_novel_anchors_use_training_fit():
    a = clustered(30, 10, seed=5)
    train, novel = a[:20], a[20:]
    out = AnchorExpansion().fit(train).transform(novel)
    # manual: rotate each novel anchor within the plane (v, a) away from v by theta' - theta
    v = train.sum(0) / np.linalg.norm(train.sum(0))
    theta0 = np.arccos(train @ v).max()
    for a_i, o_i in zip(novel, out):
        th = np.arccos(a_i @ v)
        tangent = (np.cos(th) * a_i - v) / np.sin(th)  # unit tangent at a_i pointing away from v
        delta = (math.pi / 2) * th / theta0 - th
        np.testing.assert_allclose(o_i, np.cos(delta) * a_i + np.sin(delta) * tangent, atol=1e-10)
    # same as expand with fit_rows, and different from a fit that (wrongly) includes the novel rows
    np.testing.assert_allclose(expand(a, fit_rows=20)[20:], out, atol=1e-12)
    assert np.abs(expand(a, fit_rows=30)[20:] - out).max() > 1e-3


def test_novel_anchor_beyond_pi_errors_or_clamps_and_pole_stays():
    train = np.array([[1.0, 0.1, 0.0], [1.0, -0.1, 0.0], [1.0, 0.0, 0.1], [1.0, 0.0, -0.1]])
    exp = AnchorExpansion().fit(train)
    v = exp.center_
    assert exp.theta0_ < 0.11
    far = np.array([[0.0, 1.0, 0.0]])  # 90 deg from v > 2 theta_0
    with pytest.raises(ZSLabError, match=r"'far'.*2\*theta_0"):
        exp.transform(far, class_names=["far"])
    with pytest.warns(RuntimeWarning, match="clamped"):
        clamped = AnchorExpansion(beyond_pi="clamp").fit(train).transform(far)
    np.testing.assert_allclose(clamped[0], -v, atol=1e-12)
    # slightly beyond theta_0 is fine and lands beyond the equator
    beyond = np.array([[1.0, 0.15, 0.0]])
    assert beyond[0] @ v / np.linalg.norm(beyond) > 0 and exp.transform(beyond)[0] @ v < 0
    # an anchor parallel to v stays at the pole
    np.testing.assert_allclose(exp.transform(3 * v[None])[0], v, atol=1e-12)


def test_torch_in_torch_out():
    a = torch.tensor(clustered(10, 5, seed=6), dtype=torch.float32)
    out = expand(a, fit_rows=7)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expand(a.double().numpy(), fit_rows=7), atol=1e-6)
    assert normalize(a.half()).dtype == torch.float32
    assert normalize(a.numpy()).dtype == np.float32


# --------------------------------------------------------------------------- statistics, MMC


def test_mean_pairwise_cosine_definition():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    u = a / np.linalg.norm(a, axis=1, keepdims=True)
    c = u @ u.T
    off = c[~np.eye(3, dtype=bool)].mean()
    assert mean_pairwise_cosine(a) == pytest.approx(off, abs=1e-12)
    assert mean_pairwise_cosine(a, include_self=True) == pytest.approx(c.mean(), abs=1e-12)
    with pytest.raises(ZSLabError, match="at least 2"):
        mean_pairwise_cosine(a[:1])


@pytest.mark.parametrize("n,dim", [(2, 1), (5, 4), (10, 64), (20, 19), (100, 512)])
def test_mmc_anchors(n, dim):
    m = mmc_anchors(n, dim)
    assert m.shape == (n, dim)
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-12)
    gram = m @ m.T
    np.testing.assert_allclose(gram[~np.eye(n, dtype=bool)], -1.0 / (n - 1), atol=1e-12)
    assert mean_pairwise_cosine(m) == pytest.approx(-1.0 / (n - 1), abs=1e-12)
    if n * dim > 1000:  # the seeded frame needs a QR, slow under BLAS-thread contention on shared CPUs
        return
    r1, r2, r3 = mmc_anchors(n, dim, seed=1), mmc_anchors(n, dim, seed=1), mmc_anchors(n, dim, seed=2)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(r1 @ r1.T, gram, atol=1e-12)
    if dim > 1:
        assert np.abs(r1 - r3).max() > 1e-3


def test_mmc_errors():
    with pytest.raises(ZSLabError, match="dim >= n_classes - 1"):
        mmc_anchors(10, 8)
    with pytest.raises(ZSLabError, match="n_classes >= 2"):
        mmc_anchors(1, 8)


# --------------------------------------------------------------------------- semantic consistency


def _circle(degrees):
    t = np.radians(degrees)
    return np.stack([np.cos(t), np.sin(t)], 1)


def test_rank_matrix_and_semantic_consistency_hand_built():
    # points on a circle: cosine order = angular-distance order, ranks worked out by hand
    names = ["A", "B", "C", "D", "E", "F"]
    a = 2.0 * _circle([0, 10, 30, 70, 150, 160])
    expected = np.array([
        [0, 1, 2, 3, 4, 5],  # A: B 10, C 30, D 70, E 150, F 160
        [1, 0, 2, 3, 4, 5],  # B: A 10, C 20, D 60, E 140, F 150
        [2, 1, 0, 3, 4, 5],  # C: B 20, A 30, D 40, E 120, F 130
        [3, 2, 1, 0, 4, 5],  # D: C 40, B 60, A 70, E 80, F 90
        [5, 4, 3, 2, 0, 1],  # E: F 10, D 80, C 120, B 140, A 150
        [5, 4, 3, 2, 1, 0],  # F: E 10, D 90, C 130, B 150, A 160
    ])
    np.testing.assert_array_equal(rank_matrix(a), expected)
    groups = [("g1", "A"), ("g1", "B"), ("g1", "C"), ("g2", "D"), ("g2", "F"), ("g3", "E")]
    res = semantic_consistency(a, names, groups)
    # g1 block [[0,1,2],[1,0,2],[2,1,0]]: sum 9, 9/9 <= 4; g2 block [[0,5],[2,0]]: sum 7, 3/4 <= 4
    assert res["rank_sum"] == pytest.approx((9 + 7) / 2)
    assert res["top5_ratio"] == pytest.approx((1.0 + 0.75) / 2)
    assert res["n_groups"] == 2 and res["skipped"] == ["g3"]
    assert res["per_group"]["g2"] == {"classes": ["D", "F"], "rank_sum": 7, "top5_ratio": 0.75}
    # independent of row order
    perm = [5, 2, 0, 4, 1, 3]
    res_p = semantic_consistency(a[perm], [names[i] for i in perm], groups)
    assert (res_p["rank_sum"], res_p["top5_ratio"]) == (res["rank_sum"], res["top5_ratio"])


def test_rank_ties_share_the_smaller_rank():
    a = _circle([0, 20, -20, 90])  # from row 0, rows 1 and 2 tie
    r = rank_matrix(a)
    assert r[0].tolist() == [0, 1, 1, 3]


def test_semantic_consistency_errors():
    a = _circle([0, 10, 20])
    with pytest.raises(ZSLabError, match=r"not among the anchor class names: \['zebra', 'yak'\]"):
        semantic_consistency(a, ["x", "y", "z"], [("g", "x"), ("g", "zebra"), ("h", "yak")])
    with pytest.raises(ZSLabError, match="two groups"):
        semantic_consistency(a, ["x", "y", "z"], [("g", "x"), ("h", "x"), ("h", "y")])
    with pytest.raises(ZSLabError, match="3 anchor rows but 2 class names"):
        semantic_consistency(a, ["x", "y"], [("g", "x")])
    with pytest.raises(ZSLabError, match="no group"):
        semantic_consistency(a, ["x", "y", "z"], [("g", "x"), ("h", "y")])


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs():
    a = clustered(6, 4, seed=7)
    bad = a.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ZSLabError, match=r"non-finite.*2 \('c'\)"):
        normalize(bad, class_names=list("abcdef"))
    bad = a.copy()
    bad[[1, 4]] = 0.0
    with pytest.raises(ZSLabError, match=r"zero-norm rows.*1 \('b'\), 4 \('e'\)"):
        normalize(bad, class_names=list("abcdef"))
    with pytest.raises(ZSLabError, match="zero-norm"):
        expand(bad, fit_rows=3)
    with pytest.raises(ZSLabError, match="2-D"):
        normalize(a[0])
    for fr in (0, 1, 7, True, 2.5):
        with pytest.raises(ZSLabError, match="fit_rows"):
            expand(a, fit_rows=fr)
    with pytest.raises(ZSLabError, match="degenerate centre"):
        expand(np.vstack([a[:3], -a[:3]]), fit_rows=6)
    spread = _circle([0, 10, 20, 150])  # centre ~45 deg, the 150 deg anchor is > 90 deg from it
    with pytest.raises(ZSLabError, match="hemisphere"):
        expand(spread, fit_rows=4)
    with pytest.raises(ZSLabError, match="coincide"):
        expand(np.tile(a[:1], (3, 1)), fit_rows=3)
    with pytest.raises(ZSLabError, match="not fitted"):
        AnchorExpansion().transform(a)
    with pytest.raises(ZSLabError, match="dim"):
        AnchorExpansion().fit(a).transform(a[:, :3])


def test_files(tmp_path):
    a = clustered(3, 4, seed=8).astype(np.float64)
    np.save(tmp_path / "a.npy", a)
    (tmp_path / "c.txt").write_text("x\ny\nz\n\n")
    arr, names = load_anchor_file(tmp_path / "a.npy", tmp_path / "c.txt")
    assert arr.dtype == np.float32 and names == ["x", "y", "z"]
    assert load_anchor_file(tmp_path / "a.npy")[1] is None
    (tmp_path / "c2.txt").write_text("x\ny\n")
    with pytest.raises(ZSLabError, match="3 rows but .* 2 class names"):
        load_anchor_file(tmp_path / "a.npy", tmp_path / "c2.txt")
    with pytest.raises(ZSLabError, match="not found"):
        load_anchor_file(tmp_path / "missing.npy")
    np.save(tmp_path / "b.npy", np.zeros((2, 3, 4)))
    with pytest.raises(ZSLabError, match="2-D"):
        load_anchor_file(tmp_path / "b.npy")
    (tmp_path / "g1.json").write_text(json.dumps([["g", "x"], ["g", "y"]]))
    (tmp_path / "g2.json").write_text(json.dumps([["h", "z"]]))
    assert load_group_pairs([tmp_path / "g1.json", tmp_path / "g2.json"]) == [("g", "x"), ("g", "y"), ("h", "z")]
    (tmp_path / "bad.json").write_text(json.dumps([["g", "x", "extra"]]))
    with pytest.raises(ZSLabError, match="entry 0"):
        load_group_pairs(tmp_path / "bad.json")
    with pytest.raises(ZSLabError, match="not found"):
        load_group_pairs(tmp_path / "nope.json")


# --------------------------------------------------------------------------- real CLIP anchors


def _real():
    anchors_dir = SHARED_DATA / "clip_text_anchors"
    splits_dir = SHARED_DATA / "fewshot_splits" / "cifar-fs"
    if not (anchors_dir / "cifarfs_vitb16_text_features.npy").is_file() or not splits_dir.is_dir():
        pytest.skip(f"real CLIP anchors not found under {SHARED_DATA} (../shared/data)")
    a, names = load_anchor_file(anchors_dir / "cifarfs_vitb16_text_features.npy",
                                anchors_dir / "cifarfs_classes.txt")
    pairs = load_group_pairs([splits_dir / f"{s}.json" for s in ("train", "val", "test")])
    return a, names, pairs


def test_real_clip_vitb16_cifarfs_numbers():
    a, names, pairs = _real()
    assert a.shape == (100, 512)
    # mean over i != j (measured values)
    assert mean_pairwise_cosine(a) == pytest.approx(0.75872, abs=1e-3)
    e64 = expand(a, fit_rows=64)
    assert mean_pairwise_cosine(e64) == pytest.approx(0.17455, abs=1e-3)
    assert mean_pairwise_cosine(e64[:64]) == pytest.approx(0.16216, abs=1e-3)
    # LAAT Table 1 (ViT-B/16: 0.761 -> 0.195) is reproduced to the printed digits by the mean over
    # the full 100x100 matrix (diagonal included) with the expansion fitted on all 100 classes
    e100 = expand(a, fit_rows=100)
    assert round(mean_pairwise_cosine(a, include_self=True), 3) == 0.761
    assert round(mean_pairwise_cosine(e100, include_self=True), 3) == 0.195
    # LAAT Table S3 (ViT-B/16: 225, 61.4%): these released anchors give 226.1, 61.8%
    res = semantic_consistency(a, names, pairs)
    assert res["n_groups"] == 20 and not res["skipped"]
    assert res["rank_sum"] == pytest.approx(226.1, abs=1e-3)
    assert res["top5_ratio"] == pytest.approx(0.618, abs=1e-3)
