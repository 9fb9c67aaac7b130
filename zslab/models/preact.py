"""PreActResNet-18 (He et al., ECCV 2016, "Identity mappings in deep residual networks"), CIFAR form.

The adversarial-training literature's standard CIFAR model (Rice et al. 2020, Madry-style PGD-AT):
a 3x3 stem conv (no stride, no pooling), four stages of two pre-activation basic blocks
(BN-ReLU-conv3x3, BN-ReLU-conv3x3, identity or 1x1-conv shortcut taken from the first
pre-activation) with 64, 128, 256, 512 channels and strides 1, 2, 2, 2, a final BN-ReLU and a
global mean pool (~11.2M parameters).  The classifier is replaced by a bias-free linear head to
the anchor dimension (LAAT Sec. 3.1: the image features are compared with the text anchors).
Input normalisation lives inside the model: it takes [0, 1] images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zslab import ZSLabError
from zslab.models.backbones import Normalize

__all__ = ["PreActBlock", "PreActResNet18"]


class PreActBlock(nn.Module):
    """Pre-activation basic block: out = conv(relu(bn(conv(relu(bn(x)))))) + shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
                         if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + short


class PreActResNet18(nn.Module):
    """PreActResNet-18 with an internal normalisation and a bias-free embedding head.

    Args:
        out_dim: size of the bias-free linear head (the anchor dimension for LAAT).
        in_size: expected input side (>= 8; the CIFAR stem keeps full resolution, so 84 px
            inputs simply give 11x11 final maps before the mean pool).
        mean, std: per-channel normalisation constants for [0, 1] RGB input.
    """

    def __init__(self, out_dim: int, in_size: int = 32, widths=(64, 128, 256, 512),
                 mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
        super().__init__()
        if int(out_dim) < 1:
            raise ZSLabError(f"out_dim must be >= 1, got {out_dim}")
        if int(in_size) < 8:
            raise ZSLabError(f"PreActResNet-18 needs in_size >= 8 (three stride-2 stages), got {in_size}")
        self.out_dim, self.in_size, self.feature_dim = int(out_dim), int(in_size), int(widths[-1])
        self.normalize = Normalize(mean, std)
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [PreActBlock(cin, w, stride), PreActBlock(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.head = nn.Linear(self.feature_dim, self.out_dim, bias=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(N, 512)`` before the head."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ZSLabError(f"PreActResNet-18 expects images (N, 3, H, W); got shape {tuple(x.shape)}")
        if min(x.shape[2], x.shape[3]) < 8:
            raise ZSLabError(f"PreActResNet-18 needs images of at least 8x8; got {x.shape[2]}x{x.shape[3]}")
        out = self.layers(self.stem(self.normalize(x)))
        return F.relu(self.bn(out)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
