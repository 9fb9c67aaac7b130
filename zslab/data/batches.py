"""Batches of a dataset split: ``(images float [0, 1], labels)``, in a seeded order for training."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader


def iterate_batches(dataset, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
    """Yield (images float [0,1], labels) batches. Tensor-backed datasets (and lazily rendered ones
    with an indexable ``images``) are sliced directly (no per-item collation); any other Dataset
    goes through a DataLoader."""
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        for i in range(0, n, batch_size):
            yield gather_batch(dataset, order[i:i + batch_size])
    else:
        loader = DataLoader(torch.utils.data.Subset(dataset, order.tolist()), batch_size=batch_size)
        yield from loader


def gather_batch(dataset, idx: torch.Tensor):
    """(images float [0, 1], labels) of the rows ``idx`` of a dataset: sliced from ``images`` /
    ``labels`` when it has them, else collated from ``dataset[i]``."""
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        x = dataset.images[idx]
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        return x, dataset.labels[idx]
    xs, ys = zip(*(dataset[int(j)] for j in idx))
    return torch.stack([torch.as_tensor(x) for x in xs]).float(), torch.as_tensor(ys).long()
