"""Anchor-expansion speed: zslab's closed form vs. the explicit rotate / spherical-coordinates algorithm.

    python bench/anchors.py            # 1,000 anchors of dimension 768, 31 repetitions
    python bench/anchors.py --quick    # 7 repetitions

Prints one JSON document.  Timed: ``AnchorExpansion().fit(a).transform(a)`` on a float32 NumPy
array (and on a torch tensor) of 1,000 clustered unit anchors, dim 768 — the median of repeated
runs after a warm-up (goal: well under 50 ms), as wall time and as this process's CPU time.  For comparison, in the same process and
interleaved with it, LAAT Appendix C Algorithm 1 done literally: a dim x dim Householder matrix
``R`` with ``R v = e_1``, rotate, convert to hyperspherical coordinates (Eq. 1), scale the polar
angle, convert back, rotate back (vectorised NumPy, float64).  The paper builds ``R`` with the
Aguilera & Perez-Aguila algorithm, which costs more than one Householder reflection, so
``ratio_explicit_over_closed`` understates the saving relative to the paper's procedure.
The two outputs are also compared (``max_abs_diff``).  BLAS/OpenMP default to one thread
(override with OPENBLAS_NUM_THREADS / OMP_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# One BLAS/OpenMP thread unless the caller says otherwise: on a shared 2-core machine, spinning
# BLAS threads make timings (the explicit version's dim x dim products above all) erratic.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zslab.anchors import AnchorExpansion, mean_pairwise_cosine  # noqa: E402


def explicit_expansion(a: np.ndarray) -> np.ndarray:
    """Algorithm 1 with an explicit dim x dim rotation and hyperspherical coordinates."""
    a = np.asarray(a, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    n = a.shape[1]
    v = a.sum(0)
    v /= np.linalg.norm(v)
    w = v.copy()
    w[0] -= 1.0
    R = np.eye(n) - 2.0 * np.outer(w, w) / (w @ w)  # R v = e_1
    rot = a @ R.T
    # angles: phi_k = atan2(||x_{k+1:}||, x_k), k < n-1; the last one signed
    tail = np.sqrt(np.cumsum((rot ** 2)[:, ::-1], axis=1)[:, ::-1])  # tail[:, k] = ||x_{k:}||
    phi = np.arctan2(tail[:, 1:], rot[:, :-1])
    phi[:, -1] = np.arctan2(rot[:, -1], rot[:, -2])
    phi0 = phi[:, 0].max()
    phi[:, 0] *= (math.pi / 2) / phi0
    sin_prod = np.cumprod(np.sin(phi), axis=1)
    out = np.empty_like(rot)
    out[:, 0] = np.cos(phi[:, 0])
    out[:, 1:-1] = sin_prod[:, :-1] * np.cos(phi[:, 1:])
    out[:, -1] = sin_prod[:, -1]
    return out @ R


def closed(a):
    return AnchorExpansion().fit(a).transform(a)


def timed(fn, *args):
    """(wall seconds, CPU seconds of this process): on a shared machine the CPU time is the steadier."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=768)
    args = ap.parse_args(argv)
    reps = 7 if args.quick else 31

    rng = np.random.default_rng(0)
    centre = rng.standard_normal(args.dim)
    a = (centre / np.linalg.norm(centre) + 0.04 * rng.standard_normal((args.n, args.dim))).astype(np.float32)
    t = torch.from_numpy(a.copy())

    ours, ref = closed(a), explicit_expansion(a)  # warm-up and correctness
    closed(t)
    times = {"closed_numpy": [], "closed_torch": [], "explicit": []}
    for _ in range(reps):  # interleaved so load drift on a shared machine hits all alike
        times["closed_numpy"].append(timed(closed, a))
        times["closed_torch"].append(timed(closed, t))
        times["explicit"].append(timed(explicit_expansion, a))
    med = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    out = {
        "benchmark": "anchor expansion fit+transform",
        "n_anchors": args.n, "dim": args.dim, "input_dtype": "float32", "repetitions": reps,
        "closed_form_ms_median": round(med["closed_numpy"] * 1e3, 3),
        "closed_form_torch_ms_median": round(med["closed_torch"] * 1e3, 3),
        "explicit_rotation_ms_median": round(med["explicit"] * 1e3, 3),
        "ratio_explicit_over_closed": round(med["explicit"] / med["closed_numpy"], 2),
        "closed_form_cpu_ms_median": round(cpu["closed_numpy"] * 1e3, 3),
        "explicit_rotation_cpu_ms_median": round(cpu["explicit"] * 1e3, 3),
        "ratio_explicit_over_closed_cpu": round(cpu["explicit"] / cpu["closed_numpy"], 2),
        "goal_ms": 50.0,
        "meets_goal": med["closed_numpy"] * 1e3 < 50.0,
        "max_abs_diff_vs_explicit": float(np.abs(ours.astype(np.float64) - ref).max()),
        "mean_cos_before": round(mean_pairwise_cosine(a), 4),
        "mean_cos_after": round(mean_pairwise_cosine(ours), 4),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
