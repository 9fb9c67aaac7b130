"""HAS training cost vs APN training: one epoch of each on the same model and data, one process.

    python bench/has.py            # CPU here; CUDA (with the engine's autocast) when present
    python bench/has.py --reps 5 --steps 3

Prints one JSON document. Both trainers use the shapes smoke preset (same data sizes, small CNN
of width 16, batch 64) and are built from the same seed, so they start from the same weights;
the two are interleaved so that load drift on a shared machine
hits both alike: each batch is run through the APN step and the HAS step back to back (order
alternating), an epoch's time is the sum over its batches, and the median of ``--reps`` epochs
after one warm-up epoch is reported (plus the median per-batch ratio).

``ratio`` = HAS epoch time ÷ APN epoch time. Its floor is T + 2 in units of one training step
(forward + backward + optimiser step): a HAS batch costs a clean step, T generation steps
(forward + backward to the input) and an adversarial step. The goal is ``ratio ≤ 1.1·(T+2)``
with the adversarial step always on (``has_adv_prob = 1``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: zslab and bench

from zslab.data import load_dataset  # noqa: E402
from zslab.train import Trainer, make_config  # noqa: E402
from bench.common import cpu_model, interleaved_epoch as interleaved  # noqa: E402


def interleaved_epoch(apn: Trainer, has: Trainer, epoch: int) -> tuple[list[float], list[float]]:
    """One epoch of each over the same batches, the two steps of each batch back to back (order
    alternating), so that load changes on a shared machine hit both alike."""
    ta, th = interleaved(([apn, has]), epoch)
    return ta, th


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="T, HAS generation steps")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads (default 1: fewer stalls on a shared 2-core machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    over = {"progress": False, "device": args.device}
    cfg_apn = make_config("apn", "smoke", overrides=over)
    cfg_has = make_config("has", "smoke", overrides={**over, "has_steps": args.steps, "has_adv_prob": 1.0})
    data = load_dataset("shapes", **cfg_apn["data"])
    with tempfile.TemporaryDirectory() as tmp:
        apn = Trainer(cfg_apn, Path(tmp) / "apn", data=data)
        has = Trainer(cfg_has, Path(tmp) / "has", data=data)
        interleaved_epoch(apn, has, 0)  # warm-up
        t_apn, t_has, per_batch = [], [], []
        for r in range(args.reps):
            ta, th = interleaved_epoch(apn, has, r + 1)
            t_apn.append(sum(ta))
            t_has.append(sum(th))
            per_batch += [b / a for a, b in zip(ta, th)]
    a, h = statistics.median(t_apn), statistics.median(t_has)
    floor = args.steps + 2
    ratio = h / a
    out = {
        "benchmark": "HAS epoch / APN epoch (same model, data, process)",
        "ratio": round(ratio, 3),
        "floor_T_plus_2": floor,
        "goal_max": round(1.1 * floor, 3),
        "meets_goal": ratio <= 1.1 * floor,
        "ratio_over_floor": round(ratio / floor, 3),
        "per_batch_ratio_median": round(statistics.median(per_batch), 3),
        "apn_epoch_s": round(a, 4),
        "has_epoch_s": round(h, 4),
        "apn_epochs_s": [round(t, 4) for t in t_apn],
        "has_epochs_s": [round(t, 4) for t in t_has],
        "T": args.steps,
        "has_adv_prob": 1.0,
        "train_images": len(data.splits["train"]),
        "batch_size": cfg_apn["batch_size"],
        "image_size": tuple(data.splits["train"].images.shape[-2:]),
        "model": cfg_apn["model"],
        "device": str(apn.device) if apn.device.type == "cpu" else torch.cuda.get_device_name(apn.device),
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "reps": args.reps,
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
