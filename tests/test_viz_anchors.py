"""Anchor figures (zslab.viz.anchor_plots) and the analysis helpers of notebook 20
(zslab.experiments.laat_anchors): LAAT Table 1, Fig. 4, Table 8 (MMC), Tables S2-S3."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from zslab import ZSLabError  # noqa: E402
from zslab.anchors import AnchorExpansion, mean_pairwise_cosine, rank_matrix  # noqa: E402
from zslab.data.cifarfs import CIFAR_FS_CLASSES, SUPERCLASSES, superclass_pairs  # noqa: E402
from zslab.experiments import laat_anchors as la  # noqa: E402
from zslab.viz import anchor_plots as ap  # noqa: E402


def _cap(n, dim, spread=0.3, seed=0):
    """Unit anchors clustered around e_0 (a narrow cap: high mean cosine, like CLIP anchors)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)) * spread
    x[:, 0] += 1.0
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _grouped_cifar_anchors(dim=64, seed=0):
    """Anchors for the 100 CIFAR-FS classes whose super-classes form tight clusters inside a cap."""
    rng = np.random.default_rng(seed)
    owner = {c: g for g, cs in SUPERCLASSES.items() for c in cs}
    centres = {g: rng.standard_normal(dim) for g in SUPERCLASSES}
    rows = []
    for c in CIFAR_FS_CLASSES:
        v = 0.4 * centres[owner[c]] / np.linalg.norm(centres[owner[c]]) + 0.03 * rng.standard_normal(dim)
        v[0] += 1.0
        rows.append(v)
    a = np.array(rows)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


# ----------------------------------------------------------------------------- 3-D projection


def test_sphere_projection_keeps_norms_and_polar_angles():
    a = _cap(50, 20)
    exp = AnchorExpansion().fit(a[:30])
    basis = la.fit_sphere_basis(a[:30], exp.center_)
    assert basis.shape == (2, 20)
    assert np.allclose(basis @ basis.T, np.eye(2), atol=1e-12)
    assert np.allclose(basis @ exp.center_, 0, atol=1e-12)
    for pts, arr in ((la.sphere_projection(a, exp.center_, basis), a),
                     (la.sphere_projection(exp.transform(a), exp.center_, basis), exp.transform(a))):
        assert pts.shape == (50, 3)
        assert np.allclose(np.linalg.norm(pts, axis=1), 1.0)
        # the first axis is the centre: arccos(x) is each anchor's exact polar angle
        assert np.allclose(np.arccos(np.clip(pts[:, 0], -1, 1)), exp.polar_angles(arr))


def test_sphere_projection_is_isometric_on_the_plotted_subspace():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((12, 3)))  # orthonormal frame of a 3-D subspace of R^12
    pts3 = _cap(40, 3, spread=0.4, seed=2)
    a = pts3 @ q.T  # anchors living in span(q)
    exp = AnchorExpansion().fit(a)
    basis = la.fit_sphere_basis(a, exp.center_)
    p = la.sphere_projection(a, exp.center_, basis)
    assert np.allclose(p @ p.T, a @ a.T, atol=1e-10)  # every pairwise angle kept
    # expansion keeps azimuths: the projected azimuth directions before and after are identical
    pe = la.sphere_projection(exp.transform(a), exp.center_, basis)
    az = lambda z: z[:, 1:] / np.linalg.norm(z[:, 1:], axis=1, keepdims=True)  # noqa: E731
    assert np.allclose(az(p), az(pe))
    assert pe[:, 0].min() == pytest.approx(0.0, abs=1e-9)  # the farthest anchor lands on the equator


def test_sphere_projection_rejects_bad_basis_and_low_dim():
    a = _cap(10, 6)
    exp = AnchorExpansion().fit(a)
    with pytest.raises(ZSLabError, match="basis must have shape"):
        la.sphere_projection(a, exp.center_, np.eye(3, 6))
    with pytest.raises(ZSLabError, match="dimension >= 3"):
        la.fit_sphere_basis(_cap(10, 2), np.array([1.0, 0.0]))


# ----------------------------------------------------------------------------- analysis helpers


def test_expansion_summary_conventions_and_training_fit():
    a = _cap(40, 16, seed=3)
    s = la.expansion_summary(a, fit_rows=25)
    tr, al = s["train_fit"], s["all_fit"]
    n = 40
    for t in (tr, al):
        assert t["mean_cos_after"] < t["mean_cos_before"]
        # the two conventions differ by exactly (1 - m)/n
        assert t["mean_cos_before_with_self"] == pytest.approx(t["mean_cos_before"] + (1 - t["mean_cos_before"]) / n)
        assert t["mean_cos_after_with_self"] == pytest.approx(t["mean_cos_after"] + (1 - t["mean_cos_after"]) / n)
    assert tr["fit_rows"] == 25 and al["fit_rows"] == 40
    exp = AnchorExpansion().fit(a[:25])
    assert tr["theta0_deg"] == pytest.approx(np.degrees(exp.theta0_))
    assert al["theta0_deg"] == pytest.approx(np.degrees(AnchorExpansion().fit(a).theta0_))
    theta = exp.polar_angles(a[25:])
    assert s["novel"]["n_beyond_theta0"] == int((theta > exp.theta0_).sum())
    assert s["novel"]["max_theta_deg"] == pytest.approx(np.degrees(theta.max()))


def test_pairwise_cosines_and_mmc_summary():
    a = _cap(12, 8)
    c = la.pairwise_cosines(a)
    assert c.shape == (66,)
    assert c.mean() == pytest.approx(mean_pairwise_cosine(a))
    m = la.mmc_summary(10, 16)
    assert m["mean_cos"] == pytest.approx(-1 / 9) and m["expected"] == pytest.approx(-1 / 9)
    assert m["mean_cos_with_self"] == pytest.approx(0.0, abs=1e-12)


def test_consistency_summary_on_clustered_super_classes():
    a = _grouped_cifar_anchors()
    c = la.consistency_summary(a, list(CIFAR_FS_CLASSES), fit_rows=64)
    assert set(c) == {"original", "expanded_train_fit", "expanded_all_fit"}
    for r in c.values():
        assert r["n_groups"] == 20
        # each super-class is a tight cluster: every class ranks its 4 group mates first
        assert r["rank_sum"] == pytest.approx(50.0) and r["top5_ratio"] == pytest.approx(1.0)
    # shuffled names break the groups: consistency drops
    rng = np.random.default_rng(0)
    names = list(np.array(CIFAR_FS_CLASSES)[rng.permutation(100)])
    bad = la.consistency_summary(a, names, fit_rows=64)
    assert bad["original"]["rank_sum"] > 200 and bad["original"]["top5_ratio"] < 0.5


def test_clip_sources_missing_folder_gives_message(tmp_path, monkeypatch):
    srcs, msg = la.clip_anchor_sources(tmp_path)
    assert srcs == [] and "clip_text_anchors" in msg and "skipping" in msg


def test_clip_sources_reads_files(tmp_path):
    folder = tmp_path / "clip_text_anchors"
    folder.mkdir()
    a = _cap(100, 8, seed=5).astype(np.float32) * 3.0  # unnormalised, like the release
    np.save(folder / "cifarfs_vitb16_text_features.npy", a)
    (folder / "cifarfs_classes.txt").write_text("\n".join(CIFAR_FS_CLASSES) + "\n")
    srcs, msg = la.clip_anchor_sources(tmp_path)
    assert len(srcs) == 1 and "miniimagenet" in msg
    s = srcs[0]
    assert s["dataset"] == "CIFAR-FS" and s["fit_rows"] == 64 and s["class_names"] == list(CIFAR_FS_CLASSES)
    assert np.allclose(s["anchors"], a, rtol=1e-6)
    json.dumps(la.PAPER_TABLE1)  # paper constants are JSON-serialisable (the notebook writes them)
    assert la.PAPER_TABLE1["ViT-B/16"] == (0.761, 0.195) and la.PAPER_TABLE_S3["ViT-B/16"] == (225, 0.614)


# ----------------------------------------------------------------------------- figures


def test_expansion_sphere_figure():
    a = _cap(30, 10)
    exp = AnchorExpansion().fit(a[:20])
    basis = la.fit_sphere_basis(a[:20], exp.center_)
    pb, pa = la.sphere_projection(a, exp.center_, basis), la.sphere_projection(exp.transform(a), exp.center_, basis)
    mask = np.arange(30) < 20
    fig = ap.expansion_sphere(pb, pa, mask, subtitles=("before", "after"), title="T")
    axes = [ax for ax in fig.axes if ax.name == "3d"]
    assert len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["before", "after"]
    assert fig._suptitle.get_text() == "T"
    assert axes[0].get_xlabel() == "along v"
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels == ["training classes (20)", "novel classes (10)"]
    with pytest.raises(ValueError):
        ap.expansion_sphere(pb, pa[:5], mask)


def test_cosine_and_polar_histograms():
    a = _cap(30, 10)
    exp = AnchorExpansion().fit(a[:20])
    ae = exp.transform(a)
    fig = ap.cosine_histograms(la.pairwise_cosines(a), la.pairwise_cosines(ae), mmc_cos=-1 / 29, title="H")
    ax = fig.axes[0]
    assert ax.get_title() == "H" and "cosine" in ax.get_xlabel() and ax.get_ylabel() == "number of pairs"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("original (mean") for t in texts) and any("MMC" in t for t in texts)
    tb, ta = exp.polar_angles(a), exp.polar_angles(ae)
    fig = ap.polar_angle_histograms(tb, ta, np.arange(30) < 20, exp.theta0_, title="P")
    assert len(fig.axes) == 2 and fig._suptitle.get_text() == "P"
    assert [ax.get_title() for ax in fig.axes] == ["before expansion", "after expansion"]
    # the farthest training anchor (polar angle 90 deg up to rounding) is counted below the equator
    train_after = [p for p in fig.axes[1].patches if p.get_facecolor()[:3] == matplotlib.colors.to_rgb("tab:blue")]
    beyond = sum(p.get_height() for p in train_after if p.get_x() >= 90)
    assert beyond == 0 and sum(p.get_height() for p in train_after) == 20


def test_bar_and_rank_figures():
    fig = ap.mean_cosine_bars({"A": {"original": 0.7, "expanded": 0.2}, "MMC": {"original": -0.01}}, title="B")
    ax = fig.axes[0]
    assert ax.get_title() == "B" and ax.get_ylabel() == "mean pairwise cosine"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "MMC"]
    assert sorted(t.get_text() for t in ax.texts) == ["-0.010", "0.200", "0.700"]
    a = _grouped_cifar_anchors()
    fruit = ["apple", "mushroom", "sweet_pepper", "orange", "pear"]
    ix = [CIFAR_FS_CLASSES.index(c) for c in fruit]
    block = rank_matrix(a)[np.ix_(ix, ix)]
    fig = ap.rank_block(block, fruit, title="R")
    assert "sum 50, top-5 ratio 100%" in fig.axes[0].get_title()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["apple", "mushroom", "sweet pepper", "orange", "pear"]
    ax = fig.axes[0]  # an annotated heat map: one text per cell, the "top-5" ranks (<= 4) in bold
    assert [t.get_text() for t in ax.texts] == [str(int(v)) for v in block.ravel()]
    assert all((t.get_fontweight() == "bold") == (int(t.get_text()) <= 4) for t in ax.texts)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "rank"
    wide = ap.rank_block(np.array([[0, 5, 9], [7, 0, 1], [2, 8, 0]]), ["a", "b", "c"])
    assert [t.get_fontweight() for t in wide.axes[0].texts][:3] == ["bold", "normal", "normal"]
    c = la.consistency_summary(a, list(CIFAR_FS_CLASSES), fit_rows=64)
    fig = ap.consistency_bars({"orig": c["original"]["per_group"], "exp": c["expanded_train_fit"]["per_group"]},
                              metric="top5_ratio", title="C")
    ax = fig.axes[0]
    assert ax.get_title() == "C" and "top-5" in ax.get_xlabel()
    assert len(ax.get_yticklabels()) == 20 and len(ax.patches) == 40
    assert max(p.get_width() for p in ax.patches) == pytest.approx(100.0)
    assert len(superclass_pairs()) == 100
