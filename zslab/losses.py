"""Losses. Equation numbers refer to the HAS paper (ACM MM 2023) unless stated; the LAAT
losses (second half) cite the LAAT paper (CVPR 2024)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cls_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L_CLS (Eq. 1): cross-entropy of the compatibility scores over the seen classes.

    ``logits`` are the raw scores g(x)^T V φ(y); ``targets`` index the candidate columns.
    (The official APN/HAS code applies a softmax *before* cross-entropy — a double softmax;
    zslab uses the formula as written.)
    """
    return F.cross_entropy(logits, targets)


def loc_loss(attr_local: torch.Tensor, target_attributes: torch.Tensor) -> torch.Tensor:
    """L_LOC (Eq. 2): squared error between max-pooled attention and φ(y), mean over K and batch."""
    return F.mse_loss(attr_local, target_attributes.to(attr_local.dtype))


# --------------------------------------------------------------------------------------------
# LAAT losses. Equation and table numbers below refer to the LAAT paper (Li et al., "Language-
# Driven Anchors for Zero-Shot Adversarial Robustness", CVPR 2024). Every function takes image
# features ``(N, D)`` (the raw outputs of the model's embedding head), class anchors ``(C, D)``
# (normalised here; rows are classes) and, where needed, targets ``(N,)`` indexing the anchor
# rows. ``reduction`` is "mean" (default), "sum" or "none" (one value per example, the form the
# attacks maximise).

def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}")


def _check_feats(features: torch.Tensor, anchors: torch.Tensor) -> None:
    if features.ndim != 2 or anchors.ndim != 2 or features.shape[1] != anchors.shape[1]:
        raise ValueError(f"features (N, D) and anchors (C, D) must share D; got {tuple(features.shape)} "
                         f"and {tuple(anchors.shape)}")


def cosine_logits(features: torch.Tensor, anchors: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """``cos(f(x), â_c) / τ`` for every class c: ``(N, C)``. Both sides are L2-normalised
    (LAAT Sec. 3.5: "the image encoder outputs normalized features"); computed in float32 at least."""
    _check_feats(features, anchors)
    if not tau > 0:
        raise ValueError(f"tau must be > 0; got {tau!r}")
    z = F.normalize(features.float(), dim=1)
    a = F.normalize(anchors.to(z.device, z.dtype), dim=1)
    return z @ a.t() / tau


def ace_loss(features, anchors, targets, tau: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """L1, the Alignment Cross-Entropy (LAAT Eq. 3; with a temperature τ, Eq. 8, Appendix D):
    ``−log softmax_c(cos(f(x), â_c)/τ)[y]``. The paper uses τ = 1 (Table S1 sweeps it).
    Pass the adversarial features ``f(x+δ)`` for the adversarial-training term."""
    return F.cross_entropy(cosine_logits(features, anchors, tau), targets, reduction=reduction)


def smoothness_loss(clean_features, adv_features, reduction: str = "mean") -> torch.Tensor:
    """L2, the smoothness loss (LAAT Eq. 4): ``−cos(f(x), f(x+δ))`` per example (features
    normalised, Sec. 3.5), label-free. −1 when the two features point the same way."""
    if clean_features.shape != adv_features.shape or clean_features.ndim != 2:
        raise ValueError(f"clean and adversarial features must both be (N, D); got {tuple(clean_features.shape)} "
                         f"and {tuple(adv_features.shape)}")
    cos = F.cosine_similarity(clean_features.float(), adv_features.float(), dim=1, eps=1e-12)
    return _reduce(-cos, reduction)


def trades_kl(clean_logits, adv_logits, reduction: str = "mean") -> torch.Tensor:
    """TRADES' robustness term (Zhang et al., ICML 2019; LAAT Table 6, Appendix F):
    ``KL(p(x) ‖ p(x+δ))`` between the softmax distributions of the clean and adversarial
    anchor logits, summed over classes (per example; "mean" is PyTorch's ``batchmean``)."""
    log_p = F.log_softmax(clean_logits.float(), dim=1)
    log_q = F.log_softmax(adv_logits.float(), dim=1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    return _reduce(kl, reduction)


def trades_loss(clean_features, adv_features, anchors, targets, beta: float = 6.0, tau: float = 1.0,
                reduction: str = "mean") -> torch.Tensor:
    """The TRADES objective on anchor logits (LAAT Table 6, "EXP + A-CE + TRADES"):
    ``A-CE(f(x)) + (1/λ)·KL(p(x) ‖ p(x+δ))`` with ``beta`` = 1/λ (the paper runs 1 and 6). The
    classification term is on the *clean* features, unlike LAAT's Eq. 3 (Appendix F)."""
    clean = cosine_logits(clean_features, anchors, tau)
    adv = cosine_logits(adv_features, anchors, tau)
    ce = F.cross_entropy(clean, targets, reduction="none")
    return _reduce(ce + beta * trades_kl(clean, adv, reduction="none"), reduction)


def cos_objective(features, anchors, targets, reduction: str = "mean") -> torch.Tensor:
    """The "cos θ" objective of LAAT Table 4 / Table 5 rows 1–2 (Pang et al., NeurIPS 2020,
    hypersphere embedding): maximise ``cos(f(x), â_y)``, i.e. minimise ``−cos``."""
    cos = cosine_logits(features, anchors).gather(1, targets[:, None]).squeeze(1)
    return _reduce(-cos, reduction)


#: cosines are clamped to [−1 + _ACOS_EPS, 1 − _ACOS_EPS] before arccos (its slope is infinite at ±1)
_ACOS_EPS = 1e-6


def angle_objective(features, anchors, targets, reduction: str = "mean") -> torch.Tensor:
    """The "θ" objective of LAAT Table 4 (Pang et al., NeurIPS 2020): minimise the angle
    ``θ = arccos cos(f(x), â_y)`` in radians. Cosines are clamped to [−1+1e-6, 1−1e-6] so the
    gradient stays finite (it is zero at the clamp; the angle there is < 1.5e-3 rad from 0 or π).
    (The official code takes ``acos`` of the logits and then *maximises* the target entry; zslab
    minimises the angle, the objective as the paper names it.)"""
    cos = cosine_logits(features, anchors).gather(1, targets[:, None]).squeeze(1)
    return _reduce(torch.arccos(cos.clamp(-1 + _ACOS_EPS, 1 - _ACOS_EPS)), reduction)


def euclid_objective(features, anchors, targets, normalize: bool = False, reduction: str = "mean") -> torch.Tensor:
    """The Euclidean ("Eucl") objective of LAAT Table 4, the MMC loss of Pang et al. (ICLR 2020)
    that LAAT Sec. 2.1 quotes: ``‖z − â_y‖²₂`` with unit anchors ``â_y`` and ``z = f(x)`` the raw
    embedding (``normalize=False``, as in MMC and the official LAAT head). With
    ``normalize=True`` z is L2-normalised too and the loss is ``2 − 2·cos(f(x), â_y)``."""
    _check_feats(features, anchors)
    z = features.float()
    if normalize:
        z = F.normalize(z, dim=1)
    a = F.normalize(anchors.to(z.device, z.dtype), dim=1)[targets]
    return _reduce((z - a).pow(2).sum(dim=1), reduction)


#: LAAT objectives by config name (``objective`` key of ``zslab train laat``). Each maps
#: ``(features, anchors, targets, tau, reduction)`` to the per-batch training loss on the
#: adversarial features; "trades" is handled by the strategy (it needs clean features too).
LAAT_OBJECTIVES = {
    "ace": lambda f, a, y, tau=1.0, reduction="mean": ace_loss(f, a, y, tau, reduction),
    "cos": lambda f, a, y, tau=1.0, reduction="mean": cos_objective(f, a, y, reduction),
    "theta": lambda f, a, y, tau=1.0, reduction="mean": angle_objective(f, a, y, reduction),
    "euclid": lambda f, a, y, tau=1.0, reduction="mean": euclid_objective(f, a, y, reduction=reduction),
}
