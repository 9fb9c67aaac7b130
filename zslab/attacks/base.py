"""The shared base class of zslab's attacks.

Usage follows torchattacks: build an attack from a model and hyperparameters, then call it::

    atk = PGD(model, eps=8/255, alpha=2/255, steps=10, random_start=True)
    adv = atk(images, labels)

Conventions that every attack inherits from :class:`Attack`:

* images are ``(N, C, H, W)`` floats in [0, 1]; input normalisation lives inside the model;
  outputs are in [0, 1] and within the ε-ball of the input;
* the model returns logits ``(N, C)`` or a dict with a ``"logits"`` entry;
* the model is put in eval mode for the call and every submodule's ``training`` flag is
  restored afterwards, even when the attack raises;
* parameters, buffers (BatchNorm running statistics) and parameter ``.grad`` are never
  modified: input gradients are taken with :func:`torch.autograd.grad` with respect to the
  input only;
* the attack follows the input's device and dtype;
* randomness comes from per-example keyed streams (:mod:`zslab.attacks._rng`) seeded by
  ``seed=`` — never from PyTorch's global RNG — so a fixed seed gives identical output and
  results do not depend on how examples are batched (pass ``ids=`` with dataset indices);
* ``eps=0`` returns (a copy of) the input exactly;
* nothing is printed.
"""

from __future__ import annotations

import contextlib
import math
import numbers

import torch
import torch.nn as nn

from zslab import ZSLabError
from zslab.config.schema import parse_fraction

from ._rng import KeyedRNG, _splitmix64, fresh_seed, name_salt
from .losses import ce_loss, logits_of, resolve_loss

#: how far outside [0, 1] input values may lie (rounding) before they are rejected
RANGE_TOLERANCE = 1e-5

_DEFAULT = object()


class AttackInputError(ZSLabError, ValueError):
    """Bad input to an attack or to the robust evaluation (shape, dtype, range, labels), or a
    bad attack hyperparameter (ε, step size, steps, norm, ...)."""


class UnknownAttackError(AttackInputError):
    """An attack name that :func:`zslab.attacks.build` does not know (or a malformed one)."""


# ------------------------------------------------------------------ hyperparameter checks
#: canonical norm names and the spellings accepted for them
NORMS = ("Linf", "L2")
_NORM_ALIASES = {"linf": "Linf", "inf": "Linf", "l_inf": "Linf", "l-inf": "Linf", "l∞": "Linf", "∞": "Linf",
                 "l2": "L2", "2": "L2", "l_2": "L2"}


def _fmt(value: float) -> str:
    return f"{value:g}"


def parse_eps(eps, name: str = "eps") -> float:
    """A perturbation budget as a float: numbers pass through, strings like ``"8/255"``,
    ``"0.03"`` or ``"8 / 255"`` are parsed.  Negative, non-finite or malformed values raise
    :class:`AttackInputError` (a :class:`ValueError`) naming ``name``.  No upper bound: see
    :func:`check_eps`."""
    if isinstance(eps, bool):
        raise AttackInputError(f"{name} must be a number or a string like '8/255'; got {eps!r}")
    if isinstance(eps, numbers.Real):
        value = float(eps)
    elif isinstance(eps, str):
        try:
            value = parse_fraction(eps)
        except ValueError:
            raise AttackInputError(f"cannot parse {name} {eps!r}; write it like '8/255' or '0.03'") from None
    elif isinstance(eps, torch.Tensor) and eps.numel() == 1 and not eps.dtype == torch.bool:
        value = float(eps.item())
    else:
        raise AttackInputError(f"{name} must be a number or a string like '8/255'; got {eps!r}")
    if not math.isfinite(value):
        raise AttackInputError(f"{name} must be finite and >= 0; got {eps!r}")
    if value < 0:
        raise AttackInputError(f"{name} must be finite and >= 0; got {eps!r} (a radius or step size is never negative)")
    return value


def check_norm(norm, supported=NORMS, owner: str | None = None) -> str:
    """The canonical name (``"Linf"`` or ``"L2"``) of ``norm`` (spellings like ``"linf"``,
    ``"inf"``, ``"l2"``, ``2``, ``float("inf")`` accepted); raises :class:`AttackInputError`
    when it is unknown or not in ``supported`` (``owner`` names the attack in the message)."""
    key = None
    if isinstance(norm, str):
        key = _NORM_ALIASES.get(norm.strip().lower().replace(" ", ""))
    elif isinstance(norm, numbers.Real) and not isinstance(norm, bool):
        key = "Linf" if norm == math.inf else "L2" if norm == 2 else None
    choices = ", ".join(repr(n) for n in supported)
    if key is None:
        own = f" ({owner} supports {choices})" if owner and tuple(supported) != NORMS else ""
        raise AttackInputError(f"norm must be one of {', '.join(map(repr, NORMS))}; got {norm!r}{own}")
    if key not in supported:
        who = f"{owner} supports" if owner else "supported norms:"
        hint = " (the L2 attack is PGDL2)" if key == "L2" else ""
        raise AttackInputError(f"{who} norm {choices} only; got norm={norm!r}{hint}")
    return key


def check_eps(value, name: str = "eps", norm: str = "Linf") -> float:
    """A validated budget (radius ``eps`` or step size ``alpha``) as a float.

    Accepts what :func:`parse_eps` accepts (``"8/255"``, ``0.03``); refuses NaN, ±inf, negative
    values and, for ``norm="Linf"`` (images in [0, 1]), values above 1 — a value in (1, 255]
    is taken for the 0-255 scale and the message suggests ``value/255``.  L2 budgets may
    exceed 1.  Raises :class:`AttackInputError` (a :class:`ValueError` and a
    :class:`~zslab.ZSLabError`) naming ``name``."""
    norm = check_norm(norm)
    v = parse_eps(value, name)
    if norm == "Linf" and v > 1:
        if v <= 255:
            raise AttackInputError(
                f"{name}={_fmt(v)} is on the 0-255 scale; images are in [0, 1]: did you mean {_fmt(v)}/255?"
            )
        raise AttackInputError(
            f"{name}={_fmt(v)} exceeds 1, the whole [0, 1] pixel range; an L-inf {name} must lie in [0, 1] "
            "(e.g. 8/255)"
        )
    return v


def check_int(value, name: str, minimum: int = 1, hint: str = "") -> int:
    """``value`` as an int; refuses bools, floats (even ``2.0``), strings and values below
    ``minimum`` with an :class:`AttackInputError` naming ``name`` (``hint`` is appended)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise AttackInputError(f"{name} must be an integer >= {minimum}; got {value!r}{hint}")
    value = int(value)
    if value < minimum:
        raise AttackInputError(f"{name} must be >= {minimum}; got {value}{hint}")
    return value


def check_real(value, name: str, low=None, high=None, *, low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in the interval given by ``low``/``high`` (closed unless
    ``low_open``/``high_open``); refuses bools, strings, NaN and ±inf."""
    lo_b = "(" if low_open else "["
    hi_b = ")" if high_open else "]"
    interval = f"{lo_b}{'-inf' if low is None else _fmt(low)}, {'inf' if high is None else _fmt(high)}{hi_b}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AttackInputError(f"{name} must be a number in {interval}; got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise AttackInputError(f"{name} must be finite, in {interval}; got {value!r}")
    if (low is not None and (v < low or (low_open and v == low))) or (
            high is not None and (v > high or (high_open and v == high))):
        raise AttackInputError(f"{name} must lie in {interval}; got {value!r}")
    return v


def check_flag(value, name: str) -> bool:
    """``bool(value)``, refusing strings (``"false"`` would be true) and None."""
    if value is None or isinstance(value, str):
        raise AttackInputError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_seed(seed) -> int | None:
    """``None`` (a fresh seed per call) or an integer seed."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise AttackInputError(f"seed must be an integer or None; got {seed!r}")
    return int(seed)


def check_steps(steps, name: str = "steps") -> int:
    """An iteration count of an iterative attack: an integer >= 1."""
    if isinstance(steps, numbers.Integral) and not isinstance(steps, bool) and steps < 1:
        raise AttackInputError(f"{name} must be >= 1; got {int(steps)} (an iterative attack needs at least one "
                               "step; eps=0 leaves the images unchanged)")
    return check_int(steps, name, 1)


def check_alpha(alpha, eps: float, steps: int, norm: str = "Linf", name: str = "alpha") -> float:
    """Step size: validated like a budget (:func:`check_eps`), or ``2.5·ε/steps`` when None
    (Madry et al.'s choice of a total path 2.5× the radius); 0 only when nothing moves."""
    if alpha is None:
        return 2.5 * eps / max(steps, 1)
    alpha = check_eps(alpha, name, norm)
    if alpha == 0 and eps > 0 and steps > 0:
        raise AttackInputError(f"{name} (the step size) must be > 0 when eps > 0; got 0")
    return alpha


@contextlib.contextmanager
def eval_mode(model):
    """Put ``model`` in eval mode; restore every submodule's own ``training`` flag on exit."""
    if not isinstance(model, nn.Module):
        yield
        return
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def check_images(images) -> None:
    if not isinstance(images, torch.Tensor):
        raise AttackInputError(f"images must be a torch.Tensor; got {type(images).__name__}")
    if images.ndim != 4 or not images.is_floating_point():
        raise AttackInputError(
            "images must be a 4-D float tensor (N, C, H, W) with values in [0, 1]; got shape "
            f"{tuple(images.shape)} and dtype {images.dtype}"
        )
    if images.numel() == 0:
        return
    if not bool(torch.isfinite(images).all()):
        raise AttackInputError("images contain NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise AttackInputError(
            f"images must have values in [0, 1]; got min {lo:.4g} and max {hi:.4g}. "
            "Pass un-normalised images: input normalisation belongs inside the model."
        )


def check_labels(labels, n: int) -> None:
    if not isinstance(labels, torch.Tensor):
        raise AttackInputError(f"labels must be a torch.Tensor; got {type(labels).__name__}")
    if labels.ndim != 1 or labels.dtype != torch.long:
        raise AttackInputError(
            f"labels must be a 1-D long tensor of class indices; got shape {tuple(labels.shape)} "
            f"and dtype {labels.dtype}"
        )
    if labels.shape[0] != n:
        raise AttackInputError(f"got {n} images but {labels.shape[0]} labels; the lengths must match")


class Attack:
    """Base class: validation, eval mode, logits extraction, input gradients, seeded streams.

    Args:
        model: an ``nn.Module`` (or callable) mapping [0, 1] images to logits ``(N, C)`` or to
            a dict holding them under ``"logits"``.
        eps: L∞ (or, for L2 attacks, L2) radius; a float or a string like ``"8/255"``; finite,
            >= 0 and, for L∞ on [0, 1] images, at most 1 (see :func:`check_eps`).
        loss: ``None`` for the attack's default loss, a name (``"ce"``, ``"margin"``,
            ``"dlr"``) or a callable ``loss(model_output, labels)`` returning per-example
            values (or their mean) to *maximise*.  The callable receives the raw model output
            (a dict for dict-returning models), so composite losses can use every entry.
        targeted: descend the loss instead of ascending it (with CE, ``labels`` are then the
            target classes).  HAS's generator uses this for signed-gradient descent on its
            composite loss.
        seed: base seed of the attack's random streams (an integer); ``None`` draws a fresh
            one per call.
        norm: optional; when given it must name the attack's own norm (:attr:`norm`).

    Every hyperparameter is validated at construction; a bad one raises
    :class:`AttackInputError` (a :class:`ValueError`) naming it and the fix.
    """

    name = "attack"
    norm = "Linf"
    black_box = False
    default_seed: int | None = None
    #: name keying the random streams (defaults to the class name); attacks that are the same
    #: algorithm under another name (CWLinf is PGD on the margin loss) share their streams
    rng_name: str | None = None

    def __init__(self, model, eps=8 / 255, *, loss=None, targeted=False, seed=_DEFAULT, norm=None):
        if not callable(model):
            raise TypeError(f"model must be callable (an nn.Module); got {type(model).__name__}")
        if norm is not None:
            check_norm(norm, (type(self).norm,), type(self).__name__)
        self.model = model
        self.eps = check_eps(eps, "eps", type(self).norm)
        self.loss = resolve_loss(loss)
        self.targeted = check_flag(targeted, "targeted")
        self.seed = self.default_seed if seed is _DEFAULT else check_seed(seed)
        self._labels_checked = False

    # ------------------------------------------------------------------ public API
    def __call__(self, images: torch.Tensor, labels: torch.Tensor, *, ids=None) -> torch.Tensor:
        """Adversarial versions of ``images`` (same shape, device and dtype, no grad).

        ``ids`` (optional, 1-D integers, one per example) key the per-example random streams;
        they default to ``0..N-1``.  Pass dataset indices to make results independent of
        batching.
        """
        check_images(images)
        check_labels(labels, images.shape[0])
        x = images.detach()
        y = labels.detach().to(x.device)
        ids = self._check_ids(ids, x.shape[0], x.device)
        if self.eps == 0 or x.shape[0] == 0:
            return x.clone()
        if not self.black_box and torch.is_inference_mode_enabled():
            raise RuntimeError(
                f"{type(self).__name__} needs autograd; call it outside torch.inference_mode()"
            )
        seed = fresh_seed() if self.seed is None else self.seed
        self._labels_checked = False
        with eval_mode(self.model):
            adv = self._perturb(x, y, self._rng(seed, ids, x.device))
        return adv.detach()

    def __repr__(self) -> str:
        skip = {"model", "loss"}
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in skip and not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ subclass hooks
    def _perturb(self, x: torch.Tensor, y: torch.Tensor, rng: KeyedRNG) -> torch.Tensor:
        raise NotImplementedError

    def default_loss(self, output, labels: torch.Tensor) -> torch.Tensor:
        """The loss used when ``loss=None`` (cross-entropy unless a subclass says otherwise)."""
        return ce_loss(logits_of(output), labels)

    # ------------------------------------------------------------------ helpers
    def _rng(self, seed: int, ids: torch.Tensor, device) -> KeyedRNG:
        return KeyedRNG(_splitmix64((seed & 0xFFFFFFFFFFFFFFFF) ^ name_salt(self.rng_name or type(self).__name__)), ids, device)

    @staticmethod
    def _check_ids(ids, n: int, device) -> torch.Tensor:
        if ids is None:
            return torch.arange(n, device=device)
        ids = torch.as_tensor(ids)
        if ids.ndim != 1 or ids.shape[0] != n or ids.is_floating_point() or ids.dtype == torch.bool:
            raise AttackInputError(f"ids must be {n} integers (one per example); got shape {tuple(ids.shape)}")
        return ids.to(device=device, dtype=torch.long)

    def _check_label_range(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        if self._labels_checked or y.numel() == 0:
            return
        n_classes = logits.shape[1]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            raise AttackInputError(f"labels must lie in [0, {n_classes - 1}] for a {n_classes}-class model; got [{lo}, {hi}]")
        self._labels_checked = True

    @staticmethod
    def _until_fooled(x: torch.Tensor, robust: torch.Tensor, attempts, keep_last: bool = False) -> torch.Tensor:
        """The restart loop of APGD, APGD-T, FAB and Square (AutoAttack's protocol): each attempt
        attacks only the examples still classified correctly (``robust``, updated in place); an
        example leaves once an attempt fools the model. ``attempts``: callables
        ``attempt(sub) -> (adv, fooled)`` on the index tensor ``sub`` of the examples still in.
        The result holds each fooled example's successful input and, for the others, ``x`` (or,
        with ``keep_last``, the last attempt's iterate, as APGD returns it)."""
        out = x.clone()
        for attempt in attempts:
            sub = robust.nonzero().squeeze(1)
            if sub.numel() == 0:
                break
            adv, fooled = attempt(sub)
            if keep_last:
                out[sub] = adv
            else:
                out[sub[fooled]] = adv[fooled]
            robust[sub[fooled]] = False
        return out

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits without building a graph."""
        with torch.no_grad():
            return logits_of(self.model(x))

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return self._logits(x).argmax(dim=1)

    def _objective(self, output, y: torch.Tensor) -> torch.Tensor:
        fn = self.default_loss if self.loss is None else self.loss
        return fn(output, y)

    def _input_grad(self, x: torch.Tensor, y: torch.Tensor, loss_fn=None):
        """Gradient of the (summed) loss w.r.t. the input only, sign-flipped when targeted.

        Returns ``(grad, logits, loss)`` with ``logits`` and ``loss`` detached; ``loss`` is
        per-example when the loss function returns per-example values, else a scalar.
        """
        loss_fn = self._objective if loss_fn is None else loss_fn
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            output = self.model(x)
            logits = logits_of(output)
            self._check_label_range(logits, y)
            loss = loss_fn(output, y)
            if not isinstance(loss, torch.Tensor) or loss.ndim > 1 or (loss.ndim == 1 and loss.shape[0] != x.shape[0]):
                raise ValueError(
                    "the attack loss must return a scalar or one value per example; got "
                    f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}"
                )
            total = loss.sum() if loss.ndim else loss
            if self.targeted:
                total = -total
            if not total.requires_grad:
                raise ValueError(
                    "the attack loss does not depend on the input: is the model detached, "
                    "or running under torch.no_grad() inside its forward?"
                )
            (grad,) = torch.autograd.grad(total, x, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(x)
        return grad, logits.detach(), loss.detach()


def ball_bounds(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise lower and upper bounds of the L∞ ε-ball around ``x`` intersected with [0, 1]."""
    return (x - eps).clamp_(min=0.0), (x + eps).clamp_(max=1.0)


def flat_norm(t: torch.Tensor, p) -> torch.Tensor:
    """Per-example norm of a batch, shaped ``(N, 1, 1, 1)`` for broadcasting."""
    flat = t.reshape(t.shape[0], -1)
    if p == "inf":
        n = flat.abs().amax(dim=1)
    else:
        n = flat.norm(p=2, dim=1)
    return n.reshape(-1, *([1] * (t.ndim - 1)))
