"""Fast paths of the training engine: time with each switch on ÷ off, side by side in one process.

    python bench/fastpaths.py                       # every switch, APN smoke + HAS smoke, 1 thread
    python bench/fastpaths.py --quick               # 1 timed repetition
    python bench/fastpaths.py --only amp_cpu,channels_last --preset full

Prints one JSON document. The switches (config keys of :class:`zslab.train.engine.Trainer`):

* ``channels_last``, ``amp_cpu`` (bf16 autocast on the CPU), ``compile`` (torch.compile):
  per-step figures. Two trainers built from the same seed (same weights) and the same data, one
  with the switch off and one with it on, run the same batches with their steps back to back
  (order alternating per batch, so load drift on a shared machine hits both alike). An epoch's
  time is the sum of its step times; after one warm-up epoch (for ``compile``: the compilation,
  reported as ``compile_warmup_s``) ``ratio`` = median over ``--reps`` epochs of on ÷ off. Measured
  on the APN model of ``--preset`` and on HAS steps (T = 3, adversarial step on) over the first
  ``--has-batches`` batches of each epoch (``method`` ``has``; ``--step-method laat`` for LAAT).
* ``num_workers``: the whole training epoch (``Trainer.train_epoch``: batch assembly + steps) with
  ``--workers`` persistent DataLoader workers vs in-process batching, epochs alternating.
* ``on_the_fly`` (the embedded ``shapes`` dataset): a training epoch on images rendered per batch
  vs on the cached tensors, epochs alternating; plus the cost of building the dataset: rendering
  every image up front (``generate_s``), loading the tensors from the ``cache_dir`` file
  (``load_cache_s``) and the on-the-fly constructor (``on_the_fly_build_s``); ``with_workers``:
  on the fly with the rendering in ``--workers`` DataLoader workers, ÷ the cached epoch.

A ratio below 1 means the switch pays. ``--threads`` (default 1: on a shared 2-core machine
single timings with 2 threads vary by 2×) sets torch's intra-op threads. ``--profile``: instead,
the per-op ``torch.profiler`` breakdown of an APN step for off / channels_last / amp_cpu / both.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: zslab and bench

from zslab.data import load_dataset  # noqa: E402
from zslab.train import Trainer, make_config  # noqa: E402
from zslab.data.batches import iterate_batches  # noqa: E402
from zslab.train.engine import find_cxx_compiler  # noqa: E402
from bench.common import machine, sync  # noqa: E402

STEP_SWITCHES = ("channels_last", "amp_cpu", "compile")
EPOCH_SWITCHES = ("num_workers", "on_the_fly")
SWITCHES = STEP_SWITCHES + EPOCH_SWITCHES


def _step_time(tr: Trainer, x, y) -> float:
    x = tr.prepare_batch(x)
    t = tr.label_map[y].to(tr.device)
    sync(tr.device)
    t0 = time.perf_counter()
    tr.strategy.train_step(tr, x, t)
    sync(tr.device)
    return time.perf_counter() - t0


def interleaved_steps(off: Trainer, on: Trainer, epoch: int, max_batches: int | None = None):
    """Per-batch step seconds of both trainers over the same batches of one epoch, back to back
    with the order alternating."""
    cfg = off.config
    for tr in (off, on):
        tr.rng.manual_seed(cfg["seed"] * 100003 + epoch)
    gen = torch.Generator().manual_seed(epoch)
    t_off, t_on = [], []
    for i, (x, y) in enumerate(iterate_batches(off.data.splits["train"], cfg["batch_size"], shuffle=True,
                                               generator=gen)):
        if max_batches is not None and i >= max_batches:
            break
        if i % 2 == 0:
            t_off.append(_step_time(off, x, y))
            t_on.append(_step_time(on, x, y))
        else:
            t_on.append(_step_time(on, x, y))
            t_off.append(_step_time(off, x, y))
    return t_off, t_on


def _summary(off: list[float], on: list[float], per_batch: list[float] | None = None) -> dict:
    a, b = statistics.median(off), statistics.median(on)
    out = {"ratio": round(b / a, 3), "off_s": round(a, 4), "on_s": round(b, 4),
           "off_all_s": [round(t, 4) for t in off], "on_all_s": [round(t, 4) for t in on]}
    if per_batch:
        out["per_batch_ratio_median"] = round(statistics.median(per_batch), 3)
    return out


def step_switch(switch: str, method: str, preset: str, reps: int, device: str, max_batches: int | None,
                data_cache: dict) -> dict:
    over = {"progress": False, "device": device}
    if method == "has":
        over.update(has_steps=3, has_adv_prob=1.0)
    cfg_off = make_config(method, preset, overrides=over)
    cfg_on = make_config(method, preset, overrides={**over, switch: True})
    key = (method, preset)
    if key not in data_cache:
        data_cache[key] = load_dataset(cfg_off["dataset"], **cfg_off["data"])
    data = data_cache[key]
    with tempfile.TemporaryDirectory() as tmp:
        off = Trainer(cfg_off, Path(tmp) / "off", data=data)
        on = Trainer(cfg_on, Path(tmp) / "on", data=data)
        if off.device.type == "cuda" and switch == "amp_cpu":
            return {"skipped": "amp_cpu acts on the CPU only (CUDA uses amp)"}
        t0 = time.perf_counter()
        w_off, w_on = interleaved_steps(off, on, 0, max_batches)  # warm-up (compilation for `compile`)
        warm = time.perf_counter() - t0
        e_off, e_on, per_batch = [], [], []
        for r in range(reps):
            a, b = interleaved_steps(off, on, r + 1, max_batches)
            e_off.append(sum(a))
            e_on.append(sum(b))
            per_batch += [q / p for p, q in zip(a, b)]
    out = _summary(e_off, e_on, per_batch)
    out.update(method=method, preset=preset, batches_per_epoch=len(a), batch_size=cfg_off["batch_size"],
               unit="sum of step times over the epoch's batches")
    if switch == "compile":
        out["compile_warmup_s"] = round(sum(w_on) - sum(w_off), 2)
        out["warmup_wall_s"] = round(warm, 2)
    return out


def _epoch_times(trainers: list, reps: int) -> list[list[float]]:
    """Whole training epochs of every trainer, one after another (the order rotating every
    repetition), after one warm-up epoch of each; per-trainer lists of seconds."""
    for tr in trainers:
        tr.train_epoch(0)
    times: list[list[float]] = [[] for _ in trainers]
    n = len(trainers)
    for r in range(reps):
        for j in range(n):
            k = (r + j) % n
            tr = trainers[k]
            sync(tr.device)
            t0 = time.perf_counter()
            tr.train_epoch(r + 1)
            sync(tr.device)
            times[k].append(time.perf_counter() - t0)
    return times


def _epoch_pair(off: Trainer, on: Trainer, reps: int) -> dict:
    t_off, t_on = _epoch_times([off, on], reps)
    return _summary(t_off, t_on)


def workers_switch(preset: str, reps: int, device: str, workers: int, data_cache: dict) -> dict:
    over = {"progress": False, "device": device}
    cfg_off = make_config("apn", preset, overrides=over)
    cfg_on = make_config("apn", preset, overrides={**over, "num_workers": workers})
    key = ("apn", preset)
    if key not in data_cache:
        data_cache[key] = load_dataset(cfg_off["dataset"], **cfg_off["data"])
    with tempfile.TemporaryDirectory() as tmp:
        off = Trainer(cfg_off, Path(tmp) / "off", data=data_cache[key])
        on = Trainer(cfg_on, Path(tmp) / "on", data=data_cache[key])
        out = _epoch_pair(off, on, reps)
        on.close()
    out.update(method="apn", preset=preset, workers=workers, unit="training epoch (batches + steps)")
    return out


def on_the_fly_switch(preset: str, reps: int, device: str, workers: int) -> dict:
    over = {"progress": False, "device": device}
    cfg_off = make_config("apn", preset, overrides=over)
    cfg_on = make_config("apn", preset, overrides={**over, "data.on_the_fly": True})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        data_off = load_dataset("shapes", **cfg_off["data"])
        gen_s = time.perf_counter() - t0
        load_dataset("shapes", **cfg_off["data"], cache_dir=tmp)  # writes the cache file
        t0 = time.perf_counter()
        load_dataset("shapes", **cfg_off["data"], cache_dir=tmp)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        data_on = load_dataset("shapes", **cfg_on["data"])
        otf_s = time.perf_counter() - t0
        n_train = len(data_on.splits["train"])
        # rendering the training split once, batch by batch: what on-the-fly adds to every epoch
        t0 = time.perf_counter()
        for _ in iterate_batches(data_on.splits["train"], cfg_on["batch_size"]):
            pass
        render_epoch_s = time.perf_counter() - t0
        off = Trainer(cfg_off, Path(tmp) / "off", data=data_off)
        on = Trainer(cfg_on, Path(tmp) / "on", data=data_on)
        # rendering in DataLoader workers, overlapped with the training steps
        cfg_w = make_config("apn", preset, overrides={**over, "data.on_the_fly": True, "num_workers": workers})
        on_w = Trainer(cfg_w, Path(tmp) / "on_workers", data=data_on)
        t_off, t_on, t_w = _epoch_times([off, on, on_w], reps)
        on_w.close()
    out = _summary(t_off, t_on)
    out["with_workers"] = {"workers": workers, "ratio": round(statistics.median(t_w) / statistics.median(t_off), 3),
                           "on_s": round(statistics.median(t_w), 4), "on_all_s": [round(t, 4) for t in t_w]}
    n_all = sum(len(s) for s in data_off.splits.values())
    out.update(method="apn", preset=preset, unit="training epoch (batches + steps)",
               images_all_splits=n_all, train_images=n_train,
               generate_s=round(gen_s, 3), load_cache_s=round(load_s, 3), on_the_fly_build_s=round(otf_s, 3),
               render_train_split_s=round(render_epoch_s, 3),
               generate_over_load_cache=round(gen_s / load_s, 2) if load_s > 0 else None)
    return out


PROFILE_OPS = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::max_pool2d_with_indices",
               "aten::max_pool2d_with_indices_backward", "aten::native_batch_norm",
               "aten::native_batch_norm_backward", "aten::threshold_backward", "aten::_to_copy", "aten::copy_")


def profile_steps(preset: str, device: str, steps: int = 8) -> dict:
    """Where the time of one APN training step goes with each per-step switch (and channels_last
    + amp_cpu together): ``torch.profiler`` self CPU milliseconds per op, median over ``steps``
    profiled steps on the same batch, the variants interleaved (order reversed every step)."""
    from collections import defaultdict

    from torch.profiler import ProfilerActivity, profile

    variants = {"off": {}, "channels_last": {"channels_last": True}, "amp_cpu": {"amp_cpu": True},
                "channels_last+amp_cpu": {"channels_last": True, "amp_cpu": True}}
    over = {"progress": False, "device": device}
    cfg0 = make_config("apn", preset, overrides=over)
    data = load_dataset(cfg0["dataset"], **cfg0["data"])
    x, y = next(iter(iterate_batches(data.splits["train"], cfg0["batch_size"], shuffle=True,
                                     generator=torch.Generator().manual_seed(0))))
    per_op = {k: defaultdict(list) for k in variants}
    totals: dict[str, list[float]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as tmp:
        trs = {k: Trainer(make_config("apn", preset, overrides={**over, **v}), Path(tmp) / k, data=data)
               for k, v in variants.items()}
        for tr in trs.values():  # warm-up
            for _ in range(2):
                tr.strategy.train_step(tr, tr.prepare_batch(x), tr.label_map[y].to(tr.device))
        names = list(trs)
        for r in range(steps):
            for k in (names if r % 2 == 0 else names[::-1]):
                tr = trs[k]
                xx, t = tr.prepare_batch(x), tr.label_map[y].to(tr.device)
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    tr.strategy.train_step(tr, xx, t)
                total = 0.0
                for ev in prof.key_averages():
                    per_op[k][ev.key].append(ev.self_cpu_time_total / 1000)
                    total += ev.self_cpu_time_total / 1000
                totals[k].append(total)
    return {"unit": "self CPU ms per APN step (median of profiled steps)", "preset": preset, "steps": steps,
            "total_ms": {k: round(statistics.median(v), 2) for k, v in totals.items()},
            "ops_ms": {op: {k: round(statistics.median(per_op[k][op]), 2) if per_op[k][op] else 0.0
                            for k in variants} for op in PROFILE_OPS}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python bench/fastpaths.py", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SWITCHES), help=f"comma-separated subset of {','.join(SWITCHES)}")
    ap.add_argument("--reps", type=int, default=3, help="timed epochs per switch after one warm-up")
    ap.add_argument("--quick", action="store_true", help="1 timed epoch; HAS over 4 batches")
    ap.add_argument("--preset", default="smoke", help="APN preset (smoke: width 16, 1536 images; full: width 32)")
    ap.add_argument("--step-method", default="has", choices=("has", "laat", "none"),
                    help="the adversarial method whose step is also timed for the per-step switches")
    ap.add_argument("--has-batches", type=int, default=8, help="batches per epoch timed for the HAS/LAAT step")
    ap.add_argument("--workers", type=int, default=1, help="DataLoader workers for the num_workers switch")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads (default 1: fewer stalls on a shared 2-core machine)")
    ap.add_argument("--profile", action="store_true",
                    help="only the per-op torch.profiler breakdown of one APN step per variant")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    bad = [n for n in names if n not in SWITCHES]
    if bad:
        raise SystemExit(f"unknown switch(es) {bad}; available: {', '.join(SWITCHES)}")
    reps = 1 if args.quick else args.reps
    adv_batches = 4 if args.quick else args.has_batches
    torch.set_num_threads(args.threads)
    cache: dict = {}
    results: dict = {}
    if args.profile:
        names = []
        results["profile"] = profile_steps(args.preset, args.device)
    for name in names:
        print(f"[fastpaths] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        if name in STEP_SWITCHES:
            if name == "compile" and find_cxx_compiler() is None and args.device != "cuda":
                results[name] = {"skipped": "no C++ compiler (torch.compile's CPU backend needs one)"}
                continue
            res = {"apn": step_switch(name, "apn", args.preset, reps, args.device, None, cache)}
            if args.step_method != "none":
                res[args.step_method] = step_switch(name, args.step_method, args.preset, reps, args.device,
                                                    adv_batches, cache)
            results[name] = res
        elif name == "num_workers":
            results[name] = workers_switch(args.preset, reps, args.device, args.workers, cache)
        else:
            results[name] = on_the_fly_switch(args.preset, reps, args.device, args.workers)
        print(f"[fastpaths] {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    dev = torch.device("cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    out = {"benchmark": "fast-path switch on ÷ off (same model, data, process; interleaved, medians)",
           "machine": {**machine(dev), "cxx": find_cxx_compiler(),
                       "cpu_bf16": "avx512_bf16" in Path("/proc/cpuinfo").read_text()
                       if Path("/proc/cpuinfo").exists() else None},
           "reps": reps, "results": results}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
