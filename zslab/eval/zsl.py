"""ZSL / GZSL metrics (HAS §4.1, Eq. 8–11).

* ZSL T1: mean per-class top-1 accuracy on unseen-class images, candidates = unseen classes
  (Eq. 8).
* GZSL: candidates = seen ∪ unseen; seen scores lowered by the calibration factor μ
  (calibrated stacking, Eq. 9); U and S are per-class mean accuracies on unseen and seen
  test images; H = 2US / (U + S).
* μ is chosen by a sweep on the *validation* split (train classes' held-out images vs the
  validation classes), never on test data.
"""
from __future__ import annotations

import numpy as np
import torch

from zslab.attacks import eval_mode
from zslab.data.base import ZSLData
from zslab.data.batches import iterate_batches


def per_class_accuracy(pred: torch.Tensor, labels: torch.Tensor, classes=None) -> float:
    """Mean over classes of top-1 accuracy (classes with no images are skipped).

    ``classes`` restricts/orders the classes averaged over; default: the classes in ``labels``.
    Returns a fraction in [0, 1].
    """
    pred = torch.as_tensor(pred).flatten()
    labels = torch.as_tensor(labels).flatten()
    if pred.shape != labels.shape:
        raise ValueError(f"pred and labels differ in length: {pred.numel()} vs {labels.numel()}")
    if labels.numel() == 0:
        raise ValueError("no examples to evaluate")
    classes = labels.unique() if classes is None else torch.as_tensor(classes).flatten()
    accs = []
    for c in classes.tolist():
        m = labels == c
        if m.any():
            accs.append((pred[m] == c).float().mean().item())
    if not accs:
        raise ValueError("none of the requested classes occur in labels")
    return float(np.mean(accs))


def harmonic_mean(u: float, s: float) -> float:
    return 0.0 if u + s == 0 else 2 * u * s / (u + s)


def predict(scores: torch.Tensor, candidates: torch.Tensor, seen: torch.Tensor | None = None,
            mu: float = 0.0) -> torch.Tensor:
    """argmax over ``candidates`` (global class indices) of ``scores`` (N, n_classes_total).

    With ``seen`` and ``mu``, scores of seen candidates are lowered by μ first (Eq. 9).
    Returns global class indices.
    """
    candidates = torch.as_tensor(candidates, device=scores.device).long()
    s = scores[:, candidates].clone()
    if seen is not None and mu:
        is_seen = torch.isin(candidates, torch.as_tensor(seen, device=scores.device))
        s[:, is_seen] -= mu
    return candidates[s.argmax(dim=1)]


def gzsl_us(scores_seen_imgs, labels_seen, scores_unseen_imgs, labels_unseen, seen_classes, unseen_classes,
            mu: float) -> tuple[float, float, float]:
    """(U, S, H) for one μ."""
    cand = torch.cat([torch.as_tensor(seen_classes), torch.as_tensor(unseen_classes)])
    u = per_class_accuracy(predict(scores_unseen_imgs, cand, seen_classes, mu), labels_unseen)
    s = per_class_accuracy(predict(scores_seen_imgs, cand, seen_classes, mu), labels_seen)
    return u, s, harmonic_mean(u, s)


def mu_candidates(scores_seen_imgs, scores_unseen_imgs, seen_classes, unseen_classes, n: int = 201) -> np.ndarray:
    """Candidate μ values: where a prediction can flip, i.e. quantiles of the per-image gap
    (best seen score − best unseen score), plus 0."""
    seen_classes = torch.as_tensor(seen_classes)
    unseen_classes = torch.as_tensor(unseen_classes)
    allsc = torch.cat([scores_seen_imgs, scores_unseen_imgs])
    gap = allsc[:, seen_classes].amax(1) - allsc[:, unseen_classes].amax(1)
    q = torch.quantile(gap.float(), torch.linspace(0, 1, n)).numpy()
    # a hair above each gap so the flip happens at that value
    return np.unique(np.concatenate([[0.0], q + 1e-6 * (1 + np.abs(q))]))


def select_mu(scores_seen_imgs, labels_seen, scores_unseen_imgs, labels_unseen, seen_classes, unseen_classes,
              n: int = 201) -> tuple[float, float]:
    """Sweep μ on a validation split; return (μ with the best H, that H). Ties -> smallest |μ|."""
    best_mu, best_h = 0.0, -1.0
    cands = mu_candidates(scores_seen_imgs, scores_unseen_imgs, seen_classes, unseen_classes, n)
    for mu in sorted(cands, key=abs):
        _, _, h = gzsl_us(scores_seen_imgs, labels_seen, scores_unseen_imgs, labels_unseen,
                          seen_classes, unseen_classes, float(mu))
        if h > best_h + 1e-12:
            best_mu, best_h = float(mu), h
    return best_mu, best_h


# ----------------------------------------------------------------------------- score matrices of a model
@torch.no_grad()
def compute_scores(model, dataset, class_attributes: torch.Tensor, device, batch_size: int = 512,
                   channels_last: bool = False):
    """Compatibility scores of every image against *all* classes: (N, n_classes), labels (N,).
    ``channels_last``: feed the batches in ``torch.channels_last`` memory format."""
    A = class_attributes.to(device)
    scores, labels = [], []
    with eval_mode(model):  # restores every submodule's own train/eval flag
        for x, y in iterate_batches(dataset, batch_size):
            x = x.to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out = model(x, A)
            scores.append(out["logits"].float().cpu())
            labels.append(y)
    return torch.cat(scores), torch.cat(labels)


def evaluate_split_scores(data: ZSLData, scores: dict, mu: float | None = None) -> dict:
    """Validation and/or test metrics from precomputed score matrices.

    ``scores`` maps split name -> (scores, labels). Validation: ZSL on the validation classes,
    μ swept for the best H (train vs validation classes). Test: ZSL T1 on unseen classes and
    GZSL U/S/H with the given μ (chosen on validation).
    """
    out = {}
    tr = data.train_classes
    if "val_unseen" in scores:
        su, yu = scores["val_unseen"]
        ss, ys = scores["val_seen"]
        out["val_zsl"] = per_class_accuracy(predict(su, data.val_classes), yu)
        out["val_seen_acc"] = per_class_accuracy(predict(ss, tr), ys)
        m, h = select_mu(ss, ys, su, yu, tr, data.val_classes)
        u, s, _ = gzsl_us(ss, ys, su, yu, tr, data.val_classes, m)
        out.update(val_u=u, val_s=s, val_h=h, mu=m)
    if "test_unseen" in scores:
        su, yu = scores["test_unseen"]
        ss, ys = scores["test_seen"]
        mu = out.get("mu", 0.0) if mu is None else mu
        out["zsl_t1"] = per_class_accuracy(predict(su, data.unseen_classes), yu)
        u, s, h = gzsl_us(ss, ys, su, yu, tr, data.unseen_classes, mu)
        u0, s0, h0 = gzsl_us(ss, ys, su, yu, tr, data.unseen_classes, 0.0)
        out.update(gzsl_u=u, gzsl_s=s, gzsl_h=h, mu=mu, gzsl_u_uncalibrated=u0, gzsl_s_uncalibrated=s0,
                   gzsl_h_uncalibrated=h0)
    return out
