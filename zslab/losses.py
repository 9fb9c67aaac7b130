"""Losses. Equation numbers refer to the HAS paper (ACM MM 2023) unless stated."""
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
