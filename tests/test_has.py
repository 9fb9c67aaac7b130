"""HAS generator (zslab.methods.has) and HAS training strategy (Algorithm 1)."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from zslab import ZSLabError
from zslab.attacks import PGD
from zslab.methods.has import HAS, TABLE2_ROWS, BindClasses, HASConfig, HASConfigError, table2_overrides
from zslab.models import APN
from zslab.train import Trainer, make_config, train

ALL_ON = dict(lambda_rob=1.0, lambda_rel=1.0, lambda_att_mag=1.0, lambda_att_ent=1.0)
ALL_OFF = dict(lambda_rob=0.0, lambda_rel=0.0, lambda_att_mag=0.0, lambda_att_ent=0.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    from conftest import limit_threads

    with limit_threads(1):
        yield


@pytest.fixture(scope="module")
def setup(one_thread):
    from conftest import tiny_zsl_data

    data = tiny_zsl_data()
    torch.manual_seed(0)
    model = APN.from_config({"backbone": "small", "width": 4}, data.num_attributes)
    A = data.class_attributes[data.train_classes].float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    tr = data.splits["train"]
    y = tr.labels  # train classes are 0..3 = their positions
    x = tr.images.float()
    for _ in range(12):  # a few steps so the model is not at its random init
        out = model(x, A)
        loss = F.cross_entropy(out["logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, A, x[::4][:12].clone(), y[::4][:12].clone()


def gen(setup_, **kw):
    model, A, _, _ = setup_
    return HAS(model, class_attributes=A, **kw)


def test_descent_lowers_objective_and_ascent_raises_it(setup):
    _, _, x, y = setup
    g = gen(setup, steps=4, step_size=1 / 255, **ALL_ON)
    clean = g.evaluate(x, x, y)["has"]
    down = g.evaluate(g(x, y), x, y)["has"]
    g.targeted = False  # the base class's flag: ascent instead of descent
    up = g.evaluate(g(x, y), x, y)["has"]
    assert down < clean < up
    g.targeted = True
    g(x, y)
    trace = g.stats()["trace"]
    assert len(trace) == 4 and trace[-1]["has"] < trace[0]["has"]
    assert trace[0]["rel"] == 0.0  # the first iterate is the clean image


def test_zero_weights_equal_plain_ce_descent(setup):
    model, A, x, y = setup
    adv = gen(setup, steps=3, step_size=2 / 255, eps=4 / 255, **ALL_OFF)(x, y)
    ref = PGD(BindClasses(model, A), eps=4 / 255, alpha=2 / 255, steps=3, random_start=False,
              targeted=True, loss="ce")(x, y)
    assert torch.equal(adv, ref)


@pytest.mark.parametrize("off", sorted(ALL_ON))
def test_each_term_matters(setup, off):
    _, _, x, y = setup
    full = gen(setup, steps=2, step_size=2 / 255, **ALL_ON)(x, y)
    without = gen(setup, steps=2, step_size=2 / 255, **{**ALL_ON, off: 0.0})(x, y)
    assert not torch.equal(full, without)


def test_stays_in_ball_and_unit_range(setup):
    _, _, x, y = setup
    x = x.clone()
    x[:, :, :2] = 1.0
    x[:, :, -2:] = 0.0
    for eps in (3 / 255, None):
        adv = gen(setup, steps=4, step_size=2 / 255, eps=eps, **ALL_ON)(x, y)
        assert adv.min() >= 0 and adv.max() <= 1 and adv.shape == x.shape and adv.dtype == x.dtype
        d = (adv - x).abs().max().item()
        assert d <= (3 / 255 if eps else 8 / 255) + 1e-6 and d > 0
    assert torch.equal(gen(setup, steps=0)(x, y), x)
    assert torch.equal(gen(setup, eps=0.0)(x, y), x)


def test_model_state_flags_and_grads_untouched(setup):
    model, A, x, y = setup
    model.train()
    model.backbone.eval()  # a mixed state must come back exactly
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    gen(setup, steps=2, **ALL_ON)(x, y)
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())
    for p in model.parameters():
        p.grad = None
    model.eval()


def _entropy(model, A, x):
    with torch.no_grad():
        p = model(x, A)["logits"].softmax(1)
    return -(p * p.clamp_min(1e-12).log()).sum(1).mean().item()


def test_sign_rob_raises_class_entropy(setup):
    model, A, x, y = setup
    adv = gen(setup, steps=4, step_size=2 / 255, **{**ALL_OFF, "lambda_rob": 5.0})(x, y)
    assert _entropy(model, A, adv) > _entropy(model, A, x)
    # and higher than CE-only descent reaches: the term is what raises it
    assert _entropy(model, A, adv) > _entropy(model, A, gen(setup, steps=4, step_size=2 / 255, **ALL_OFF)(x, y))


def test_sign_rel_keeps_features_close(setup):
    model, A, x, y = setup

    def dist(adv):
        with torch.no_grad():
            return (model(adv, A)["features"] - model(x, A)["features"]).pow(2).sum(1).mean().item()

    base = dict(ALL_OFF, lambda_rob=1.0)
    assert dist(gen(setup, steps=4, step_size=2 / 255, **{**base, "lambda_rel": 50.0})(x, y)) < \
        dist(gen(setup, steps=4, step_size=2 / 255, **base)(x, y))


def test_sign_attention_terms(setup):
    _, _, x, y = setup
    # the spatial entropy is near its maximum log(H·W) on these tiny maps: small steps
    g_ent = gen(setup, steps=2, step_size=0.25 / 255, **{**ALL_OFF, "lambda_att_ent": 10.0})
    g_sharp = gen(setup, steps=2, step_size=0.25 / 255, **{**ALL_OFF, "lambda_att_ent": -10.0})
    flat = g_ent.evaluate(g_ent(x, y), x, y)["att_ent"]
    sharp = g_sharp.evaluate(g_sharp(x, y), x, y)["att_ent"]
    assert sharp < g_ent.evaluate(x, x, y)["att_ent"] < flat
    g_mag = gen(setup, steps=4, step_size=2 / 255, **{**ALL_OFF, "lambda_att_mag": 10.0})
    assert g_mag.evaluate(g_mag(x, y), x, y)["att_mag"] < g_mag.evaluate(x, x, y)["att_mag"]


@pytest.mark.parametrize("bad, msg", [
    (dict(steps=-1), "steps"), (dict(steps=2.5), "steps"), (dict(step_size=-0.01), "step_size"),
    (dict(step_size=0.0), "step_size must be > 0"), (dict(step_size=3.0), "pixel units"),
    (dict(eps=-1.0), "eps"), (dict(eps="x/255"), "eps"), (dict(lambda_rob=math.nan), "finite"),
    (dict(lambda_att_ent=math.inf), "finite"), (dict(lambda_rel=-1.0), "lambda_rel must be >= 0"),
    (dict(lambda_att_mag="a"), "number"), (dict(random_start=True), "needs an eps"),
])
def test_bad_config_raises(bad, msg):
    with pytest.raises(HASConfigError, match=msg):
        HASConfig(**bad)


def test_table2_rows():
    assert set(TABLE2_ROWS) == {"baseline", "cls", "cls+rob", "cls+div", "cls+rob+rel", "cls+div+rel", "has"}
    assert TABLE2_ROWS["cls"] == ALL_OFF and TABLE2_ROWS["has"] == HASConfig().weights
    for row, w in TABLE2_ROWS.items():
        if w is not None:
            HASConfig(**w)
            make_config("has", "smoke", overrides={k: v for k, v in table2_overrides(row).items() if k != "method"})
    assert table2_overrides("baseline") == {"method": "apn"}
    with pytest.raises(HASConfigError, match="unknown Table 2 row"):
        table2_overrides("nope")


# ------------------------------------------------------------------------ engine / strategy
def cfg(method="has", **over):
    base = {"epochs": 1, "batch_size": 16, "model.width": 4, "lr": 3e-3, "progress": False, "lr_step": 2}
    base.update(over)
    return make_config(method, "smoke", overrides=base)


def _hist(run):
    h = json.loads((run / "metrics.json").read_text())["history"]
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in h]


def test_has_training_runs_and_is_deterministic(tmp_path, tiny_data):
    a = train(cfg(), tmp_path / "a", data=tiny_data)
    b = train(cfg(), tmp_path / "b", data=tiny_data)
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["config"]["method"] == "has" and len(m["history"]) == 1
    for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "mu"):
        assert k in a
    r = m["history"][0]
    for k in ("train_loss", "train_adv_loss", "train_adv_acc", "train_has_delta", "train_has_start",
              "train_has_end", "train_adv_taken"):
        assert math.isfinite(r[k])
    assert r["train_adv_taken"] == 1.0 and 0 < r["train_has_delta"] <= 3 * 2 / 255 + 1e-6
    assert _hist(tmp_path / "a") == _hist(tmp_path / "b")
    assert {k: a[k] for k in a if "seconds" not in k} == {k: b[k] for k in b if "seconds" not in k}


def test_adv_prob_zero_is_apn(tmp_path, tiny_data):
    """Generation never touches the model, so without adversarial steps HAS trains exactly as APN."""
    train(cfg(has_adv_prob=0.0), tmp_path / "h", data=tiny_data)
    train(cfg("apn"), tmp_path / "a", data=tiny_data)
    key = lambda h: [(r["train_loss"], r["train_acc"], r["val_h"], r["val_zsl"]) for r in h]  # noqa: E731
    h = _hist(tmp_path / "h")
    assert key(h) == key(_hist(tmp_path / "a"))
    assert all(r["train_adv_taken"] == 0.0 for r in h)


def test_adv_prob_half_takes_some(tmp_path, tiny_data):
    train(cfg(has_adv_prob=0.5, batch_size=8), tmp_path / "h", data=tiny_data)
    taken = _hist(tmp_path / "h")[0]["train_adv_taken"]
    assert 0.0 < taken < 1.0


def test_has_resume_matches_uninterrupted(tmp_path, tiny_data, monkeypatch):
    full = train(cfg(epochs=2, has_adv_prob=0.5), tmp_path / "full", data=tiny_data)
    real = Trainer.train_epoch

    def interrupted(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg(epochs=2, has_adv_prob=0.5), tmp_path / "part", data=tiny_data)
    monkeypatch.setattr(Trainer, "train_epoch", real)
    resumed = train(cfg(epochs=2, has_adv_prob=0.5), tmp_path / "part", resume=True, data=tiny_data)
    assert _hist(tmp_path / "part") == _hist(tmp_path / "full")
    assert resumed["gzsl_h"] == full["gzsl_h"]


@pytest.mark.parametrize("over, msg", [
    ({"has_steps": -1}, "steps"), ({"has_step_size": -0.1}, "step_size"), ({"has_eps": -2}, "eps"),
    ({"has_adv_prob": 1.5}, "has_adv_prob"), ({"has_lambda_rob": "nan"}, "lambda_rob"),
])
def test_bad_train_config(over, msg):
    with pytest.raises(ZSLabError, match=msg):
        make_config("has", "smoke", overrides=over)


def test_config_keys_and_cli_method(tmp_path):
    c = make_config("has", "smoke", overrides=["has_steps=5", "has_eps=8/255", "has_adv_prob=0.5"])
    assert c["has_steps"] == 5 and c["has_adv_prob"] == 0.5
    assert HASConfig.from_train_config(c).eps == pytest.approx(8 / 255)
    assert not [k for k in make_config("apn", "smoke") if k.startswith("has_")]  # apn configs unchanged
    apn, has = make_config("apn", "full"), make_config("has", "full")
    assert {k: v for k, v in has.items() if not k.startswith("has_") and k != "method"} == \
        {k: v for k, v in apn.items() if k != "method"}
    with pytest.raises(ZSLabError, match="setting of method has only"):
        make_config("apn", "smoke", overrides=["has_steps=2"])


def test_stats_reset_on_early_return(setup):
    _, _, x, y = setup
    g = gen(setup, steps=2)
    g(x, y)
    assert len(g.stats()["trace"]) == 2 and "clean_acc" in g.stats()
    g.config = HASConfig(steps=2, eps=0.0)
    g.eps = 0.0
    assert torch.equal(g(x, y), x) and g.stats() == {"trace": []}
