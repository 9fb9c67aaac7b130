"""Throughput of 2-process gloo DDP training ÷ 1 process on this machine (report; no goal).

    python bench/ddp.py [--method apn] [--epochs 2]

Runs ``zslab train METHOD --preset smoke`` once as a plain process and once under
``torchrun --standalone --nproc_per_node=2`` (gloo on the CPU, NCCL on GPUs), with the same
global batch, and compares training images per second of the training passes
(``train_epoch_seconds`` in the run's history; validation excluded; the first epoch dropped as
warm-up when there are several). Each process gets ``cores // nproc`` intra-op threads, so
both runs use the whole machine. Prints one JSON document.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model  # noqa: E402


def run(method: str, out: Path, nproc: int, epochs: int, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    args = ["-m", "zslab", "train", method, "--preset", "smoke", "--out", str(out),
            "--set", f"epochs={epochs}", "--set", "progress=false"]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    else:
        cmd = [sys.executable, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    m = json.loads((out / "metrics.json").read_text())
    secs = [h["train_epoch_seconds"] for h in m["history"]]
    secs = secs[1:] if len(secs) > 1 else secs
    return {"train_epoch_s": statistics.median(secs), "epochs_s": secs, "world_size": m["final"].get("world_size", 1),
            "zsl_t1": m["final"].get("zsl_t1")}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="apn")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--nproc", type=int, default=2)
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        one = run(args.method, Path(tmp) / "one", 1, args.epochs, cores)
        many = run(args.method, Path(tmp) / "ddp", args.nproc, args.epochs, max(1, cores // args.nproc))
    out = {"benchmark": f"{args.nproc}-process gloo DDP throughput / 1 process ({args.method} smoke, same global batch)",
           "ratio": round(one["train_epoch_s"] / many["train_epoch_s"], 3), "one_process": one,
           f"{args.nproc}_processes": many, "cores": cores, "cpu": cpu_model()}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
