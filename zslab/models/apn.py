"""Attribute Prototype Network (APN; Xu et al., NeurIPS 2020), as used by HAS (§3.2).

Given an image I in [0, 1], the backbone gives feature maps x = f(I) in R^{C x H x W}.

* Global branch: g(x) = avg-pool(x) in R^C; attributes â = g(x)^T V (V in R^{C x K});
  class compatibility s(y) = g(x)^T V φ(y)  (HAS Eq. 1 and Eq. 8).
* Attribute-prototype branch: a 1x1 convolution with K prototypes gives attention maps
  h(x) in R^{K x H x W}; max-pooling them gives a second attribute vector used by
  L_LOC = ||â_local − φ(y)||² (HAS Eq. 2).

The classifier is the class attribute matrix itself (rows φ(y)), so any set of classes —
seen, unseen, or both — can be scored without retraining.
"""
from __future__ import annotations

import torch
from torch import nn

from zslab.models.backbones import build_backbone


class APN(nn.Module):
    """APN head on a feature-map backbone.

    ``forward(images, class_attributes=None)`` returns a dict:

    ``features``  g(x), (N, C) · ``attr`` â = g(x)^T V, (N, K) ·
    ``attention`` h(x), (N, K, H, W) · ``attr_local`` max-pooled h(x), (N, K) ·
    ``logits``    â φ(y)^T over the candidate classes, (N, n_candidates) — present when a
                  candidate attribute matrix is given or set with :meth:`set_classes`.
    """

    def __init__(self, backbone: nn.Module, num_attributes: int):
        super().__init__()
        self.backbone = backbone
        c = backbone.out_channels
        self.V = nn.Linear(c, num_attributes, bias=False)
        self.prototypes = nn.Conv2d(c, num_attributes, kernel_size=1, bias=False)
        self.register_buffer("class_attributes", torch.empty(0, num_attributes), persistent=False)
        self.num_attributes = num_attributes

    @classmethod
    def from_config(cls, model_cfg: dict, num_attributes: int) -> "APN":
        bb = build_backbone(model_cfg.get("backbone", "small"), weights=model_cfg.get("weights"),
                            width=model_cfg.get("width"))
        return cls(bb, num_attributes)

    def set_classes(self, class_attributes: torch.Tensor) -> "APN":
        """Fix the candidate classes used for ``logits`` (rows φ(y), shape (n, K))."""
        if class_attributes.ndim != 2 or class_attributes.shape[1] != self.num_attributes:
            raise ValueError(f"class attributes must be (n, {self.num_attributes}), got {tuple(class_attributes.shape)}")
        p = self.V.weight
        self.class_attributes = class_attributes.detach().to(device=p.device, dtype=p.dtype)
        return self

    def forward(self, images: torch.Tensor, class_attributes: torch.Tensor | None = None) -> dict:
        fmap = self.backbone(images)
        g = fmap.mean(dim=(2, 3))
        attr = self.V(g)
        attention = self.prototypes(fmap)
        out = {"features": g, "attr": attr, "attention": attention,
               "attr_local": attention.flatten(2).amax(dim=2)}
        A = class_attributes if class_attributes is not None else self.class_attributes
        if A is not None and A.numel():
            out["logits"] = attr @ A.to(attr.dtype).t()
        return out
