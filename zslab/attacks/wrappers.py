"""Model wrappers that turn zslab models into the ``images → logits`` form attacks expect.

* :class:`LogitsOf` — the logits entry of a dict-returning model (e.g. APN).
* :class:`AnchorClassifier` — cosine logits against class anchors, as in LAAT (Li et al.,
  "Language-Driven Anchors for Zero-Shot Adversarial Robustness", CVPR 2024):
  ``cos(f(x), a_c) / τ`` with both sides L2-normalised, the logits of its A-CE loss.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import AttackInputError, check_real


class LogitsOf(nn.Module):
    """``LogitsOf(model, key="logits")(x)`` is ``model(x)[key]`` (or ``model(x)`` when the
    model already returns a tensor)."""

    def __init__(self, model: nn.Module, key: str = "logits"):
        super().__init__()
        if not callable(model):
            raise TypeError(f"model must be callable (an nn.Module); got {type(model).__name__}")
        if not isinstance(key, str):
            raise AttackInputError(f"key must be a string naming the logits entry; got {key!r}")
        self.model = model
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, Mapping):
            if self.key not in out:
                raise ValueError(f"model output has no {self.key!r} entry (keys: {sorted(map(str, out))})")
            return out[self.key]
        return out


class AnchorClassifier(nn.Module):
    """Cosine-similarity logits of an embedding model against fixed class anchors.

    Args:
        embed_model: maps images to embeddings ``(N, D)`` (or to a dict; name the entry with
            ``key``).
        anchors: ``(n_classes, D)`` class anchors (e.g. CLIP text embeddings); stored
            L2-normalised as a buffer (moves with ``.to(device)``).
        tau: temperature (finite, > 0); logits are ``cos(f(x), a_c) / tau``.
        key: entry of a dict output holding the embedding.
    """

    def __init__(self, embed_model: nn.Module, anchors: torch.Tensor, tau: float = 1.0, key: str | None = None):
        super().__init__()
        anchors = torch.as_tensor(anchors)
        if anchors.ndim != 2 or anchors.shape[0] < 1 or not anchors.is_floating_point():
            raise AttackInputError(f"anchors must be a float matrix (n_classes, D); got shape {tuple(anchors.shape)}")
        if not bool(torch.isfinite(anchors).all()):
            raise AttackInputError("anchors contain NaN or infinite values")
        tau = check_real(tau, "tau", 0.0, low_open=True)
        if key is not None and not isinstance(key, str):
            raise AttackInputError(f"key must be None or a string naming the embedding entry; got {key!r}")
        self.embed_model = embed_model
        self.register_buffer("anchors", F.normalize(anchors.detach().clone(), dim=1))
        self.tau = float(tau)
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.embed_model(x)
        if isinstance(feats, Mapping):
            if self.key is None or self.key not in feats:
                raise ValueError(
                    f"the embedding model returned a dict; pass key= naming the embedding entry "
                    f"(keys: {sorted(map(str, feats))})"
                )
            feats = feats[self.key]
        elif self.key is not None:
            raise ValueError(f"key={self.key!r} given but the embedding model returned a tensor")
        if feats.ndim != 2 or feats.shape[1] != self.anchors.shape[1]:
            raise ValueError(
                f"embeddings of shape {tuple(feats.shape)} do not match anchors of dimension {self.anchors.shape[1]}"
            )
        anchors = self.anchors.to(feats.dtype)
        return F.normalize(feats, dim=1) @ anchors.t() / self.tau
