"""Worker for tests/test_distributed.py, run under torchrun (2 gloo processes on CPU).

Trains a small BatchNorm-free MLP for a few SGD steps the way the engine does under torchrun —
:func:`zslab.train.distributed.setup`, DistributedDataParallel, every rank drawing the same
permutation and taking its :meth:`DistContext.shard` of each global batch — and has rank 0 save
the final parameters and the rank-averaged logs. Run without torchrun it is the single-process
reference on the concatenated (global) batches.
"""
import sys

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
        logs.append(ctx.mean_dict({"loss": float(loss)}, torch.device("cpu"))["loss"])
    if ctx.is_main:
        torch.save({"params": [p.detach().clone() for p in model.parameters()], "logs": logs,
                    "world_size": ctx.world_size}, out)
    ctx.barrier()
    distributed.teardown()


if __name__ == "__main__":
    main(sys.argv[1])
