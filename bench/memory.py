"""Peak memory of adversarial training ÷ clean training, per method, same model and batch.

    python bench/memory.py [--steps 2]

For each configuration a trainer is built, one warm-up step is taken, then ``--steps`` steps are
measured. The figure is the peak of the autograd graph's **live saved activations** during a
training step: a ``saved_tensors_hooks`` pair counts every tensor autograd saves for backward
(parameters excluded) while it is alive, i.e. until its graph is freed — the part of training
memory that adversarial training multiplies (attack steps build graphs one after another; LAAT's
step holds the x+δ and the x forwards in one graph). It is exact and machine-independent on the
CPU, where the allocator has no peak counter. On CUDA ``torch.cuda.max_memory_allocated`` over
the measured steps is reported too. Prints one JSON document with each method's adversarial ÷
clean ratio (HAS vs APN, LAAT vs its clean A-CE step).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: zslab and bench

from bench.laat import anchor_file  # noqa: E402
from zslab.data import load_dataset  # noqa: E402
from zslab.train import Trainer, make_config  # noqa: E402
from zslab.data.batches import iterate_batches  # noqa: E402

CONFIGS = {
    "apn": ("apn", {}),
    "has": ("has", {"has_adv_prob": 1.0}),
    "laat_clean": ("laat", {"pgd_steps": 0, "alpha": 0.0}),
    "laat": ("laat", {}),
}


class SavedActivationMeter:
    """Live bytes of tensors saved for backward (parameters excluded), and their peak."""

    def __init__(self):
        self.live = 0
        self.peak = 0

    def _pack(self, t):
        meter = self

        class Box:
            __slots__ = ("t", "n")

            def __init__(self, t):
                self.t = t
                self.n = 0 if isinstance(t, torch.nn.Parameter) else t.numel() * t.element_size()
                meter.live += self.n
                meter.peak = max(meter.peak, meter.live)

            def __del__(self):
                meter.live -= self.n

        return Box(t)

    @staticmethod
    def _unpack(box):
        return box.t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)


def measure(name: str, data, tmp: Path, steps: int) -> dict:
    method, over = CONFIGS[name]
    extra = {"encoder": anchor_file(data, tmp), "anchor_cache": False} if method == "laat" else {}
    cfg = make_config(method, "smoke", overrides={"progress": False, **extra, **over})
    tr = Trainer(cfg, tmp / name, data=data)
    x, y = next(iter(iterate_batches(data.splits["train"], cfg["batch_size"], shuffle=True,
                                     generator=torch.Generator().manual_seed(0))))
    x, t = x.to(tr.device), tr.label_map[y].to(tr.device)
    tr.strategy.train_step(tr, x, t)  # warm-up
    cuda = tr.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(tr.device)
        base = torch.cuda.memory_allocated(tr.device)
    meter = SavedActivationMeter()
    with meter.hooks():
        for _ in range(steps):
            tr.strategy.train_step(tr, x, t)
    out = {"saved_activation_peak_bytes": meter.peak, "batch": list(x.shape)}
    if cuda:
        torch.cuda.synchronize()
        out["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(tr.device) - base
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args(argv)
    data = load_dataset("shapes", **make_config("apn", "smoke")["data"])
    with tempfile.TemporaryDirectory() as tmp:
        res = {name: measure(name, data, Path(tmp), args.steps) for name in CONFIGS}
    key = "saved_activation_peak_bytes"
    out = {"benchmark": "peak memory of adversarial training / clean training (same batch)",
           "saved_activation_peak_mib": {k: round(v[key] / 2**20, 2) for k, v in res.items()},
           "has_over_apn": round(res["has"][key] / res["apn"][key], 3),
           "laat_over_clean": round(res["laat"][key] / res["laat_clean"][key], 3),
           "batch": res["apn"]["batch"], "steps": args.steps}
    if "cuda_peak_bytes" in res["apn"]:
        out["cuda_has_over_apn"] = round(res["has"]["cuda_peak_bytes"] / res["apn"]["cuda_peak_bytes"], 3)
        out["cuda_laat_over_clean"] = round(res["laat"]["cuda_peak_bytes"] / res["laat_clean"]["cuda_peak_bytes"], 3)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
