"""Shared pieces of the benchmarks: machine description and interleaved per-batch timing of
several trainers on the same batches (GUIDE §8: ratios measured side by side in one process)."""
from __future__ import annotations

import platform
import time
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: torch.device) -> dict:
    return {"device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "cpu": cpu_model(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_step(tr, x, t) -> float:
    """Wall time of one ``train_step`` of trainer ``tr`` on batch (x, t)."""
    sync(tr.device)
    t0 = time.perf_counter()
    tr.strategy.train_step(tr, x, t)
    sync(tr.device)
    return time.perf_counter() - t0


def interleaved_epoch(trainers: list, epoch: int) -> list[list[float]]:
    """One epoch of every trainer over the same batches, the trainers' steps of each batch back
    to back (order rotating per batch), so that load changes on a shared machine hit all alike.
    Returns per-trainer lists of per-batch seconds."""
    first = trainers[0]
    cfg = first.config
    for tr in trainers:
        tr.rng.manual_seed(cfg["seed"] * 100003 + epoch)
    from zslab.data.batches import iterate_batches

    gen = torch.Generator().manual_seed(epoch)
    times: list[list[float]] = [[] for _ in trainers]
    n = len(trainers)
    for i, (x, y) in enumerate(iterate_batches(first.data.splits["train"], cfg["batch_size"], shuffle=True,
                                               generator=gen)):
        x = x.to(first.device)
        t = first.label_map[y].to(first.device)
        for j in range(n):
            k = (i + j) % n
            times[k].append(timed_step(trainers[k], x, t))
    return times
