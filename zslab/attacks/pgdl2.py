"""Projected Gradient Descent in an L2 ball (Madry et al., 2018, "Towards Deep Learning Models
Resistant to Adversarial Attacks", ICLR): normalised-gradient steps, projection onto the L2
ball and [0, 1]."""

from __future__ import annotations


from .base import Attack, check_alpha, check_flag, flat_norm
from .pgd import iterative_steps

_TINY = 1e-12


class PGDL2(Attack):
    """PGD, L2: ``x ← Π(x + alpha·g/‖g‖₂)`` for ``steps`` steps.

    Args:
        model, eps, loss, targeted, seed: see :class:`~zslab.attacks.base.Attack` (``eps`` is
            an L2 radius, default 0.5; finite and >= 0, may exceed 1).
        alpha: step size (finite, >= 0), default ``2.5·eps/steps``.
        steps: number of gradient steps, >= 1 (0 only with ``alpha=0`` or ``eps=0``).
        random_start: start from a point of the ball (Gaussian direction, radius ``eps·u``,
            ``u`` uniform in [0, 1]).
    """

    name = "pgdl2"
    norm = "L2"

    def __init__(self, model, eps=0.5, alpha=None, steps=10, random_start=True, *,
                 loss=None, targeted=False, seed=None, norm=None):
        super().__init__(model, eps, loss=loss, targeted=targeted, seed=seed, norm=norm)
        self.steps = iterative_steps(steps, self.eps, alpha)
        self.alpha = check_alpha(alpha, self.eps, self.steps, "L2")
        self.random_start = check_flag(random_start, "random_start")

    def _project(self, x, x_adv):
        delta = x_adv - x
        scale = (self.eps / flat_norm(delta, 2).clamp_min(_TINY)).clamp_(max=1.0)
        return (x + delta * scale).clamp_(0.0, 1.0)

    def _perturb(self, x, y, rng):
        if self.random_start:
            direction = rng.normal(0, x.shape[1:], x.dtype)
            radius = rng.uniform(1, (1, 1, 1), x.dtype) * self.eps
            x_adv = self._project(x, x + direction / flat_norm(direction, 2).clamp_min(_TINY) * radius)
        else:
            x_adv = x.clone()
        for _ in range(self.steps):
            grad, _, _ = self._input_grad(x_adv, y)
            step = grad / flat_norm(grad, 2).clamp_min(_TINY)
            x_adv = self._project(x, x_adv + self.alpha * step)
        return x_adv
