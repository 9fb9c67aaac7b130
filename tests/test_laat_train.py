"""LAAT training as a strategy of the engine (zslab.methods.laat): run dir, final metrics, resume,
adversarial batch, reduction to clean A-CE training, objectives, anchors, CLI."""
import copy
import json

import numpy as np
import pytest
import torch

from zslab import ZSLabError
from zslab.anchors import AnchorExpansion
from zslab.attacks import PGD
from zslab.cli import main as cli_main
from zslab.data import load_dataset
from zslab.losses import ace_loss
from zslab.models.conv4 import Conv4
import zslab.methods.laat as laat
from zslab.train import Trainer, load_run, make_config, train

SHAPES = dict(image_size=16, n_train_classes=6, n_val_classes=3, n_unseen_classes=3, train_per_class=16,
              val_seen_per_class=4, test_seen_per_class=4, unseen_per_class=8)


REAL_BUILD = laat.build_image_model


@pytest.fixture(autouse=True)
def small_model(monkeypatch):
    """Conv4 of width 8 instead of the paper's models, to keep the CPU tests fast."""
    monkeypatch.setattr(laat, "build_image_model", lambda arch, out_dim, in_size: Conv4(8, out_dim, in_size))


def test_default_image_model():
    m = REAL_BUILD("conv4-64", 24, 16)
    assert isinstance(m, Conv4) and m.width == 64 and m.head.out_features == 24 and m.head.bias is None


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes", **SHAPES)


@pytest.fixture(scope="module")
def encoder(shapes, tmp_path_factory):
    """file: anchors = the class attribute vectors (rows named by a class list, shuffled order)."""
    from conftest import write_anchor_file

    order = np.random.default_rng(0).permutation(len(shapes.class_names))
    return write_anchor_file(shapes, tmp_path_factory.mktemp("anchors"), order)


def cfg(encoder, **over):
    base = {"epochs": 2, "batch_size": 32, "progress": False, "eval_pgd_steps": 2, "gzsl_per_class": 4, "pgd_steps": 2,
            "eval_n_way": 3, "eval_n_query": 4, "eval_episodes": 6, "eval_episodes_attacked": 3,
            "lr_milestones": [1], "encoder": encoder, "data": SHAPES}
    base.update(over)
    return make_config("laat", "smoke", overrides=base)


FINAL_KEYS = ("zs_clean", "zs_pgd", "gzsl_clean", "gzsl_pgd")


def test_run_dir_final_metrics_and_resume(tmp_path, shapes, encoder, monkeypatch):
    full = train(cfg(encoder), tmp_path / "full", data=shapes)
    run = tmp_path / "full"
    assert {"config.json", "metrics.json", "last.pt", "best.pt"} <= {p.name for p in run.iterdir()}
    m = json.loads((run / "metrics.json").read_text())
    for k in FINAL_KEYS:
        assert 0.0 <= m["final"][k] <= 1.0 and m["final"][k] == full[k]
    assert full["zs_pgd"] <= full["zs_clean_attacked"] and full["gzsl_pgd"] <= full["gzsl_clean"]
    assert full["zs_all_pgd"] <= full["zs_all_clean"]
    assert full["zs_n_way"] == 3 and full["gzsl_n_way"] == 12
    assert full["zs_episodes"] == 6 and full["zs_episodes_attacked"] == 3
    assert full["selected_on"] == "val_zs"
    vals = [r["val_zs"] for r in m["history"]]
    assert full["best_epoch"] == 1 + vals.index(max(vals))
    # lr ×0.1 at the milestone (epoch 1); SGD as in the paper recipe
    assert m["history"][1]["lr"] == pytest.approx(0.1 * m["history"][0]["lr"])
    defaults = make_config("laat", "smoke")
    assert (defaults["pgd_eps"], defaults["pgd_step"], defaults["pgd_steps"]) == (8 / 255, 2 / 255, 7)
    assert defaults["alpha"] == 3.0 and defaults["tau"] == 1.0 and defaults["expand"] is True
    paper = make_config("laat", "paper")
    assert (paper["lr"], paper["momentum"], paper["weight_decay"], paper["batch_size"], paper["epochs"],
            paper["lr_milestones"], paper["lr_gamma"], paper["arch"], paper["optimizer"]) == (
        0.05, 0.9, 5e-4, 128, 100, [60], 0.1, "conv4-512", "sgd")
    for r in m["history"]:
        assert 0 < r["train_delta_max"] <= 8 / 255 + 1e-6
        assert -1.0 - 1e-5 <= r["train_l2"] <= 1.0 + 1e-5
    # interrupted after epoch 1, resumed: identical history and final metrics
    real = Trainer.train_epoch

    def interrupted(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg(encoder), tmp_path / "part", data=shapes)
    monkeypatch.setattr(Trainer, "train_epoch", real)
    resumed = train(cfg(encoder), tmp_path / "part", resume=True, data=shapes)
    h_full = m["history"]
    h_res = json.loads((tmp_path / "part" / "metrics.json").read_text())["history"]
    key = lambda h: [(r["epoch"], r["train_loss"], r["val_zs"], r["lr"]) for r in h]  # noqa: E731
    assert key(h_res) == key(h_full)
    assert all(resumed[k] == full[k] for k in FINAL_KEYS)
    # load_run rebuilds the embedding model from the checkpoint
    config, _, model, ckpt = load_run(run, data=shapes)
    assert config["method"] == "laat" and not model.training
    assert ckpt["strategy_state"]["anchors"].shape == (12, shapes.num_attributes)
    # calibrated-stacking GZSL: μ chosen on validation (train vs val classes), applied to train ∪ novel on test
    from zslab.eval.episodes import extract_features
    from zslab.eval.zsl import gzsl_us, select_mu

    A = torch.nn.functional.normalize(ckpt["strategy_state"]["anchors"].float(), dim=1)
    sc = {k: (extract_features(model, shapes.splits[k], progress=False) @ A.t(), shapes.splits[k].labels)
          for k in ("val_seen", "val_unseen", "test_seen", "test_unseen")}
    mu, val_h = select_mu(*sc["val_seen"], *sc["val_unseen"], shapes.train_classes, shapes.val_classes)
    u, s_, h = gzsl_us(*sc["test_seen"], *sc["test_unseen"], shapes.train_classes, shapes.unseen_classes, mu)
    assert (full["gzsl_cs_mu"], full["gzsl_cs_val_h"]) == pytest.approx((mu, val_h), abs=1e-6)
    assert (full["gzsl_cs_u"], full["gzsl_cs_s"], full["gzsl_cs_h"]) == pytest.approx((u, s_, h), abs=1e-6)
    assert full["gzsl_cs_h_uncalibrated"] == pytest.approx(
        gzsl_us(*sc["test_seen"], *sc["test_unseen"], shapes.train_classes, shapes.unseen_classes, 0.0)[2], abs=1e-6)
    assert full["gzsl_cs_h"] == pytest.approx(2 * u * s_ / (u + s_) if u + s_ else 0.0)


def _batch(trainer, n=16):
    x = trainer.data.splits["train"].images[:n].float()
    x = x / 255 if trainer.data.splits["train"].images.dtype == torch.uint8 else x
    y = trainer.label_map[trainer.data.splits["train"].labels[:n]]
    return x, y


def test_adversarial_batch_stays_in_the_ball_and_the_model_is_trained(tmp_path, shapes, encoder):
    tr = Trainer(cfg(encoder, pgd_steps=7), tmp_path / "r", data=shapes)
    atk = tr.strategy.attack
    assert isinstance(atk, PGD) and atk.eps == pytest.approx(8 / 255) and atk.alpha == pytest.approx(2 / 255)
    assert atk.steps == 7 and atk.random_start
    x, y = _batch(tr)
    before = copy.deepcopy(tr.model.state_dict())
    tr.rng.manual_seed(0)
    logs = tr.strategy.train_step(tr, x, y)
    adv = tr.strategy.last_adv
    assert adv.shape == x.shape and float((adv - x).abs().max()) <= 8 / 255 + 1e-6
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert float((adv - x).abs().max()) > 4 / 255  # it did move
    assert tr.model.training
    assert any(not torch.equal(before[k], v) for k, v in tr.model.state_dict().items())
    assert float(logs["loss"]) == pytest.approx(float(logs["l1"]) + 3.0 * float(logs["l2"]), rel=1e-5)
    # the same epoch seed gives the same perturbation (deterministic random start)
    tr2 = Trainer(cfg(encoder, pgd_steps=7), tmp_path / "r2", data=shapes)
    tr2.rng.manual_seed(0)
    tr2.strategy.train_step(tr2, x, y)
    assert torch.equal(tr2.strategy.last_adv, adv)


def test_eps0_alpha0_is_a_clean_ace_step(tmp_path, shapes, encoder):
    tr = Trainer(cfg(encoder, pgd_eps=0, alpha=0, tau=0.5), tmp_path / "r", data=shapes)
    x, y = _batch(tr)
    ref = copy.deepcopy(tr.model)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    ref.train()
    loss = ace_loss(ref(x), tr.strategy.train_anchors, y, tau=0.5)
    opt.zero_grad()
    loss.backward()
    opt.step()
    logs = tr.strategy.train_step(tr, x, y)
    assert torch.equal(tr.strategy.last_adv, x)
    assert float(logs["loss"]) == pytest.approx(float(loss.detach()), rel=1e-6)
    for (k, a), b in zip(tr.model.state_dict().items(), ref.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    # with the smoothness term on, the step differs (the test above is not vacuous)
    tr2 = Trainer(cfg(encoder, pgd_eps=0, alpha=1.0, tau=0.5), tmp_path / "r2", data=shapes)
    ref2 = copy.deepcopy(tr2.model)
    tr2.strategy.train_step(tr2, x, y)
    assert any(not torch.allclose(a, b) for a, b in zip(tr2.model.state_dict().values(), ref2.state_dict().values()))


@pytest.mark.parametrize("objective", ["cos", "theta", "euclid", "trades"])
def test_other_objectives_train(tmp_path, shapes, encoder, objective):
    tr = Trainer(cfg(encoder, objective=objective), tmp_path / "r", data=shapes)
    x, y = _batch(tr, 8)
    logs = tr.strategy.train_step(tr, x, y)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert float((tr.strategy.last_adv - x).abs().max()) <= 8 / 255 + 1e-6
    if objective == "trades":
        assert float(logs["kl"]) >= 0 and float(logs["l2"]) == 0.0


def test_anchor_expansion_is_fitted_on_training_classes(tmp_path, shapes, encoder):
    exp_tr = Trainer(cfg(encoder), tmp_path / "a", data=shapes)
    raw_tr = Trainer(cfg(encoder, expand=False), tmp_path / "b", data=shapes)
    raw = torch.nn.functional.normalize(shapes.class_attributes.float(), dim=1)
    assert torch.allclose(raw_tr.strategy.anchors, raw, atol=1e-6)
    want = AnchorExpansion().fit(raw[shapes.train_classes].double()).transform(raw.double())
    assert torch.allclose(exp_tr.strategy.anchors, torch.as_tensor(want).float(), atol=1e-5)
    tc = shapes.train_classes
    cos = lambda a: (a @ a.t()).fill_diagonal_(0).sum() / (len(a) * (len(a) - 1))  # noqa: E731
    assert cos(exp_tr.strategy.anchors[tc]) < cos(raw[tc]) - 0.2
    assert exp_tr.model.head.out_features == shapes.num_attributes


def test_bad_inputs(tmp_path, shapes, encoder):
    d = tmp_path / "bad"
    d.mkdir()
    np.save(d / "a.npy", np.ones((2, 4), np.float32))
    (d / "a.txt").write_text("foo\nbar\n")
    with pytest.raises(ZSLabError, match="missing from"):
        Trainer(cfg(f"file:{d / 'a.npy'}"), tmp_path / "r1", data=shapes)
    with pytest.raises(ZSLabError, match="objective"):
        cfg(encoder, objective="hinge")
    with pytest.raises(ZSLabError, match="encoder"):
        cfg("word2vec")
    with pytest.raises(ZSLabError, match="anchor file not found"):
        Trainer(cfg(f"file:{d / 'none.npy'}"), tmp_path / "r2", data=shapes)
    # an APN run on the same engine is unchanged by the LAAT hooks (still attribute-based)
    apn = make_config("apn", "smoke", overrides={"epochs": 1, "progress": False, "model.width": 4})
    t = Trainer(apn, tmp_path / "apn", data=shapes)
    assert type(t.model).__name__ == "APN" and isinstance(t.optimizer, torch.optim.Adam)


def test_cli_train_laat_with_encoder(tmp_path, encoder, capsys):
    out = tmp_path / "cli"
    sets = [f"data.{k}={v}" for k, v in SHAPES.items()]
    argv = ["train", "laat", "--encoder", encoder, "--out", str(out), "--set", "epochs=1", "--set", "progress=false",
            "--set", "eval_pgd_steps=2", "--set", "gzsl_per_class=2", "--set", "pgd_steps=1", "--set", "eval_n_way=3",
            "--set", "eval_n_query=2", "--set", "eval_episodes=2"]
    for s in sets:
        argv += ["--set", s]
    assert cli_main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(FINAL_KEYS) <= set(res["final"])
    assert json.loads((out / "config.json").read_text())["engine"]["encoder"] == encoder
    assert cli_main(["train", "apn", "--encoder", "minilm", "--out", str(tmp_path / "x")]) == 2


def test_zslab_eval_on_a_laat_run(tmp_path, shapes, encoder):
    """`zslab eval` re-evaluates a LAAT run with the LAAT protocol (same numbers as training's
    final metrics) and `--attacks` runs the attacks on N-way episodes over the novel classes."""
    run = tmp_path / "run"
    final = train(cfg(encoder), run, data=shapes)
    assert cli_main(["eval", str(run)]) == 0
    again = json.loads((run / "metrics.json").read_text())["final"]
    for k in FINAL_KEYS:
        assert again[k] == pytest.approx(final[k], abs=1e-9), k
    assert cli_main(["eval", str(run), "--attacks", "fgsm,pgd5", "--eps", "8/255", "--max-images", "12"]) == 0
    rob = json.loads((run / "metrics.json").read_text())["final"]["robust"]
    assert rob["attacks"] == ["fgsm", "pgd5"] and rob["setting"].startswith("3-way")
    for name in ("fgsm", "pgd5"):
        assert 0.0 <= rob["robust"][name] <= rob["clean_on_attacked"][name] <= 1.0
    assert rob["worst"] <= min(rob["robust"].values()) + 1e-9
    assert json.loads((run / "metrics.json").read_text())["final"]["zs_clean"] == pytest.approx(final["zs_clean"])
