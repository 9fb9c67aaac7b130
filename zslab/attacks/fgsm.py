"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, 2015, "Explaining and Harnessing
Adversarial Examples", ICLR): one signed-gradient step of size ε, clipped to [0, 1]."""

from __future__ import annotations

from .base import Attack


class FGSM(Attack):
    """FGSM, L∞: ``x + ε·sign(∇ₓ L(f(x), y))`` clipped to [0, 1].

    Args:
        model, eps, loss, targeted: see :class:`~zslab.attacks.base.Attack` (default loss:
            cross-entropy; ``targeted=True`` steps down the loss).  ``seed`` is accepted for a
            uniform interface; FGSM draws no random numbers.
    """

    name = "fgsm"

    def __init__(self, model, eps=8 / 255, *, loss=None, targeted=False, seed=None, norm=None):
        super().__init__(model, eps, loss=loss, targeted=targeted, seed=0 if seed is None else seed, norm=norm)

    def _perturb(self, x, y, rng):
        grad, _, _ = self._input_grad(x, y)
        return (x + self.eps * grad.sign()).clamp_(0.0, 1.0)
