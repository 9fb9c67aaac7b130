"""Conv4 backbone (the few-shot / LAAT "Conv4-64" and "Conv4-512" models).

Four blocks of conv 3×3 (padding 1) → BatchNorm → ReLU → 2×2 max-pool, a global mean pool,
and a bias-free linear head to ``out_dim`` (the class count, or the anchor dimension for LAAT's
cosine head).  Input normalisation lives inside the model, so it takes [0, 1] images and
attacks see pixel space.  LAAT (Li et al., CVPR 2024) Table 7 uses width 64 and 512.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Conv4(nn.Module):
    """Conv4 with an internal normalisation.

    Args:
        width: channels of every block (64 for Conv4-64, 512 for Conv4-512).
        out_dim: size of the bias-free linear head.
        in_size: expected input side; at least 16 (four 2×2 pools).  Any size >= 16 runs,
            because of the global mean pool.
        mean, std: per-channel normalisation constants (their length is the input channel count).
    """

    def __init__(self, width: int = 64, out_dim: int = 10, in_size: int = 32,
                 mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
        super().__init__()
        if int(width) < 1 or int(out_dim) < 1:
            raise ValueError(f"width and out_dim must be >= 1; got width={width}, out_dim={out_dim}")
        if int(in_size) < 16:
            raise ValueError(f"in_size must be >= 16 for four 2x2 max-pools; got {in_size}")
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if mean_t.shape != std_t.shape:
            raise ValueError(f"mean and std must have the same length; got {len(mean)} and {len(std)}")
        if bool((std_t <= 0).any()):
            raise ValueError(f"std must be positive; got {tuple(std)}")
        self.width, self.out_dim, self.in_size = int(width), int(out_dim), int(in_size)
        self.in_channels = mean_t.shape[1]
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        layers = []
        channels = self.in_channels
        for _ in range(4):
            layers += [nn.Conv2d(channels, self.width, 3, padding=1), nn.BatchNorm2d(self.width),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = self.width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(self.width, self.out_dim, bias=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(N, width)`` before the head."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv4 expects images (N, {self.in_channels}, H, W); got shape {tuple(x.shape)}")
        if x.shape[2] < 16 or x.shape[3] < 16:
            raise ValueError(f"Conv4 needs images of at least 16x16; got {x.shape[2]}x{x.shape[3]}")
        x = (x - self.mean) / self.std
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
