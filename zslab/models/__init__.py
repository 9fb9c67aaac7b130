"""Models: backbones (feature maps), heads (APN) and LAAT embedding models."""
from __future__ import annotations

from torch import nn

from zslab import ZSLabError
from zslab.models.apn import APN
from zslab.models.backbones import BACKBONES, build_backbone
from zslab.models.conv4 import Conv4
from zslab.models.preact import PreActResNet18
from zslab.models.resnet12 import ResNet12

EMBEDDING_MODELS = ("conv4-64", "conv4-512", "resnet12", "preact-resnet18")


def build_embedding_model(name: str, out_dim: int, in_size: int = 32) -> nn.Module:
    """An image model ``[0,1] images -> (N, out_dim)`` embeddings for LAAT (LAAT Sec. 3.1, Table 7).

    Names: ``conv4-64``, ``conv4-512`` (:class:`Conv4`), ``resnet12`` (:class:`ResNet12`,
    64-160-320-640) and ``preact-resnet18`` (:class:`PreActResNet18`).  Every model normalises
    its input internally and ends in a bias-free linear head to ``out_dim`` (the anchor
    dimension); ``model.embed(x)`` gives the pooled features before the head.
    """
    if not isinstance(name, str) or name.lower() not in EMBEDDING_MODELS:
        raise ZSLabError(f"unknown embedding model {name!r}; choose one of {', '.join(EMBEDDING_MODELS)}")
    for what, val, low in (("out_dim", out_dim, 1), ("in_size", in_size, 16)):
        if isinstance(val, bool) or not isinstance(val, int) or val < low:
            raise ZSLabError(f"{what} must be an integer >= {low}, got {val!r}")
    name = name.lower()
    if name.startswith("conv4-"):
        return Conv4(width=int(name.split("-")[1]), out_dim=out_dim, in_size=in_size)
    if name == "resnet12":
        return ResNet12(out_dim=out_dim, in_size=in_size)
    return PreActResNet18(out_dim=out_dim, in_size=in_size)


__all__ = ["BACKBONES", "build_backbone", "APN", "Conv4", "ResNet12", "PreActResNet18",
           "EMBEDDING_MODELS", "build_embedding_model"]
