"""Square Attack, L∞ (Andriushchenko, Croce, Flammarion & Hein, 2020, "Square Attack: a
query-efficient black-box adversarial attack via random search", ECCV).

Score-based random search: start from vertical stripes of ±ε, then at each iteration propose,
for every example still classified correctly, a square window of side
``s = round(sqrt(p·n_features / C))`` at a random position, filled per channel with a random
±ε (relative to the clean image) and keep it when the margin loss ``z_y − max_{j≠y} z_j``
decreases (or the example becomes misclassified).  The window fraction ``p`` follows the
paper's piecewise-constant schedule, halving at iterations 10, 50, 200, 500, 1000, 2000,
4000, 6000, 8000 of a 10 000-query budget (rescaled to ``n_queries``).

Window positions and colours are drawn independently per example, as in the paper's
Algorithm 1, from per-example keyed streams (see :mod:`zslab.attacks._rng`).  The PyTorch
implementation inside AutoAttack (and torchattacks) instead draws one window and one colour
per iteration shared by the whole batch; ``shared_proposals=True`` reproduces that variant
(still independent of batching, since the shared draws are keyed by the iteration only).
The per-example variant is the stronger of the two on the models we tested (see
tests/test_attacks.py).  Only forward passes are used (no gradients), so it also checks for
gradient masking.
"""

from __future__ import annotations

import math

import torch

from ._rng import KeyedRNG
from .base import Attack, check_flag, check_int, check_real
from .losses import logits_of, margin_loss

_BLOCK = 128  # iterations whose random draws are made together

_SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64),
             (6000, 128), (8000, 256))


class Square(Attack):
    """Square Attack (L∞, untargeted, margin loss).

    Args:
        model, eps, seed: see :class:`~zslab.attacks.base.Attack` (default seed 0).
        n_queries: iterations (queries per example after the initial one; 5000 in AutoAttack),
            an integer >= 1.
        p_init: initial fraction of pixels in the window (0.8 in the paper for L∞), in (0, 1].
        n_restarts: independent runs, each on the points still classified correctly (>= 1).
        loss: ``None`` for the margin loss, or a callable ``loss(output, labels)`` returning
            per-example values to maximise (accepted moves decrease ``-loss``).
        shared_proposals: one window position and colour per iteration for the whole batch
            (the AutoAttack/torchattacks PyTorch variant) instead of one per example.
        reference_positions: draw window corners in ``[0, h − s)`` as the AutoAttack and
            torchattacks PyTorch code does, so that no window ever touches the last row or
            column (those pixels keep their initial stripe).  The default draws over all
            ``h − s + 1`` positions, as in the paper; on small images this matters (on 8×8
            inputs the reference range leaves 23% of the pixels frozen).
    """

    name = "square"
    black_box = True
    default_seed = 0

    def __init__(self, model, eps=8 / 255, n_queries=5000, *, p_init=0.8, n_restarts=1, loss=None,
                 shared_proposals=False, reference_positions=False, seed=0, norm=None):
        super().__init__(model, eps, loss=loss, seed=seed, norm=norm)
        self.n_queries = check_int(n_queries, "n_queries", 1)
        self.p_init = check_real(p_init, "p_init", 0.0, 1.0, low_open=True)
        self.n_restarts = check_int(n_restarts, "n_restarts", 1)
        self.shared_proposals = check_flag(shared_proposals, "shared_proposals")
        self.reference_positions = check_flag(reference_positions, "reference_positions")

    def p_selection(self, it: int) -> float:
        """Window fraction at iteration ``it`` (schedule defined for 10 000 queries, rescaled)."""
        it = int(it / max(self.n_queries, 1) * 10000)
        divisor = 1
        for threshold, div in _SCHEDULE:
            if it > threshold:
                divisor = div * 2
        return self.p_init / divisor

    def _scores(self, x, y):
        """(margin, loss): margin > 0 iff correctly classified; the search minimises loss."""
        with torch.no_grad():
            output = self.model(x)
            logits = logits_of(output)
            margin = -margin_loss(logits, y)
            if self.loss is None:
                return margin, margin
            loss = self.loss(output, y)
            if loss.ndim != 1:
                raise ValueError("Square needs a loss with one value per example")
            return margin, -loss.float()

    def _perturb(self, x, y, rng):
        logits = self._logits(x)
        self._check_label_range(logits, y)
        attempts = (lambda sub, r=r: self._run(x[sub], y[sub], rng.subset(sub), r * (self.n_queries + 1))
                    for r in range(self.n_restarts))
        return self._until_fooled(x, logits.argmax(dim=1) == y, attempts)

    def _run(self, x, y, rng, stream):
        m, c, h, w = x.shape
        eps = self.eps
        n_features = c * h * w
        stripes = rng.sign(stream, (c, 1, w), x.dtype)
        x_best = (x + eps * stripes).clamp_(0.0, 1.0)
        margin, loss = self._scores(x_best, y)
        last = 0 if self.reference_positions else 1
        shared_rng = KeyedRNG(rng.seed, torch.zeros(1, dtype=torch.long), x.device)
        rows = torch.arange(h, device=x.device)
        cols = torch.arange(w, device=x.device)
        for it in range(self.n_queries):
            active = (margin > 0).nonzero().squeeze(1)
            if active.numel() == 0:
                break
            x_a, xb_a, y_a = x[active], x_best[active], y[active]
            p = self.p_selection(it)
            s = max(int(round(math.sqrt(p * n_features / c))), 1)
            s = min(s, h, w)
            if it % _BLOCK == 0:
                # draws for the next _BLOCK iterations of every example at once (cheap per query)
                source = shared_rng if self.shared_proposals else rng
                block = source.uniform(stream + 1 + it // _BLOCK, (_BLOCK, 2 + c), torch.float32)
            if self.shared_proposals:
                u = block[0, it % _BLOCK].expand(active.numel(), -1)
            else:
                u = block[active, it % _BLOCK]
            top = (u[:, 0] * (h - s + last)).long().clamp_(max=h - s)
            left = (u[:, 1] * (w - s + last)).long().clamp_(max=w - s)
            colour = torch.where(u[:, 2:] < 0.5, -1.0, 1.0).to(x.dtype)
            in_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < top[:, None] + s)
            in_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < left[:, None] + s)
            window = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]
            x_new = torch.where(window, (x_a + eps * colour[:, :, None, None]).clamp_(0.0, 1.0), xb_a)
            margin_new, loss_new = self._scores(x_new, y_a)
            improved = loss_new < loss[active]
            accept = improved | (margin_new <= 0)
            loss[active] = torch.where(improved, loss_new, loss[active])
            margin[active] = torch.where(accept, margin_new, margin[active])
            x_best[active] = torch.where(accept[:, None, None, None], x_new, xb_a)
        return x_best, margin <= 0
