"""FAB-T: the targeted Fast Adaptive Boundary attack, L∞ (Croce & Hein, 2020, "Minimally
distorted Adversarial Examples with a Fast Adaptive Boundary Attack", ICML), in the version
used by AutoAttack (Croce & Hein, 2020, ICML).

Each iteration linearises the decision boundary between the true class ``y`` and the target
``t`` at the current point, ``f(z) ≈ f(x_k) + ∇f(x_k)·(z − x_k)`` with ``f = z_t − z_y``,
projects both the current point and the original point onto that hyperplane intersected with
the box [0, 1] (minimal L∞ displacement, computed exactly by sorting, see
:func:`project_linf_box`), and moves to a convex combination of the two projections biased
towards the original (``alpha ≤ alpha_max``) with extrapolation ``eta``.  When the new point is
adversarial it is recorded if closer than the best so far and pulled back towards the
original by ``beta``.

Targets are the top ``min(9, n_classes − 1)`` non-true classes of the clean logits (so 5-way
episodes use 4), each run on the points still classified correctly.  As an ε-bounded
evaluation attack, an example is finished as soon as an adversarial point within ε is found;
points never fooled within ε are returned unchanged.
"""

from __future__ import annotations

import torch

from .base import Attack, check_int, check_real, check_steps, flat_norm
from .losses import logits_of


def project_linf_box(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Minimal-L∞ displacement onto a hyperplane within the unit box, one row per problem.

    For each row solves ``min ‖d‖∞  s.t.  w·(t + d) = b,  0 ≤ t + d ≤ 1``.  Writing
    ``r = b − w·t`` and flipping signs so that ``r ≥ 0``, a budget λ lets coordinate ``i``
    move by ``min(λ, u_i)`` in the direction of ``sign(w_i)``, where ``u_i`` is the room left
    in the box in that direction; the reachable change ``g(λ) = Σ |w_i| min(λ, u_i)`` is
    piecewise linear and non-decreasing, so sorting ``u`` gives the smallest λ with
    ``g(λ) = r`` in closed form.  When even the box corner falls short (infeasible), the
    displacement to that corner (the box point closest to the hyperplane) is returned.

    Args:
        t: (M, n) points in [0, 1].  w: (M, n) normals.  b: (M,) offsets.
    Returns:
        d: (M, n).
    """
    r = b - (w * t).sum(dim=1)
    flip = torch.where(r < 0, -1.0, 1.0).to(w.dtype)
    ws = w * flip[:, None]
    r = r.abs()
    room = torch.where(ws > 0, 1.0 - t, torch.where(ws < 0, t, torch.zeros_like(t))).clamp_(min=0.0)
    aw = ws.abs()
    room_sorted, order = room.sort(dim=1)
    aw_sorted = aw.gather(1, order)
    contrib = aw_sorted * room_sorted
    prefix = contrib.cumsum(dim=1) - contrib                      # Σ_{i<k} |w_i| u_i
    suffix = aw_sorted.flip(1).cumsum(dim=1).flip(1)              # Σ_{i>=k} |w_i|
    reach = prefix + room_sorted * suffix                         # g(u_k), non-decreasing in k
    n = t.shape[1]
    k = (reach < r[:, None]).sum(dim=1)                           # first k with g(u_k) >= r
    feasible = k < n
    kk = k.clamp(max=n - 1)[:, None]
    lam = ((r[:, None] - prefix.gather(1, kk)) / suffix.gather(1, kk).clamp_min(1e-30)).clamp_(min=0.0)
    lam = torch.where(feasible[:, None], lam, torch.full_like(lam, float("inf")))
    return ws.sign() * torch.minimum(lam, room)


class FABT(Attack):
    """Targeted FAB, L∞.

    Args:
        model, eps, seed: see :class:`~zslab.attacks.base.Attack` (default seed 0; the first
            run per target starts at the clean point, restarts from random points).
        steps: iterations per target (100 in AutoAttack); each is one forward+backward pass
            plus one forward pass.
        n_target_classes: at most this many targets; ``min(n_target_classes, n_classes − 1)``
            are used and stored in ``last_n_targets``.
        n_restarts: runs per target (1 in AutoAttack).
        alpha_max, eta, beta: the paper's bias towards the original point (0.1, in [0, 1]),
            extrapolation (1.05, > 0) and backward step (0.9, in [0, 1]).
        norm: ``"Linf"`` if given.
    """

    name = "fab-t"
    default_seed = 0

    def __init__(self, model, eps=8 / 255, steps=100, *, n_target_classes=9, n_restarts=1,
                 alpha_max=0.1, eta=1.05, beta=0.9, seed=0, norm=None):
        super().__init__(model, eps, seed=seed, norm=norm)
        self.steps = check_steps(steps)
        self.n_target_classes = check_int(n_target_classes, "n_target_classes", 1)
        self.n_restarts = check_int(n_restarts, "n_restarts", 1)
        self.alpha_max = check_real(alpha_max, "alpha_max", 0.0, 1.0)
        self.eta = check_real(eta, "eta", 0.0, low_open=True)
        self.beta = check_real(beta, "beta", 0.0, 1.0)
        self.last_n_targets: int | None = None

    def _perturb(self, x, y, rng):
        logits = self._logits(x)
        self._check_label_range(logits, y)
        n_targets = min(self.n_target_classes, logits.shape[1] - 1)
        self.last_n_targets = n_targets
        ranked = logits.argsort(dim=1, descending=True)
        attempts = (lambda sub, k=k, r=r: self._run(x[sub], y[sub], ranked[sub, k], rng.subset(sub), 1000 * k + r,
                                                    random_start=r > 0)
                    for k in range(1, n_targets + 1) for r in range(self.n_restarts))
        return self._until_fooled(x, logits.argmax(dim=1) == y, attempts)

    @staticmethod
    def _target_margin(output, labels, targets):
        z = logits_of(output)
        return (z.gather(1, targets[:, None]) - z.gather(1, labels[:, None])).squeeze(1)

    def _run(self, x0, y, target, rng, stream, random_start=False):
        m = x0.shape[0]
        out = x0.clone()
        fooled = torch.zeros(m, dtype=torch.bool, device=x0.device)
        if random_start:
            t = rng.uniform(stream, x0.shape[1:], x0.dtype).mul_(2.0).sub_(1.0)
            x1 = (x0 + 0.5 * self.eps * t / flat_norm(t, "inf").clamp_min(1e-12)).clamp_(0.0, 1.0)
        else:
            x1 = x0.clone()
        idx = torch.arange(m, device=x0.device)
        best_norm = torch.full((m,), float("inf"), device=x0.device, dtype=x0.dtype)
        for _ in range(self.steps):
            if idx.numel() == 0:
                break
            tgt = target[idx]
            grad, _, f = self._input_grad(x1, y[idx], lambda o, yy: self._target_margin(o, yy, tgt))
            with torch.no_grad():
                k = x1.shape[0]
                x0_a = x0[idx]
                w = grad.reshape(k, -1)
                b = (w * x1.reshape(k, -1)).sum(dim=1) - f
                d = project_linf_box(torch.cat([x1.reshape(k, -1), x0_a.reshape(k, -1)]),
                                     torch.cat([w, w]), torch.cat([b, b]))
                d1, d2 = d[:k].reshape_as(x1), d[k:].reshape_as(x1)
                n1 = flat_norm(d1, "inf").clamp_min(1e-8)
                n2 = flat_norm(d2, "inf").clamp_min(1e-8)
                alpha = (n1 / (n1 + n2)).clamp(0.0, self.alpha_max)
                x1 = ((x1 + self.eta * d1) * (1 - alpha) + (x0_a + self.eta * d2) * alpha).clamp_(0.0, 1.0)
                is_adv = self._predict(x1) != y[idx]
                if bool(is_adv.any()):
                    dist = flat_norm(x1 - x0_a, "inf").flatten()
                    better = is_adv & (dist < best_norm[idx])
                    out[idx[better]] = x1[better]
                    best_norm[idx[better]] = dist[better]
                    x1[is_adv] = x0_a[is_adv] + self.beta * (x1[is_adv] - x0_a[is_adv])
                done = best_norm[idx] <= self.eps
                fooled[idx[done]] = True
                keep = ~done
                idx, x1 = idx[keep], x1[keep]
        out[~fooled] = x0[~fooled]
        return out, fooled
