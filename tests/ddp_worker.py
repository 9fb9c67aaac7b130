"""Worker for tests/test_distributed.py, run under torchrun (2 gloo processes on CPU).

Trains a small BatchNorm-free MLP for a few SGD steps the way the engine does under torchrun —
:func:`zslab.train.distributed.setup`, DistributedDataParallel, every rank drawing the same
permutation and taking its :meth:`DistContext.shard` of each global batch — and has rank 0 save
the final parameters, the rank-averaged logs and the gloo threads left after teardown. Run
without torchrun it is the single-process reference on the concatenated (global) batches.
"""
import sys
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from zslab.train import distributed


def main(out: str) -> None:
    ctx = distributed.setup("cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 4))
    train_model = DistributedDataParallel(model) if ctx.enabled else model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x_all, y_all = torch.randn(64, 10, generator=g), torch.randint(0, 4, (64,), generator=g)
    logs = []
    for step in range(5):
        order = torch.randperm(64, generator=g)[:16]  # the same global batch on every rank
        rows = ctx.shard(order)
        loss = nn.functional.cross_entropy(train_model(x_all[rows]), y_all[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        logs.append(ctx.mean_dict({"loss": float(loss.detach())}, torch.device("cpu"))["loss"])
    result = {"params": [p.detach().clone() for p in model.parameters()], "logs": logs,
              "world_size": ctx.world_size}
    is_main = ctx.is_main
    ctx.barrier()
    del train_model  # the DDP wrapper holds the process group; teardown frees it only once it is gone
    distributed.teardown()
    if is_main:
        result["backend_threads_after_teardown"] = backend_threads()
        torch.save(result, out)


def backend_threads() -> list[str] | None:
    """Names of this process's gloo threads (Linux /proc), None where /proc is not available.

    A process group still alive at interpreter shutdown keeps them; one of them releasing a
    collective's Python tensor during finalisation aborts the process (SIGABRT)."""
    tasks = sorted(Path("/proc/self/task").glob("*/comm"))
    if not tasks:
        return None
    return [n for n in (t.read_text().strip() for t in tasks) if "gloo" in n]


if __name__ == "__main__":
    main(sys.argv[1])
