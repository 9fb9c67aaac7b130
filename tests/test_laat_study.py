"""zslab.experiments.laat_study (LAAT Fig. 3, Tables 4/5/6/S1, Fig. 5 configs and summaries) and
zslab.viz.laat_plots. Training itself is covered by the notebook 21_laat_robustness (nbval)."""
import math

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from zslab import ZSLabError  # noqa: E402
from zslab.experiments import laat_study as ls  # noqa: E402
from zslab.experiments.has_study import config_key  # noqa: E402
from zslab.viz import laat_plots as lp  # noqa: E402


def _by_name(runs):
    return {r["name"]: r["config"] for r in runs}


def test_robustness_rows_differ_only_in_anchors_and_smoothness():
    c = _by_name(ls.robustness_configs("smoke", rows=list(ls.ROBUSTNESS_ROWS), seeds=[0]))
    assert set(c) == {"original", "original+sm", "expanded", "expanded+sm"}
    assert ls.row_diff(c["original"], c["expanded"]) == {"expand": (False, True)}
    assert ls.row_diff(c["original"], c["original+sm"]) == {"alpha": (0.0, 3.0)}
    assert set(ls.row_diff(c["original"], c["expanded+sm"])) == {"expand", "alpha"}
    assert all(cfg["objective"] == "ace" and cfg["method"] == "laat" for cfg in c.values())
    # seeds multiply the rows and change only the seed
    runs = ls.robustness_configs("smoke", rows=["expanded"], seeds=[0, 1, 2])
    assert [r["config"]["seed"] for r in runs] == [0, 1, 2]
    assert ls.row_diff(runs[0]["config"], runs[2]["config"]) == {"seed": (0, 2)}
    assert len({config_key(r["config"]) for r in runs}) == 3


def test_ablation_tables_change_the_intended_keys():
    base = ls.study_config("smoke")
    t5 = _by_name(ls.table5_configs("smoke", rows=list(ls.TABLE5_ROWS), seeds=[0]))
    assert ls.row_diff(base, t5["exp+ace+sm"]) == {}  # the LAAT default is the full method
    assert ls.row_diff(t5["exp+ace"], t5["exp+ace+sm"]) == {"alpha": (0.0, 3.0)}
    assert ls.row_diff(t5["ace"], t5["exp+ace"]) == {"expand": (False, True)}
    assert ls.row_diff(t5["baseline"], t5["ace"]) == {"objective": ("euclid", "ace")}
    t4 = _by_name(ls.table4_configs("smoke", rows=list(ls.TABLE4_ROWS), seeds=[0]))
    for obj in ("cos", "theta", "euclid"):
        assert ls.row_diff(t4["ace"], t4[obj]) == {"objective": ("ace", obj)}
    t6 = _by_name(ls.table6_configs("smoke", rows=list(ls.TABLE6_ROWS), seeds=[0]))
    assert ls.row_diff(t6["sm3"], t6["sm1"]) == {"alpha": (3.0, 1.0)}
    assert ls.row_diff(t6["trades1"], t6["trades6"]) == {"trades_beta": (1.0, 6.0)}
    assert set(ls.row_diff(t6["sm3"], t6["trades6"])) == {"objective"}
    s1 = _by_name(ls.tableS1_configs("smoke", taus=[1.0, 0.1], seeds=[0]))
    assert ls.row_diff(s1["tau=1"], s1["tau=0.1"]) == {"tau": (1.0, 0.1)}
    with pytest.raises(ZSLabError, match="unknown table5 row"):
        ls.table5_configs("smoke", rows=["nope"])
    with pytest.raises(ZSLabError, match="unknown LAAT study preset"):
        ls.study_config("huge")


def test_smoke_rows_share_runs_through_the_cache():
    """The smoke rows are chosen so equal configs (one run directory) serve several tables."""
    key = lambda runs, name: config_key(_by_name(runs)[name])  # noqa: E731
    exp = key(ls.table5_configs("smoke"), "exp+ace+sm")
    assert exp == key(ls.robustness_configs("smoke"), "expanded+sm") == key(ls.table4_configs("smoke"), "ace")
    assert exp == key(ls.table6_configs("smoke"), "sm3") == key(ls.tableS1_configs("smoke"), "tau=1")
    assert key(ls.curve_configs("smoke"), "expanded") == exp
    assert key(ls.curve_configs("smoke"), "original") == key(ls.table5_configs("smoke"), "ace+sm")


def test_full_preset_cifar10(tmp_path):
    with pytest.raises(ZSLabError, match="CIFAR-10 image folders") as e:
        ls.study_config("full", data_root=tmp_path / "missing")
    assert str(tmp_path / "missing") in str(e.value)
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    c = _by_name(ls.robustness_configs("full", data_root=tmp_path))
    assert len(c) == 4 and len(ls.robustness_configs("full", data_root=tmp_path)) == 12  # 4 rows x 3 seeds
    cfg = c["expanded+sm"]
    assert cfg["dataset"] == "folder" and cfg["data"]["root"] == str(tmp_path.resolve())
    assert cfg["data"]["novel"] == "cat,dog,ship" and cfg["data"]["val_classes"] == "deer,truck"
    assert cfg["encoder"] == "minilm" and cfg["arch"] == "conv4-64" and cfg["eval_pgd_steps"] == 20
    assert cfg["pgd_steps"] == 7 and math.isclose(cfg["pgd_eps"], 8 / 255) and cfg["eval_n_way"] == 3
    # the CPU schedule of the module doc: 700 images per class, 10 epochs, ×0.1 after 7,
    # and 500 images per validation class for the checkpoint choice
    mpc = cfg["data"]["max_per_class"]
    assert (cfg["epochs"], cfg["lr_milestones"], mpc["train"], mpc["val_unseen"], mpc["val_seen"]) == (
        10, [7], 700, 500, 100)


class _FakeData:
    class_names = ["a", "b", "c", "d", "e"]


def test_mmc_encoder_and_curve_configs(tmp_path):
    from zslab.methods.laat import load_class_anchors

    spec = ls.mmc_encoder(_FakeData(), tmp_path, dim=8)
    assert spec.startswith("file:") and spec == ls.mmc_encoder(_FakeData(), tmp_path, dim=8)  # stable
    cfg = ls.study_config("smoke", {"encoder": spec, "expand": False})
    a = load_class_anchors(cfg, _FakeData.class_names)
    g = a @ a.t()
    off = g[~torch.eye(5, dtype=torch.bool)]
    assert a.shape == (5, 8) and torch.allclose(off, torch.full_like(off, -1 / 4), atol=1e-5)
    runs = _by_name(ls.curve_configs("smoke", data=_FakeData(), out_dir=tmp_path, anchor_dim=8))
    assert set(runs) == {"original", "expanded", "mmc"}
    assert ls.row_diff(runs["original"], runs["mmc"]) == {"encoder": ("minilm", spec)}
    assert ls.row_diff(runs["original"], runs["expanded"]) == {"expand": (False, True)}
    assert set(_by_name(ls.curve_configs("smoke"))) == {"original", "expanded"}  # no data: no MMC row


def _rows():
    return [{"name": "x", "seed": 0, "table": "t", "run_dir": "r0", "cached": False, "zs_clean": 0.5, "zs_pgd": 0.2,
             "gzsl_clean": 0.4, "gzsl_pgd": 0.1, "val_zs": [0.3, 0.5]},
            {"name": "x", "seed": 1, "table": "t", "run_dir": "r1", "cached": True, "zs_clean": 0.7, "zs_pgd": 0.4,
             "gzsl_clean": 0.6, "gzsl_pgd": 0.3, "val_zs": [0.5, 0.9]},
            {"name": "y", "seed": 0, "table": "t", "run_dir": "r2", "cached": False, "zs_clean": 0.9, "zs_pgd": 0.6,
             "gzsl_clean": 0.8, "gzsl_pgd": 0.5, "val_zs": [0.2, 0.4]}]


def test_summarize_and_learning_curves():
    s = ls.summarize(_rows())
    assert list(s) == ["x", "y"]
    assert math.isclose(s["x"]["zs_clean"]["mean"], 0.6) and s["x"]["zs_clean"]["n"] == 2
    assert math.isclose(s["x"]["zs_pgd"]["std"], float(np.std([0.2, 0.4], ddof=1)))
    assert s["y"]["gzsl_pgd"] == {"mean": 0.5, "std": 0.0, "n": 1} and s["x"]["table"] == "t"
    assert "val_zs" not in s["x"]
    # calibrated-stacking GZSL: summarised when asked for, never copied as a first-seed "tag"
    rows = [dict(r, gzsl_cs_u=0.1 * i, gzsl_cs_s=0.2, gzsl_cs_h=0.3 + 0.1 * i, gzsl_cs_h_uncalibrated=0.0)
            for i, r in enumerate(_rows())]
    assert not set(ls.CS_METRICS) & set(ls.summarize(rows)["x"])
    cs = ls.summarize(rows, metrics=ls.METRICS + ls.CS_METRICS)
    assert math.isclose(cs["x"]["gzsl_cs_h"]["mean"], 0.35) and cs["y"]["gzsl_cs_u"]["n"] == 1
    c = ls.learning_curves(_rows())
    assert c["x"]["epoch"] == [1, 2] and np.allclose(c["x"]["mean"], [0.4, 0.7])
    assert np.allclose(c["x"]["std"], [np.std([0.3, 0.5], ddof=1), np.std([0.5, 0.9], ddof=1)])
    assert c["y"]["std"] == [0.0, 0.0] and c["y"]["n"] == 1
    bad = _rows()
    bad[1]["val_zs"] = [0.1]
    with pytest.raises(ZSLabError, match="different numbers of epochs"):
        ls.learning_curves(bad)


def test_plots_have_titles_and_axes():
    s = ls.summarize(_rows())
    fig = lp.anchor_curves(ls.learning_curves(_rows()), chance=0.5, title="curves")
    ax = fig.axes[0]
    assert ax.get_title() == "curves" and "epoch" in ax.get_xlabel() and "zero-shot" in ax.get_ylabel()
    assert len(ax.get_lines()) == 3  # two rows + chance
    assert np.allclose(ax.get_lines()[0].get_ydata(), [40.0, 70.0])
    fig = lp.ablation_bars(s, title="bars")
    ax = fig.axes[0]
    assert ax.get_title().startswith("bars") and "2 seeds" in ax.get_title() and "%" in ax.get_ylabel()
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == sorted([60.0, 30.0, 90.0, 60.0])
    fig = lp.ablation_table(s, title="table")
    tab = fig.axes[0].tables[0]
    assert "table" in fig.axes[0].get_title() and tab[0, 0].get_text().get_text() == "ZS clean (%)"
    assert tab[1, 0].get_text().get_text() == "60.0 ± 14.1"
    few = {"prototype": {"shots": [1, 2], "clean": [0.5, 0.6], "clean_ci95": [0.1, 0.1], "pgd": [0.2, 0.3]},
           "blend": {"shots": [1, 2], "clean": [0.55, 0.65], "clean_ci95": [0.1, 0.1]}}
    fig = lp.few_shot_plot(few, title="few")
    ax = fig.axes[0]
    assert ax.get_title() == "few" and "shots" in ax.get_xlabel() and "%" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["prototype (PGD)", "prototype (clean)", "blend (clean)"] or set(labels) == {
        "prototype (clean)", "prototype (PGD)", "blend (clean)"}
