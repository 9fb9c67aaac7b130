"""zslab.experiments.has_study: configs of the HAS paper's experiments, the cached study runner
and the analyses behind Fig. 2, 5 and 7."""
import json

import pytest
import torch
from torch import nn

from zslab import ZSLabError
from zslab.data import load_dataset
from zslab.experiments import has_study as hs
from zslab.experiments import runner
from zslab.methods.has import TABLE2_ROWS, HASConfig
from zslab.models import APN

TINY = {"epochs": 1, "model.width": 4, "data.n_train_classes": 6, "data.n_val_classes": 2,
        "data.n_unseen_classes": 3, "data.train_per_class": 4, "data.val_seen_per_class": 2,
        "data.test_seen_per_class": 2, "data.unseen_per_class": 3, "eval_batch_size": 64}


@pytest.fixture(scope="module")
def tiny():
    cfg = hs.study_config("apn", "smoke", TINY)
    return load_dataset(cfg["dataset"], **cfg["data"])


@pytest.fixture(scope="module")
def model(tiny):
    torch.manual_seed(0)
    return APN.from_config({"backbone": "small", "width": 4}, tiny.num_attributes).eval()


def test_study_config_presets_and_errors():
    smoke = hs.study_config("apn", "smoke")
    full = hs.study_config("apn", "full")
    assert smoke["epochs"] == 2 and smoke["model"]["width"] == 8 and smoke["data"]["train_per_class"] == 8
    assert full["epochs"] == 30 and full["preset"] == "full"
    assert hs.study_config("apn", "smoke", {"method": "has"})["method"] == "has"
    assert hs.study_config("has", "smoke", seed=3)["seed"] == 3
    with pytest.raises(ZSLabError, match="unknown study preset"):
        hs.study_config("apn", "huge")
    with pytest.raises(ZSLabError, match="unknown config key"):
        hs.study_config("apn", "smoke", {"no_such_key": 1})


def test_table2_configs_rows_methods_and_seeds():
    runs = hs.table2_configs("smoke", rows=list(TABLE2_ROWS), seeds=[0, 1])
    assert [r["name"] for r in runs] == [n for n in TABLE2_ROWS for _ in (0, 1)]
    assert [r["config"]["seed"] for r in runs[:2]] == [0, 1]
    by = {r["name"]: r["config"] for r in runs}
    assert by["baseline"]["method"] == "apn" and "has_steps" not in by["baseline"]
    assert all(by[n]["method"] == "has" for n in TABLE2_ROWS if n != "baseline")
    cls = by["cls"]
    assert [cls[k] for k in ("has_lambda_rob", "has_lambda_rel", "has_lambda_att_mag", "has_lambda_att_ent")] == [0] * 4
    assert by["cls+rob+rel"]["has_lambda_rob"] > 0 and by["cls+rob+rel"]["has_lambda_att_ent"] == 0
    assert [r["name"] for r in hs.table2_configs("smoke")] == list(hs.STUDY_PRESETS["smoke"]["table2_rows"])
    assert [r["name"] for r in hs.table2_configs("full", seeds=[0])] == list(TABLE2_ROWS)
    with pytest.raises(Exception, match="unknown Table 2 row"):
        hs.table2_configs("smoke", rows=["nope"])


def test_sweep_configs_sorted_and_setting_the_right_keys():
    runs = hs.sweep_configs("lambda_rel", "smoke", values=[1.0, 0.01, 0.1], seeds=[0])
    assert [r["value"] for r in runs] == [0.01, 0.1, 1.0]
    assert [r["config"]["has_lambda_rel"] for r in runs] == [0.01, 0.1, 1.0]
    assert all(r["config"]["method"] == "has" and r["param"] == "lambda_rel" for r in runs)
    # smoke keeps the default value and the largest one; full runs all of them, every seed
    smoke = hs.sweep_configs("step_size", "smoke")
    assert [r["value"] for r in smoke] == [2 / 255, 8 / 255]
    # the default-valued run of every sweep is the Table-2 "has" run (one cached run directory)
    has_key = hs.config_key(hs.table2_configs("smoke", rows=["has"])[0]["config"])
    for p in hs.SWEEPS:
        keys = [hs.config_key(r["config"]) for r in hs.sweep_configs(p, "smoke")]
        assert keys.count(has_key) == 1, p
    full = hs.sweep_configs("lambda_rob", "full")
    assert len(full) == len(hs.SWEEPS["lambda_rob"]["values"]) * 3
    assert [r["value"] for r in full] == sorted(r["value"] for r in full)
    div = hs.sweep_configs("lambda_div", "smoke", values=[10.0], seeds=[0])[0]["config"]
    assert div["has_lambda_att_mag"] == pytest.approx(1e-3) and div["has_lambda_att_ent"] == pytest.approx(1.0)
    ent = hs.sweep_configs("lambda_att_ent", "full", seeds=[0])
    assert [r["config"]["has_lambda_att_ent"] for r in ent] == [-1.0, -0.1, 0.0, 0.1]
    assert {r["config"]["has_lambda_att_mag"] for r in ent} == {1e-4}  # only the entropy weight moves
    with pytest.raises(ZSLabError, match="unknown sweep"):
        hs.sweep_configs("lambda_x")


def test_augmentation_configs():
    runs = hs.augmentation_configs("smoke", names=["none", "cutmix"], seeds=[0, 1])
    assert [(r["name"], r["config"]["augment"], r["config"]["seed"]) for r in runs] == [
        ("none", "none", 0), ("none", "none", 1), ("cutmix", "cutmix", 0), ("cutmix", "cutmix", 1)]
    assert all(r["config"]["method"] == "apn" for r in runs)
    with pytest.raises(ZSLabError, match="unknown augmentation"):
        hs.augmentation_configs("smoke", names=["sharpen"])


def test_config_key_ignores_only_volatile_keys():
    a = hs.study_config("apn", "smoke")
    assert hs.config_key(a) == hs.config_key(dict(a, progress=True, device="cpu"))
    assert hs.config_key(a) != hs.config_key(dict(a, lr=a["lr"] * 2))
    assert hs.config_key(a) != hs.config_key(hs.study_config("apn", "smoke", seed=1))


def test_summarize_mean_std_and_order():
    rows = [{"name": "b", "seed": 0, "zsl_t1": 0.2, "gzsl_h": 0.1, "param": "x", "value": 2.0},
            {"name": "a", "seed": 0, "zsl_t1": 0.5, "gzsl_h": 0.3, "param": "x", "value": 1.0},
            {"name": "b", "seed": 1, "zsl_t1": 0.4, "gzsl_h": 0.3, "param": "x", "value": 2.0}]
    s = hs.summarize(rows, metrics=("zsl_t1", "gzsl_h"))
    assert list(s) == ["b", "a"]
    assert s["b"]["zsl_t1"]["mean"] == pytest.approx(0.3) and s["b"]["zsl_t1"]["n"] == 2
    assert s["b"]["zsl_t1"]["std"] == pytest.approx(0.1414213, rel=1e-5)  # sample std
    assert s["a"]["gzsl_h"] == {"mean": pytest.approx(0.3), "std": 0.0, "n": 1}
    assert s["b"]["value"] == 2.0 and "seed" not in s["b"]


def test_paired_deltas_pair_by_seed():
    rows = [{"name": "none", "seed": 0, "zsl_t1": 0.80}, {"name": "none", "seed": 1, "zsl_t1": 0.60},
            {"name": "none", "seed": 2, "zsl_t1": 0.70},
            {"name": "rot", "seed": 1, "zsl_t1": 0.58}, {"name": "rot", "seed": 0, "zsl_t1": 0.77},
            {"name": "rot", "seed": 2, "zsl_t1": 0.71},
            {"name": "new", "seed": 2, "zsl_t1": 0.60}]
    d = hs.paired_deltas(rows, "none", metrics=("zsl_t1",))
    assert list(d) == ["rot", "new"]
    # per seed: -0.03, -0.02, +0.01 (rows given out of seed order)
    assert d["rot"]["zsl_t1"]["mean"] == pytest.approx(-0.04 / 3)
    assert d["rot"]["zsl_t1"]["std"] == pytest.approx(0.0208167, rel=1e-5)
    assert d["rot"]["zsl_t1"]["worse"] == 2 and d["rot"]["zsl_t1"]["n"] == 3 and d["rot"]["seeds"] == [0, 1, 2]
    # the unpaired stds (0.1 and 0.097) would hide a consistent change; the paired one does not
    assert d["rot"]["zsl_t1"]["std"] < hs.summarize(rows, metrics=("zsl_t1",))["rot"]["zsl_t1"]["std"] / 4
    assert d["new"]["zsl_t1"] == {"mean": pytest.approx(-0.1), "std": 0.0, "n": 1, "worse": 1}
    assert d["rot"]["baseline"] == "none"
    with pytest.raises(ZSLabError, match="seed 2 twice"):
        hs.paired_deltas(rows + [{"name": "rot", "seed": 2, "zsl_t1": 0.1}], "none", metrics=("zsl_t1",))
    with pytest.raises(ZSLabError, match="baseline row 'mixup'"):
        hs.paired_deltas(rows, "mixup", metrics=("zsl_t1",))
    with pytest.raises(ZSLabError, match="shares no seed"):
        hs.paired_deltas(rows + [{"name": "lone", "seed": 7, "zsl_t1": 0.5}], "none", metrics=("zsl_t1",))


def test_run_study_rows_then_cache(tiny, tmp_path):
    runs = hs.table2_configs("smoke", rows=["baseline", "cls"], seeds=[0], overrides=TINY)
    rows = hs.run_study(runs, tmp_path, data=tiny, progress=False)
    assert [r["name"] for r in rows] == ["baseline", "cls"] and [r["method"] for r in rows] == ["apn", "has"]
    for r in rows:
        assert not r["cached"] and r["row"] == r["name"] and r["seed"] == 0
        for m in hs.METRICS:
            assert 0.0 <= r[m] <= 1.0
        assert r["best_epoch"] == 1
        final = json.loads((tmp_path / r["run_dir"].split("/")[-1] / "metrics.json").read_text())["final"]
        assert final["zsl_t1"] == r["zsl_t1"]
    again = hs.run_study(runs, tmp_path, data=tiny, progress=False, device="cpu")
    assert [r["cached"] for r in again] == [True, True]
    assert [r["zsl_t1"] for r in again] == [r["zsl_t1"] for r in rows]
    assert [r["run_dir"] for r in again] == [r["run_dir"] for r in rows]
    with pytest.raises(ZSLabError, match="'name' and 'config'"):
        hs.run_study([{"config": runs[0]["config"]}], tmp_path, data=tiny, progress=False)


def test_run_study_reuses_runs_written_before_a_config_key_existed(tiny, tmp_path):
    from zslab.train.config import LATE_KEYS

    runs = hs.table2_configs("smoke", rows=["baseline"], seeds=[0], overrides=TINY)
    [done] = hs.run_study(runs, tmp_path, data=tiny, progress=False)
    path = tmp_path / done["run_dir"].split("/")[-1] / "config.json"
    old = json.loads(path.read_text())["engine"]
    late = [k for k in LATE_KEYS if k in old]
    assert late, "the config should carry the late keys"
    path.write_text(json.dumps({k: v for k, v in old.items() if k not in late}))  # as an older zslab wrote it
    [again] = hs.run_study(runs, tmp_path, data=tiny, progress=False)
    assert again["cached"] and again["zsl_t1"] == done["zsl_t1"]
    # a late key set away from its default is a different run
    other = hs.table2_configs("smoke", rows=["baseline"], seeds=[0], overrides={**TINY, "channels_last": True})
    assert runner._finished(tmp_path / done["run_dir"].split("/")[-1], other[0]["config"]) is None


def test_run_study_resumes_unfinished_run(tiny, tmp_path):
    runs = hs.table2_configs("smoke", rows=["baseline"], seeds=[0], overrides={**TINY, "epochs": 2})
    [done] = hs.run_study(runs, tmp_path, data=tiny, progress=False)
    # make it look interrupted after epoch 1: drop the final metrics, keep a 1-epoch history
    m = json.loads((tmp_path / done["run_dir"].split("/")[-1] / "metrics.json").read_text())
    path = tmp_path / done["run_dir"].split("/")[-1] / "metrics.json"
    path.write_text(json.dumps({**m, "final": {}, "history": m["history"][:1]}))
    [again] = hs.run_study(runs, tmp_path, data=tiny, progress=False)
    assert not again["cached"] and again["zsl_t1"] == done["zsl_t1"]


class ColourModel(nn.Module):
    """Predicts the 'head colour' group from the image's mean RGB (red, green, blue slots), every
    other attribute 0: grayscale can only change the colour group."""

    def __init__(self, K, colour_idx):
        super().__init__()
        self.K, self.idx = K, colour_idx
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x, A=None):
        attr = torch.zeros(len(x), self.K, device=x.device) + self.w
        attr[:, self.idx[:3]] = x.mean(dim=(2, 3))
        return {"attr": attr}


def test_semantic_distortion_identity_and_colour(tiny):
    groups = hs.attribute_groups(tiny)
    assert len(groups) == 8 and groups["head colour"] == [3, 4, 5, 6]
    model = ColourModel(tiny.num_attributes, groups["head colour"])
    ident = hs.semantic_distortion(model, tiny, ["none"], split="test_seen", progress=False)
    assert len(ident) == 8 and all(r["agreement"] == 1.0 and r["drop"] == 0.0 and r["score_change"] == 0 for r in ident)
    rows = hs.semantic_distortion(model, tiny, ["grayscale0.4"], split="test_seen", progress=False, seed=1)
    by = {r["group"]: r for r in rows}
    assert by["head colour"]["agreement"] < 1.0 and by["head colour"]["score_change"] > 0
    assert all(by[g]["agreement"] == 1.0 for g in by if g != "head colour")
    for r in rows:
        assert 0.0 <= r["clean_acc"] <= 1.0 and r["drop"] == pytest.approx(r["clean_acc"] - r["aug_acc"])
        assert r["n"] == len(tiny.splits["test_seen"])
    assert model.training  # mode restored (it was in train mode)
    with pytest.raises(ZSLabError, match="no split"):
        hs.semantic_distortion(model, tiny, ["none"], split="nope")


def test_augment_examples(tiny, model):
    ex = hs.augment_examples(model, tiny, ["grayscale0.4", "none"], [0, 1], seed=0)
    assert list(ex["images"]) == ["none", "grayscale0.4"]
    assert ex["attr"]["none"].shape == (2, tiny.num_attributes)
    x0 = tiny.splits["test_seen"].images[:2].float() / 255
    assert torch.allclose(ex["images"]["none"], x0)


def _batch(tiny, n=6):
    tr = tiny.splits["train"]
    x = tr.images[:n].float() / 255
    pos = {int(c): i for i, c in enumerate(tiny.train_classes.tolist())}
    y = torch.tensor([pos[int(c)] for c in tr.labels[:n]])
    return x, y, tiny.class_attributes[tiny.train_classes].float(), tr.extras["part_masks"][:n]


def test_feature_trajectory_steps_and_rel(tiny, model):
    x, y, A, _ = _batch(tiny)
    tr = hs.feature_trajectory(model, x, y, A, {"no rel": HASConfig(lambda_rel=0.0, step_size=8 / 255),
                                               "rel": {"lambda_rel": 100.0, "step_size": 8 / 255}}, steps=3)
    assert list(tr) == ["no rel", "rel"]
    for t in tr.values():
        assert t["features"].shape[:2] == (4, len(x)) and t["drift"][0] == 0.0 and len(t["drift"]) == 4
    assert tr["no rel"]["drift"][-1] > 0
    # step 1 is identical (L_REL has zero gradient at the clean image); afterwards L_REL holds features back
    assert tr["rel"]["drift"][1] == pytest.approx(tr["no rel"]["drift"][1])
    assert tr["rel"]["drift"][-1] < tr["no rel"]["drift"][-1]
    # the 2-step iterate equals the output of a 2-step generator
    from zslab.methods.has import HAS
    adv = HAS(model, HASConfig(lambda_rel=0.0, step_size=8 / 255, steps=2), class_attributes=A)(x, y)
    with torch.no_grad():
        f2 = model(adv, A)["features"]
    assert torch.allclose(f2, tr["no rel"]["features"][2], atol=1e-5)
    with pytest.raises(ZSLabError, match="steps >= 1"):
        hs.feature_trajectory(model, x, y, A, {"a": HASConfig()}, steps=0)


def test_perturbation_parts(tiny, model):
    x, y, A, masks = _batch(tiny)
    cfg = HASConfig(steps=2, step_size=4 / 255)
    p = hs.perturbation_parts(model, x, y, A, masks, config=cfg)
    assert torch.allclose(p["clean"], x) and torch.allclose(p["delta"], p["adv"] - x)
    assert p["delta"].abs().max() <= 2 * 4 / 255 + 1e-6 and 0 <= p["adv"].min() and p["adv"].max() <= 1
    assert p["delta_norm"].min() >= 0 and p["delta_norm"].max() <= 1
    fg = masks.any(1, keepdim=True).expand_as(x)
    assert torch.equal(p["foreground"][fg], p["delta_norm"][fg]) and (p["foreground"][~fg] == 0.5).all()
    assert torch.equal(p["background"][~fg], p["delta_norm"][~fg]) and (p["background"][fg] == 0.5).all()
    mag = p["delta"].abs().mean(1)
    f0 = masks[0].any(0)
    assert p["fg_mean_abs"][0] == pytest.approx(float(mag[0][f0].mean()), rel=1e-5)
    assert p["bg_mean_abs"][0] == pytest.approx(float(mag[0][~f0].mean()), rel=1e-5)


def test_run_study_shares_equal_configs(tiny, tmp_path):
    a = hs.table2_configs("smoke", rows=["baseline"], seeds=[0], overrides=TINY)
    b = hs.augmentation_configs("smoke", names=["none"], seeds=[0], overrides=TINY)
    assert hs.config_key(a[0]["config"]) == hs.config_key(b[0]["config"])
    [ra] = hs.run_study(a, tmp_path, data=tiny, progress=False)
    [rb] = hs.run_study(b, tmp_path, data=tiny, progress=False)
    assert rb["cached"] and rb["run_dir"] == ra["run_dir"] and rb["name"] == "none" and rb["augmentation"] == "none"
    assert len([p for p in tmp_path.iterdir() if not p.name.endswith((".lock", ".lock.json"))]) == 1


def test_load_study_data_cache_is_not_part_of_the_config(tmp_path):
    a = hs.load_study_data("smoke", cache_dir=tmp_path / "data")
    assert list((tmp_path / "data").iterdir())  # the generated tensors were cached
    b = hs.load_study_data("smoke", cache_dir=tmp_path / "data")
    assert torch.equal(a.splits["train"].images, b.splits["train"].images)
    assert "cache_dir" not in hs.study_config("apn", "smoke")["data"]


def test_config_key_keeps_old_cache_valid_for_late_keys_at_default():
    """A run cached before a late key existed (config without it) keeps its key while the new
    config holds the default; a non-default value changes the key."""
    from zslab.experiments import cross_paper as cp
    from zslab.train.config import DEFAULTS, LATE_KEYS, METHOD_DEFAULTS

    for a in (hs.study_config("apn", "smoke"), cp.laat_config("smoke")):
        defaults = {**DEFAULTS, **METHOD_DEFAULTS[a["method"]]}
        for k in LATE_KEYS:
            if k not in defaults:
                continue
            old = {kk: v for kk, v in a.items() if kk != k}
            assert hs.config_key(old) == hs.config_key(dict(a, **{k: defaults[k]})), k
    a = hs.study_config("apn", "smoke")
    assert hs.config_key(a) != hs.config_key(dict(a, sync_bn=True))
    assert all(k in DEFAULTS or any(k in m for m in METHOD_DEFAULTS.values()) for k in LATE_KEYS)
