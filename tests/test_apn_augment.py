"""Table-3 augmentations wired into APN/HAS training (config ``augment``) and the `paper` preset."""
import json

import pytest
import torch

import zslab.methods as strategies
import zslab.methods.apn as apn_mod
from zslab import ZSLabError
from zslab.cli import main
from zslab.data import load_dataset
from zslab.losses import cls_loss, loc_loss
from zslab.train import make_config
from zslab.train.engine import Trainer

SHAPES = dict(n_train_classes=6, n_val_classes=2, n_unseen_classes=3, train_per_class=6, val_seen_per_class=2,
              test_seen_per_class=2, unseen_per_class=4)


@pytest.fixture(scope="module")
def data():
    return load_dataset("shapes", **SHAPES)


def config(method="apn", **over):
    base = {"epochs": 1, "progress": False, "model.width": 4, "batch_size": 12}
    base.update(over)
    return make_config(method, "smoke", overrides=base)


def params(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


class LegacyAPN(strategies.Strategy):
    """APN's train_step as it was before the `augment` key existed (the reference)."""

    name = "apn"

    def train_step(self, engine, images, targets):
        engine.model.train()
        with engine.autocast():
            out = engine.model(images, engine.train_attributes)
            l_cls = cls_loss(out["logits"].float(), targets)
            l_loc = loc_loss(out["attr_local"].float(), engine.train_attributes[targets])
            loss = l_cls + engine.config["lambda_loc"] * l_loc
        engine.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        engine.optimizer.step()
        return {"loss": loss.detach()}


def test_augment_none_is_bit_identical_to_plain_apn(data, tmp_path):
    ref = Trainer(config(), tmp_path / "ref", data=data)
    ref.strategy = LegacyAPN()
    ref_logs = ref.train_epoch(0)
    new = Trainer(config(augment="none"), tmp_path / "new", data=data)
    assert new.strategy.augmentation is None
    new_logs = new.train_epoch(0)
    assert new_logs["train_loss"] == ref_logs["train_loss"]
    assert "train_aug_delta" not in new_logs
    a, b = params(ref), params(new)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a config written before the key existed (no 'augment') trains the same way
    old_cfg = config()
    old_cfg.pop("augment")
    old = Trainer(old_cfg, tmp_path / "old", data=data)
    old.train_epoch(0)
    c = params(old)
    assert all(torch.equal(a[k], c[k]) for k in a)


def _record_inputs(trainer):
    seen = []
    trainer.model.register_forward_pre_hook(lambda m, args: seen.append((m.training, args[0].detach().clone())))
    return seen


def test_colorjitter_changes_training_batches_not_evaluation(data, tmp_path):
    plain = Trainer(config(), tmp_path / "plain", data=data)
    jit = Trainer(config(augment="colorjitter0.4"), tmp_path / "jit", data=data)
    rec_p, rec_j = _record_inputs(plain), _record_inputs(jit)
    plain.fit()
    logs = jit.fit()
    train_p = [x for t, x in rec_p if t]
    train_j = [x for t, x in rec_j if t]
    assert len(train_p) == len(train_j) > 0
    for xp, xj in zip(train_p, train_j):   # same batch order, different pixels, still in [0, 1]
        assert xp.shape == xj.shape and not torch.equal(xp, xj)
        assert xj.min() >= 0 and xj.max() <= 1
    eval_p = [x for t, x in rec_p if not t]
    eval_j = [x for t, x in rec_j if not t]
    assert len(eval_p) == len(eval_j) > 0
    assert all(torch.equal(a, b) for a, b in zip(eval_p, eval_j))
    assert jit.history[0]["train_aug_delta"] > 0
    assert 0 <= logs["zsl_t1"] <= 1


@pytest.mark.parametrize("name", ["mixup", "snapmix"])
def test_mixing_uses_soft_targets_and_mixed_attributes(data, tmp_path, monkeypatch, name):
    calls, locs = [], []
    orig_sce, orig_loc = apn_mod.soft_cross_entropy, apn_mod.loc_loss

    def spy_sce(logits, soft, weights=None, reduction="mean"):
        calls.append((soft.detach().clone(), None if weights is None else weights.detach().clone()))
        return orig_sce(logits, soft, weights, reduction)

    def spy_loc(attr_local, target):
        locs.append(target.detach().clone())
        return orig_loc(attr_local, target)

    monkeypatch.setattr(apn_mod, "soft_cross_entropy", spy_sce)
    monkeypatch.setattr(apn_mod, "loc_loss", spy_loc)
    tr = Trainer(config(augment=name), tmp_path / name, data=data)
    tr.train_epoch(0)
    n_batches = -(-len(data.splits["train"]) // 12)
    assert len(calls) == len(locs) == n_batches
    soft = torch.cat([s for s, _ in calls])
    assert torch.allclose(soft.sum(1), torch.ones(len(soft)), atol=1e-5)
    assert (soft.max(1).values < 1 - 1e-6).any()             # genuinely mixed labels
    A = tr.train_attributes
    for (s, _), target in zip(calls, locs):                   # L_LOC target = mixture of φ(y)
        assert torch.allclose(target, s @ A, atol=1e-5)
    if name == "snapmix":                                     # ρ_a + ρ_b weights reach the loss
        w = torch.cat([w for _, w in calls])
        assert not torch.allclose(w, torch.ones_like(w))


def test_augmented_training_is_deterministic_and_resumable(data, tmp_path):
    a = Trainer(config(augment="cutmix", epochs=2), tmp_path / "a", data=data)
    a.fit()
    b = Trainer(config(augment="cutmix", epochs=2), tmp_path / "b", data=data)
    b.fit()
    pa, pb = params(a), params(b)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    # interrupted during the second epoch, then resumed: same weights as two epochs straight
    class Interrupted(Trainer):
        def train_epoch(self, epoch):
            if epoch == 1:
                raise KeyboardInterrupt
            return super().train_epoch(epoch)

    with pytest.raises(KeyboardInterrupt):
        Interrupted(config(augment="cutmix", epochs=2), tmp_path / "c", data=data).fit()
    c = Trainer(config(augment="cutmix", epochs=2), tmp_path / "c", resume=True, data=data)
    assert c.start_epoch == 1
    c.fit()
    pc = params(c)
    assert all(torch.equal(pa[k], pc[k]) for k in pa)
    # and the augmentation really acted (different weights from un-augmented training)
    p = Trainer(config(epochs=2), tmp_path / "p", data=data)
    p.fit()
    pp = params(p)
    assert any(not torch.equal(pa[k], pp[k]) for k in pa if pa[k].is_floating_point())


def test_has_clean_step_is_augmented(data, tmp_path):
    tr = Trainer(config("has", augment="grayscale0.4", has_steps=1), tmp_path / "has", data=data)
    logs = tr.train_epoch(0)
    assert logs["train_aug_delta"] > 0 and "train_has_delta" in logs


def test_bad_augmentation_name_lists_choices():
    with pytest.raises(ZSLabError, match="colorjitter0.2.*snapmix"):
        make_config("apn", "smoke", overrides=["augment=jitter"])
    with pytest.raises(ZSLabError, match="augment"):
        make_config("has", "smoke", overrides={"augment": 3})
    assert make_config("apn", "smoke", overrides=["augment=none"])["augment"] == "none"


def test_cli_train_with_augment(tmp_path, capsys):
    run = tmp_path / "run"
    tiny = [f"--set=data.{k}={v}" for k, v in SHAPES.items()]
    assert main(["train", "apn", "--out", str(run), "--set", "augment=cutmix", "--set", "epochs=1",
                 "--set", "model.width=4", "--set", "progress=false"] + tiny) == 0
    doc = json.loads((run / "config.json").read_text())
    assert doc["engine"]["augment"] == "cutmix" and doc["config"]["method"]["augment"] == "cutmix"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["history"][0]["train_aug_delta"] > 0
    assert main(["train", "apn", "--out", str(tmp_path / "bad"), "--set", "augment=blur"] + tiny) == 2
    assert "blur_low" in capsys.readouterr().err


# ---------------------------------------------------------------------------- paper preset

PAPER_HAS = {  # GUIDE §2 / official scripts: step (/255), λ_H(p), λ_REL, λ_att-mag, λ_att-ent
    "cub": (5, 0.1, 3.0, 1e-4, -1.0),
    "awa2": (4, 1.0, 0.1, 1e-4, -0.1),
    "sun": (2, 1.0, 0.1, 0.1, 0.1),
}


@pytest.mark.parametrize("dataset", ["cub", "awa2", "sun"])
def test_paper_preset_values(dataset):
    root = ["data.root=/data/images"]  # a real-format dataset needs its root (checked at config time)
    cfg = make_config("has", "paper", dataset=dataset, overrides=root)
    step, rob, rel, mag, ent = PAPER_HAS[dataset]
    assert cfg["has_step_size"] == pytest.approx(step / 255)
    assert (cfg["has_lambda_rob"], cfg["has_lambda_rel"], cfg["has_lambda_att_mag"], cfg["has_lambda_att_ent"]) \
        == (rob, rel, mag, ent)
    assert cfg["has_steps"] == 3 and cfg["has_adv_prob"] == 0.5 and cfg["has_eps"] is None
    for c in (cfg, make_config("apn", "paper", dataset=dataset, overrides=root)):
        assert c["model"]["backbone"] == "resnet101" and c["data"]["image_size"] == 448
        assert (c["lr"], c["betas"], c["lr_step"], c["lr_gamma"]) == (1e-4, [0.5, 0.999], 10, 0.8)
        assert (c["batch_size"], c["epochs"], c["augment"]) == (64, 30, "none")
    # overrides still apply on top of the per-dataset values
    assert make_config("has", "paper", dataset=dataset, overrides=root + ["has_lambda_rob=0.5"])["has_lambda_rob"] == 0.5
    # the smoke/full presets are untouched by the paper values
    assert make_config("has", "smoke", dataset=dataset, overrides=root)["has_lambda_rel"] == 0.1


def test_paper_preset_rejects_other_datasets():
    for method in ("apn", "has"):
        with pytest.raises(ZSLabError, match="cub, awa2, sun"):
            make_config(method, "paper", dataset="shapes")
    assert make_config("has", "paper", dataset="CUB", overrides=["data.root=/d"])["has_lambda_rel"] == 3.0
