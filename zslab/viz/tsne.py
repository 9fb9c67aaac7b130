"""Exact t-SNE in torch (van der Maaten & Hinton, JMLR 2008), for HAS Fig. 5.

zslab has no scikit-learn dependency; a few thousand points are enough for the feature-drift
figure, so the exact O(N²) algorithm is used:

1. conditional affinities p_{j|i} ∝ exp(−β_i ‖x_i − x_j‖²), β_i found by bisection so that
   the perplexity 2^{H(P_i)} equals ``perplexity`` (all rows at once);
2. joint p_ij = (p_{j|i} + p_{i|j}) / 2N;
3. Student-t similarities q_ij ∝ (1 + ‖y_i − y_j‖²)⁻¹ in 2-D and gradient descent on
   KL(P‖Q), gradient 4 Σ_j (p_ij − q_ij)(1 + ‖y_i − y_j‖²)⁻¹ (y_i − y_j), with early
   exaggeration (×12 for the first quarter of the iterations), momentum 0.5 → 0.8 and
   per-coordinate adaptive gains, as in the paper.

Initialisation is PCA (scaled to std 1e-4), so the result is deterministic for a given
input. Runs on the input's device, in float64 on CPU (float32 elsewhere).
"""
from __future__ import annotations

import math

import torch

from zslab import ZSLabError

__all__ = ["tsne"]


def _sq_dists(x: torch.Tensor) -> torch.Tensor:
    s = (x * x).sum(1)
    return (s[:, None] + s[None, :] - 2 * x @ x.t()).clamp_min(0)


def _joint_p(x: torch.Tensor, perplexity: float, tol: float = 1e-5, iters: int = 64) -> torch.Tensor:
    n = x.shape[0]
    d = _sq_dists(x)
    d = d / d[d > 0].mean().clamp_min(1e-12) if (d > 0).any() else d  # scale-free bisection range
    eye = torch.eye(n, dtype=torch.bool, device=x.device)
    target = math.log(perplexity)  # entropy in nats
    lo = torch.zeros(n, dtype=x.dtype, device=x.device)
    hi = torch.full((n,), math.inf, dtype=x.dtype, device=x.device)
    beta = torch.ones(n, dtype=x.dtype, device=x.device)
    for _ in range(iters):
        logits = (-beta[:, None] * d).masked_fill(eye, -math.inf)
        p = torch.softmax(logits, dim=1)
        h = -(p * torch.log(p.clamp_min(1e-300))).sum(1)
        if (h - target).abs().max() < tol:
            break
        too_flat = h > target  # entropy too high: raise beta
        lo = torch.where(too_flat, beta, lo)
        hi = torch.where(too_flat, hi, beta)
        beta = torch.where(torch.isinf(hi), beta * 2, (lo + hi) / 2)
    p = torch.softmax((-beta[:, None] * d).masked_fill(eye, -math.inf), dim=1)
    return (p + p.t()) / (2 * n)


def tsne(x: torch.Tensor, perplexity: float = 30.0, iterations: int = 500, learning_rate: float | None = None,
         exaggeration: float = 12.0) -> torch.Tensor:
    """2-D t-SNE embedding of ``x`` (N, D); returns (N, 2) on the CPU.

    ``perplexity`` must be < N (it is the effective number of neighbours); the default
    learning rate is max(N / exaggeration / 4, 50) (the "auto" rule of Belkina et al. 2019).
    """
    if x.ndim != 2:
        raise ZSLabError(f"tsne expects a 2-D (N, D) tensor; got shape {tuple(x.shape)}")
    n = x.shape[0]
    if n < 3:
        raise ZSLabError(f"tsne needs at least 3 points; got {n}")
    if not 1 <= perplexity < n:
        raise ZSLabError(f"tsne perplexity must be in [1, N={n}); got {perplexity}")
    if not torch.isfinite(x).all():
        raise ZSLabError("tsne input contains NaN or inf")
    dtype = torch.float64 if x.device.type == "cpu" else torch.float32
    x = x.detach().to(dtype)
    x = x - x.mean(0)
    P = _joint_p(x, perplexity).clamp_min(1e-12)
    # PCA initialisation, scaled to std 1e-4
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    y = x @ v[:2].t()
    if y.shape[1] < 2:
        y = torch.cat([y, torch.zeros(n, 2 - y.shape[1], dtype=dtype, device=x.device)], 1)
    y = y / y[:, 0].std().clamp_min(1e-12) * 1e-4
    lr = learning_rate if learning_rate is not None else max(n / exaggeration / 4, 50.0)
    update = torch.zeros_like(y)
    gains = torch.ones_like(y)
    stop_exag = max(1, iterations // 4)
    for it in range(iterations):
        Pe = P * exaggeration if it < stop_exag else P
        num = 1.0 / (1.0 + _sq_dists(y))
        num.fill_diagonal_(0.0)
        Q = (num / num.sum()).clamp_min(1e-12)
        W = (Pe - Q) * num
        grad = 4.0 * (W.sum(1, keepdim=True) * y - W @ y)
        momentum = 0.5 if it < stop_exag else 0.8
        same = (grad > 0) == (update > 0)
        gains = torch.where(same, gains * 0.8, gains + 0.2).clamp_min(0.01)
        update = momentum * update - lr * gains * grad
        y = y + update
        y = y - y.mean(0)
    return y.float().cpu()
