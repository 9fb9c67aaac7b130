"""Adversarial attacks for zslab: one file per attack, one base class.

Usage (torchattacks style; images in [0, 1], normalisation inside the model)::

    from zslab.attacks import PGD, build
    atk = PGD(model, eps=8/255, alpha=2/255, steps=10, random_start=True)
    adv = atk(images, labels)
    adv = build("pgd20", model, eps="8/255")(images, labels)

Attacks: :class:`FGSM`, :class:`PGD`, :class:`PGDL2`, :class:`CWLinf`, :class:`APGD` (APGD-CE),
:class:`APGDT`, :class:`FABT`, :class:`Square`, :class:`AutoAttack`.  Wrappers:
:class:`LogitsOf`, :class:`AnchorClassifier`.  Losses: :mod:`zslab.attacks.losses`.
"""

from __future__ import annotations

import re

from .apgd import APGD
from .apgdt import APGDT
from .autoattack import AutoAttack
from .base import Attack, AttackInputError, eval_mode, parse_eps
from .cw import CWLinf
from .fab import FABT
from .fgsm import FGSM
from .losses import ce_loss, dlr_loss, dlr_targeted_loss, logits_of, margin_loss
from .pgd import PGD
from .pgdl2 import PGDL2
from .square import Square
from .wrappers import AnchorClassifier, LogitsOf

#: names accepted by :func:`build` ("pgdK" means PGD with K steps, e.g. "pgd20")
ATTACK_NAMES = ("fgsm", "pgd", "pgdK", "cw", "apgd-ce", "apgd-t", "fab-t", "square", "autoattack")

_ALIASES = {
    "fgsm": "fgsm",
    "cw": "cw", "cwlinf": "cw", "cwinf": "cw",
    "apgd": "apgd-ce", "apgdce": "apgd-ce",
    "apgdt": "apgd-t", "apgddlrt": "apgd-t",
    "fabt": "fab-t", "fab": "fab-t",
    "square": "square",
    "autoattack": "autoattack", "aa": "autoattack",
}


def build(name: str, model, eps=8 / 255, **kw) -> Attack:
    """An attack from its name.

    ``"fgsm"``; ``"pgd"`` (10 steps) or ``"pgdK"`` (K steps; step size ``2.5·eps/K`` unless
    ``alpha=`` is given, except ``"pgd20"`` whose default is ``eps/4`` — 2/255 at the LAAT
    budget of 8/255); ``"cw"`` (CW-L∞: margin loss, 30 steps of 0.8/255, as in LAAT);
    ``"apgd-ce"``, ``"apgd-t"``, ``"fab-t"``, ``"square"``, ``"autoattack"``.  Case, ``-`` and
    ``_`` are ignored.  ``eps`` may be a string like ``"8/255"``; other keyword arguments go
    to the attack's constructor.  Unknown names raise :class:`ValueError`.
    """
    if not isinstance(name, str):
        raise ValueError(f"attack name must be a string; got {name!r}")
    key = re.sub(r"[\s_\-]", "", name.lower())
    eps = parse_eps(eps)
    match = re.fullmatch(r"pgd(\d*)", key)
    if match:
        steps = int(match.group(1)) if match.group(1) else kw.pop("steps", 10)
        if "alpha" not in kw and steps == 20:
            kw["alpha"] = eps / 4
        return PGD(model, eps, steps=steps, **kw)
    canonical = _ALIASES.get(key)
    if canonical is None:
        raise ValueError(f"unknown attack {name!r}; valid names: {', '.join(ATTACK_NAMES)}")
    cls = {"fgsm": FGSM, "cw": CWLinf, "apgd-ce": APGD, "apgd-t": APGDT, "fab-t": FABT,
           "square": Square, "autoattack": AutoAttack}[canonical]
    return cls(model, eps, **kw)


__all__ = [
    "Attack", "AttackInputError", "eval_mode", "parse_eps", "build", "ATTACK_NAMES",
    "FGSM", "PGD", "PGDL2", "CWLinf", "APGD", "APGDT", "FABT", "Square", "AutoAttack",
    "LogitsOf", "AnchorClassifier",
    "ce_loss", "margin_loss", "dlr_loss", "dlr_targeted_loss", "logits_of",
]
