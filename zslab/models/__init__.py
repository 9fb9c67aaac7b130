"""Models: backbones (feature maps) and heads (APN)."""
from zslab.models.backbones import BACKBONES, build_backbone
from zslab.models.apn import APN

__all__ = ["BACKBONES", "build_backbone", "APN"]
