import contextlib
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")

from zslab.data.base import TensorImageDataset, ZSLData  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# The package finds real data sets only through $ZSLAB_DATA (zslab.experiments.paths); in this
# checkout they sit in ../shared/data beside the repository, which the tests (not the package) know.
if SHARED_DATA.is_dir():
    os.environ.setdefault("ZSLAB_DATA", str(SHARED_DATA))


@contextlib.contextmanager
def limit_threads(n: int = 1):
    """Tiny models gain nothing from intra-op threads; one thread avoids stalls on a shared CPU."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def write_anchor_file(data, directory, order=None) -> str:
    """A ``file:`` encoder spec whose anchors are ``data``'s class attribute vectors (rows in
    ``order``, named by a class list next to them): LAAT tests without a text encoder."""
    import numpy as np

    order = list(range(len(data.class_names))) if order is None else list(order)
    directory = Path(directory)
    np.save(directory / "anchors.npy", data.class_attributes.numpy()[order].astype(np.float32))
    (directory / "anchors.txt").write_text("\n".join(data.class_names[i] for i in order) + "\n")
    return f"file:{directory / 'anchors.npy'}"


def tiny_zsl_data(seed: int = 0, size: int = 16, per_class: int = 12) -> ZSLData:
    """A hand-made 8-class ZSL problem: class c is a coloured square whose colour/position
    follow 6 binary attributes. Train 0-3, val 4-5, unseen 6-7."""
    g = torch.Generator().manual_seed(seed)
    A = torch.tensor([[1, 0, 1, 0, 1, 0], [1, 0, 0, 1, 0, 1], [0, 1, 1, 0, 0, 1], [0, 1, 0, 1, 1, 0],
                      [1, 0, 1, 0, 0, 1], [0, 1, 0, 1, 0, 1], [1, 0, 0, 1, 1, 0], [0, 1, 1, 0, 1, 0]],
                     dtype=torch.float32)

    def make(classes, n):
        xs, ys = [], []
        for c in classes:
            a = A[c]
            for _ in range(n):
                x = torch.rand(3, size, size, generator=g) * 0.1
                colour = torch.tensor([a[0], a[1], 0.5 * a[2]])
                half = size // 2
                r0 = 0 if a[4] else half
                c0 = 0 if a[3] else half
                x[:, r0:r0 + half, c0:c0 + half] = colour[:, None, None] * 0.9 + 0.05
                xs.append(x.clamp(0, 1))
                ys.append(c)
        return TensorImageDataset(torch.stack(xs), torch.tensor(ys))

    tr, va, un = [0, 1, 2, 3], [4, 5], [6, 7]
    splits = {"train": make(tr, per_class), "val_seen": make(tr, 4), "val_unseen": make(va, 6),
              "test_seen": make(tr, 4), "test_unseen": make(un, 6)}
    return ZSLData("tiny", [f"class {i}" for i in range(8)], [f"a{i}" for i in range(6)], A,
                   torch.tensor(tr), torch.tensor(va), torch.tensor(un), splits)


@pytest.fixture
def tiny_data():
    return tiny_zsl_data()
