"""HAS figures (zslab.viz.has_plots) and the t-SNE wrapper (zslab.viz.tsne, scikit-learn)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from zslab import ZSLabError, viz  # noqa: E402


def entry(**means):
    return {m: {"mean": v, "std": 0.1 * v, "n": 3} for m, v in means.items()}


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_quickstart_plots_still_exported():
    for name in ("attention_maps", "image_gallery", "learning_curves", "results_table"):
        assert callable(getattr(viz, name))


def test_summary_table_cells_and_title():
    s = {"baseline": entry(zsl_t1=0.5, gzsl_h=0.25), "has": entry(zsl_t1=0.6, gzsl_h=0.3)}
    fig = viz.summary_table(s, metrics=("zsl_t1", "gzsl_h"), title="Table 1", row_labels={"baseline": "APN"})
    ax = fig.axes[0]
    assert ax.get_title().startswith("Table 1") and "3 seeds" in ax.get_title()
    texts = [c.get_text().get_text() for c in ax.tables[0].get_celld().values()]
    assert "50.0 ± 5.0" in texts and "30.0 ± 3.0" in texts and "APN" in texts and "ZSL T1 (%)" in texts
    one = viz.summary_table({"APN": {"localisation": 0.42}}, metrics=("localisation",))
    assert "42.0" in [c.get_text().get_text() for c in one.axes[0].tables[0].get_celld().values()]
    assert "one seed" in one.axes[0].get_title()


def test_sensitivity_curves_panels_points_and_baseline():
    sweeps = {"lambda_rel": {f"v{v}": {"value": v, **entry(zsl_t1=v / 20, gzsl_h=v / 40)} for v in (0.01, 1.0, 0.1)},
              "step_size": {f"s{v}": {"value": v / 255, **entry(zsl_t1=0.3, gzsl_h=0.2)} for v in (1, 4)}}
    fig = viz.sensitivity_curves(sweeps, labels={"lambda_rel": "reliability weight"}, baseline=entry(zsl_t1=0.4, gzsl_h=0.2))
    a, b = fig.axes[:2]
    assert a.get_title() == "(a) lambda_rel" and b.get_title() == "(b) step_size"
    assert a.get_xlabel() == "reliability weight" and a.get_ylabel() == "accuracy (%)"
    assert a.get_xscale() == "log"
    # errorbar lines: x sorted, y in %
    data = [ln for ln in a.lines if len(ln.get_xdata()) == 3]
    assert np.allclose(data[0].get_xdata(), [0.01, 0.1, 1.0]) and np.allclose(data[0].get_ydata(), [0.05, 0.5, 5.0])
    hlines = [ln for ln in a.lines if list(ln.get_xdata()) == [0, 1]]
    assert any(np.allclose(ln.get_ydata(), 40.0) for ln in hlines)
    assert [t.get_text() for t in b.get_xticklabels()] == ["1", "4"]  # step size shown in /255
    # five sweeps wrap onto two rows of three (no empty sixth panel); a sign sweep keeps a linear axis
    five = {f"p{i}": sweeps["lambda_rel"] for i in range(4)}
    five["att_ent"] = {f"e{v}": {"value": v, **entry(zsl_t1=0.3, gzsl_h=0.2)} for v in (-1.0, -0.1, 0.0, 0.1)}
    fig = viz.sensitivity_curves(five)
    assert len(fig.axes) == 5 and fig.get_size_inches()[1] > 7
    assert fig.axes[4].get_title() == "(e) att_ent" and fig.axes[4].get_xscale() == "linear"


def test_delta_bars_heights():
    s = {"none": entry(zsl_t1=0.5, gzsl_h=0.4), "grayscale0.4": entry(zsl_t1=0.45, gzsl_h=0.42)}
    fig = viz.delta_bars(s, baseline="none")
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [-5.0, 2.0]
    assert "percentage points" in ax.get_ylabel() and ax.get_title()
    with pytest.raises(KeyError):
        viz.delta_bars(s, baseline="mixup")


def test_delta_bars_from_paired_deltas():
    s = {"none": entry(zsl_t1=0.5, gzsl_h=0.4), "rotate": entry(zsl_t1=0.45, gzsl_h=0.42)}
    deltas = {"rotate": {"zsl_t1": {"mean": -0.03, "std": 0.01, "n": 3, "worse": 3},
                         "gzsl_h": {"mean": 0.01, "std": 0.02, "n": 3, "worse": 1}}}
    fig = viz.delta_bars(s, baseline="none", deltas=deltas)
    ax = fig.axes[0]
    assert sorted(round(p.get_height(), 6) for p in ax.patches) == [-3.0, 1.0]  # paired means, not 0.45 - 0.5
    labels = {t.get_text(): t for t in ax.texts if "/" in t.get_text() and len(t.get_text()) == 3}
    assert sorted(labels) == ["1/3", "3/3"]
    # each seed count sits past the end of its bar's error bar, on the bar's side of zero
    assert labels["3/3"].xy[1] == pytest.approx(-3.0 - 1.0) and labels["3/3"].get_va() == "top"
    assert labels["1/3"].xy[1] == pytest.approx(1.0 + 2.0) and labels["1/3"].get_va() == "bottom"
    lo, hi = ax.get_ylim()
    assert lo < -4.0 and hi > 3.0  # the limits leave room for them
    # the legend, titled with the reading note, sits right of the axes: it covers no bar or label
    legend = ax.get_legend()
    assert "seed-paired" in legend.get_title().get_text() and "vs 'none'" in ax.get_ylabel()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    assert "vs APN\n(" in viz.delta_bars(s, baseline="none", deltas=deltas, baseline_label="APN").axes[0].get_ylabel()
    with pytest.raises(KeyError, match="deltas lack"):
        viz.delta_bars(s, baseline="none", deltas={})
    with pytest.raises(ValueError, match="against"):
        viz.delta_bars(s, baseline="none", deltas={"rotate": dict(deltas["rotate"], baseline="mixup")})
    viz.delta_bars({"none": s["none"]}, baseline="none", deltas={})  # nothing to compare: an empty plot


def test_distortion_heatmap_values():
    rows = [{"augmentation": a, "group": g, "agreement": v, "drop": 0.0}
            for a, g, v in (("rotate", "head colour", 0.5), ("rotate", "body shape", 1.0),
                            ("grayscale0.4", "head colour", 0.25), ("grayscale0.4", "body shape", 0.75))]
    fig = viz.distortion_heatmap(rows, "agreement", title="kept")
    ax = fig.axes[0]
    mesh = ax.collections[0]  # seaborn's heat map: one QuadMesh, rows top to bottom
    assert np.allclose(np.asarray(mesh.get_array()).reshape(2, 2), [[50, 100], [25, 75]])
    assert mesh.get_clim() == (0.0, 100.0)
    assert [t.get_text() for t in ax.texts] == ["50", "100", "25", "75"]  # each cell annotated, row by row
    assert [t.get_text() for t in ax.get_yticklabels()] == ["rotate", "grayscale0.4"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["head colour", "body shape"]
    assert ax.get_xlabel() == "attribute group" and ax.get_title() == "kept"
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "predicted value unchanged (%)"  # the colour bar
    assert ax.get_ylabel() == "augmentation applied at test time"
    signed = [dict(r, drop=d) for r, d in zip(rows, (0.1, -0.3, 0.0, 0.2))]
    ax = viz.distortion_heatmap(signed, "drop", ylabel="augmentation used in training").axes[0]
    assert ax.get_ylabel() == "augmentation used in training"
    assert ax.collections[0].get_clim() == (-30.0, 30.0)  # signed values: 0 is the neutral colour
    # a missing cell stays blank: no colour, no annotation
    ax = viz.distortion_heatmap(rows[:3], "agreement").axes[0]
    assert np.ma.is_masked(ax.collections[0].get_array()) and [t.get_text() for t in ax.texts] == ["50", "100", "25"]


def test_seed_spread_dots_means_and_std():
    rows = [{"name": n, "seed": s, "zsl_t1": v, "gzsl_h": v / 2}
            for n, vals in (("baseline", (0.50, 0.52, 0.54)), ("has", (0.60, 0.60, 0.66))) for s, v in enumerate(vals)]
    fig = viz.seed_spread(rows, title="Table 1", row_labels={"baseline": "APN"})
    ax = fig.axes[0]
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["APN", "has"]
    assert ax.get_ylabel() == "accuracy (%)" and ax.get_title().startswith("Table 1")
    # one dot per run and metric: 2 rows x 3 seeds per metric, every value in %
    swarms = [c for c in ax.collections if len(c.get_offsets())]
    dots = sorted(np.round(y, 6) for c in swarms for y in np.asarray(c.get_offsets())[:, 1])
    assert len(dots) == 12 and dots[-1] == 66.0 and dots[0] == 25.0
    # the means (diamonds) at summarize's numbers, dodged onto their swarm's centre
    t1, h = [ln for ln in ax.lines if ln.get_marker() == "D" and len(ln.get_xdata())]  # the legend's have no data
    assert np.allclose(t1.get_ydata(), [52.0, 62.0]) and np.allclose(h.get_ydata(), [26.0, 31.0])
    shift = 0.3 * 0.4  # right of its swarm, by 0.3 of the metric's slot (0.4 wide with two metrics)
    assert np.allclose(t1.get_xdata(), np.array([-0.2, 0.8]) + shift)
    assert np.allclose(h.get_xdata(), np.array([0.2, 1.2]) + shift)
    for c, x in zip(swarms, (-0.2, 0.2, 0.8, 1.2)):  # the dots around the slot's centre, left of the mean
        xs = np.asarray(c.get_offsets())[:, 0]
        assert abs(xs.mean() - x) < 0.05 and xs.max() < x + shift
    # ± sample std (ddof 1, as summarize): the error bar of 'has' T1 spans 62 ± 3.464
    bars = [ln for ln in ax.lines if ln.get_marker() in (None, "None", "")
            and np.isclose(np.nanmean(ln.get_xdata()), 0.8 + shift)]
    assert len(bars) == 1
    assert np.allclose([np.nanmin(bars[0].get_ydata()), np.nanmax(bars[0].get_ydata())], [62 - 12 ** 0.5, 62 + 12 ** 0.5])
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "mean ± std over 3 seeds"
    assert [t.get_text() for t in legend.get_texts()] == ["ZSL T1 (%)", "GZSL H (%)"]
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1  # beside the axes
    one = viz.seed_spread([r for r in rows if r["seed"] == 0], metrics=("zsl_t1",), labels={"zsl_t1": "T1"})
    assert one.axes[0].get_legend().get_title().get_text() == "one seed"


def test_attribute_prediction_panel_bars():
    K = 6
    ex = {"images": {"none": torch.rand(2, 3, 8, 8), "rotate": torch.rand(2, 3, 8, 8)},
          "attr": {"none": torch.arange(12.0).view(2, K), "rotate": -torch.arange(12.0).view(2, K)},
          "labels": torch.tensor([0, 1])}
    fig = viz.attribute_prediction_panel(ex, [1, 3], [f"a{k}" for k in range(K)], captions=["c0", "c1"])
    assert len(fig.axes) == 2 * 3
    bars = fig.axes[2]
    assert sorted(p.get_height() for p in bars.patches) == [-3.0, -1.0, 1.0, 3.0]
    assert [t.get_text() for t in bars.get_xticklabels()] == ["a1", "a3"]
    assert fig.axes[0].get_title() == "clean" and fig.axes[1].get_title() == "rotate"


def test_feature_drift_tsne_and_curve():
    emb = {"without": torch.randn(4, 5, 2), "with": torch.randn(4, 5, 2)}
    fig = viz.feature_drift_tsne(emb, title="drift")
    panels = [a for a in fig.axes if a.get_title() in ("without", "with")]
    assert len(panels) == 2 and panels[0].get_xlabel() == "t-SNE 1"
    assert len(panels[0].collections) == 4  # one scatter per step
    assert fig._suptitle.get_text() == "drift"
    # the step colour scale is 0 (clean) .. T, no negative steps on the colour bar
    assert panels[0].collections[0].get_clim() == (0, 3)
    tr = {"a": {"drift": [0.0, 1.0, 2.0]}, "b": {"drift": [0.0, 0.5, 0.5]}}
    fig = viz.drift_curve(tr, title="Feature drift from the clean image, with and without L_REL")
    ax = fig.axes[0]
    fig.canvas.draw()  # the long title is wrapped, not cut off at the figure's edge
    box = ax.title.get_window_extent(fig.canvas.get_renderer())
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
    assert [list(ln.get_ydata()) for ln in ax.lines] == [[0.0, 1.0, 2.0], [0.0, 0.5, 0.5]]
    assert ax.get_xlabel() == "perturbation step t"


def test_perturbation_panel_and_attention_comparison():
    n = 2
    parts = {k: torch.rand(n, 3, 8, 8) for k in ("clean", "delta_norm", "adv", "foreground", "background")}
    parts.update(fg_mean_abs=[1 / 255, 2 / 255], bg_mean_abs=[0.5 / 255, 0.0])
    fig = viz.perturbation_panel(parts, captions=["x", "y"])
    assert len(fig.axes) == n * 5
    assert fig.axes[0].get_title() == "(a) original" and fig.axes[4].get_title().startswith("(e) background part")
    assert "1.00/255" in fig.axes[3].get_title() and "2.00/255" in fig.axes[8].get_title()
    maps = {"APN": torch.rand(6, 4, 4), "HAS": torch.rand(6, 4, 4)}
    fig = viz.attention_comparison(torch.rand(3, 16, 16), maps, [f"attr {k}" for k in range(6)], [0, 2, 5])
    assert len(fig.axes) == 2 * 4
    assert fig.axes[0].get_ylabel() == "APN" and fig.axes[4].get_ylabel() == "HAS"
    assert fig.axes[3].get_title() == "attr 5" and len(fig.axes[1].images) == 2


def _blobs(n=30, d=8, gap=8.0):
    g = torch.Generator().manual_seed(0)
    return torch.cat([torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) + gap])


def test_tsne_separates_clusters_and_is_deterministic():
    x = _blobs()
    y = viz.tsne(x, perplexity=10, iterations=500)
    assert y.shape == (60, 2) and y.dtype == torch.float32 and torch.isfinite(y).all()
    # kNN purity: every point's 5 nearest neighbours in the map come from its own blob
    labels = torch.arange(60) // 30
    d = torch.cdist(y, y).fill_diagonal_(float("inf"))
    knn = d.topk(5, largest=False).indices
    assert (labels[knn] == labels[:, None]).float().mean().item() == 1.0
    ca, cb = y[:30], y[30:]
    assert (ca.mean(0) - cb.mean(0)).norm() > 2 * max(ca.std(0).norm(), cb.std(0).norm())
    # the same input and seed give the same map; the seed is scikit-learn's random_state
    assert torch.equal(y, viz.tsne(x, perplexity=10, iterations=500))
    assert torch.equal(viz.tsne(x, perplexity=10, seed=3), viz.tsne(x, perplexity=10, seed=3))


def test_tsne_uses_scikit_learn(monkeypatch):
    import sklearn.manifold

    seen = {}

    class Spy(sklearn.manifold.TSNE):
        def __init__(self, **kw):
            seen.update(kw)
            super().__init__(**kw)

    monkeypatch.setattr(sklearn.manifold, "TSNE", Spy)
    y = viz.tsne(_blobs(n=10, d=3), perplexity=30, iterations=100, seed=7)
    assert y.shape == (20, 2)
    assert seen["perplexity"] == 19.0  # clipped below the number of points
    assert seen["init"] == "pca" and seen["random_state"] == 7 and seen["learning_rate"] == "auto"
    assert seen.get("max_iter", seen.get("n_iter")) == 250  # scikit-learn's minimum


def test_tsne_bad_input():
    with pytest.raises(ZSLabError, match="2-D"):
        viz.tsne(torch.randn(10))
    with pytest.raises(ZSLabError, match="perplexity"):
        viz.tsne(torch.randn(10, 3), perplexity=0)
    with pytest.raises(ZSLabError, match="at least 3"):
        viz.tsne(torch.randn(2, 3))
    with pytest.raises(ZSLabError, match="NaN"):
        viz.tsne(torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [1.0, 1.0], [2.0, 2.0]]), perplexity=2)
    assert viz.tsne(torch.randn(10, 3), perplexity=30).shape == (10, 2)  # perplexity clipped to N - 1
    assert viz.tsne(torch.randn(6, 1), perplexity=2).shape == (6, 2)  # one input dimension


def test_sensitivity_curves_shade_the_seed_spread_around_the_default_point():
    sweeps = {"lambda_rel": {f"v{v}": {"value": v, **entry(zsl_t1=0.5 + v / 100, gzsl_h=0.4)} for v in (0.01, 0.1, 1.0)},
              "other": {f"o{v}": {"value": v, **entry(zsl_t1=0.3, gzsl_h=0.2)} for v in (1.0, 2.0)}}
    spread = entry(zsl_t1=0.49, gzsl_h=0.41)
    spread["zsl_t1"]["std"], spread["zsl_t1"]["n"] = 0.02, 3
    spread["gzsl_h"]["std"], spread["gzsl_h"]["n"] = 0.01, 3
    fig = viz.sensitivity_curves(sweeps, spread=spread, defaults={"lambda_rel": 0.1})
    a, b = fig.axes[:2]
    bands = lambda ax: sorted((round(p.get_y(), 6), round(p.get_y() + p.get_height(), 6))  # noqa: E731
                              for p in ax.patches if p.get_alpha() == 0.12)
    # around the curve's value at the default (50.1 % T1, 40 % H), ±std in %
    assert bands(a) == [(39.0, 41.0), (48.1, 52.1)]
    # no default for this sweep: around the spread's own mean
    assert bands(b) == [(40.0, 42.0), (47.0, 51.0)]
    assert any("3 seeds" in t.get_text() for t in fig.legends[0].get_texts())
    # the shared legend sits below every panel: no curve is hidden behind it
    fig.canvas.draw()
    leg = fig.legends[0].get_window_extent()
    assert all(leg.y1 <= ax.get_tightbbox().y0 + 1 for ax in fig.axes)
    assert not [p for p in viz.sensitivity_curves(sweeps).axes[0].patches if p.get_alpha() == 0.12]
