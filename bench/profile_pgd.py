"""Where PGD-k's time goes: a torch.profiler breakdown of zslab's PGD and torchattacks' PGD on the
model and batch of ``bench/attacks.py`` (Conv4-64, 3×32×32, batch 128, ε = 8/255, k = 10).

Every aten op's self time is put in one of three buckets: ``model`` (the network's forward and
backward: convolutions, batch norm, ReLU, pooling, the linear layer and their gradients),
``loss`` (cross-entropy and its gradient), autograd's gradient buffers counted with the model,
and ``attack`` (everything else: the random start, the signed step, the projection, copies). The JSON gives each bucket as a share of the profiled
time and the attack bucket of zslab ÷ torchattacks — the profile behind the PGD-10 ratio of
``bench/attacks.py`` (GUIDE §8: ratios from one process, no single wall time).

    python bench/profile_pgd.py [--reps 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.attacks import synthetic  # noqa: E402
from bench.common import cpu_model  # noqa: E402
from zslab.attacks import PGD  # noqa: E402
from zslab.models.conv4 import Conv4  # noqa: E402

# substrings of the network's ops (mkldnn_convolution, native_batch_norm, threshold_backward, …)
_MODEL_IN = ("conv", "batch_norm", "relu", "threshold", "max_pool", "addmm", "linear", "adaptive", "avg_pool")
# op names that are the network's only as whole names (too short to match as substrings)
_MODEL_EXACT = ("mm", "t", "mean", "sum", "view", "reshape", "flatten", "expand", "as_strided", "transpose",
                "permute", "contiguous", "_unsafe_view",
                # ReLU in place, and autograd's gradient buffers (ones for dL/dL, zeroed grads)
                "clamp_min_", "fill_", "zero_", "zeros_like", "ones_like", "empty", "empty_like", "empty_strided")
_LOSS = ("cross_entropy", "log_softmax", "nll_loss", "_log_softmax")


def bucket(name: str) -> str:
    n = name.removeprefix("aten::").lower()
    if any(n.startswith(k) or k in n for k in _LOSS):
        return "loss"
    if any(k in n for k in _MODEL_IN) or n in _MODEL_EXACT or "backward" in n:
        return "model"
    return "attack"


def breakdown(fn, reps: int) -> dict:
    fn()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            fn()
    totals = {"model": 0.0, "loss": 0.0, "attack": 0.0}
    top = {}
    for ev in prof.key_averages():
        if not ev.key.startswith("aten::"):
            continue
        b = bucket(ev.key)
        totals[b] += ev.self_cpu_time_total
        if b == "attack":
            top[ev.key] = ev.self_cpu_time_total
    total = sum(totals.values())
    shares = {k: round(v / total, 4) for k, v in totals.items()}
    attack_ops = {k: round(v / total, 4) for k, v in sorted(top.items(), key=lambda kv: -kv[1])[:6]}
    return {"shares": shares, "attack_ops": attack_ops, "total_us": total}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    import torchattacks as ta

    torch.manual_seed(0)
    model = Conv4(width=64, out_dim=10, in_size=32).eval()
    x, y = synthetic(128, 10, 32, seed=1)
    ours = PGD(model, 8 / 255, alpha=2 / 255, steps=args.steps, seed=0)
    theirs = ta.PGD(model, eps=8 / 255, alpha=2 / 255, steps=args.steps, random_start=True)

    def floor():
        for _ in range(args.steps):
            xi = x.clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xi), y), xi)

    res = {name: breakdown(fn, args.reps) for name, fn in
           (("k_fwd_bwd", floor), ("zslab", lambda: ours(x, y)), ("torchattacks", lambda: theirs(x, y)))}
    out = {"machine": {"cpu": cpu_model(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
           "setting": f"Conv4-64, batch 128, 3x32x32, PGD-{args.steps}, eps 8/255, {args.reps} profiled calls each",
           "breakdown": {k: {"shares": v["shares"], "top_attack_ops": v["attack_ops"]} for k, v in res.items()},
           "profiled_time_ratio": {
               "zslab/torchattacks": round(res["zslab"]["total_us"] / res["torchattacks"]["total_us"], 3),
               "zslab/k_fwd_bwd": round(res["zslab"]["total_us"] / res["k_fwd_bwd"]["total_us"], 3),
               "torchattacks/k_fwd_bwd": round(res["torchattacks"]["total_us"] / res["k_fwd_bwd"]["total_us"], 3)},
           "attack_bucket_ratio_zslab/torchattacks": round(
               res["zslab"]["shares"]["attack"] * res["zslab"]["total_us"]
               / max(res["torchattacks"]["shares"]["attack"] * res["torchattacks"]["total_us"], 1e-9), 3)}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
