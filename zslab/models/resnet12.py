"""ResNet-12 (64-160-320-640), the few-shot literature's backbone, with LAAT's embedding head.

Architecture as in MetaOptNet (Lee et al., CVPR 2019) and RFS (Tian et al., ECCV 2020), which
LAAT (Li et al., CVPR 2024) Table 7 uses for CIFAR-FS / MiniImageNet: four residual blocks, each
three conv 3x3 - BatchNorm - LeakyReLU(0.1) layers (the last activation after the residual sum),
a 1x1 conv - BatchNorm shortcut, and a 2x2 max-pool; widths 64, 160, 320, 640.  Then a global
mean pool and a bias-free linear head to the anchor dimension (LAAT Sec. 3.1: the image features
are compared with the text anchors by cosine).  DropBlock, used by some few-shot trainings, is
left out.  About 12.4M parameters in the trunk.  Input normalisation lives inside the model: it
takes [0, 1] images.
"""
from __future__ import annotations

import torch
from torch import nn

from zslab import ZSLabError
from zslab.models.backbones import Normalize

__all__ = ["ResNet12", "ResNet12Block"]


class ResNet12Block(nn.Module):
    """Three conv3x3-BN(-LeakyReLU) layers + 1x1 shortcut, LeakyReLU after the sum, 2x2 max-pool."""

    def __init__(self, cin: int, cout: int, slope: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv3 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.LeakyReLU(slope)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.pool(self.act(out + self.shortcut(x)))


class ResNet12(nn.Module):
    """ResNet-12 with an internal normalisation and a bias-free embedding head.

    Args:
        out_dim: size of the bias-free linear head (the anchor dimension for LAAT).
        widths: channels of the four blocks (default 64-160-320-640).
        in_size: expected input side, at least 16 (four 2x2 pools); any side >= 16 runs.
        mean, std: per-channel normalisation constants for [0, 1] RGB input.
    """

    def __init__(self, out_dim: int, widths=(64, 160, 320, 640), in_size: int = 32,
                 mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
        super().__init__()
        if int(out_dim) < 1:
            raise ZSLabError(f"out_dim must be >= 1, got {out_dim}")
        if len(widths) != 4 or min(widths) < 1:
            raise ZSLabError(f"ResNet-12 needs four positive widths, got {tuple(widths)}")
        if int(in_size) < 16:
            raise ZSLabError(f"ResNet-12 needs in_size >= 16 (four 2x2 max-pools), got {in_size}")
        self.out_dim, self.in_size, self.feature_dim = int(out_dim), int(in_size), int(widths[-1])
        self.normalize = Normalize(mean, std)
        blocks, cin = [], 3
        for w in widths:
            blocks.append(ResNet12Block(cin, int(w)))
            cin = int(w)
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(self.feature_dim, self.out_dim, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu", a=0.1)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(N, 640)`` before the head."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ZSLabError(f"ResNet-12 expects images (N, 3, H, W); got shape {tuple(x.shape)}")
        if min(x.shape[2], x.shape[3]) < 16:
            raise ZSLabError(f"ResNet-12 needs images of at least 16x16; got {x.shape[2]}x{x.shape[3]}")
        return self.features(self.normalize(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
