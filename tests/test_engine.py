"""Training engine: run directory, determinism, checkpoints, resume, bad input."""
import json
import os

import pytest
import torch

from zslab import ZSLabError
from zslab.train import Trainer, load_run, make_config, train
from zslab.data.batches import iterate_batches
from zslab.utils.io import atomic_torch_save, load_checkpoint


def cfg(**over):
    base = {"epochs": 3, "batch_size": 16, "model.width": 4, "lr": 3e-3, "progress": False, "lr_step": 2}
    base.update(over)
    return make_config("apn", "smoke", overrides=base)


def test_train_writes_run_dir(tmp_path, tiny_data):
    final = train(cfg(), tmp_path / "run", data=tiny_data)
    run = tmp_path / "run"
    assert {"config.json", "metrics.json", "last.pt", "best.pt"} <= {p.name for p in run.iterdir()}
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    m = json.loads((run / "metrics.json").read_text())
    assert set(m) >= {"config", "history", "final"}
    assert len(m["history"]) == 3 and [r["epoch"] for r in m["history"]] == [1, 2, 3]
    for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "mu"):
        assert k in m["final"] and k in final
    for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"):
        assert 0.0 <= m["final"][k] <= 1.0
    # the best epoch is the one with the highest validation metric
    vals = [r["val_h"] for r in m["history"]]
    assert m["final"]["best_epoch"] == 1 + vals.index(max(vals))
    # learning-rate schedule x0.8 every lr_step=2 epochs
    assert m["history"][2]["lr"] == pytest.approx(m["history"][0]["lr"] * 0.8)


def test_training_learns_the_tiny_problem(tmp_path, tiny_data):
    final = train(cfg(epochs=8), tmp_path / "run", data=tiny_data)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["history"][-1]["train_acc"] > 0.9
    assert m["history"][-1]["train_loss"] < m["history"][0]["train_loss"]
    assert final["gzsl_s_uncalibrated"] > 0.75  # seen test images, no calibration
    assert final["zsl_t1"] > 0.75  # 2 unseen classes: chance is 0.5


def test_deterministic_on_cpu(tmp_path, tiny_data):
    a = train(cfg(epochs=2), tmp_path / "a", data=tiny_data)
    b = train(cfg(epochs=2), tmp_path / "b", data=tiny_data)
    ha = json.loads((tmp_path / "a" / "metrics.json").read_text())["history"]
    hb = json.loads((tmp_path / "b" / "metrics.json").read_text())["history"]
    strip = lambda h: [{k: v for k, v in r.items() if "seconds" not in k} for r in h]  # noqa: E731
    assert strip(ha) == strip(hb)
    assert {k: a[k] for k in a if "seconds" not in k} == {k: b[k] for k in b if "seconds" not in k}
    c = train(cfg(epochs=2, seed=1), tmp_path / "c", data=tiny_data)
    assert strip(json.loads((tmp_path / "c" / "metrics.json").read_text())["history"]) != strip(ha)


def test_resume_after_interruption_matches_uninterrupted(tmp_path, tiny_data, monkeypatch):
    full = train(cfg(epochs=4), tmp_path / "full", data=tiny_data)
    real = Trainer.train_epoch

    def interrupted(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg(epochs=4), tmp_path / "part", data=tiny_data)
    partial = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert len(partial["history"]) == 2 and partial["final"] == {}
    monkeypatch.setattr(Trainer, "train_epoch", real)
    resumed = train(cfg(epochs=4), tmp_path / "part", resume=True, data=tiny_data)
    h_full = json.loads((tmp_path / "full" / "metrics.json").read_text())["history"]
    h_res = json.loads((tmp_path / "part" / "metrics.json").read_text())["history"]
    key = lambda h: [(r["epoch"], r["train_loss"], r["val_h"], r["lr"]) for r in h]  # noqa: E731
    assert key(h_res) == key(h_full)
    assert resumed["zsl_t1"] == full["zsl_t1"] and resumed["gzsl_h"] == full["gzsl_h"]


def test_resume_refuses_a_different_config(tmp_path, tiny_data):
    train(cfg(epochs=1), tmp_path / "run", data=tiny_data)
    with pytest.raises(ZSLabError, match="different config.*lr"):
        Trainer(cfg(epochs=1, lr=0.1), tmp_path / "run", resume=True, data=tiny_data)
    with pytest.raises(ZSLabError, match="already holds a run"):
        Trainer(cfg(epochs=1), tmp_path / "run", data=tiny_data)


def test_corrupt_and_mismatched_checkpoints(tmp_path, tiny_data):
    train(cfg(epochs=1), tmp_path / "run", data=tiny_data)
    last = tmp_path / "run" / "last.pt"
    good = last.read_bytes()
    last.write_bytes(good[: len(good) // 2])
    with pytest.raises(ZSLabError, match="corrupt"):
        Trainer(cfg(epochs=1), tmp_path / "run", resume=True, data=tiny_data)
    last.write_bytes(b"not a checkpoint")
    with pytest.raises(ZSLabError, match="corrupt"):
        load_checkpoint(last)
    # a checkpoint from another model (different width) is refused with a clear message
    train(cfg(epochs=1, **{"model.width": 8}), tmp_path / "other", data=tiny_data)
    last.write_bytes((tmp_path / "other" / "last.pt").read_bytes())
    with pytest.raises(ZSLabError, match="another model"):
        Trainer(cfg(epochs=1), tmp_path / "run", resume=True, data=tiny_data)


def test_load_run_restores_best_weights(tmp_path, tiny_data):
    final = train(cfg(epochs=2), tmp_path / "run", data=tiny_data)
    config, data, model, ckpt = load_run(tmp_path / "run", data=tiny_data)
    assert ckpt["epoch"] + 1 == final["best_epoch"]
    assert not model.training


def test_atomic_writes_get_the_umask_mode(tmp_path):
    from zslab.utils.io import atomic_write_json

    old = os.umask(0o022)
    try:
        atomic_torch_save({"a": 1}, tmp_path / "c.pt")
        atomic_write_json({"a": 1}, tmp_path / "m.json")
        os.umask(0o077)
        atomic_write_json({"a": 1}, tmp_path / "private.json")
    finally:
        os.umask(old)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o644  # as open() would make it, not mkstemp's 0600
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    os.chmod(tmp_path / "m.json", 0o640)  # a mode the user set by hand survives a rewrite
    atomic_write_json({"a": 2}, tmp_path / "m.json")
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o640 and json.loads((tmp_path / "m.json").read_text()) == {"a": 2}
    assert not list(tmp_path.glob(".*.tmp"))


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "x.pt"
    atomic_torch_save({"a": 1}, p)

    def boom(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        atomic_torch_save({"a": 2}, p)
    monkeypatch.undo()
    assert torch.load(p) == {"a": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["x.pt"]


def test_unwritable_output_dir(tmp_path, tiny_data):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ZSLabError, match="not writable"):
        Trainer(cfg(), blocker / "run", data=tiny_data)


def test_bad_names_give_clear_errors():
    with pytest.raises(ZSLabError, match="unknown preset 'huge'"):
        make_config("apn", "huge")
    with pytest.raises(ZSLabError, match="unknown method"):
        make_config("nope", "smoke")
    with pytest.raises(ZSLabError, match="unknown config key 'epochz'"):
        make_config("apn", "smoke", overrides=["epochz=3"])
    with pytest.raises(ZSLabError, match=r"'train.epochs': .*greater than or equal to 1"):
        make_config("apn", "smoke", overrides=["epochs=0"])
    from zslab.data import load_dataset
    with pytest.raises(ZSLabError, match="unknown dataset 'cub2'"):
        load_dataset("cub2")


def test_overrides_parse_json_values():
    c = make_config("apn", "smoke", overrides=["lr=0.01", "amp=false", "model.backbone=resnet18", "betas=[0.9,0.99]"])
    assert c["lr"] == 0.01 and c["amp"] is False and c["model"]["backbone"] == "resnet18"
    assert c["betas"] == [0.9, 0.99]


def test_iterate_batches_covers_dataset_once(tiny_data):
    ds = tiny_data.splits["train"]
    g = torch.Generator().manual_seed(0)
    ys = torch.cat([y for _, y in iterate_batches(ds, 5, shuffle=True, generator=g)])
    assert sorted(ys.tolist()) == sorted(ds.labels.tolist())
    xs = torch.cat([x for x, _ in iterate_batches(ds, 7)])
    assert torch.equal(xs, ds.images.float())


def test_resume_accepts_a_run_written_before_a_key_existed(tmp_path, tiny_data):
    """A config.json lacking keys added later (e.g. augment, sync_bn) resumes when the new run keeps
    them at their defaults, and is refused when it changes one."""
    run = tmp_path / "run"
    first = train(cfg(epochs=2), run, data=tiny_data)
    old = json.loads((run / "config.json").read_text())["engine"]  # written as an older zslab wrote it: flat
    for k in ("augment", "sync_bn"):
        old.pop(k)
    (run / "config.json").write_text(json.dumps(old))
    again = train(cfg(epochs=2), run, resume=True, data=tiny_data)
    assert again["zsl_t1"] == first["zsl_t1"]
    with pytest.raises(ZSLabError, match="augment"):
        train(cfg(epochs=2, augment="cutout"), run, resume=True, data=tiny_data)
