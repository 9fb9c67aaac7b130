"""2-D t-SNE (van der Maaten & Hinton, JMLR 2008) for the feature-drift figure (HAS Fig. 5, §4.3).

A thin wrapper around scikit-learn's :class:`sklearn.manifold.TSNE` that takes and returns torch
tensors: PCA initialisation, a fixed ``random_state`` (so the map is the same for the same input
and seed), the "auto" learning rate max(N / early_exaggeration / 4, 50) (Belkina et al. 2019) and
the Barnes-Hut gradient, which keeps a few thousand points (all steps of both runs of the figure)
in seconds rather than the minutes of the exact O(N²) algorithm.
"""
from __future__ import annotations

import numpy as np
import torch

from zslab import ZSLabError

__all__ = ["tsne", "MIN_ITERATIONS"]

#: scikit-learn's smallest ``max_iter``; its first 250 iterations are the early-exaggeration phase
MIN_ITERATIONS = 250


def tsne(x: torch.Tensor, perplexity: float = 30.0, iterations: int = 500, learning_rate: float | None = None,
         exaggeration: float = 12.0, *, seed: int = 0) -> torch.Tensor:
    """2-D t-SNE embedding of ``x`` (N, D); returns an (N, 2) float32 tensor on the CPU.

    ``perplexity`` (the effective number of neighbours) is clipped to N − 1, since it must be
    below the number of points; ``iterations`` counts all gradient steps, the first 250 of which
    are scikit-learn's early-exaggeration phase (by ``exaggeration``), and is raised to
    :data:`MIN_ITERATIONS` when smaller. ``learning_rate`` ``None`` is the "auto" rule
    max(N / exaggeration / 4, 50). ``seed`` is scikit-learn's ``random_state``: the same input
    and seed give the same embedding.
    """
    from sklearn.manifold import TSNE  # scikit-learn is slow to import; only this function needs it

    if x.ndim != 2:
        raise ZSLabError(f"tsne expects a 2-D (N, D) tensor; got shape {tuple(x.shape)}")
    n = x.shape[0]
    if n < 3:
        raise ZSLabError(f"tsne needs at least 3 points; got {n}")
    if not perplexity > 0:
        raise ZSLabError(f"tsne perplexity must be positive; got {perplexity}")
    if not torch.isfinite(x).all():
        raise ZSLabError("tsne input contains NaN or inf")
    data = x.detach().to("cpu", torch.float64).numpy()
    if data.shape[1] < 2:  # PCA initialisation needs two input dimensions
        data = np.concatenate([data, np.zeros((n, 2 - data.shape[1]))], axis=1)
    steps = max(int(iterations), MIN_ITERATIONS)
    # scikit-learn 1.5 renamed n_iter to max_iter (n_iter was removed in 1.7)
    steps_arg = "max_iter" if "max_iter" in getattr(TSNE, "_parameter_constraints", {}) else "n_iter"
    model = TSNE(n_components=2, perplexity=min(float(perplexity), n - 1.0), early_exaggeration=exaggeration,
                 learning_rate="auto" if learning_rate is None else learning_rate, init="pca",
                 random_state=seed, **{steps_arg: steps})
    return torch.from_numpy(np.ascontiguousarray(model.fit_transform(data), dtype=np.float32))
