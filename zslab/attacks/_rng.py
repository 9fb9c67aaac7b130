"""Per-example keyed random streams for the attacks.

Every random draw an attack makes is keyed by ``(seed, attack salt, stream, example id)``:

* draws with many values per example (random starts, Square's initial stripes) come from a
  local :class:`torch.Generator` on the input's device, one per example, seeded by a hash of
  that key;
* tiny per-iteration draws (Square's window position and colours, a handful of numbers per
  example) come from a vectorised counter-based hash (the MurmurHash3 32-bit finaliser applied
  to the key and the element index), so thousands of iterations stay cheap.

Neither path reads or changes PyTorch's global RNG state.  Because the value for an example
depends only on its key, an attack's randomness does not depend on which other examples share
its batch, so robust accuracy does not depend on the batch size (``robust_evaluate`` passes the
dataset index of each example as its id).
"""

from __future__ import annotations

import math
import os

import torch

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN32 = 0x9E3779B9
_GOLDEN64 = 0x9E3779B97F4A7C15

#: per-example value counts at or above this use one torch.Generator per example
_GENERATOR_MIN_NUMEL = 64


def _splitmix64(z: int) -> int:
    """One splitmix64 output for the 64-bit integer ``z`` (plain Python ints)."""
    z = (z + _GOLDEN64) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _mul32(h: torch.Tensor, c: int) -> torch.Tensor:
    """(h * c) mod 2**32 for int64 tensors holding 32-bit values, without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (h * lo + (((h * hi) & 0xFFFF) << 16)) & _M32


def _fmix32(h: torch.Tensor) -> torch.Tensor:
    """MurmurHash3 32-bit finaliser on int64 tensors holding 32-bit values."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def fresh_seed() -> int:
    """A non-deterministic 63-bit seed from the operating system (no global RNG involved)."""
    return int.from_bytes(os.urandom(8), "little") >> 1


def name_salt(name: str) -> int:
    """A stable 64-bit integer for a string (FNV-1a), used to separate attacks' streams."""
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & _M64
    return h


class KeyedRNG:
    """Random numbers keyed by (seed, stream, example id); see the module docstring.

    Args:
        seed: base seed (already combined with the attack's salt by the caller).
        ids: 1-D integer tensor, one id per example.
        device: device of the tensors to produce.
    """

    def __init__(self, seed: int, ids: torch.Tensor, device: torch.device):
        self.seed = int(seed) & _M64
        self.device = torch.device(device)
        self.ids = ids.to(device=self.device, dtype=torch.long)
        self._ids_list: list[int] | None = None

    def subset(self, index: torch.Tensor) -> "KeyedRNG":
        """The same streams restricted to ``ids[index]``."""
        return KeyedRNG(self.seed, self.ids[index], self.device)

    def _example_seed(self, stream: int, example_id: int) -> int:
        return _splitmix64(self.seed ^ _splitmix64((stream & _M64) ^ _splitmix64(example_id & _M64)))

    def uniform(self, stream: int, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
        """Uniform values in [0, 1), shape ``(N, *shape)``."""
        n = self.ids.numel()
        shape = tuple(int(s) for s in shape)
        numel = math.prod(shape)
        if numel >= _GENERATOR_MIN_NUMEL:
            if self._ids_list is None:
                self._ids_list = self.ids.tolist()
            out = torch.empty((n, *shape), device=self.device, dtype=torch.float32)
            gen = torch.Generator(device=self.device)
            for i, example_id in enumerate(self._ids_list):
                gen.manual_seed(self._example_seed(stream, example_id) >> 1)
                torch.rand(shape, generator=gen, device=self.device, out=out[i])
            return out.to(dtype)
        # vectorised counter-based hash for small draws
        key = _splitmix64(self.seed ^ _splitmix64(stream & _M64))
        ids = self.ids
        h = _fmix32(((ids & _M32) ^ (key & _M32)) & _M32)
        h = _fmix32(_mul32(h ^ ((ids >> 32) & _M32), _GOLDEN32) ^ ((key >> 32) & _M32))
        elem = torch.arange(max(numel, 1), device=self.device, dtype=torch.long)
        h = _fmix32((h[:, None] + _mul32(elem, 0x61C88647)[None, :] + 1) & _M32)
        h = _fmix32(h ^ 0x5BD1E995)
        u = (h >> 8).to(torch.float32) * (1.0 / 16777216.0)
        return u[:, :numel].reshape((n, *shape)).to(dtype)

    def sign(self, stream: int, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
        """Independent +1/-1 values with probability 1/2 each, shape ``(N, *shape)``."""
        u = self.uniform(stream, shape, torch.float32)
        return torch.where(u < 0.5, -1.0, 1.0).to(dtype)

    def normal(self, stream: int, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
        """Standard normal values (Box–Muller), shape ``(N, *shape)``."""
        numel = math.prod(shape)
        half = (numel + 1) // 2
        u = self.uniform(stream, (2, half), torch.float64)
        r = torch.sqrt(-2.0 * torch.log1p(-u[:, 0]))  # 1 - u in (0, 1]
        theta = 2.0 * math.pi * u[:, 1]
        z = torch.cat([r * torch.cos(theta), r * torch.sin(theta)], dim=1)[:, :numel]
        return z.reshape((-1, *shape)).to(dtype)
