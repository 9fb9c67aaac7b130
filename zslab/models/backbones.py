"""Backbones: images in [0, 1] -> feature maps ``x = f(I)`` of shape (N, C, H, W).

Input normalisation lives inside each backbone, so attacks and augmentations always work
in [0, 1] pixel space.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from zslab import ZSLabError
from zslab.utils.io import safe_torch_load

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def _block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """A CPU-sized backbone: 4 conv-BN-ReLU blocks, two 2x poolings (32 px -> 8x8 maps).

    ``width`` sets the first block's channels (then 2x, 4x, 4x); ``out_channels`` = 4*width.
    """

    def __init__(self, width: int = 32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
        super().__init__()
        w = int(width)
        if w < 4:
            raise ZSLabError(f"SmallCNN width must be >= 4, got {width}")
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            *_block(3, w), nn.MaxPool2d(2),
            *_block(w, 2 * w), nn.MaxPool2d(2),
            *_block(2 * w, 4 * w),
            *_block(4 * w, 4 * w),
        )
        self.out_channels = 4 * w

    def forward(self, x):
        return self.features(self.normalize(x))


class TorchvisionResNet(nn.Module):
    """torchvision ResNet-18/50/101 trunk (up to layer4) as a feature-map backbone.

    ImageNet weights come from a local ``state_dict`` file (``weights=PATH``); nothing is
    downloaded. ``weights=None`` gives a randomly initialised network.
    """

    def __init__(self, depth: int, weights: str | None = None):
        super().__init__()
        ctor = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50,
                101: torchvision.models.resnet101}[depth]
        net = ctor(weights=None)
        if weights:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise ZSLabError(
                    f"ResNet-{depth} weight file not found: {path}. zslab never downloads weights: put the "
                    f"torchvision ImageNet state_dict (e.g. resnet{depth}-*.pth) there, or pass weights=None")
            sd = safe_torch_load(path, map_location="cpu", what=f"ResNet-{depth} weight file")
            if isinstance(sd, dict) and "state_dict" in sd:
                sd = sd["state_dict"]
            try:
                net.load_state_dict(sd)
            except RuntimeError as e:
                first = str(e).splitlines()[0]
                raise ZSLabError(f"{path} is not a ResNet-{depth} state_dict ({first})") from None
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                   net.layer1, net.layer2, net.layer3, net.layer4)
        self.out_channels = 512 if depth == 18 else 2048

    def forward(self, x):
        return self.trunk(self.normalize(x))


BACKBONES = {
    "small": lambda weights=None, width=32: SmallCNN(width=width),
    "resnet18": lambda weights=None, width=None: TorchvisionResNet(18, weights),
    "resnet50": lambda weights=None, width=None: TorchvisionResNet(50, weights),
    "resnet101": lambda weights=None, width=None: TorchvisionResNet(101, weights),
}


def build_backbone(name: str, weights: str | None = None, width: int | None = None) -> nn.Module:
    """Build a backbone by name (see :data:`BACKBONES`)."""
    if name not in BACKBONES:
        raise ZSLabError(f"unknown backbone '{name}'; choose one of {', '.join(BACKBONES)}")
    if name == "small" and weights:
        raise ZSLabError("the 'small' backbone has no pretrained weights; drop model.weights")
    kw = {"weights": weights}
    if width is not None:
        kw["width"] = width
    return BACKBONES[name](**kw)
