"""CW-L∞: PGD in an L∞ ball on the Carlini–Wagner margin loss ``max_{j≠y} z_j − z_y``
(Carlini & Wagner, 2017, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P).

Not the L2 Carlini–Wagner optimisation attack.  The defaults (30 steps of 0.8/255 at
ε = 8/255) are the CW-L∞ evaluation settings of the LAAT paper (Li et al., "Language-Driven
Anchors for Zero-Shot Adversarial Robustness", CVPR 2024).
"""

from __future__ import annotations

from .losses import margin_loss
from .pgd import PGD


class CWLinf(PGD):
    """PGD-L∞ on the CW margin loss; same algorithm and random streams as :class:`PGD`, so
    ``PGD(model, eps, 0.8/255, 30, loss=margin_loss, seed=s)`` gives the same output."""

    name = "cw"
    rng_name = "PGD"

    def __init__(self, model, eps=8 / 255, alpha=0.8 / 255, steps=30, random_start=True, *, seed=None, norm=None):
        super().__init__(model, eps, alpha=alpha, steps=steps, random_start=random_start,
                         loss=margin_loss, seed=seed, norm=norm)
