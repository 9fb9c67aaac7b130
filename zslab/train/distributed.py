"""Multi-process training with ``torch.distributed`` (launched by ``torchrun``).

``torchrun --nproc_per_node=N -m zslab train METHOD ...`` starts N processes; each reads its
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from the environment. :func:`setup` then joins the
process group (NCCL when the process has a CUDA device, gloo on CPU), picks the process's device
(``cuda:LOCAL_RANK`` or the CPU) and returns a :class:`DistContext`. A plain ``python -m zslab``
run gets a single-process context whose methods are no-ops, so the engine has one code path.

What the engine does with it (see :mod:`zslab.train.engine`):

* the model is wrapped in :class:`torch.nn.parallel.DistributedDataParallel` for the training
  forward/backward passes, which averages parameter gradients across ranks during backward;
  attacks and evaluation use the unwrapped module (no gradient hooks, no collectives);
* every rank draws the same per-epoch permutation (the epoch-seeded generator) and takes its
  own contiguous share of each *global* batch (:meth:`DistContext.shard`), so N processes with
  per-process batch B/N see exactly the batches of one process with batch B;
* per-batch logs are averaged across ranks (:meth:`DistContext.mean_dict`);
* only rank 0 writes checkpoints, metrics and logs; the others wait at a barrier, and every rank
  resumes from the same ``last.pt``.
"""
from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from zslab import ZSLabError

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    """True when the torchrun/torch.distributed environment variables are present."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


@dataclass
class DistContext:
    """Rank/world information of this process; a world of 1 when not distributed."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, global_index: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of a global batch of indices.

        Rank r of N takes rows ``[r·⌈B/N⌉, (r+1)·⌈B/N⌉)``; with B divisible by N every rank gets
        B/N rows, and the concatenation over ranks is the global batch in order.
        """
        if not self.enabled:
            return global_index
        per = -(-len(global_index) // self.world_size)
        return global_index[self.rank * per:(self.rank + 1) * per]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def mean_dict(self, values: dict[str, float], device: torch.device) -> dict[str, float]:
        """Average scalar logs across ranks (one all-reduce for the whole dict, keys in sorted order)."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= self.world_size
        return dict(zip(keys, t.tolist()))

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def device(self, requested: torch.device) -> torch.device:
        """The process's device: ``cuda:LOCAL_RANK`` when training on CUDA, else as requested."""
        if self.enabled and requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return requested


_CONTEXT: DistContext | None = None


def setup(device_type: str = "cpu", timeout_s: float = 600.0) -> DistContext:
    """Join the process group if launched by torchrun (idempotent); else a single-process context.

    ``device_type`` is the type of the device the run trains on: NCCL for ``cuda``, gloo otherwise.
    """
    global _CONTEXT
    if _CONTEXT is not None:
        return _CONTEXT
    if not launched_by_torchrun():
        _CONTEXT = DistContext()
        return _CONTEXT
    try:
        rank, world, local = (int(os.environ[k]) if k in os.environ else 0 for k in ENV_KEYS)
    except ValueError:
        raise ZSLabError(f"malformed torchrun environment: {', '.join(f'{k}={os.environ.get(k)!r}' for k in ENV_KEYS)}") from None
    if world < 1 or not 0 <= rank < world:
        raise ZSLabError(f"torchrun environment has RANK={rank}, WORLD_SIZE={world}")
    if world == 1:
        _CONTEXT = DistContext()
        return _CONTEXT
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise ZSLabError("CUDA training requested under torchrun but CUDA is not available")
        torch.cuda.set_device(local)
    # Import before the group exists: torch.distributed.nn.functional (pulled in by DDP's
    # constructor through torch.distributed._shard) binds ``group=group.WORLD`` as a default
    # argument at import time. Imported after init, those defaults hold the default group for the
    # life of the interpreter, so destroy_process_group() cannot free it and gloo's worker threads
    # outlive it; one still releasing a collective's Python tensor when the interpreter finalises
    # aborts the process ("terminate called without an active exception", SIGABRT) after the run
    # has finished and torchrun reports the rank as failed.
    import torch.distributed.nn.functional  # noqa: F401

    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    _CONTEXT = DistContext(rank=rank, world_size=world, local_rank=local, backend=backend)
    return _CONTEXT


def teardown() -> None:
    """Leave the process group (called at the end of a distributed run).

    Callers drop their DistributedDataParallel wrappers first: the group's backend (and gloo's
    worker threads) is freed here only when nothing else holds the group, and a backend left to
    interpreter shutdown can abort the process (see :func:`setup`).
    """
    global _CONTEXT
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # a dropped wrapper caught in a reference cycle still holds the group
        dist.destroy_process_group()
    _CONTEXT = None
