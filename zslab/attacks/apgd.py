"""APGD (Auto-PGD), L∞, from Croce & Hein (2020), "Reliable evaluation of adversarial robustness
with an ensemble of diverse parameter-free attacks", ICML.

PGD without a step size to tune: the step starts at 2ε and is halved at checkpoints when the
loss stalls; the update has momentum 0.75; the best point so far is kept and restored when the
step is halved.  The checkpoints follow the paper: ``p_0 = 0``, ``p_1 = 0.22``,
``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)`` (as integers: the first checkpoint after
``⌊0.22·N⌋`` steps, the interval then shrinking by ``⌊0.03·N⌋`` down to ``⌊0.06·N⌋``).  At a
checkpoint the step is halved for an example when (1) the loss rose in at most a fraction
ρ = 0.75 of the steps since the last checkpoint, or (2) the step was not halved at the last
checkpoint and the best loss has not improved since.

As in the authors' evaluation protocol, only points classified correctly are attacked, an
example stops being attacked once it is misclassified (its misclassified iterate is
returned), and points never misclassified return their highest-loss iterate.
"""

from __future__ import annotations

import torch

from .base import Attack, ball_bounds, check_int, check_real, check_steps, flat_norm

_TINY = 1e-12


class APGD(Attack):
    """APGD-CE (default) or APGD on another loss (``loss="dlr"`` or a per-example callable).

    Args:
        model, eps, seed: see :class:`~zslab.attacks.base.Attack` (default seed 0, as in
            AutoAttack).
        steps: iterations (100 in AutoAttack); each is one forward and one backward pass.
        n_restarts: random restarts, each on the points still classified correctly.
        loss: ``"ce"`` (default), ``"dlr"``, ``"margin"`` or a callable returning per-example
            values to maximise.
        rho: checkpoint threshold of condition (1) (0.75 in the paper), in [0, 1].
        norm: ``"Linf"`` if given.
    """

    name = "apgd-ce"
    default_seed = 0
    momentum = 0.75

    def __init__(self, model, eps=8 / 255, steps=100, n_restarts=1, *, loss="ce", rho=0.75, seed=0, norm=None):
        super().__init__(model, eps, loss=loss, seed=seed, norm=norm)
        self.steps = check_steps(steps)
        self.n_restarts = check_int(n_restarts, "n_restarts", 1)
        self.rho = check_real(rho, "rho", 0.0, 1.0)

    # --------------------------------------------------------------------------------
    def _perturb(self, x, y, rng):
        logits = self._logits(x)
        self._check_label_range(logits, y)
        attempts = (lambda sub, r=r: self._run(x[sub], y[sub], rng.subset(sub), r, self._objective)
                    for r in range(self.n_restarts))
        return self._until_fooled(x, logits.argmax(dim=1) == y, attempts, keep_last=True)

    def _run(self, x, y, rng, stream, loss_fn, aux=None):
        """One APGD run on ``x`` (all examples attacked).

        ``loss_fn(output, y)`` or, when ``aux`` (a per-example tensor, e.g. target classes) is
        given, ``loss_fn(output, y, aux)``.  Returns ``(adv, fooled)``.
        """
        m = x.shape[0]
        eps, n_iter = self.eps, self.steps
        k = max(int(0.22 * n_iter), 1)
        k_min = max(int(0.06 * n_iter), 1)
        k_decr = max(int(0.03 * n_iter), 1)

        out = x.clone()
        fooled = torch.zeros(m, dtype=torch.bool, device=x.device)
        lo, hi = ball_bounds(x, eps)
        t = rng.uniform(stream, x.shape[1:], x.dtype).mul_(2.0).sub_(1.0)
        x_adv = (x + eps * t / flat_norm(t, "inf").clamp_min(_TINY)).clamp_(lo, hi)

        def grad_at(points, labels, extra):
            fn = loss_fn if extra is None else (lambda o, yy: loss_fn(o, yy, extra))
            g, z, loss = self._input_grad(points, labels, fn)
            if loss.ndim != 1:
                raise ValueError(f"{type(self).__name__} needs a loss with one value per example")
            return g, z, loss

        grad, z, loss = grad_at(x_adv, y, aux)
        # active state: the examples still classified correctly
        s = {
            "idx": torch.arange(m, device=x.device), "x": x, "y": y, "lo": lo, "hi": hi,
            "x_adv": x_adv, "x_prev": x_adv, "grad": grad, "loss": loss,
            "x_best": x_adv.clone(), "grad_best": grad.clone(), "loss_best": loss.clone(),
            "step": torch.full((m, 1, 1, 1), 2.0 * eps, dtype=x.dtype, device=x.device),
            "n_incr": torch.zeros(m, device=x.device),
            "reduced_last": torch.ones(m, dtype=torch.bool, device=x.device),
            "loss_best_last": loss.clone(),
        }
        if aux is not None:
            s["aux"] = aux

        def drop_fooled(correct):
            if bool(correct.all()):
                return
            wrong = ~correct
            out[s["idx"][wrong]] = s["x_adv"][wrong]
            fooled[s["idx"][wrong]] = True
            for key in s:
                s[key] = s[key][correct]

        drop_fooled(z.argmax(dim=1) == y)
        counter = 0
        for i in range(n_iter):
            if s["idx"].numel() == 0:
                break
            with torch.no_grad():
                x_cur, x_prev = s["x_adv"], s["x_prev"]
                z_step = (x_cur + s["step"] * s["grad"].sign()).clamp_(s["lo"], s["hi"])
                if i > 0:
                    a = self.momentum
                    z_step = (x_cur + a * (z_step - x_cur) + (1.0 - a) * (x_cur - x_prev)).clamp_(s["lo"], s["hi"])
                s["x_prev"], s["x_adv"] = x_cur, z_step
            grad, z, loss = grad_at(s["x_adv"], s["y"], s.get("aux"))
            s["grad"] = grad
            s["n_incr"] += (loss > s["loss"]).to(s["n_incr"].dtype)
            s["loss"] = loss
            better = loss > s["loss_best"]
            s["x_best"][better] = s["x_adv"][better]
            s["grad_best"][better] = grad[better]
            s["loss_best"] = torch.where(better, loss, s["loss_best"])
            drop_fooled(z.argmax(dim=1) == s["y"])

            counter += 1
            if counter == k:
                # checkpoint: halve the step where the loss stalls, restart from the best point
                oscillating = s["n_incr"] <= k * self.rho
                no_improvement = ~s["reduced_last"] & (s["loss_best_last"] >= s["loss_best"])
                reduce = oscillating | no_improvement
                s["reduced_last"] = reduce
                s["loss_best_last"] = s["loss_best"].clone()
                if bool(reduce.any()):
                    s["step"][reduce] /= 2.0
                    s["x_adv"][reduce] = s["x_best"][reduce]
                    s["grad"][reduce] = s["grad_best"][reduce]
                    s["loss"] = torch.where(reduce, s["loss_best"], s["loss"])
                s["n_incr"].zero_()
                counter = 0
                k = max(k - k_decr, k_min)

        out[s["idx"]] = s["x_best"]
        return out, fooled

