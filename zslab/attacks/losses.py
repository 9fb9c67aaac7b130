"""Losses that attacks maximise, and the logits extraction shared by all attacks.

Every loss here takes ``(logits, labels)`` — or a dict model output holding ``"logits"`` — and
returns one value per example, to be *maximised* by an untargeted attack.

* :func:`ce_loss` — cross-entropy (Madry et al., 2018, "Towards Deep Learning Models Resistant
  to Adversarial Attacks").
* :func:`margin_loss` — the Carlini–Wagner margin ``max_{j≠y} z_j − z_y`` (Carlini & Wagner,
  2017), used with PGD-L∞ as "CW-L∞" in the LAAT paper.
* :func:`dlr_loss`, :func:`dlr_targeted_loss` — the Difference of Logits Ratio losses of
  Croce & Hein (2020), "Reliable evaluation of adversarial robustness with an ensemble of
  diverse parameter-free attacks" (ICML), used by APGD-DLR and APGD-T.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

_TINY = 1e-12


def logits_of(output) -> torch.Tensor:
    """The logits tensor of a model output: the output itself, or ``output["logits"]``.

    zslab models return either logits ``(N, C)`` or a dict holding them under ``"logits"``
    (the APN model also returns ``"attr"``, ``"attention"``, ``"features"``...).
    """
    if isinstance(output, Mapping):
        if "logits" not in output:
            raise ValueError(
                "the model returned a dict without a 'logits' key (keys: "
                f"{sorted(map(str, output.keys()))}); wrap it in "
                "zslab.attacks.LogitsOf(model, key=...) to name the logits entry"
            )
        output = output["logits"]
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        what = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"the model must return logits of shape (N, n_classes); got {what}")
    return output


def _float(z: torch.Tensor) -> torch.Tensor:
    # losses in at least float32 (logits may be half precision under autocast)
    return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z


def ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy."""
    return F.cross_entropy(_float(logits_of(logits)), labels, reduction="none")


def margin_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example CW margin ``max_{j≠y} z_j − z_y`` (positive means misclassified)."""
    z = _float(logits_of(logits))
    z_y = z.gather(1, labels[:, None]).squeeze(1)
    others = z.masked_fill(F.one_hot(labels, z.shape[1]).bool(), float("-inf"))
    return others.amax(dim=1) - z_y


def dlr_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example untargeted DLR loss (Croce & Hein, 2020, Eq. 5), to maximise.

    ``-(z_y - max_{j≠y} z_j) / (z_π1 - z_π3)`` with ``z_π`` the logits sorted in decreasing
    order. Needs at least 3 classes.
    """
    z = _float(logits_of(logits))
    if z.shape[1] < 3:
        raise ValueError("the DLR loss needs at least 3 classes")
    zs = z.sort(dim=1, descending=True).values
    return margin_loss(z, labels) / (zs[:, 0] - zs[:, 2] + _TINY)


def dlr_targeted_loss(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example targeted DLR loss (Croce & Hein, 2020, Eq. 6), to maximise.

    ``-(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2)``.  With fewer than 4 classes the denominator
    is undefined; there the loss falls back to the plain targeted margin ``z_t − z_y`` (sign
    steps are invariant to a per-example scale, so APGD-T still runs on 2- and 3-way tasks).
    """
    z = _float(logits_of(logits))
    z_y = z.gather(1, labels[:, None]).squeeze(1)
    z_t = z.gather(1, targets[:, None]).squeeze(1)
    if z.shape[1] < 4:
        return z_t - z_y
    zs = z.sort(dim=1, descending=True).values
    return (z_t - z_y) / (zs[:, 0] - 0.5 * (zs[:, 2] + zs[:, 3]) + _TINY)


LOSSES = {"ce": ce_loss, "margin": margin_loss, "cw": margin_loss, "dlr": dlr_loss}


def resolve_loss(loss):
    """``None`` → None (the attack's default); a name in :data:`LOSSES` → that loss; a callable
    ``loss(model_output, labels)`` → itself.  Callables receive the *raw* model output (a dict
    for dict-returning models) so composite losses can use every entry."""
    if loss is None or callable(loss):
        return loss
    if isinstance(loss, str) and loss.lower() in LOSSES:
        return LOSSES[loss.lower()]
    raise ValueError(f"unknown loss {loss!r}; use a callable or one of {sorted(LOSSES)}")
