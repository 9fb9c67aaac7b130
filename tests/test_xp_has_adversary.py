"""HAS-style perturbations as LAAT's training adversary (config ``adversary``; zslab.methods.laat.has_adversary)
and the cross-paper experiment of notebook 33 (zslab.experiments.xp_has_adversary)."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import zslab.methods.laat as laat
from zslab import ZSLabError
from zslab.attacks import PGD
from zslab.data import load_dataset
from zslab.experiments import xp_has_adversary as xa
from zslab.experiments.has_study import config_key
from zslab.methods.has import HAS, HASConfigError, has_objective, has_terms
from zslab.models.conv4 import Conv4
from zslab.train import Trainer, make_config

SHAPES = dict(image_size=16, n_train_classes=6, n_val_classes=3, n_unseen_classes=3, train_per_class=8,
              val_seen_per_class=2, test_seen_per_class=2, unseen_per_class=4)
NEW_KEYS = ("adversary", "adv_lambda_rob", "adv_lambda_rel")
EPS = 8 / 255


@pytest.fixture(autouse=True)
def small_model(monkeypatch):
    """Conv4 of width 8: keeps the CPU tests fast."""
    monkeypatch.setattr(laat, "build_image_model", lambda arch, out_dim, in_size: Conv4(8, out_dim, in_size))


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes", **SHAPES)


@pytest.fixture(scope="module")
def encoder(shapes, tmp_path_factory):
    """file: anchors = the class attribute vectors (no text encoder needed)."""
    from conftest import write_anchor_file

    return write_anchor_file(shapes, tmp_path_factory.mktemp("anchors"))


def cfg(encoder, **over):
    base = {"epochs": 1, "batch_size": 16, "progress": False, "pgd_steps": 3, "lr_milestones": [1], "eval_n_way": 3, "eval_n_query": 2,
            "encoder": encoder, "data": SHAPES}
    base.update(over)
    return make_config("laat", "smoke", overrides=base)


def _batch(tr, n=16):
    ds = tr.data.splits["train"]
    x = ds.images[:n].float() / 255
    return x, tr.label_map[ds.labels[:n]]


def _warm(tr, x, y, steps=4):
    """A few clean A-CE steps so the model's predictions are not uniform."""
    for _ in range(steps):
        tr.model.train()
        loss = laat.LAAT_OBJECTIVES["ace"](tr.model(x), tr.strategy.train_anchors, y, tr.strategy.tau)
        tr.optimizer.zero_grad()
        loss.backward()
        tr.optimizer.step()


# ------------------------------------------------------------------------------ config
def test_defaults_and_validation(encoder):
    c = cfg(encoder)
    assert c["adversary"] == "pgd" and c["adv_lambda_rob"] == 1.0 and c["adv_lambda_rel"] == 0.1
    # new keys at their defaults leave the run-cache key of every existing LAAT config unchanged
    old = {k: v for k, v in c.items() if k not in NEW_KEYS}
    assert config_key(c) == config_key(old)
    assert config_key(cfg(encoder, adversary="has")) != config_key(c)
    for bad in ({"adversary": "fgsm"}, {"adv_lambda_rob": -1.0}, {"adv_lambda_rel": float("nan")},
                {"adversary": "has", "objective": "trades"}):
        with pytest.raises(ZSLabError, match="adversary|adv_lambda"):
            cfg(encoder, **bad)


def test_pgd_default_is_bit_identical_to_a_config_without_the_key(tmp_path, shapes, encoder):
    a = Trainer(cfg(encoder), tmp_path / "a", data=shapes)
    # the config of a run written before the keys existed: still valid, and trains exactly as before
    old = {k: v for k, v in cfg(encoder).items() if k not in NEW_KEYS}
    b = Trainer(old, tmp_path / "b", data=shapes)
    assert not set(NEW_KEYS) & set(b.config)
    assert type(a.strategy.attack) is PGD and type(b.strategy.attack) is PGD
    x, y = _batch(a)
    a.rng.manual_seed(3)
    b.rng.manual_seed(3)
    la, lb = a.strategy.train_step(a, x, y), b.strategy.train_step(b, x, y)
    assert la.keys() == lb.keys() and all(torch.equal(la[k], lb[k]) for k in la)
    assert torch.equal(a.strategy.last_adv, b.strategy.last_adv)
    for (k, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), k


# ------------------------------------------------------------------------------ the HAS adversary
def test_has_perturbation_in_ball_model_untouched_deterministic(tmp_path, shapes, encoder):
    tr = Trainer(cfg(encoder, adversary="has"), tmp_path / "r", data=shapes)
    atk = tr.strategy.attack
    assert isinstance(atk, HAS) and atk.targeted and not atk.random_start  # descent from δ = 0 (HAS Eq. 4)
    assert atk.eps == pytest.approx(EPS) and atk.alpha == pytest.approx(2 / 255) and atk.steps == 3
    assert atk.config.lambda_att_mag == 0 and atk.config.lambda_att_ent == 0
    x, y = _batch(tr)
    _warm(tr, x, y)
    model = tr.model
    model.train()
    next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)).eval()  # a mixed pattern, restored as is
    flags = [m.training for m in model.modules()]
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    state = copy.deepcopy(model.state_dict())
    adv = atk(x, y)
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # weights and BN statistics
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())
    assert float((adv - x).abs().max()) <= EPS + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert float((adv - x).abs().max()) >= 2 / 255 - 1e-6  # it moved
    assert torch.equal(atk(x, y), adv)  # deterministic
    # deterministic per seed through training: same seed, same perturbation and same step
    tr2 = Trainer(cfg(encoder, adversary="has"), tmp_path / "r2", data=shapes)
    tr3 = Trainer(cfg(encoder, adversary="has"), tmp_path / "r3", data=shapes)
    tr2.rng.manual_seed(1)
    tr3.rng.manual_seed(1)
    l2, l3 = tr2.strategy.train_step(tr2, x, y), tr3.strategy.train_step(tr3, x, y)
    assert torch.equal(tr2.strategy.last_adv, tr3.strategy.last_adv) and torch.equal(l2["loss"], l3["loss"])
    assert float(l2["delta_max"]) > 0 and tr2.model.training


def test_has_descends_where_pgd_ascends_and_each_term_matters(tmp_path, shapes, encoder):
    tr = Trainer(cfg(encoder, tau=0.5), tmp_path / "r", data=shapes)
    x, y = _batch(tr)
    _warm(tr, x, y)
    head = tr.strategy.head

    def gen(**lam):
        return laat.has_adversary(head, {**tr.config, **lam})

    def terms(adv):
        with torch.no_grad():
            head.eval()
            ref = head(x)["features"]
            t = has_terms(head(adv), y, ref)
        return {k: float(v.mean()) for k, v in t.items()}

    clean = terms(x)
    # λ_rob = λ_rel = 0: pure A-CE descent — the sample becomes *more* confidently correct
    cls_only = gen(adv_lambda_rob=0.0, adv_lambda_rel=0.0)(x, y)
    assert terms(cls_only)["cls"] < clean["cls"] - 1e-3
    # PGD (LAAT's adversary) ascends the same A-CE
    assert type(tr.strategy.attack) is PGD
    pgd_adv = tr.strategy.attack(x, y)
    assert terms(pgd_adv)["cls"] > clean["cls"] + 1e-3
    # the robustness term: raising H(p) changes δ and ends with a higher entropy than without it
    full = gen()(x, y)
    no_rob = gen(adv_lambda_rob=0.0)(x, y)
    assert not torch.equal(full, no_rob)
    assert terms(full)["rob"] > terms(no_rob)["rob"]
    # the reliability term: a large λ_rel changes δ and keeps f(x+δ) closer to f(x)
    strong_rel = gen(adv_lambda_rel=100.0)(x, y)
    no_rel = gen(adv_lambda_rel=0.0)(x, y)
    assert not torch.equal(strong_rel, no_rel)
    assert terms(strong_rel)["rel"] < terms(no_rel)["rel"]
    # L_HAS (with the run's weights) is lower at the HAS sample than at the clean image
    w = gen().config
    with torch.no_grad():
        ref = head(x)["features"]
        l_clean = float(has_objective(has_terms(head(x), y, ref), w).mean())
        l_adv = float(has_objective(has_terms(head(full), y, ref), w).mean())
    assert l_adv < l_clean


def test_attention_terms_need_an_attention_model(tmp_path, shapes, encoder):
    tr = Trainer(cfg(encoder), tmp_path / "r", data=shapes)
    x, y = _batch(tr, 4)
    with pytest.raises(HASConfigError, match="attention"):
        HAS(tr.strategy.head, eps=EPS, lambda_att_mag=1e-4, lambda_att_ent=0.0)(x, y)


def test_mixed_adversary_splits_the_batch(tmp_path, shapes, encoder):
    tr = Trainer(cfg(encoder, adversary="has+pgd"), tmp_path / "r", data=shapes)
    atk = tr.strategy.attack
    assert isinstance(atk, laat.MixedAdversary) and atk.eps == pytest.approx(EPS) and atk.steps == 3
    x, y = _batch(tr, 10)
    atk.seed = 7
    adv = atk(x, y)
    pgd = PGD(tr.strategy.head, eps=EPS, alpha=2 / 255, steps=3, random_start=True, seed=7)
    assert torch.equal(adv[:5], pgd(x[:5], y[:5]))
    assert torch.equal(adv[5:], atk.has(x[5:], y[5:]))
    logs = tr.strategy.train_step(tr, x, y)
    assert np.isfinite(float(logs["loss"])) and float(logs["delta_max"]) <= EPS + 1e-6


# ------------------------------------------------------------------------------ the experiment
def test_rows_share_the_cross_paper_laat_config():
    from zslab.experiments import cross_paper as cp

    runs = xa.adversary_configs("smoke", rows=["none", "pgd", "has", "has+pgd"], seeds=[0])
    by = {r["name"]: r for r in runs}
    base = cp.laat_config("smoke", seed=0)
    assert by["pgd"]["config"] == base and config_key(by["pgd"]["config"]) == config_key(base)
    assert by["has"]["config"] == {**base, "adversary": "has"}
    assert by["none"]["config"] == {**base, "pgd_eps": 0.0, "alpha": 0.0} and by["none"]["adversary"] == "none"
    assert [r["adversary"] for r in runs] == ["none", "pgd", "has", "has+pgd"]
    with pytest.raises(ZSLabError, match="unknown adversary row"):
        xa.adversary_configs("smoke", rows=["fgsm"])


def test_tiny_end_to_end_has_row(tmp_path, shapes, encoder, monkeypatch):
    from zslab.experiments import cross_paper as cp

    tiny = {"attr_preset": "smoke", "laat_preset": "smoke", "seeds": (0,), "attacks": ("fgsm", "pgd20", "autoattack"),
            "ablation_attacks": ("fgsm", "pgd20"),
            "eps": EPS, "max_images": 6,
            "laat_overrides": {"epochs": 2, "lr_milestones": [2], "pgd_steps": 2, "pgd_step": 4 / 255,
                               "eval_pgd_steps": 2, "eval_pgd_step": 4 / 255, "eval_episodes": 4, "eval_n_way": 3,
                               "eval_episodes_attacked": 2, "eval_n_query": 2, "gzsl_per_class": 1,
                               "batch_size": 16, "encoder": encoder, "progress": False}}
    monkeypatch.setitem(cp.XP_PRESETS, "tiny", tiny)
    monkeypatch.setattr(cp, "attribute_config", lambda method, preset="smoke", seed=0, overrides=None: {"data": SHAPES})
    runs = xa.adversary_configs("tiny", rows=["pgd", "has"])
    assert [r["config"]["adversary"] for r in runs] == ["pgd", "has"]
    rows = xa.run_adversary_rows(runs, tmp_path / "cache", "tiny", data=shapes)
    metrics = xa.metrics_for(["fgsm", "pgd20"])
    for r in rows:
        assert all(0.0 <= r[m] <= 1.0 for m in metrics[:-1]) and r["train_pass_seconds"] > 0
        assert r["zsl_worst"] <= min(r["zsl_fgsm"], r["zsl_pgd20"]) <= max(r["zsl_fgsm"], r["zsl_pgd20"]) <= r["zsl_clean"]
        assert len(r["val_zs"]) == len(r["train_acc"]) == 2 and r["zsl_n"] == 6
    saved = json.loads((Path(rows[1]["run_dir"]) / "config.json").read_text())
    assert saved["engine"]["adversary"] == "has" and saved["config"]["attack"]["adversary"] == "has"
    # the robustness evaluation is cached in the run directory and read back unchanged
    cached = list((tmp_path / "cache").glob("*/zsl_robustness-*.json"))
    assert len(cached) == 2
    again = xa.run_adversary_rows(runs, tmp_path / "cache", "tiny", data=shapes)
    assert all(r["cached"] for r in again) and [r["zsl_fgsm"] for r in again] == [r["zsl_fgsm"] for r in rows]
    summary = xa.summarize(rows, metrics)
    assert list(summary) == ["pgd", "has"] and summary["has"]["zsl_clean"]["n"] == 1
    cost = xa.cost_ratio(rows)
    assert cost["mean"] == pytest.approx(rows[1]["train_pass_seconds"] / rows[0]["train_pass_seconds"])
    lines = xa.conclusions(summary, cost, ["fgsm", "pgd20"], n_images=6)
    assert any(line.startswith("'has' vs 'pgd'") for line in lines) and any("1 seed" in line for line in lines)
    curves = xa.epoch_curves(rows, "train_acc")
    assert curves["has"]["epoch"] == [1, 2]
    fig = xa.adversary_bars(summary, ["zsl_clean", "zsl_pgd20"])
    assert len(fig.axes[0].patches) == 4
    fig = xa.curve_figure({"val_zs": xa.epoch_curves(rows, "val_zs"), "train_acc": curves}, {}, chance=1 / 3)
    assert len(fig.axes) == 2
