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

import difflib
import re
from collections.abc import Iterable

from .apgd import APGD
from .apgdt import APGDT
from .autoattack import AutoAttack
from .base import (
    Attack, AttackInputError, UnknownAttackError, check_alpha, check_eps, check_int, check_norm, check_real,
    check_seed, check_steps, eval_mode, parse_eps,
)
from .cw import CWLinf
from .fab import FABT
from .fgsm import FGSM
from .losses import ce_loss, dlr_loss, dlr_targeted_loss, logits_of, margin_loss
from .pgd import PGD
from .pgdl2 import PGDL2
from .square import Square
from .wrappers import AnchorClassifier, LogitsOf

#: names accepted by :func:`build` ("pgdK" means PGD with K >= 1 steps, e.g. "pgd20")
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

#: spellings offered as "did you mean" suggestions (normalised key -> name shown)
_SUGGESTIONS = {**_ALIASES, "pgd": "pgd", "pgd10": "pgd10", "pgd20": "pgd20",
                "pgd7": "pgd7", "pgd50": "pgd50", "pgd100": "pgd100"}


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.lower())


def _name_problem(name) -> str | None:
    """Why ``name`` is not a valid attack name for :func:`build`, or None when it is."""
    if not isinstance(name, str):
        return f"attack name must be a string; got {name!r}"
    if not name.strip():
        return "empty attack name (a stray comma in the list?)"
    key = _key(name)
    match = re.fullmatch(r"pgd(\d*)", key)
    if match:
        if match.group(1) and int(match.group(1)) < 1:
            return (f"attack {name!r} asks for {int(match.group(1))} PGD steps; steps must be >= 1 "
                    "(write pgdK with K >= 1, e.g. 'pgd20')")
        return None
    if key in _ALIASES:
        return None
    close = difflib.get_close_matches(key, list(_SUGGESTIONS), n=1, cutoff=0.6)
    hint = f" (did you mean {_SUGGESTIONS[close[0]]!r}?)" if close else ""
    return f"unknown attack {name!r}{hint}"


def check_attack_names(names) -> list[str]:
    """Validate attack names for :func:`build` all at once, before any attack runs.

    ``names``: a comma-separated string (``"pgd20,cw"``, as ``zslab eval --attacks`` takes it)
    or an iterable of names.  Returns the names, stripped of surrounding whitespace, in order.
    Raises :class:`UnknownAttackError` (a :class:`~zslab.ZSLabError` and a :class:`ValueError`)
    listing every bad name (unknown, with the closest valid spelling when there is one; ``pgd0``;
    empty; duplicated) and the valid names.
    """
    if isinstance(names, str):
        items = names.split(",")
    elif isinstance(names, Iterable):
        items = list(names)
    else:
        raise UnknownAttackError(f"attacks must be a comma-separated string or a list of names; got {names!r}")
    if not items or (isinstance(names, str) and not names.strip()):
        raise UnknownAttackError(f"no attacks given; valid names: {', '.join(ATTACK_NAMES)}")
    out, problems = [], []
    for item in items:
        problem = _name_problem(item)
        if problem is None:
            item = item.strip()
            if item in out:
                problem = f"duplicate attack name {item!r}"
        if problem:
            problems.append(problem)
        else:
            out.append(item)
    if problems:
        raise UnknownAttackError(
            "; ".join(problems) + f"; valid names: {', '.join(ATTACK_NAMES)} (pgdK: PGD with K >= 1 steps, "
            "e.g. pgd20; case, '-' and '_' are ignored)"
        )
    return out


def build(name: str, model, eps=8 / 255, **kw) -> Attack:
    """An attack from its name.

    ``"fgsm"``; ``"pgd"`` (10 steps) or ``"pgdK"`` (K >= 1 steps; step size ``2.5·eps/K``
    unless ``alpha=`` is given, except ``"pgd20"`` whose default is ``eps/4`` — 2/255 at the
    LAAT budget of 8/255); ``"cw"`` (CW-L∞: margin loss, 30 steps of 0.8/255, as in LAAT);
    ``"apgd-ce"``, ``"apgd-t"``, ``"fab-t"``, ``"square"``, ``"autoattack"``.  Case, ``-`` and
    ``_`` are ignored.  ``eps`` may be a string like ``"8/255"`` (L∞, in [0, 1]: see
    :func:`check_eps`); other keyword arguments go to the attack's constructor.  Unknown names
    (and ``"pgd0"``) raise :class:`UnknownAttackError` (a :class:`ValueError`), see
    :func:`check_attack_names`.
    """
    problem = _name_problem(name)
    if problem is not None:
        raise UnknownAttackError(f"{problem}; valid names: {', '.join(ATTACK_NAMES)}")
    key = _key(name)
    eps = check_eps(eps)
    match = re.fullmatch(r"pgd(\d*)", key)
    if match:
        steps = int(match.group(1)) if match.group(1) else kw.pop("steps", 10)
        if match.group(1) and "steps" in kw:
            raise AttackInputError(f"attack {name!r} fixes steps={steps}; do not also pass steps={kw['steps']!r}")
        steps = check_steps(steps)
        if "alpha" not in kw and steps == 20:
            kw["alpha"] = eps / 4
        return PGD(model, eps, steps=steps, **kw)
    canonical = _ALIASES[key]
    cls = {"fgsm": FGSM, "cw": CWLinf, "apgd-ce": APGD, "apgd-t": APGDT, "fab-t": FABT,
           "square": Square, "autoattack": AutoAttack}[canonical]
    return cls(model, eps, **kw)


__all__ = [
    "Attack", "AttackInputError", "UnknownAttackError", "eval_mode", "parse_eps", "build", "ATTACK_NAMES",
    "check_attack_names", "check_eps", "check_alpha", "check_steps", "check_int", "check_real", "check_norm",
    "check_seed",
    "FGSM", "PGD", "PGDL2", "CWLinf", "APGD", "APGDT", "FABT", "Square", "AutoAttack",
    "LogitsOf", "AnchorClassifier",
    "ce_loss", "margin_loss", "dlr_loss", "dlr_targeted_loss", "logits_of",
]
