"""LAAT training cost vs clean training of the same model: one epoch of each, one process.

    python bench/laat.py [--reps 3] [--steps 7]

Prints one JSON document. Both trainers are LAAT strategies on the shapes smoke data with the same
Conv4-64 embedding model and anchors (the class-attribute vectors written to a temporary anchor
file, so no text encoder is loaded); the clean one has ``pgd_steps = 0`` and ``alpha = 0`` (a
plain A-CE step). Their steps on each batch run back to back (order alternating) and the median
of ``--reps`` epochs after a warm-up epoch is reported.

The floor of the ratio, in units of one training step (forward + backward + optimiser step):
T PGD steps (forward + backward to the input) + the training step on x+δ + the clean forward
of the smoothness term, whose backward is part of the same training step: T + 2 for α > 0
(:func:`zslab.methods.laat.laat_epoch_cost_floor`). The goal is ``ratio ≤ 1.1 × floor``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: zslab and bench

from bench.common import interleaved_epoch, machine  # noqa: E402
from zslab.data import load_dataset  # noqa: E402
from zslab.methods.laat import laat_epoch_cost_floor  # noqa: E402
from zslab.train import Trainer, make_config  # noqa: E402


def anchor_file(data, folder: Path) -> str:
    np.save(folder / "anchors.npy", data.class_attributes.numpy().astype(np.float32))
    (folder / "anchors.txt").write_text("\n".join(data.class_names) + "\n")
    return f"file:{folder / 'anchors.npy'}"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=7, help="T, PGD steps of the training attack")
    ap.add_argument("--alpha", type=float, default=3.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = make_config("laat", "smoke")
    data = load_dataset("shapes", **base["data"])
    with tempfile.TemporaryDirectory() as tmp:
        over = {"progress": False, "device": args.device, "encoder": anchor_file(data, Path(tmp)),
                "anchor_cache": False}
        cfg_clean = make_config("laat", "smoke", overrides={**over, "pgd_steps": 0, "alpha": 0.0})
        cfg_adv = make_config("laat", "smoke", overrides={**over, "pgd_steps": args.steps, "alpha": args.alpha})
        clean = Trainer(cfg_clean, Path(tmp) / "clean", data=data)
        adv = Trainer(cfg_adv, Path(tmp) / "laat", data=data)
        interleaved_epoch([clean, adv], 0)  # warm-up
        tc, ta, per_batch = [], [], []
        for r in range(args.reps):
            c, a = interleaved_epoch([clean, adv], r + 1)
            tc.append(sum(c))
            ta.append(sum(a))
            per_batch += [y / x for x, y in zip(c, a)]
    c, a = statistics.median(tc), statistics.median(ta)
    floor = laat_epoch_cost_floor(args.steps, args.alpha)
    ratio = a / c
    out = {"benchmark": "LAAT epoch / clean epoch (same model, data, process)", "ratio": round(ratio, 3),
           "floor": floor, "goal_max": round(1.1 * floor, 3), "meets_goal": ratio <= 1.1 * floor,
           "ratio_over_floor": round(ratio / floor, 3), "per_batch_ratio_median": round(statistics.median(per_batch), 3),
           "clean_epoch_s": round(c, 4), "laat_epoch_s": round(a, 4), "T": args.steps, "alpha": args.alpha,
           "model": cfg_adv["arch"], "train_images": len(data.splits["train"]), "batch_size": cfg_adv["batch_size"],
           "reps": args.reps, **machine(adv.device)}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
