"""Robust accuracy under a set of attacks, with per-example worst case and runtime checks.

``robust_evaluate`` runs every attack on the points the model classifies correctly and reports
clean accuracy, accuracy under each attack and the per-example worst case across attacks (an
example counts as robust only if it is correct clean *and* under every attack, so robust
accuracy can never exceed clean accuracy).  Random attacks draw from streams keyed by the
dataset index of each example, so results do not depend on the batch size.

Like AutoAttack (Croce & Hein, 2020, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks", ICML) it raises flags — returned as strings in
``result["warnings"]`` — for common evaluation mistakes: the model in train mode, outputs that
look like probabilities instead of logits, zero or non-finite input gradients, randomness in
the model's forward pass, a black-box attack beating every white-box one, and attacks whose
output leaves the ε-ball.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from zslab.attacks import Attack, AutoAttack, build, check_attack_names, check_eps, eval_mode, logits_of
from zslab.attacks.base import AttackInputError, check_images, check_int, check_labels, check_seed

#: black-box success beyond white-box by more than this fraction of points raises a flag
#: (AutoAttack uses the same 0.2% margin)
BLACK_BOX_MARGIN = 0.002
_BALL_TOLERANCE = 1e-5


def _model_device(model, fallback: torch.device) -> torch.device:
    if isinstance(model, nn.Module):
        for tensor in model.parameters():
            return tensor.device
        for tensor in model.buffers():
            return tensor.device
    return fallback


def _build_attacks(attacks, model, eps: float, seed: int) -> dict[str, Attack]:
    if isinstance(attacks, (str, Attack)):
        attacks = [attacks]
    if isinstance(attacks, Mapping):
        items = list(attacks.items())
    elif isinstance(attacks, Iterable):
        items = []
        for atk in attacks:
            items.append((atk if isinstance(atk, str) else getattr(atk, "name", type(atk).__name__), atk))
    else:
        raise ValueError(f"attacks must be a dict name -> Attack or a list of names; got {type(attacks).__name__}")
    # every attack name is checked before any attack is built or run (all bad names in one error)
    specs = [atk for _, atk in items if isinstance(atk, str)]
    if specs:
        check_attack_names(list(dict.fromkeys(spec.strip() for spec in specs)))
    out: dict[str, Attack] = {}
    for name, atk in items:
        name = str(name)
        if name in out or name in ("clean", "worst"):
            raise ValueError(f"duplicate or reserved attack name {name!r}")
        if isinstance(atk, str):
            atk = build(atk, model, eps=eps, seed=seed)
        elif not isinstance(atk, Attack):
            raise ValueError(f"attack {name!r} is neither an Attack nor a name; got {type(atk).__name__}")
        out[name] = atk
    if not out:
        raise ValueError("no attacks given")
    return out


def _batches(images, labels, batch_size: int):
    """Yield (x, y) batches from tensors or from an iterable of (x, y) pairs."""
    if isinstance(images, torch.Tensor):
        if labels is None:
            raise AttackInputError("labels are required when images is a tensor")
        check_images(images)
        check_labels(labels, images.shape[0])
        for start in range(0, images.shape[0], batch_size):
            yield images[start:start + batch_size], labels[start:start + batch_size]
        return
    if labels is not None:
        raise AttackInputError("pass labels only with an images tensor; a DataLoader yields (x, y) pairs")
    for batch in images:
        if not isinstance(batch, Sequence) or len(batch) < 2:
            raise AttackInputError("a DataLoader for robust_evaluate must yield (images, labels) pairs")
        yield batch[0], batch[1]


def _gradient_flags(model, x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """Zero or non-finite input gradients of the cross-entropy (gradient masking)."""
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        logits = logits_of(model(x))
        loss = torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum")
        if not loss.requires_grad:
            return ["the loss does not depend on the input: gradients are unavailable (detached model?)"]
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    if grad is None:
        return ["the model output does not depend on the input: zero gradients"]
    flags = []
    flat = grad.reshape(grad.shape[0], -1)
    if not bool(torch.isfinite(flat).all()):
        flags.append("non-finite input gradients (NaN/inf): attacks cannot be trusted")
    zero = int((flat == 0).all(dim=1).sum())
    if zero:
        flags.append(
            f"{zero} of {flat.shape[0]} examples have an all-zero input gradient (gradient "
            "masking or saturated softmax): gradient-based attacks may overestimate robustness"
        )
    return flags


def robust_evaluate(model, images, labels=None, attacks=("pgd20",), *, eps=8 / 255, batch_size: int = 256,
                    per_class: bool = False, progress: bool = True, seed: int = 0, device=None,
                    checks: bool = True) -> dict:
    """Clean and robust accuracy of ``model`` under ``attacks``.

    Args:
        model: maps [0, 1] images to logits (or a dict with ``"logits"``).
        images: ``(N, C, H, W)`` tensor in [0, 1], or a DataLoader / iterable of ``(x, y)``
            batches (then ``labels`` must be None).
        labels: ``(N,)`` long tensor when ``images`` is a tensor.
        attacks: dict ``name -> Attack`` (or ``name -> attack name``), or a list of attack
            names for :func:`zslab.attacks.build` (e.g. ``["fgsm", "pgd20", "cw",
            "autoattack"]``), or a single name.
        eps: L∞ budget for attacks given by name (float or ``"8/255"``, in [0, 1]; ``8`` is
            refused with a hint to write ``8/255``).
        batch_size: examples per attack call for tensor inputs (results do not depend on it);
            an integer >= 1.
        per_class: also report the mean of per-class accuracies.
        progress: show a tqdm progress bar.
        seed: seed of attacks built from names.
        device: where to evaluate; default the model's device.
        checks: run the runtime checks that cost extra passes (gradients, randomness).

    Returns:
        ``{"n", "eps", "clean", "robust": {name: acc}, "worst", "per_example": {"clean", name...,
        "worst": bool tensors (N,)}, "warnings": [str, ...]}`` plus, with ``per_class=True``,
        ``"per_class": {"clean", name..., "worst": mean per-class accuracy}`` and
        ``"per_class_acc": {metric: {class: accuracy}}``.  Accuracies are fractions in [0, 1].
    """
    eps = check_eps(eps, "eps")
    batch_size = check_int(batch_size, "batch_size", 1)
    seed = check_seed(seed)
    atk_map = _build_attacks(attacks, model, eps, seed)
    warnings: list[str] = []

    if isinstance(model, nn.Module):
        training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
        if training:
            warnings.append(
                f"model was in train mode ({len(training)} modules, e.g. {training[0]!r}); it was "
                "evaluated in eval mode and its flags were restored — call model.eval() yourself "
                "when evaluating elsewhere"
            )
    for name, atk in atk_map.items():
        if atk.seed is None:
            warnings.append(f"attack {name!r} has seed=None: its results are random and depend on batching")

    n_seen = 0
    clean_all, labels_all = [], []
    correct_all = {name: [] for name in atk_map}
    looks_like_probs = True
    first = True
    total = images.shape[0] if isinstance(images, torch.Tensor) else None
    ball_flagged: set[str] = set()
    square_beyond = 0

    bar = tqdm(total=total, disable=not progress, desc="robust eval", unit="ex", leave=False)
    try:
        with eval_mode(model):
            for xb, yb in _batches(images, labels, batch_size):
                check_images(xb)
                check_labels(yb, xb.shape[0])
                dev = torch.device(device) if device is not None else _model_device(model, xb.device)
                xb, yb = xb.to(dev), yb.to(dev)
                n = xb.shape[0]
                ids = torch.arange(n_seen, n_seen + n, device=dev)
                with torch.no_grad():
                    logits = logits_of(model(xb))
                if logits.shape[0] != n:
                    raise AttackInputError(f"model returned {logits.shape[0]} rows for {n} images")
                lo_y, hi_y = int(yb.min()), int(yb.max())
                if lo_y < 0 or hi_y >= logits.shape[1]:
                    raise AttackInputError(f"labels must lie in [0, {logits.shape[1] - 1}]; got [{lo_y}, {hi_y}]")
                rows_ok = bool((logits >= 0).all()) and bool(
                    torch.allclose(logits.float().sum(dim=1), torch.ones(n, device=dev), atol=1e-4))
                looks_like_probs = looks_like_probs and rows_ok
                if first and checks:
                    with torch.no_grad():
                        again = logits_of(model(xb))
                    if not torch.allclose(logits.float(), again.float(), rtol=1e-5, atol=1e-6):
                        warnings.append(
                            "two clean forward passes differ: the model is random (dropout, noise "
                            "defences?); use EOT attacks and report over several runs"
                        )
                    warnings.extend(_gradient_flags(model, xb, yb))
                first = False

                clean = logits.argmax(dim=1) == yb
                idx = clean.nonzero().squeeze(1)
                for name, atk in atk_map.items():
                    bar.set_postfix_str(name)
                    correct = torch.zeros(n, dtype=torch.bool, device=dev)
                    if idx.numel():
                        x_in = xb[idx]
                        adv = atk(x_in, yb[idx], ids=ids[idx])
                        if atk.norm == "Linf":
                            dist = (adv - x_in).abs().reshape(idx.numel(), -1).amax(dim=1)
                        else:
                            dist = (adv - x_in).reshape(idx.numel(), -1).norm(dim=1)
                        outside = bool((dist > atk.eps + _BALL_TOLERANCE).any()) or bool(
                            (adv < -_BALL_TOLERANCE).any() or (adv > 1 + _BALL_TOLERANCE).any())
                        if outside and name not in ball_flagged:
                            ball_flagged.add(name)
                            warnings.append(f"attack {name!r} returned points outside the eps-ball or [0, 1]")
                        with torch.no_grad():
                            correct[idx] = logits_of(model(adv)).argmax(dim=1) == yb[idx]
                        if isinstance(atk, AutoAttack):
                            counts = atk.last_counts
                            before = counts.get("fab-t", counts.get("clean", 0))
                            square_beyond += max(before - counts.get("square", before), 0)
                    correct_all[name].append((correct & clean).cpu())
                clean_all.append(clean.cpu())
                labels_all.append(yb.cpu())
                n_seen += n
                bar.update(n)
    finally:
        bar.close()

    if n_seen == 0:
        raise AttackInputError("no examples to evaluate")
    clean_vec = torch.cat(clean_all)
    per_example = {"clean": clean_vec}
    worst = clean_vec.clone()
    for name in atk_map:
        per_example[name] = torch.cat(correct_all[name])
        worst &= per_example[name]
    per_example["worst"] = worst
    labels_vec = torch.cat(labels_all)

    def acc(v):
        return float(v.float().mean())

    robust = {name: acc(per_example[name]) for name in atk_map}
    if looks_like_probs:
        warnings.append(
            "model outputs look like probabilities (non-negative rows summing to 1): attacks "
            "expect logits; remove the final softmax"
        )
    white = [robust[k] for k, a in atk_map.items() if not a.black_box]
    for name, atk in atk_map.items():
        if atk.black_box and white and robust[name] < min(white) - BLACK_BOX_MARGIN:
            warnings.append(
                f"black-box attack {name!r} ({robust[name]:.4f}) beats every white-box attack "
                f"(best {min(white):.4f}): gradients are likely masked"
            )
    if square_beyond > BLACK_BOX_MARGIN * n_seen:
        warnings.append(
            f"inside AutoAttack, Square fooled {square_beyond} points that the white-box attacks "
            "missed: gradients are likely masked"
        )

    result = {
        "n": n_seen,
        "eps": eps,
        "clean": acc(clean_vec),
        "robust": robust,
        "worst": acc(worst),
        "per_example": per_example,
        "warnings": warnings,
    }
    if per_class:
        classes = labels_vec.unique().tolist()
        detail = {}
        means = {}
        for metric, vec in per_example.items():
            per = {int(c): acc(vec[labels_vec == c]) for c in classes}
            detail[metric] = per
            means[metric] = sum(per.values()) / len(per)
        result["per_class"] = means
        result["per_class_acc"] = detail
    return result
