"""Fast-path switches of the engine (channels_last, amp_cpu, compile, num_workers, shapes
on_the_fly) and the `zslab bench` command.

Each switch trains a tiny smoke epoch and is compared with the switch off:

* channels_last, compile (aot_eager; inductor with ZSLAB_SLOW=1): the same arithmetic in another
  memory layout / traced graphs, so only float summation order differs: losses agree to 1e-4
  relative (observed ~1e-7);
* amp_cpu: bf16 has an 8-bit mantissa (relative rounding 2^-8 ≈ 0.4 % per operand), so the
  first-epoch loss may move by a few per cent: tolerance 5 % relative;
* num_workers: the same batches in the same order, hence bit-identical results.
"""
import json
import os
import sys
from pathlib import Path

import pytest
import torch

import zslab
from zslab import ZSLabError
from zslab.data.base import LazyRows
from zslab.data.shapes import ShapesConfig, _index_seed, make_shapes, render, render_indexed
from zslab.models import APN
from zslab.train import Trainer, load_run, make_config
from zslab.data.batches import iterate_batches
from zslab.train.engine import WorkerBatches, find_cxx_compiler

ROOT = Path(__file__).resolve().parents[1]


def cfg(**over):
    base = {"epochs": 1, "batch_size": 16, "eval_batch_size": 4, "model.width": 4, "lr": 3e-3,
            "progress": False, "lr_step": 2, "device": "cpu"}
    base.update(over)
    return make_config("apn", "smoke", overrides=base)


def fit(tmp_path, name, data, **over):
    tr = Trainer(cfg(**over), tmp_path / name, data=data)
    final = tr.fit()
    tr.close()
    hist = json.loads((tmp_path / name / "metrics.json").read_text())["history"]
    return tr, final, hist


def test_defaults_leave_switches_off():
    c = make_config("apn", "smoke")
    assert (c["channels_last"], c["amp_cpu"], c["compile"], c["num_workers"]) == (False, False, False, 0)
    from zslab.train.config import LATE_KEYS

    assert {"channels_last", "amp_cpu", "compile", "num_workers"} <= set(LATE_KEYS)
    with pytest.raises(ZSLabError, match="num_workers"):
        make_config("apn", "smoke", overrides={"num_workers": -1})


def test_channels_last_matches_off(tmp_path, tiny_data):
    _, f0, h0 = fit(tmp_path, "off", tiny_data)
    tr, f1, h1 = fit(tmp_path, "on", tiny_data, channels_last=True)
    convs = [m for m in tr.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert not all(m.weight.is_contiguous() for m in convs)  # really another layout
    x = tr.prepare_batch(torch.rand(2, 3, 16, 16))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert h1[0]["train_loss"] == pytest.approx(h0[0]["train_loss"], rel=1e-4)
    assert h1[0]["val_h"] == pytest.approx(h0[0]["val_h"], abs=1e-6)
    assert f1["zsl_t1"] == pytest.approx(f0["zsl_t1"], abs=1e-6)


def test_amp_cpu_runs_bf16_forwards_and_close_loss(tmp_path, tiny_data):
    tr0, _, h0 = fit(tmp_path, "off", tiny_data)
    with tr0.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32  # off: no autocast
    tr, _, h1 = fit(tmp_path, "on", tiny_data, amp_cpu=True)
    with tr.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
        out = tr.model(torch.rand(2, 3, 16, 16), tr.train_attributes)
    assert out["logits"].dtype == torch.bfloat16  # the forward really runs in bf16
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())  # weights stay float32
    assert h1[0]["train_loss"] != h0[0]["train_loss"]
    assert h1[0]["train_loss"] == pytest.approx(h0[0]["train_loss"], rel=0.05)


def test_num_workers_same_order_and_identical_result(tmp_path, tiny_data):
    ds = tiny_data.splits["train"]
    wb = WorkerBatches(ds, 10, num_workers=1)
    for epoch in (0, 1):  # a new order every epoch, followed by the persistent worker
        ref = list(iterate_batches(ds, 10, shuffle=True, generator=torch.Generator().manual_seed(epoch)))
        got = list(wb.epoch(shuffle=True, generator=torch.Generator().manual_seed(epoch)))
        assert len(got) == len(ref) == 5
        for (xr, yr), (xg, yg) in zip(ref, got):
            assert torch.equal(xr, xg) and torch.equal(yr, yg)
    assert not torch.equal(ref[0][1], list(iterate_batches(ds, 10, shuffle=True,
                                                           generator=torch.Generator().manual_seed(0)))[0][1])
    _, f0, h0 = fit(tmp_path, "off", tiny_data, epochs=2)
    _, f1, h1 = fit(tmp_path, "on", tiny_data, epochs=2, num_workers=1)
    strip = lambda h: [{k: v for k, v in r.items() if "seconds" not in k} for r in h]  # noqa: E731
    assert strip(h0) == strip(h1)
    assert {k: v for k, v in f0.items() if "seconds" not in k} == {k: v for k, v in f1.items() if "seconds" not in k}


def _check_compiled_run(tmp_path, tiny_data, backend):
    _, f0, h0 = fit(tmp_path, "off", tiny_data)
    tr, f1, h1 = fit(tmp_path, "on", tiny_data, compile=backend)
    assert tr.model._compiled_call_impl is not None  # really compiled
    assert h1[0]["train_loss"] == pytest.approx(h0[0]["train_loss"], rel=1e-4)
    assert f1["zsl_t1"] == pytest.approx(f0["zsl_t1"], abs=1e-6)
    ckpt = torch.load(tmp_path / "on" / "best.pt", map_location="cpu", weights_only=False)
    assert not [k for k in ckpt["model"] if "_orig_mod" in k]
    plain = APN.from_config(ckpt["model_config"], tiny_data.num_attributes)
    plain.load_state_dict(ckpt["model"])  # strict: the same keys as an uncompiled model
    _, _, model, _ = load_run(tmp_path / "on", data=tiny_data, device="cpu")
    x = torch.rand(3, 3, 16, 16)
    A = tiny_data.class_attributes
    with torch.no_grad():
        assert torch.allclose(model(x, A)["logits"], plain.eval()(x, A)["logits"])
    torch._dynamo.reset()


def test_compile_aot_eager_matches_off_and_checkpoint_loads_into_plain_model(tmp_path, tiny_data):
    """torch.compile with the aot_eager backend: dynamo traces the forward and AOTAutograd the
    backward (no C++ code generation, ~10 s), so the capture and the checkpoint path are tested
    on every machine."""
    _check_compiled_run(tmp_path, tiny_data, "aot_eager")


@pytest.mark.slow
@pytest.mark.skipif(find_cxx_compiler() is None, reason="torch.compile's inductor backend on the CPU needs a C++ "
                                                        "compiler (none of $CXX, c++, g++, clang++ on PATH)")
@pytest.mark.skipif(os.environ.get("ZSLAB_SLOW") != "1",
                    reason="inductor compilation with a cold cache took 104 s for this tiny run on the 2-core CPU "
                           "(11 s with a warm inductor cache in /tmp); set ZSLAB_SLOW=1")
def test_compile_inductor_matches_off(tmp_path, tiny_data):
    _check_compiled_run(tmp_path, tiny_data, True)


def test_compile_config_errors(tmp_path, tiny_data):
    with pytest.raises(ZSLabError, match="not a torch.compile backend"):
        Trainer(cfg(compile="no_such_backend"), tmp_path / "a", data=tiny_data)
    with pytest.raises(ZSLabError, match="compile"):
        make_config("apn", "smoke", overrides={"compile": 3})


def test_compile_failures_are_clear(tmp_path, tiny_data, monkeypatch):
    import zslab.train.engine as engine

    monkeypatch.setattr(engine, "find_cxx_compiler", lambda: None)
    with pytest.raises(ZSLabError, match="C\\+\\+ compiler.*compile=false"):
        Trainer(cfg(compile=True), tmp_path / "a", data=tiny_data)
    monkeypatch.undo()

    def broken_backend(gm, example_inputs):
        raise RuntimeError("backend exploded")

    orig = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: orig(self, backend=broken_backend))
    monkeypatch.setattr(engine, "find_cxx_compiler", lambda: "/usr/bin/c++")
    tr = Trainer(cfg(compile=True), tmp_path / "b", data=tiny_data)
    with pytest.raises(ZSLabError, match="torch.compile of the model failed.*backend exploded.*compile=false"):
        tr.fit()
    torch._dynamo.reset()


# ---------------------------------------------------------------------------- shapes on the fly

SMALL = dict(n_train_classes=4, n_val_classes=2, n_unseen_classes=2, train_per_class=6, val_seen_per_class=2,
             test_seen_per_class=2, unseen_per_class=3, image_size=16)


def test_on_the_fly_same_splits_deterministic_images(tmp_path):
    cached = make_shapes(**SMALL)
    lazy = make_shapes(**SMALL, on_the_fly=True, cache_dir=str(tmp_path))
    assert not list(tmp_path.iterdir())  # on-the-fly data is never cached
    assert ShapesConfig(**SMALL, on_the_fly=True).cache_key() == ShapesConfig(**SMALL).cache_key()
    assert torch.equal(lazy.class_attributes, cached.class_attributes)
    for s, ds in cached.splits.items():
        lz = lazy.splits[s]
        assert isinstance(lz.images, LazyRows) and tuple(lz.images.shape) == tuple(ds.images.shape)
        assert torch.equal(lz.labels, ds.labels) and torch.equal(lz.extras["values"], ds.extras["values"])
        assert torch.equal(lz.extras["attributes"], ds.extras["attributes"])
    tr = lazy.splits["train"]
    n = len(tr)
    full = tr.images[torch.arange(n)]
    assert full.dtype == torch.uint8 and full.shape == (n, 3, 16, 16)
    # per-index randomness: an image does not depend on the batch it is rendered in
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    shuffled = tr.images[perm]
    assert (shuffled.int() - full[perm].int()).abs().max() <= 1
    assert (shuffled != full[perm]).float().mean() < 1e-3
    single = torch.stack([tr.images[i] for i in range(5)])
    assert (single.int() - full[:5].int()).abs().max() <= 1
    assert torch.equal(tr.images[3:7], tr.images[torch.tensor([3, 4, 5, 6])])  # same call twice: identical
    # not the cached images (a different sample of the same attribute values), see render_indexed
    assert not torch.equal(full, cached.splits["train"].images)
    masks = tr.extras["part_masks"][:]
    assert masks.shape == (n, 2, 16, 16) and masks.dtype == torch.bool and masks.any()
    assert not (masks[:, 0] & masks[:, 1]).any()
    with pytest.raises(IndexError):
        tr.images[n]


def test_render_indexed_is_render_with_a_per_image_seed():
    """Image i of render_indexed = render() of that one image from a generator seeded per index:
    the same draws in the same order and the same pixel arithmetic."""
    g = torch.Generator().manual_seed(0)
    values = torch.stack([torch.randint(0, k, (6,), generator=g) for k in (3, 4, 3, 2, 3, 4, 3, 2)], 1)
    idx = torch.tensor([5, 0, 17, 3, 9, 2])
    batch, bmasks = render_indexed(values, idx, base_seed=1234, image_size=20)
    for r, i in enumerate(idx.tolist()):
        one, omask = render(values[r:r + 1], torch.Generator().manual_seed(_index_seed(1234, i)), 20)
        assert (one[0].int() - batch[r].int()).abs().max() <= 1
        assert torch.equal(omask[0], bmasks[r])
    assert not torch.equal(batch[0], render_indexed(values[:1], torch.tensor([6]), 1234, 20)[0][0])


def test_on_the_fly_trains(tmp_path):
    data = make_shapes(**SMALL, on_the_fly=True)
    c = make_config("apn", "smoke", overrides={"epochs": 1, "batch_size": 8, "model.width": 4, "progress": False,
                                               "device": "cpu", "data.on_the_fly": True, "num_workers": 1})
    tr = Trainer(c, tmp_path / "r", data=data)
    final = tr.fit()
    tr.close()
    assert 0.0 <= final["zsl_t1"] <= 1.0
    hist = json.loads((tmp_path / "r" / "metrics.json").read_text())["history"]
    assert torch.isfinite(torch.tensor(hist[0]["train_loss"]))


# ---------------------------------------------------------------------------- zslab bench

def test_zslab_bench_help_and_errors(capsys, monkeypatch, tmp_path):
    from zslab.cli import main

    with pytest.raises(SystemExit) as e:
        main(["bench", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--only" in out and "--quick" in out
    with pytest.raises(SystemExit, match="unknown benchmark"):
        main(["bench", "--only", "nope"])
    # a non-editable install: no bench/ next to the package
    monkeypatch.setattr(zslab, "__file__", str(tmp_path / "site-packages" / "zslab" / "__init__.py"))
    assert main(["bench"]) == 2
    assert "bench/ folder" in capsys.readouterr().err


def test_fastpaths_bench_quick_json(capsys):
    sys.path.insert(0, str(ROOT))
    from bench.fastpaths import main

    threads = torch.get_num_threads()
    try:
        out = main(["--only", "channels_last", "--quick", "--step-method", "none"])
    finally:
        torch.set_num_threads(threads)  # the bench sets 1 thread; leave the session as it was
    res = out["results"]["channels_last"]["apn"]
    assert res["ratio"] > 0 and res["off_s"] > 0 and res["on_s"] > 0
    assert res["ratio"] == pytest.approx(res["on_s"] / res["off_s"], rel=0.01)
    printed = json.loads(capsys.readouterr().out)
    assert printed["results"]["channels_last"]["apn"]["ratio"] == res["ratio"]
    assert printed["machine"]["torch_threads"] == 1
