"""``shapes``: the embedded, procedurally generated attribute dataset (zslab's default).

Why it exists
-------------
Every zslab experiment must run on a fresh machine with no data and a small CPU. ``shapes``
is generated in a few seconds from a seed and keeps the properties of attribute-based ZSL
benchmarks (CUB, AwA2, SUN) that the HAS and LAAT experiments depend on:

* **Localised attributes on two parts.** Each image shows one "creature" made of a *head*
  (smaller, on top) sitting on a *body* (larger, below), like a bird. Per part there are four
  attribute groups — shape (round/square/triangular), colour (red/green/blue/yellow),
  pattern (solid/striped/dotted) and size (small/large) — i.e. 2 x (3+4+3+2) = 24 binary
  attributes such as ``"head shape: round"`` or ``"body colour: blue"``. An attribute is
  visible only on its own part, and the per-image part masks are stored, so APN attribute
  prototypes / attention maps can be checked against where the attribute really is
  (HAS Fig. 6, Fig. 7's foreground/background split).
* **Continuous class attributes, as in CUB.** A class is a combination of *dominant*
  values (one per part and group). Each class draws, per part and group, the probability p
  of its dominant value from ``dominant_prob`` (default U[0.75, 0.95]) and spreads 1-p over
  the other values; each image's values are sampled from these probabilities. The class
  attribute vector φ(y) is the probability vector (= the expected per-image one-hot
  attributes), so it is continuous like CUB's per-class averages of per-image annotations,
  and individual images legitimately deviate from their class prototype.
* **Zero-shot splits by recombination.** Train, validation and unseen classes are disjoint
  sets of value combinations. Every attribute value is the dominant value of at least one
  train class and no validation/unseen class repeats a train combination, so an unseen class
  is a *new combination of seen attribute values* — exactly what attribute-based ZSL
  assumes. Classes also differ pairwise in at least two groups where possible.
* **Semantic attributes versus nuisance.** Position, global scale, rotation (±``rotation``
  degrees; the head stays roughly above the body), part brightness, background brightness,
  low-frequency texture, faint gray clutter (blobs, lines) and pixel noise vary freely and
  carry no class information, so ordinary augmentation has something to act on. Colour,
  however, *is* an attribute: colour jitter or grayscale changes what the image means. This
  is the motivation of HAS (§1, Fig. 2, Table 3): traditional augmentations distort attribute
  semantics, whereas HAS's adversarial samples keep them.
* **Readable class names** built from the dominant values, e.g.
  ``"small red striped round head, large blue dotted square body"``, so text-anchor methods
  (LAAT) can encode them with a text encoder.

Rendering is analytic (signed distance functions with one-pixel anti-aliasing), vectorised
over a chunk of images with torch, and driven only by explicit ``torch.Generator`` /
``numpy.random.Generator`` objects: the same seed and config give bit-identical tensors.
Patterns are defined in object coordinates (stripe period ≈ 3.5 px and dot spacing ≈ 4.3 px
at 32 px), so they scale with ``image_size`` and stay visible at 32 px.

Public API: :class:`ShapesConfig`, :func:`make_shapes`, :func:`render`, plus the constants
:data:`PART_NAMES`, :data:`GROUPS`, :data:`PALETTE`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zslab.data.base import LazyRows, TensorImageDataset, ZSLData
from zslab.utils.io import atomic_torch_save, safe_torch_load

__all__ = ["ShapesConfig", "make_shapes", "render", "render_indexed", "class_name", "attribute_names",
           "PART_NAMES", "GROUPS", "GROUP_NAMES", "PALETTE", "NUM_SLOTS", "NUM_ATTRIBUTES"]

# --------------------------------------------------------------------------- vocabulary

PART_NAMES: tuple[str, ...] = ("head", "body")
#: attribute groups per part, in slot order; each value is one binary attribute
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("shape", ("round", "square", "triangular")),
    ("colour", ("red", "green", "blue", "yellow")),
    ("pattern", ("solid", "striped", "dotted")),
    ("size", ("small", "large")),
)
GROUP_NAMES: tuple[str, ...] = tuple(g for g, _ in GROUPS)
GROUP_SIZES: tuple[int, ...] = tuple(len(v) for _, v in GROUPS)
NUM_GROUPS = len(GROUPS)
#: a "slot" is one (part, group) pair; ``values[:, slot]`` with slot = part * NUM_GROUPS + group
NUM_SLOTS = len(PART_NAMES) * NUM_GROUPS
SLOT_SIZES: tuple[int, ...] = GROUP_SIZES * len(PART_NAMES)
SLOT_OFFSETS: tuple[int, ...] = tuple(int(x) for x in np.cumsum((0,) + SLOT_SIZES[:-1]))
NUM_ATTRIBUTES = sum(SLOT_SIZES)
SHAPE, COLOUR, PATTERN, SIZE = range(NUM_GROUPS)

#: RGB of the colour values: saturated, well separated hues (red, green, blue, yellow)
PALETTE = torch.tensor([
    [0.88, 0.12, 0.10],
    [0.10, 0.68, 0.16],
    [0.14, 0.28, 0.95],
    [0.97, 0.86, 0.10],
])

# Geometry, in units of the image width (the image spans [-0.5, 0.5] in x and y).
# Part half-widths by size (small, large): body ≈ 33 % / 48 % of the image width,
# head ≈ 19 % / 28 %.
_HALF_SIZE = ((0.095, 0.14), (0.165, 0.24))  # [part][size]
_HEAD_DROP = 0.7          # head centre sits (body_r + 0.7 head_r) above the body centre
_STRIPE_PERIOD = 0.11     # ≈ 3.5 px at 32 px
_DOT_PERIOD = 0.135       # ≈ 4.3 px at 32 px
_DOT_RADIUS = 0.04        # ≈ 1.3 px at 32 px
_PATTERN_DARK = 0.72      # pattern marks are the part colour darkened by this fraction
_OUTLINE = 0.022          # dark rim around each part (≈ 0.7 px at 32 px)
_N_BLOBS = 4
_N_LINES = 2
_TEXTURE_GRID = 5
_FORMAT_VERSION = 1      # bump whenever sampling or rendering changes: it invalidates caches

# Triangle (apex up) in part-normalised coordinates: apex (0, -1.15), base at q = 0.95 with
# half-width 1.2. Outward unit normal of the right edge.
_TRI_APEX, _TRI_BASE, _TRI_HALF = -1.15, 0.95, 1.2
_tri_n = np.array([_TRI_BASE - _TRI_APEX, -_TRI_HALF])
_TRI_NX, _TRI_NY = (_tri_n / np.linalg.norm(_tri_n)).tolist()
_SQUARE_HALF = 0.88  # square of similar area to the unit disc


def attribute_names() -> list[str]:
    """The 24 attribute names, in column order: ``"<part> <group>: <value>"``."""
    return [f"{part} {group}: {value}" for part in PART_NAMES for group, values in GROUPS for value in values]


def class_name(dominant) -> str:
    """Readable class name from 8 dominant value indices (slot order), e.g.
    ``"small red striped round head, large blue dotted square body"``."""
    dominant = [int(v) for v in dominant]
    pieces = []
    for p, part in enumerate(PART_NAMES):
        vals = {g: GROUPS[g][1][dominant[p * NUM_GROUPS + g]] for g in range(NUM_GROUPS)}
        pieces.append(f"{vals[SIZE]} {vals[COLOUR]} {vals[PATTERN]} {vals[SHAPE]} {part}")
    return ", ".join(pieces)


# --------------------------------------------------------------------------- config

@dataclass
class ShapesConfig:
    """Configuration of the generated ``shapes`` dataset (defaults: 8,840 images at 32 px).

    Class counts: ``n_train_classes`` seen classes (images split into ``train`` /
    ``val_seen`` / ``test_seen``), ``n_val_classes`` validation classes (``val_unseen``),
    ``n_unseen_classes`` test unseen classes (``test_unseen``). ``val_unseen_per_class``
    defaults to ``unseen_per_class`` when ``None``.

    Nuisance: ``noise`` (std of Gaussian pixel noise in [0, 1] units), ``clutter`` (random
    background texture, faint gray blobs and lines; without it the background is flat with
    random brightness), ``rotation`` (max |angle| in degrees of the whole object),
    ``scale_jitter`` (global scale in [1-s, 1+s]), ``translate`` (fraction of the free room
    used for random translation).

    ``dominant_prob``: range of the per-class, per-group probability of the dominant value.
    ``cache_dir``: when set, generated tensors are cached there, keyed by a hash of the
    config (everything but ``cache_dir`` and ``on_the_fly``).

    ``on_the_fly``: render no image up front; every split's ``images`` (and ``part_masks``) are
    rendered per batch when indexed, each image from its own seed (:func:`render_indexed`):
    start-up and memory cost nothing, every epoch pays the rendering. The labels, attribute
    values, classes and splits are those of the cached dataset; the images are a different,
    equally distributed sample (see :func:`render_indexed`). Never cached.
    """

    image_size: int = 32
    n_train_classes: int = 32
    n_val_classes: int = 8
    n_unseen_classes: int = 10
    train_per_class: int = 160
    val_seen_per_class: int = 20
    test_seen_per_class: int = 40
    unseen_per_class: int = 100
    val_unseen_per_class: int | None = None
    seed: int = 0
    noise: float = 0.03
    clutter: bool = True
    rotation: float = 30.0
    scale_jitter: float = 0.1
    translate: float = 1.0
    dominant_prob: tuple[float, float] = (0.75, 0.95)
    cache_dir: str | None = None
    on_the_fly: bool = False

    def validate(self) -> "ShapesConfig":
        """Raise ``ValueError`` naming the offending field; return ``self``."""
        def is_int(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v):
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

        if not is_int(self.image_size) or self.image_size < 16 or self.image_size > 1024:
            raise ValueError(f"image_size must be an integer in [16, 1024], got {self.image_size!r}")
        for name in ("n_train_classes", "n_val_classes", "n_unseen_classes", "train_per_class",
                     "val_seen_per_class", "test_seen_per_class", "unseen_per_class"):
            v = getattr(self, name)
            if not is_int(v) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.val_unseen_per_class is not None and (not is_int(self.val_unseen_per_class)
                                                      or self.val_unseen_per_class < 1):
            raise ValueError(f"val_unseen_per_class must be a positive integer or None, "
                             f"got {self.val_unseen_per_class!r}")
        need = max(GROUP_SIZES)
        if self.n_train_classes < need:
            raise ValueError(f"n_train_classes must be >= {need} so that every attribute value is the "
                             f"dominant value of some train class, got {self.n_train_classes}")
        n_comb = int(np.prod(SLOT_SIZES))
        total = self.n_train_classes + self.n_val_classes + self.n_unseen_classes
        if total > n_comb:
            raise ValueError(f"too many classes: n_train_classes + n_val_classes + n_unseen_classes = {total} "
                             f"exceeds the {n_comb} attribute-value combinations")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not is_num(self.noise) or not 0.0 <= float(self.noise) <= 0.5:
            raise ValueError(f"noise must be a number in [0, 0.5], got {self.noise!r}")
        if not isinstance(self.clutter, (bool, np.bool_)):
            raise ValueError(f"clutter must be a bool, got {self.clutter!r}")
        if not is_num(self.rotation) or not 0.0 <= float(self.rotation) <= 180.0:
            raise ValueError(f"rotation must be a number of degrees in [0, 180], got {self.rotation!r}")
        if not is_num(self.scale_jitter) or not 0.0 <= float(self.scale_jitter) <= 0.3:
            raise ValueError(f"scale_jitter must be a number in [0, 0.3], got {self.scale_jitter!r}")
        if not is_num(self.translate) or not 0.0 <= float(self.translate) <= 1.0:
            raise ValueError(f"translate must be a number in [0, 1], got {self.translate!r}")
        dp = self.dominant_prob
        if (not isinstance(dp, (tuple, list)) or len(dp) != 2 or not all(is_num(x) for x in dp)
                or not 0.5 < float(dp[0]) <= float(dp[1]) <= 1.0):
            raise ValueError(f"dominant_prob must be a pair (low, high) with 0.5 < low <= high <= 1, got {dp!r}")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, os.PathLike)):
            raise ValueError(f"cache_dir must be a path or None, got {self.cache_dir!r}")
        if not isinstance(self.on_the_fly, (bool, np.bool_)):
            raise ValueError(f"on_the_fly must be a bool, got {self.on_the_fly!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able Python values (numpy scalars converted)."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, (bool, np.bool_)):
                d[k] = bool(v)
            elif isinstance(v, (int, np.integer)):
                d[k] = int(v)
            elif isinstance(v, (float, np.floating)):
                d[k] = float(v)
        for k in ("noise", "rotation", "scale_jitter", "translate"):
            d[k] = float(d[k])
        d["dominant_prob"] = [float(x) for x in self.dominant_prob]
        d["cache_dir"] = None if self.cache_dir is None else str(self.cache_dir)
        d["on_the_fly"] = bool(self.on_the_fly)
        return d

    def cache_key(self) -> str:
        """Hash of everything that determines the generated tensors (not ``cache_dir``)."""
        d = self.to_dict()
        d.pop("cache_dir")
        d.pop("on_the_fly")  # same classes, labels and values; on-the-fly images are never cached
        d["format_version"] = _FORMAT_VERSION
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]


_FIELDS = tuple(f.name for f in dataclasses.fields(ShapesConfig))


# --------------------------------------------------------------------------- rendering

def _coverage(sdf: torch.Tensor, pix: torch.Tensor) -> torch.Tensor:
    """Anti-aliased coverage in [0, 1] from a signed distance (negative inside)."""
    return (0.5 - sdf / pix).clamp_(0.0, 1.0)


def _shape_sdf(p: torch.Tensor, q: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Signed distance (in part radii) to a round / square / triangular part; ``shape`` (B,1,1)."""
    ap, aq = p.abs(), q.abs()
    disc = torch.sqrt(p * p + q * q) - 1.0
    square = torch.maximum(ap, aq) - _SQUARE_HALF
    tri = torch.maximum(q - _TRI_BASE, _TRI_NX * (ap - _TRI_HALF) + _TRI_NY * (q - _TRI_BASE))
    return torch.where(shape == 0, disc, torch.where(shape == 1, square, tri))


def _frac(x: torch.Tensor) -> torch.Tensor:
    return x - torch.floor(x)


def _default_chunk(image_size: int) -> int:
    return max(1, (1 << 21) // (image_size * image_size))


def render(values: torch.Tensor, generator: torch.Generator, image_size: int = 32, *,
           noise: float = 0.03, clutter: bool = True, rotation: float = 30.0,
           scale_jitter: float = 0.1, translate: float = 1.0,
           chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Render images for given attribute values.

    ``values``: (N, 8) integer tensor, the value index per slot (slot = part * 4 + group,
    parts head/body, groups shape/colour/pattern/size as in :data:`GROUPS`).
    ``generator``: the only source of randomness (nuisance parameters, clutter, noise).

    Returns ``(images, part_masks)``: uint8 (N, 3, H, W) and bool (N, 2, H, W) with
    part 0 = visible head pixels, part 1 = visible body pixels (disjoint; the head is drawn
    over the body). The result depends on the generator state, the arguments and
    ``chunk_size`` (default: a function of ``image_size``), so the same call on an equally
    seeded generator is bit-identical.

    The work is element-wise on chunk-sized tensors; it runs with one intra-op thread
    (restored afterwards). Two threads gain little here, and on a 2-core CPU that is busy
    with another job they hit OpenMP oversubscription stalls (measured: a tiny dataset took
    4 s instead of 0.05 s); one thread renders 10k images at 32 px in about 2 s.
    """
    prev = torch.get_num_threads()
    if prev > 1:
        torch.set_num_threads(1)
    try:
        return _render(values, generator, image_size, noise=noise, clutter=clutter, rotation=rotation,
                       scale_jitter=scale_jitter, translate=translate, chunk_size=chunk_size)
    finally:
        if prev > 1:
            torch.set_num_threads(prev)


def _check_render_args(values, image_size) -> torch.Tensor:
    values = torch.as_tensor(values)
    if values.ndim != 2 or values.shape[1] != NUM_SLOTS:
        raise ValueError(f"values must have shape (N, {NUM_SLOTS}), got {tuple(values.shape)}")
    if values.dtype.is_floating_point or values.dtype == torch.bool:
        raise ValueError(f"values must be an integer tensor, got {values.dtype}")
    values = values.long()
    hi = torch.tensor(SLOT_SIZES)
    if values.numel() and ((values < 0).any() or (values >= hi).any()):
        raise ValueError(f"values out of range; slot sizes are {SLOT_SIZES}")
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}")
    return values


def _nuisance(values: torch.Tensor, U: torch.Tensor, *, rotation, scale_jitter, translate) -> dict:
    """Per-image geometry and colour parameters from the values and uniform draws ``U`` (N, 20)."""
    n = values.shape[0]
    scale = 1.0 + float(scale_jitter) * (2 * U[:, 0] - 1)
    theta = math.radians(float(rotation)) * (2 * U[:, 1] - 1)
    sizes = torch.tensor(_HALF_SIZE)                                     # (2 parts, 2 sizes)
    r_head = sizes[0][values[:, 0 * NUM_GROUPS + SIZE]]
    r_body = sizes[1][values[:, 1 * NUM_GROUPS + SIZE]]
    head_dx = 0.25 * r_head * (2 * U[:, 2] - 1)
    body_cy = 0.5 * (1.0 + _HEAD_DROP) * r_head                          # centre the object vertically
    head_cy = body_cy - r_body - _HEAD_DROP * r_head
    # room for translation: rotated bounding box of the object
    ex, ey = r_body, r_body + 0.5 * (1.0 + _HEAD_DROP) * r_head
    c, s = theta.cos().abs(), theta.sin().abs()
    room_x = (0.5 - scale * (c * ex + s * ey) - 0.02).clamp(min=0.02) * float(translate)
    room_y = (0.5 - scale * (s * ex + c * ey) - 0.02).clamp(min=0.02) * float(translate)
    return {
        "scale": scale, "cos": theta.cos(), "sin": theta.sin(), "r_head": r_head, "r_body": r_body,
        "head_dx": head_dx, "body_cy": body_cy, "head_cy": head_cy,
        "tx": room_x * (2 * U[:, 3] - 1), "ty": room_y * (2 * U[:, 4] - 1),
        "stripe_phase": U[:, 5:7],                                        # per part
        # dot grid: a dot within a quarter period of the part centre, so even a small head shows one
        "dot_phase": 0.5 + 0.25 * (2 * U[:, 7:11].view(n, 2, 2) - 1),    # per part, (u, v)
        "bright": 0.88 + 0.17 * U[:, 11:13],                              # per part brightness
        "bg_level": 0.28 + 0.44 * U[:, 13],
        "bg_tint": 0.04 * (2 * U[:, 14:17] - 1),                          # low saturation tint
    }


def _render_rows(vals, P: dict, sl: slice, B, L, tex, nz, H: int, W: int, clutter: bool, noise: float):
    """Images (m, 3, H, W) uint8 and part masks (m, 2, H, W) of the rows ``sl`` of the per-image
    parameters ``P`` (and blob/line draws ``B``/``L``), with the chunk's texture draws ``tex``
    (m, 1, G, G) and pixel noise ``nz`` (m, 3, H, W) (None when off)."""
    m = vals.shape[0]
    coords = (torch.arange(W, dtype=torch.float32) + 0.5) / W - 0.5
    X = coords.view(1, 1, W)
    Y = coords.view(1, H, 1)

    def col(t):  # per-image scalar -> (m, 1, 1)
        return t[sl].view(m, 1, 1)

    # ---- background
    bg = (P["bg_level"][sl].view(m, 1, 1, 1) + P["bg_tint"][sl].view(m, 3, 1, 1)).expand(m, 3, H, W).clone()
    if clutter:
        tex = F.interpolate(tex, size=(H, W), mode="bilinear", align_corners=False)
        gray = 0.07 * tex[:, 0]
        for k in range(_N_BLOBS):
            bk = B[sl, k]
            bx, by = (bk[:, 0] - 0.5).view(m, 1, 1), (bk[:, 1] - 0.5).view(m, 1, 1)
            sig = (0.04 + 0.09 * bk[:, 2]).view(m, 1, 1)
            amp = (0.3 * bk[:, 3] - 0.15).view(m, 1, 1)
            gray = gray + amp * torch.exp(-((X - bx) ** 2 + (Y - by) ** 2) / (2 * sig * sig))
        for k in range(_N_LINES):
            lk = L[sl, k]
            phi = (math.pi * lk[:, 0]).view(m, 1, 1)
            off = (0.8 * lk[:, 1] - 0.4).view(m, 1, 1)
            amp = (0.3 * lk[:, 2] - 0.15).view(m, 1, 1)
            dist = (phi.cos() * X + phi.sin() * Y - off).abs()
            gray = gray + amp * (1.0 - dist * (W / 1.2)).clamp(0.0, 1.0)
        bg = bg + gray.unsqueeze(1)
    img = bg.clamp_(0.0, 1.0)

    # ---- object frame: translate, rotate by -theta, divide by scale
    sc = col(P["scale"])
    dx, dy = X - col(P["tx"]), Y - col(P["ty"])
    ct, st = col(P["cos"]), col(P["sin"])
    u = (ct * dx + st * dy) / sc
    v = (-st * dx + ct * dy) / sc
    pix = 1.0 / (W * sc)                                  # one pixel in object units
    part_cov = []
    for part in (1, 0):                                   # body first, head drawn over it
        if part == 0:
            cx, cy, r = col(P["head_dx"]), col(P["head_cy"]), col(P["r_head"])
        else:
            cx, cy, r = torch.zeros(m, 1, 1), col(P["body_cy"]), col(P["r_body"])
        pu, pv = u - cx, v - cy
        sdf = _shape_sdf(pu / r, pv / r, vals[:, part * NUM_GROUPS + SHAPE].view(m, 1, 1)) * r
        cov = _coverage(sdf, pix)
        rim = _coverage(sdf - _OUTLINE, pix)
        pat = vals[:, part * NUM_GROUPS + PATTERN].view(m, 1, 1)
        t = _frac(pv / _STRIPE_PERIOD + col(P["stripe_phase"][:, part]))
        stripes = _coverage((t - 0.5).abs() * _STRIPE_PERIOD - 0.25 * _STRIPE_PERIOD, pix)
        du = _frac(pu / _DOT_PERIOD + col(P["dot_phase"][:, part, 0])) - 0.5
        dv = _frac(pv / _DOT_PERIOD + col(P["dot_phase"][:, part, 1])) - 0.5
        dots = _coverage(torch.sqrt(du * du + dv * dv) * _DOT_PERIOD - _DOT_RADIUS, pix)
        marks = torch.where(pat == 1, stripes, torch.where(pat == 2, dots, torch.zeros_like(dots)))
        rgb = PALETTE[vals[:, part * NUM_GROUPS + COLOUR]] * P["bright"][sl, part].view(m, 1)
        colour = rgb.view(m, 3, 1, 1) * (1.0 - _PATTERN_DARK * marks).unsqueeze(1)
        img = img * (1.0 - 0.6 * rim).unsqueeze(1)        # dark outline
        alpha = cov.unsqueeze(1)
        img = img * (1.0 - alpha) + colour * alpha
        part_cov.append(cov)
    body_cov, head_cov = part_cov
    head_m = head_cov > 0.5
    masks = torch.stack([head_m, (body_cov > 0.5) & ~head_m], dim=1)

    if noise > 0:
        img = img + float(noise) * nz
    return img.mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8), masks


def _render(values, generator, image_size, *, noise, clutter, rotation, scale_jitter, translate, chunk_size):
    values = _check_render_args(values, image_size)
    image_size = int(image_size)
    n = values.shape[0]
    H = W = image_size
    g = generator

    # ---- per-image nuisance parameters, all drawn up front (independent of chunking)
    U = torch.rand(n, 20, generator=g)
    P = _nuisance(values, U, rotation=rotation, scale_jitter=scale_jitter, translate=translate)
    B = L = None
    if clutter:
        B = torch.rand(n, _N_BLOBS, 4, generator=g)
        L = torch.rand(n, _N_LINES, 3, generator=g)

    chunk = int(chunk_size) if chunk_size else _default_chunk(image_size)
    images = torch.empty(n, 3, H, W, dtype=torch.uint8)
    masks = torch.empty(n, 2, H, W, dtype=torch.bool)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        m = b - a
        sl = slice(a, b)
        # per chunk: the texture, then the pixel noise (the generator's order of draws)
        tex = torch.rand(m, 1, _TEXTURE_GRID, _TEXTURE_GRID, generator=g) * 2 - 1 if clutter else None
        nz = torch.randn(m, 3, H, W, generator=g) if noise > 0 else None
        images[sl], masks[sl] = _render_rows(values[sl], P, sl, B, L, tex, nz, H, W, clutter, noise)
    return images, masks


def _index_seed(base: int, index: int) -> int:
    """A 63-bit seed for image ``index`` of a split whose seed is ``base`` (splitmix64 mixing, so
    neighbouring indices get unrelated streams)."""
    z = (int(base) + (int(index) + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 1


def render_indexed(values: torch.Tensor, indices, base_seed: int, image_size: int = 32, *,
                   noise: float = 0.03, clutter: bool = True, rotation: float = 30.0,
                   scale_jitter: float = 0.1, translate: float = 1.0,
                   chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Render images whose randomness depends only on (``base_seed``, their index).

    ``values`` (N, 8) as in :func:`render`, ``indices`` (N,) the images' indices in their split.
    Image ``i`` draws its nuisance parameters, clutter, texture and noise from its own
    generator seeded by ``_index_seed(base_seed, i)``, in the same per-image order and with the
    same distributions as :func:`render`; the pixel arithmetic is :func:`render`'s, vectorised
    over the batch. So an image is the same whichever batch it is rendered in, up to float
    rounding of vectorised versus scalar kernels (at most one grey level in rare pixels, see
    tests/test_fastpaths.py), and the dataset need never be held in memory. It is *not* the
    image :func:`render` gives for that index: :func:`render` draws every image from one shared
    sequential stream (a CPU ``torch.Generator`` cannot jump to image ``i``'s position), so
    on-the-fly images are an equally distributed, different sample of the same attribute values.
    """
    values = _check_render_args(values, image_size)
    image_size = int(image_size)
    idx = torch.as_tensor(indices).long().flatten()
    if idx.shape[0] != values.shape[0]:
        raise ValueError(f"{values.shape[0]} value rows but {idx.shape[0]} indices")
    n, H = values.shape[0], image_size
    U = torch.empty(n, 20)
    B = torch.empty(n, _N_BLOBS, 4)
    L = torch.empty(n, _N_LINES, 3)
    tex = torch.empty(n, 1, _TEXTURE_GRID, _TEXTURE_GRID)
    nz = torch.empty(n, 3, H, H) if noise > 0 else None
    g = torch.Generator()
    for r, i in enumerate(idx.tolist()):
        g.manual_seed(_index_seed(base_seed, i))
        torch.rand(20, generator=g, out=U[r])
        if clutter:
            torch.rand(_N_BLOBS, 4, generator=g, out=B[r])
            torch.rand(_N_LINES, 3, generator=g, out=L[r])
            torch.rand(1, _TEXTURE_GRID, _TEXTURE_GRID, generator=g, out=tex[r])
        if nz is not None:
            torch.randn(3, H, H, generator=g, out=nz[r])
    tex.mul_(2).sub_(1)
    P = _nuisance(values, U, rotation=rotation, scale_jitter=scale_jitter, translate=translate)
    prev = torch.get_num_threads()
    if prev > 1:
        torch.set_num_threads(1)
    try:
        chunk = int(chunk_size) if chunk_size else _default_chunk(image_size)
        images = torch.empty(n, 3, H, H, dtype=torch.uint8)
        masks = torch.empty(n, 2, H, H, dtype=torch.bool)
        for a in range(0, n, chunk):
            sl = slice(a, min(n, a + chunk))
            images[sl], masks[sl] = _render_rows(values[sl], P, sl, B, L, tex[sl] if clutter else None,
                                                 None if nz is None else nz[sl], H, H, clutter, noise)
    finally:
        if prev > 1:
            torch.set_num_threads(prev)
    return images, masks


# --------------------------------------------------------------------------- classes

def _combo_matrix() -> np.ndarray:
    """All value combinations, (n_comb, 8)."""
    grids = np.meshgrid(*[np.arange(k) for k in SLOT_SIZES], indexing="ij")
    return np.stack([gr.ravel() for gr in grids], axis=1).astype(np.int64)


def _choose_classes(rng: np.random.Generator, n_train: int, n_val: int, n_unseen: int) -> np.ndarray:
    """Dominant combinations (n_train + n_val + n_unseen, 8): train rows first, then val, unseen.

    Train classes are picked greedily to cover every attribute value as a dominant value
    (each pick maximises the number of newly covered values, ties broken at random), then
    filled at random. Every class differs from all earlier ones in >= 2 slots while such a
    combination is left (then >= 1), so val/unseen classes never repeat a train combination.
    """
    pool = _combo_matrix()[rng.permutation(int(np.prod(SLOT_SIZES)))]
    available = np.ones(len(pool), dtype=bool)
    # min Hamming distance from each pool row to the chosen classes
    dist = np.full(len(pool), NUM_SLOTS + 1, dtype=np.int64)
    covered = [np.zeros(k, dtype=bool) for k in SLOT_SIZES]
    chosen: list[int] = []

    def pick(scores: np.ndarray | None) -> None:
        for min_d in (2, 1):
            ok = available & (dist >= min_d)
            if ok.any():
                break
        else:  # pragma: no cover - guarded by config validation
            raise ValueError("too many classes for the number of attribute combinations")
        if scores is None:
            i = int(np.flatnonzero(ok)[0])
        else:
            s = np.where(ok, scores, -1)
            i = int(np.argmax(s))
        chosen.append(i)
        available[i] = False
        np.minimum(dist, (pool != pool[i]).sum(1), out=dist)
        for slot in range(NUM_SLOTS):
            covered[slot][pool[i, slot]] = True

    for _ in range(n_train):
        if all(c.all() for c in covered):
            pick(None)
        else:
            gain = np.zeros(len(pool), dtype=np.int64)
            for slot in range(NUM_SLOTS):
                gain += ~covered[slot][pool[:, slot]]
            pick(gain)
    if not all(c.all() for c in covered):  # pragma: no cover - n_train >= max group size
        raise ValueError("could not cover every attribute value with the train classes")
    for _ in range(n_val + n_unseen):
        pick(None)
    return pool[chosen]


def _class_probabilities(rng: np.random.Generator, dominant: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Per class and slot a distribution over the slot's values, padded: (C, 8, max_size)."""
    C = dominant.shape[0]
    probs = np.zeros((C, NUM_SLOTS, max(SLOT_SIZES)))
    for c in range(C):
        for slot, k in enumerate(SLOT_SIZES):
            p = rng.uniform(lo, hi)
            rest = rng.dirichlet(np.ones(k - 1)) * (1.0 - p)
            others = [j for j in range(k) if j != dominant[c, slot]]
            probs[c, slot, dominant[c, slot]] = p
            probs[c, slot, others] = rest
    return probs


def _flat_attributes(probs: np.ndarray) -> np.ndarray:
    return np.concatenate([probs[:, slot, :k] for slot, k in enumerate(SLOT_SIZES)], axis=1)


def _one_hot(values: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(values.shape[0], NUM_ATTRIBUTES)
    idx = values + torch.tensor(SLOT_OFFSETS)
    out.scatter_(1, idx, 1.0)
    return out


def _sample_values(rng: np.random.Generator, probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    cum = np.cumsum(probs[labels], axis=2)                         # (N, 8, max_size)
    u = rng.random((labels.shape[0], NUM_SLOTS, 1))
    vals = (u >= cum).sum(axis=2)
    return np.minimum(vals, np.array(SLOT_SIZES) - 1).astype(np.int64)


# --------------------------------------------------------------------------- dataset

_SPLIT_PLAN = (  # split name, class role, per-class count field
    ("train", "train", "train_per_class"),
    ("val_seen", "train", "val_seen_per_class"),
    ("test_seen", "train", "test_seen_per_class"),
    ("val_unseen", "val", "val_unseen_per_class"),
    ("test_unseen", "unseen", "unseen_per_class"),
)


def _generate(cfg: ShapesConfig, render_images: bool = True) -> dict[str, Any]:
    """Classes, labels and attribute values of every split, and (``render_images``) their images
    and part masks; without rendering, each split holds its ``seed`` for :func:`render_indexed`."""
    root = np.random.SeedSequence([int(cfg.seed), 0x5A_5E_5])
    class_seq, *split_seqs = root.spawn(1 + len(_SPLIT_PLAN))
    rng = np.random.default_rng(class_seq)
    nt, nv, nu = cfg.n_train_classes, cfg.n_val_classes, cfg.n_unseen_classes
    combos = _choose_classes(rng, nt, nv, nu)
    # global class ids are a random permutation: no code may assume train classes come first
    perm = rng.permutation(nt + nv + nu)
    dominant = np.empty_like(combos)
    dominant[perm] = combos
    roles = {"train": np.sort(perm[:nt]), "val": np.sort(perm[nt:nt + nv]), "unseen": np.sort(perm[nt + nv:])}
    probs = _class_probabilities(rng, dominant, float(cfg.dominant_prob[0]), float(cfg.dominant_prob[1]))

    out: dict[str, Any] = {
        "format_version": _FORMAT_VERSION,
        "key": cfg.cache_key(),
        "dominant": torch.from_numpy(dominant),
        "class_attributes": torch.from_numpy(_flat_attributes(probs)).float(),
        "train_classes": torch.from_numpy(roles["train"]).long(),
        "val_classes": torch.from_numpy(roles["val"]).long(),
        "unseen_classes": torch.from_numpy(roles["unseen"]).long(),
        "splits": {},
    }
    for (split, role, count_field), seq in zip(_SPLIT_PLAN, split_seqs):
        count = getattr(cfg, count_field)
        if count is None:  # val_unseen_per_class
            count = cfg.unseen_per_class
        srng = np.random.default_rng(seq)
        labels = np.repeat(roles[role], count)
        labels = labels[srng.permutation(len(labels))]
        values = torch.from_numpy(_sample_values(srng, probs, labels))
        split_seed = int(seq.generate_state(1, dtype=np.uint64)[0] >> 1)
        out["splits"][split] = {"labels": torch.from_numpy(labels).long(), "values": values, "seed": split_seed}
        if render_images:
            gen = torch.Generator().manual_seed(split_seed)
            images, masks = render(values, gen, cfg.image_size, noise=cfg.noise, clutter=bool(cfg.clutter),
                                   rotation=cfg.rotation, scale_jitter=cfg.scale_jitter, translate=cfg.translate)
            out["splits"][split].update(images=images, part_masks=masks)
    return out


def _cache_path(cfg: ShapesConfig) -> Path:
    return Path(cfg.cache_dir).expanduser() / f"shapes-{cfg.cache_key()}.pt"


def _check_payload(payload: Any, cfg: ShapesConfig) -> None:
    if not isinstance(payload, dict) or payload.get("key") != cfg.cache_key() \
            or payload.get("format_version") != _FORMAT_VERSION:
        raise ValueError("cache file does not match this config")
    n_cls = cfg.n_train_classes + cfg.n_val_classes + cfg.n_unseen_classes
    if tuple(payload["class_attributes"].shape) != (n_cls, NUM_ATTRIBUTES):
        raise ValueError("cache file has a wrong class attribute matrix")
    for split, _, _ in _SPLIT_PLAN:
        s = payload["splits"][split]
        n = s["images"].shape[0]
        if (s["images"].dtype != torch.uint8 or tuple(s["images"].shape[1:]) != (3, cfg.image_size, cfg.image_size)
                or s["labels"].shape[0] != n or s["values"].shape != (n, NUM_SLOTS)
                or s["part_masks"].shape != (n, 2, cfg.image_size, cfg.image_size)):
            raise ValueError(f"cache file has malformed split '{split}'")


class _SplitRenderer:
    """Renders rows of one split on the fly (:func:`render_indexed`); remembers the last call so
    that the images and part masks of one batch are rendered once."""

    def __init__(self, values: torch.Tensor, seed: int, cfg: ShapesConfig):
        self.values, self.seed = values, int(seed)
        self.kw = dict(image_size=cfg.image_size, noise=float(cfg.noise), clutter=bool(cfg.clutter),
                       rotation=float(cfg.rotation), scale_jitter=float(cfg.scale_jitter),
                       translate=float(cfg.translate))
        self._last: tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]] | None = None

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._last is not None and torch.equal(self._last[0], idx):
            return self._last[1]
        out = render_indexed(self.values[idx], idx, self.seed, **self.kw)
        self._last = (idx.clone(), out)
        return out

    def images(self, idx):
        return self(idx)[0]

    def masks(self, idx):
        return self(idx)[1]

    def __getstate__(self):  # DataLoader workers: no memo in the pickle
        return {**self.__dict__, "_last": None}


def _load_or_generate(cfg: ShapesConfig) -> dict[str, Any]:
    if cfg.on_the_fly:
        return _generate(cfg, render_images=False)
    if cfg.cache_dir is None:
        return _generate(cfg)
    path = _cache_path(cfg)
    if path.is_file():
        try:
            payload = safe_torch_load(path, map_location="cpu", what="shapes cache file")
            _check_payload(payload, cfg)
            return payload
        except Exception as e:  # corrupt, truncated, foreign or stale file: regenerate it
            warnings.warn(f"shapes: ignoring unreadable cache file {path} ({type(e).__name__}: {e}); "
                          f"regenerating it", stacklevel=3)
    payload = _generate(cfg)
    try:
        atomic_torch_save(payload, path)
    except OSError as e:
        warnings.warn(f"shapes: could not write cache file {path} ({e}); continuing without cache", stacklevel=3)
    return payload


def make_shapes(config: ShapesConfig | None = None, **overrides) -> ZSLData:
    """Build the ``shapes`` dataset.

    ``config`` defaults to :class:`ShapesConfig()`; ``overrides`` replace its fields (an
    unknown name raises ``ValueError`` listing the valid ones). Returns a :class:`ZSLData`
    whose splits are :class:`TensorImageDataset` with uint8 images and the extras
    ``attributes`` (N, 24) float one-hot per group, ``part_masks`` (N, 2, H, W) bool
    (0 head, 1 body) and ``values`` (N, 8) long (value index per part and group).

    ``meta``: ``attribute_part`` (part index per attribute), ``attribute_group`` (e.g.
    ``"head shape"``), ``attribute_value`` (e.g. ``"round"``), ``part_names``, ``groups``
    (group name -> value names), ``dominant`` ((n_classes, 8) dominant value indices),
    ``palette`` (RGB per colour value) and ``config`` (the config as a dict).
    """
    if config is None:
        config = ShapesConfig()
    elif not isinstance(config, ShapesConfig):
        raise ValueError(f"config must be a ShapesConfig or None, got {type(config).__name__}")
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown shapes config field(s) {', '.join(unknown)}; valid fields: {', '.join(_FIELDS)}")
    if "dominant_prob" in overrides and isinstance(overrides["dominant_prob"], list):
        overrides["dominant_prob"] = tuple(overrides["dominant_prob"])
    cfg = dataclasses.replace(config, **overrides).validate()

    payload = _load_or_generate(cfg)
    dominant = payload["dominant"]
    splits = {}
    for split, _, _ in _SPLIT_PLAN:
        s = payload["splits"][split]
        images, part_masks = s.get("images"), s.get("part_masks")
        if images is None:  # on the fly: rendered when indexed
            r = _SplitRenderer(s["values"], s["seed"], cfg)
            n, size = s["values"].shape[0], cfg.image_size
            images = LazyRows(r.images, (n, 3, size, size), torch.uint8)
            part_masks = LazyRows(r.masks, (n, 2, size, size), torch.bool)
        splits[split] = TensorImageDataset(
            images, s["labels"],
            extras={"attributes": _one_hot(s["values"]), "part_masks": part_masks, "values": s["values"]})
    names = attribute_names()
    meta = {
        "attribute_part": [p for p in range(len(PART_NAMES)) for k in GROUP_SIZES for _ in range(k)],
        "attribute_group": [f"{part} {g}" for part in PART_NAMES for g, vals in GROUPS for _ in vals],
        "attribute_value": [v for _ in PART_NAMES for _, vals in GROUPS for v in vals],
        "part_names": list(PART_NAMES),
        "groups": {f"{part} {g}": list(vals) for part in PART_NAMES for g, vals in GROUPS},
        "dominant": dominant.clone(),
        "palette": PALETTE.tolist(),
        "config": cfg.to_dict(),
    }
    return ZSLData(
        name="shapes",
        class_names=[class_name(row) for row in dominant.tolist()],
        attribute_names=names,
        class_attributes=payload["class_attributes"].clone(),
        train_classes=payload["train_classes"].clone(),
        val_classes=payload["val_classes"].clone(),
        unseen_classes=payload["unseen_classes"].clone(),
        splits=splits,
        meta=meta,
    )
