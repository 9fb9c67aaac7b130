"""Multi-process training with torch.distributed (gloo on CPU), launched by torchrun."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zslab.train import distributed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def torchrun(args, nproc=2, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert r.returncode == 0, f"torchrun failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_single_process_context_is_a_no_op(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(distributed, "_CONTEXT", None)
    ctx = distributed.setup("cpu")
    assert not ctx.enabled and ctx.is_main and ctx.world_size == 1
    idx = torch.arange(7)
    assert torch.equal(ctx.shard(idx), idx)
    assert ctx.mean_dict({"a": 1.5}, torch.device("cpu")) == {"a": 1.5}


def test_shards_partition_the_global_batch_in_order():
    idx = torch.arange(10) * 3
    parts = [distributed.DistContext(rank=r, world_size=2).shard(idx) for r in range(2)]
    assert [len(p) for p in parts] == [5, 5]
    assert torch.equal(torch.cat(parts), idx)
    parts3 = [distributed.DistContext(rank=r, world_size=3).shard(idx) for r in range(3)]
    assert torch.equal(torch.cat(parts3), idx) and [len(p) for p in parts3] == [4, 4, 2]


def test_bad_torchrun_environment_is_a_clear_error(monkeypatch):
    from zslab import ZSLabError

    monkeypatch.setattr(distributed, "_CONTEXT", None)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ZSLabError, match="RANK=3, WORLD_SIZE=2"):
        distributed.setup("cpu")
    monkeypatch.setattr(distributed, "_CONTEXT", None)


def test_gradient_averaging_equals_one_process_on_the_concatenated_batch(tmp_path):
    """DDP over 2 gloo ranks, each on half of every global batch, ends with the parameters of one
    process stepping on the whole batches (SGD with momentum, 5 steps), and the rank-averaged
    loss equals the single-process loss."""
    torchrun([str(HERE / "ddp_worker.py"), str(tmp_path / "ddp.pt")])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    subprocess.run([sys.executable, str(HERE / "ddp_worker.py"), str(tmp_path / "one.pt")], check=True, env=env,
                   timeout=300)
    ddp, one = torch.load(tmp_path / "ddp.pt"), torch.load(tmp_path / "one.pt")
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    for a, b in zip(ddp["params"], one["params"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert ddp["logs"] == pytest.approx(one["logs"], rel=1e-5)
    # teardown freed the process group: no gloo worker thread is left to race interpreter shutdown
    if ddp["backend_threads_after_teardown"] is not None:
        assert ddp["backend_threads_after_teardown"] == []
    # and the parameters did move (the comparison is not between two untrained models)
    torch.manual_seed(0)
    init = torch.nn.Linear(10, 16).weight
    assert (ddp["params"][0] - init).abs().max() > 1e-3


SMOKE = ["--set", "epochs=2", "--set", "progress=false", "--set", "data.train_per_class=12",
         "--set", "data.val_seen_per_class=4", "--set", "data.test_seen_per_class=4", "--set", "data.unseen_per_class=6",
         "--set", "data.image_size=16", "--set", "batch_size=32", "--set", "model.width=8"]


@pytest.mark.parametrize("method", ["apn", "has"])
def test_torchrun_two_gloo_processes_train_and_rank0_writes_a_complete_run(tmp_path, method):
    run = tmp_path / "run"
    torchrun(["-m", "zslab", "train", method, "--preset", "smoke", "--out", str(run), *SMOKE])
    names = sorted(p.name for p in run.iterdir())
    assert names == ["best.pt", "config.json", "last.pt", "metrics.json"], names  # no stray per-rank files
    m = json.loads((run / "metrics.json").read_text())
    assert m["final"]["world_size"] == 2 and len(m["history"]) == 2
    for k in ("zsl_t1", "gzsl_h"):
        assert 0.0 <= m["final"][k] <= 1.0
    assert all(r["train_loss"] == r["train_loss"] for r in m["history"])  # finite, averaged over ranks
    ckpt = torch.load(run / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 1
    # resume works the same way under torchrun: a finished run resumes to the same final metrics
    torchrun(["-m", "zslab", "train", method, "--preset", "smoke", "--out", str(run), "--resume", *SMOKE])
    again = json.loads((run / "metrics.json").read_text())
    assert again["final"]["zsl_t1"] == pytest.approx(m["final"]["zsl_t1"])
    assert len(again["history"]) == 2


def test_torchrun_laat_two_forwards_per_step_under_ddp(tmp_path):
    """LAAT's step backpropagates through two forwards (x+δ and x, for the smoothness term) of
    the DDP-wrapped model; two gloo ranks train it and rank 0 writes the LAAT final metrics."""
    import numpy as np

    from zslab.data import load_dataset

    opts = dict(train_per_class=12, val_seen_per_class=4, test_seen_per_class=4, unseen_per_class=6, image_size=16)
    shapes = load_dataset("shapes", **opts)
    np.save(tmp_path / "anchors.npy", shapes.class_attributes.numpy().astype(np.float32))
    (tmp_path / "anchors.txt").write_text("\n".join(shapes.class_names) + "\n")
    run = tmp_path / "run"
    torchrun(["-m", "zslab", "train", "laat", "--preset", "smoke", "--out", str(run),
              "--encoder", f"file:{tmp_path / 'anchors.npy'}", "--set", "epochs=1", "--set", "progress=false",
              "--set", "batch_size=32", "--set", "pgd_steps=2", "--set", "eval_pgd_steps=2",
              "--set", "eval_episodes=4", "--set", "eval_episodes_attacked=2", "--set", "gzsl_per_class=2",
              "--set", "eval_n_query=4", "--set", "anchor_cache=false",
              *[a for k, v in opts.items() for a in ("--set", f"data.{k}={v}")]])
    m = json.loads((run / "metrics.json").read_text())
    assert m["final"]["world_size"] == 2
    assert m["final"]["zs_pgd"] <= m["final"]["zs_clean_attacked"]
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "config.json", "last.pt", "metrics.json"]


ENGINE_THEN_THREADS = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import torch.distributed as dist
from ddp_worker import backend_threads
from zslab.cli import main
from zslab.train import distributed

seen = {}
teardown = distributed.teardown

def recording_teardown():
    teardown()
    seen["threads_after_teardown"] = backend_threads()

distributed.teardown = recording_teardown
rc = main(sys.argv[3:])
report = {"rc": rc, "threads": backend_threads(), "initialized": dist.is_initialized(), **seen}
with open(sys.argv[2] + "." + os.environ["RANK"], "w") as f:
    json.dump(report, f)
"""


def test_engine_run_under_torchrun_frees_the_process_group_before_exit(tmp_path):
    """When ``zslab train`` under torchrun leaves the process group, no gloo thread is left on any rank. A group kept
    alive (by a DistributedDataParallel wrapper, or by ``torch.distributed.nn.functional`` imported
    after init, whose default arguments bind the default group) keeps gloo's worker threads into
    interpreter shutdown, where one releasing a collective's tensor aborts the rank with SIGABRT
    after the run has finished; that happened in about 1 run in 10 under CPU contention."""
    script = tmp_path / "engine_then_threads.py"
    script.write_text(ENGINE_THEN_THREADS)
    report = tmp_path / "threads"
    torchrun([str(script), str(HERE), str(report), "train", "apn", "--preset", "smoke", "--out", str(tmp_path / "run"),
              "--set", "epochs=1", *SMOKE[2:]])
    for rank in (0, 1):
        r = json.loads(Path(f"{report}.{rank}").read_text())
        assert r["rc"] == 0 and not r["initialized"] and "threads_after_teardown" in r
        if r["threads"] is not None:  # Linux: /proc/self/task lists the threads
            assert r["threads_after_teardown"] == [], f"rank {rank} still runs {r['threads_after_teardown']}"
            assert r["threads"] == []
