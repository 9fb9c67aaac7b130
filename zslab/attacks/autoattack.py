"""AutoAttack, standard version, L∞ (Croce & Hein, 2020, "Reliable evaluation of adversarial
robustness with an ensemble of diverse parameter-free attacks", ICML).

Runs APGD-CE, APGD-T (targeted DLR), FAB-T and Square in turn, each only on the points that
are still classified correctly, and returns the per-example worst case: for every example
the first adversarial point found, else the clean input.  The targeted attacks use
``min(9, n_classes − 1)`` targets, so 5-way episodes work.
"""

from __future__ import annotations


from .apgd import APGD
from .apgdt import APGDT
from .base import Attack, AttackInputError, check_int, check_steps
from .fab import FABT
from .square import Square

VERSIONS = ("standard",)


class AutoAttack(Attack):
    """AutoAttack (standard): APGD-CE → APGD-T → FAB-T → Square.

    Args:
        model, eps, seed: see :class:`~zslab.attacks.base.Attack` (default seed 0).
        version: ``"standard"``.
        steps: iterations of APGD-CE, of APGD-T per target and of FAB-T per target (100).
        n_queries: Square's query budget (5000).
        n_target_classes: target cap of APGD-T and FAB-T (9; fewer when the model has fewer
            than 10 classes).
        norm: ``"Linf"`` if given.

    After a call, ``last_counts`` maps ``"clean"`` and each attack name to the number of
    points still classified correctly after that stage.
    """

    name = "autoattack"
    default_seed = 0

    def __init__(self, model, eps=8 / 255, version="standard", *, steps=100, n_queries=5000,
                 n_target_classes=9, seed=0, norm=None):
        super().__init__(model, eps, seed=seed, norm=norm)
        if not isinstance(version, str) or version not in VERSIONS:
            raise AttackInputError(f"unknown AutoAttack version {version!r}; supported: {list(VERSIONS)}")
        steps = check_steps(steps)
        n_queries = check_int(n_queries, "n_queries", 1)
        n_target_classes = check_int(n_target_classes, "n_target_classes", 1)
        self.version = version
        self.attacks: list[Attack] = [
            APGD(model, self.eps, steps=steps, n_restarts=1, loss="ce", seed=seed),
            APGDT(model, self.eps, steps=steps, n_restarts=1, n_target_classes=n_target_classes, seed=seed),
            FABT(model, self.eps, steps=steps, n_target_classes=n_target_classes, n_restarts=1, seed=seed),
            Square(model, self.eps, n_queries=n_queries, n_restarts=1, seed=seed),
        ]
        self.last_counts: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"AutoAttack(eps={self.eps!r}, version={self.version!r}, attacks={[a.name for a in self.attacks]})"

    def _perturb(self, x, y, rng):
        logits = self._logits(x)
        self._check_label_range(logits, y)
        robust = logits.argmax(dim=1) == y
        counts = {"clean": int(robust.sum())}
        out = x.clone()
        base_seed = rng.seed
        for atk in self.attacks:
            sub = robust.nonzero().squeeze(1)
            if sub.numel() > 0:
                atk._labels_checked = True
                sub_rng = atk._rng(base_seed, rng.ids[sub], x.device)
                adv = atk._perturb(x[sub], y[sub], sub_rng)
                fooled = self._predict(adv) != y[sub]
                out[sub[fooled]] = adv[fooled]
                robust[sub[fooled]] = False
            counts[atk.name] = int(robust.sum())
        self.last_counts = counts
        return out
