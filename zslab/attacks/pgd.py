"""Projected Gradient Descent, L∞ (Madry, Makelov, Schmidt, Tsipras & Vladu, 2018, "Towards Deep
Learning Models Resistant to Adversarial Attacks", ICLR).

The same class runs PGD on any loss: cross-entropy (default), A-CE over cosine logits (use
:class:`~zslab.attacks.wrappers.AnchorClassifier`), the CW margin (see
:class:`~zslab.attacks.cw.CWLinf`) or a custom composite loss; ``targeted=True`` descends the
loss instead (the HAS generator's signed-gradient descent).
"""

from __future__ import annotations

from .base import Attack, ball_bounds, parse_eps


def check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0; got {steps!r}")
    return steps


def check_alpha(alpha, eps: float, steps: int) -> float:
    """Step size: given, or ``2.5·ε/steps`` (Madry et al.'s choice of a budget 2.5× the radius)."""
    if alpha is None:
        return 2.5 * eps / max(steps, 1)
    alpha = parse_eps(alpha)
    if alpha == 0 and eps > 0 and steps > 0:
        raise ValueError("alpha must be > 0")
    return alpha


class PGD(Attack):
    """PGD with an L∞ ball: ``steps`` signed-gradient steps of size ``alpha``, each followed by
    projection onto the ε-ball and [0, 1]; optional uniform random start in the ball.

    Args:
        model, eps, loss, targeted, seed: see :class:`~zslab.attacks.base.Attack`.
        alpha: step size (float or ``"2/255"``); default ``2.5·eps/steps``.
        steps: number of gradient steps (each one forward and one backward pass).
        random_start: start from a uniform point of the ε-ball (Madry et al.).

    Returns the last iterate, as Madry et al. and torchattacks do.
    """

    name = "pgd"

    def __init__(self, model, eps=8 / 255, alpha=None, steps=10, random_start=True, *,
                 loss=None, targeted=False, seed=None):
        super().__init__(model, eps, loss=loss, targeted=targeted, seed=seed)
        self.steps = check_steps(steps)
        self.alpha = check_alpha(alpha, self.eps, self.steps)
        self.random_start = bool(random_start)

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
