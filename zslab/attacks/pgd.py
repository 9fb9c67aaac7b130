"""Projected Gradient Descent, L∞ (Madry, Makelov, Schmidt, Tsipras & Vladu, 2018, "Towards Deep
Learning Models Resistant to Adversarial Attacks", ICLR).

The same class runs PGD on any loss: cross-entropy (default), A-CE over cosine logits (use
:class:`~zslab.attacks.wrappers.AnchorClassifier`), the CW margin (see
:class:`~zslab.attacks.cw.CWLinf`) or a custom composite loss; ``targeted=True`` descends the
loss instead (the HAS generator's signed-gradient descent).
"""

from __future__ import annotations

import numbers

from .base import Attack, AttackInputError, ball_bounds, check_alpha, check_flag, check_steps, parse_eps

__all__ = ["PGD", "check_alpha", "check_steps", "iterative_steps"]


def iterative_steps(steps, eps: float, alpha) -> int:
    """``steps`` of PGD-style attacks: an integer >= 1; 0 is accepted only as an explicit
    no-op, i.e. with ``alpha=0`` or ``eps=0`` (the HAS generator's T = 0)."""
    if isinstance(steps, numbers.Integral) and not isinstance(steps, bool) and steps == 0:
        if eps == 0:
            return 0
        if alpha is not None:
            try:
                if parse_eps(alpha, "alpha") == 0:
                    return 0
            except AttackInputError:
                pass  # the bad alpha is reported by check_alpha; here steps=0 is the error
    return check_steps(steps)


class PGD(Attack):
    """PGD with an L∞ ball: ``steps`` signed-gradient steps of size ``alpha``, each followed by
    projection onto the ε-ball and [0, 1]; optional uniform random start in the ball.

    Args:
        model, eps, loss, targeted, seed: see :class:`~zslab.attacks.base.Attack`.
        alpha: step size (float or ``"2/255"``, in [0, 1]); default ``2.5·eps/steps``.
        steps: number of gradient steps (each one forward and one backward pass), >= 1
            (0 only together with ``alpha=0`` or ``eps=0``: nothing moves).
        random_start: start from a uniform point of the ε-ball (Madry et al.).
        norm: ``"Linf"`` if given (for L2 use :class:`~zslab.attacks.pgdl2.PGDL2`).

    Returns the last iterate, as Madry et al. and torchattacks do.
    """

    name = "pgd"

    def __init__(self, model, eps=8 / 255, alpha=None, steps=10, random_start=True, *,
                 loss=None, targeted=False, seed=None, norm=None):
        super().__init__(model, eps, loss=loss, targeted=targeted, seed=seed, norm=norm)
        self.steps = iterative_steps(steps, self.eps, alpha)
        self.alpha = check_alpha(alpha, self.eps, self.steps, type(self).norm)
        self.random_start = check_flag(random_start, "random_start")

    def _perturb(self, x, y, rng):
        lo, hi = ball_bounds(x, self.eps)
        if self.random_start:
            noise = rng.uniform(0, x.shape[1:], x.dtype).mul_(2.0).sub_(1.0)
            x_adv = noise.mul_(self.eps).add_(x).clamp_(lo, hi)
        else:
            x_adv = x.clone()
        for _ in range(self.steps):
            grad, _, _ = self._input_grad(x_adv, y)
            x_adv = x_adv.add_(grad.sign_(), alpha=self.alpha).clamp_(lo, hi)
        return x_adv
