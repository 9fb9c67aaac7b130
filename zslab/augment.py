"""Traditional image augmentations of HAS Table 3, selectable for APN training.

HAS (Chen et al., "Zero-Shot Learning by Harnessing Adversarial Samples", §1, §4.5 and
Table 3) argues that ordinary augmentations cause *semantic distortion* in attribute-based
ZSL: a colour jitter changes "blue breast", a crop removes "long tail", a mix blends the
attributes of two birds. Table 3 trains APN with each of these augmentations; this module
provides them behind one interface so a training strategy can swap them in::

    aug = build_augmentation("cutmix", image_size=32, generator=torch.Generator().manual_seed(0))
    out = aug(images, targets, class_attributes, model=None)
    loss = soft_cross_entropy(logits, out.soft_targets, out.loss_weights)

In training, the config key ``augment`` (``zslab train apn --set augment=cutmix``) selects one;
:class:`zslab.methods.APNStrategy` then augments every training batch with randomness
from the engine's per-epoch generator and uses soft targets for the names in
:data:`MIXING_AUGMENTATIONS`.

``images`` are float (N, 3, H, W) in [0, 1]; ``targets`` (N,) are indices into the rows of
``class_attributes`` (n_train, K). The result :class:`AugOutput` holds the augmented images
(same shape, dtype, device, always in [0, 1]), ``soft_targets`` (N, n_train) whose rows sum
to 1, ``target_attributes`` = ``soft_targets @ class_attributes`` (the same mixture of φ),
``loss_weights`` (N,) (all ones except SnapMix, see below) and ``info`` (the drawn mixing
parameters, for figures and tests). ``images, soft_targets, target_attributes = out`` works.

Settings (``image_size`` only scales the blur; crops and holes follow the actual H, W):

================  =====================================================================
name              what it does
================  =====================================================================
none              identity (the Table 3 baseline row)
colorjitter0.2    v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.2)
colorjitter0.4    v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2)
grayscale0.2      v2.RandomGrayscale(p=0.2)
grayscale0.4      v2.RandomGrayscale(p=0.4)
blur_low          v2.GaussianBlur, σ ~ U[0.1, max(1·s, 0.5)], s = image_size / 448
blur_high         v2.GaussianBlur, σ ~ U[0.1, max(5·s, 1.5)]
rotate            v2.RandomRotation((0, 360)), bilinear, black corners
crop_half         v2.RandomCrop((H//2, W//2)) then v2.Resize((H, W)), bilinear + antialias
cutout            one square hole of side H//2 × W//2, centre uniform, clipped at the border
mixup             v2.MixUp(alpha=1): λ ~ Beta(1, 1), one λ per batch
cutmix            v2.CutMix(alpha=1): box of area ≈ (1−λ), label weight = exact area
snapmix           SnapMix (Huang et al. 2021), Beta(5, 5) box sizes, CAM-based weights
================  =====================================================================

Where the paper is silent:

* **ColorJitter.** Table 3 names one number per row. The value is used for brightness,
  contrast and saturation; hue is 0.2 for both rows, which is what the commented-out
  Table-3 lines in the authors' public ``dataset.py`` (uqzhichen/HASZSL) use.
* **GaussianBlur.** The authors' lines use σ ∈ (0.1, 1) (low) and (0.1, 5) (high) at
  448 px. The upper σ scales with ``image_size``/448, floored at 0.5 px (low) and 1.5 px
  (high) so that at 32 px low is still a mild blur and high a strong one. The kernel is
  2⌈2σ_max⌉+1, which covers ±2σ, capped at the largest odd number ≤ image_size. So the
  kernel is 3 (low) and 7 (high) at 32 px, and 5 and 21 at 448 px.
* **RandomRotate** "from 0 to 360 degrees" (§4.5), about the centre. **RandomCrop** "half
  the size of the original images" (§4.5) means half of each side, resized back to full size.
* **CutOut** follows DeVries & Taylor (2017, arXiv:1708.04552). There is one square hole
  per image, half the image side (their CIFAR-10 setting, 16 px on 32 px). Its centre is
  uniform over the pixels, and it is clipped at the border, so holes near the edge are
  smaller. They zero the *normalised* image, which fills the hole with the dataset mean.
  Here images are in [0, 1] and the model normalises them, so the hole is filled with
  ``fill`` = 0.5, the mean of the ``small`` backbone's normalisation.
* **MixUp** (Zhang et al., ICLR 2018) and **CutMix** (Yun et al., ICCV 2019) are
  torchvision's v2 transforms with α = 1. The λ and the box are drawn once per batch, and
  image i is mixed with image i−1 (``roll(1)``). This is the usual batch-level
  implementation and assumes a shuffled loader. CutMix's label weight is the exact pasted
  area after clipping.
* **SnapMix** (Huang, Wang & Tao, AAAI 2021) uses β = 5 and probability 1, the authors'
  README setting. Two boxes are drawn, each from its own λ ~ Beta(5, 5) (CutMix-style
  placement). The box of image b = i−1 is resized (bilinear) into the box of image a = i.
  The semantic percentage map is S(I) = CAM_y(I) upsampled to H × W, shifted to be
  non-negative (minus its minimum) and divided by its sum. For APN the class weights over
  channels are w_y = V φ(y) (in code ``φ(y) @ model.V.weight``), so
  CAM_y(x) = Σ_c (w_y)_c · fmap_c with fmap = ``model.backbone(images)``. The weights
  are ρ_a = 1 − Σ_{box a} S(I_a) and ρ_b = Σ_{box b} S(I_b). The paper's loss is
  ρ_a·ℓ(y_a) + ρ_b·ℓ(y_b), and ρ_a + ρ_b need not be 1. Here ``soft_targets`` is
  (ρ_a, ρ_b) / (ρ_a + ρ_b) and ``loss_weights`` is ρ_a + ρ_b, so
  ``soft_cross_entropy(logits, soft_targets, loss_weights)`` is exactly the paper's loss
  (cross-entropy is linear in the target). The CAM pass runs under ``no_grad`` with the model
  temporarily in eval mode, so BatchNorm statistics are not touched, and the mode is
  restored afterwards.

Randomness comes only from the explicit ``torch.Generator``, and the output is
deterministic given its state. The torchvision v2 transforms draw from the global CPU RNG,
so each call draws a seed from the generator and runs them inside
``torch.random.fork_rng(devices=[])`` seeded with it. The caller's global RNG state is
restored afterwards and nothing else is touched. The v2 transforms share their random
parameters across a batch tensor, so the per-image ones (everything except the three
mixing methods) are applied image by image, and each image gets its own parameters.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from zslab.attacks import eval_mode

__all__ = ["AUGMENTATIONS", "MIXING_AUGMENTATIONS", "AugOutput", "Augmentation", "build_augmentation", "soft_cross_entropy",
           "blur_parameters", "apn_class_activation_maps"]

AUGMENTATIONS: tuple[str, ...] = (
    "none", "colorjitter0.2", "colorjitter0.4", "grayscale0.2", "grayscale0.4", "blur_low", "blur_high",
    "rotate", "crop_half", "cutout", "mixup", "cutmix", "snapmix",
)

#: the augmentations that mix two images and so give soft (two-class) targets
MIXING_AUGMENTATIONS: tuple[str, ...] = ("mixup", "cutmix", "snapmix")

#: the resolution HAS trains at; the blur settings are given at this size and scaled from it
REFERENCE_SIZE = 448


@dataclass
class AugOutput:
    """Augmented batch. Iterating yields ``(images, soft_targets, target_attributes)``."""

    images: torch.Tensor             # (N, 3, H, W) in [0, 1]
    soft_targets: torch.Tensor       # (N, n_train), rows sum to 1
    target_attributes: torch.Tensor  # (N, K) = soft_targets @ class_attributes
    loss_weights: torch.Tensor | None = None  # (N,) per-sample loss weight (SnapMix: ρ_a + ρ_b)
    info: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.images, self.soft_targets, self.target_attributes))


def soft_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor,
                       weights: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy with probability targets: −Σ_k t_k log softmax(logits)_k per row.

    ``weights`` (N,) scales each row's loss (e.g. :attr:`AugOutput.loss_weights`);
    ``reduction`` is ``"mean"`` (over rows), ``"sum"`` or ``"none"``.
    """
    if logits.shape != soft_targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and soft targets {tuple(soft_targets.shape)} differ")
    loss = -(soft_targets.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1)
    if weights is not None:
        loss = loss * weights.to(loss.dtype)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def blur_parameters(strength: str, image_size: int) -> tuple[int, tuple[float, float]]:
    """(kernel size, σ range) of ``blur_<strength>`` at ``image_size`` (see the module notes)."""
    s = image_size / REFERENCE_SIZE
    if strength == "low":
        sigma_max = max(1.0 * s, 0.5)
    elif strength == "high":
        sigma_max = max(5.0 * s, 1.5)
    else:
        raise ValueError(f"blur strength must be 'low' or 'high', got {strength!r}")
    kernel = 2 * math.ceil(2 * sigma_max) + 1
    largest_odd = image_size if image_size % 2 else image_size - 1
    kernel = max(3, min(kernel, largest_odd))
    return kernel, (0.1, sigma_max)


def apn_class_activation_maps(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                              class_attributes: torch.Tensor) -> torch.Tensor:
    """CAM of the true class for an APN-like model: Σ_c (φ(y) V)_c · fmap_c, shape (N, h, w).

    ``model.backbone(images)`` gives fmap (N, C, h, w); ``model.V.weight`` is (K, C).
    """
    if not (hasattr(model, "backbone") and hasattr(model, "V")):
        raise TypeError("SnapMix needs an APN-like model with .backbone (images -> feature map) and .V (K x C)")
    fmap = model.backbone(images)
    V = model.V.weight  # (K, C)
    w = class_attributes[targets].to(device=V.device, dtype=V.dtype) @ V  # (N, C)
    return torch.einsum("nc,nchw->nhw", w.to(fmap.dtype), fmap)


@contextmanager
def _global_rng_from(generator: torch.Generator):
    """Run the body with the global CPU RNG seeded from ``generator``; restore it afterwards."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


@contextmanager
def _one_thread(device: torch.device):
    """One intra-op thread for the body on CPU, restored afterwards. The per-image transforms
    are many tiny ops; with two threads on a busy 2-core CPU they hit OpenMP oversubscription
    stalls (measured on 64 images at 32 px: ColorJitter 3.0 s vs 0.12 s, GaussianBlur 8.2 s vs
    0.10 s, with 2 vs 1 threads), as :func:`zslab.data.shapes.render` also notes."""
    prev = torch.get_num_threads()
    if device.type != "cpu" or prev == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _default_generator() -> torch.Generator:
    # Derived from torch.initial_seed() (reproducible under torch.manual_seed) without
    # drawing from, hence mutating, the global RNG.
    return torch.Generator().manual_seed(torch.initial_seed() % (2**63))


class Augmentation:
    """Base class: validates inputs, applies :meth:`_apply`, builds the :class:`AugOutput`."""

    name: str = "none"
    needs_model: bool = False

    def __init__(self, generator: torch.Generator | None = None):
        self.generator = generator if generator is not None else _default_generator()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, class_attributes: torch.Tensor,
                 model: nn.Module | None = None) -> AugOutput:
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"images must be float (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if targets.ndim != 1 or targets.shape[0] != images.shape[0]:
            raise ValueError(f"targets must be (N,) = ({images.shape[0]},), got {tuple(targets.shape)}")
        if class_attributes.ndim != 2:
            raise ValueError(f"class_attributes must be (n_train, K), got {tuple(class_attributes.shape)}")
        if self.needs_model and model is None:
            raise ValueError(f"'{self.name}' needs the model (its class activation maps); pass model=")
        n = class_attributes.shape[0]
        targets = targets.to(device=images.device, dtype=torch.long)
        out, soft, weights, info = self._apply(images, targets, n, class_attributes, model)
        if soft is None:
            soft = F.one_hot(targets, n).to(images.dtype)
        soft = soft.to(images.dtype)
        A = class_attributes.to(device=soft.device, dtype=soft.dtype)
        return AugOutput(images=out.clamp(0, 1).to(images.dtype), soft_targets=soft,
                         target_attributes=soft @ A,
                         loss_weights=weights if weights is not None else soft.new_ones(soft.shape[0]),
                         info=info)

    def _apply(self, images, targets, n, class_attributes, model):
        return images.clone(), None, None, {}


class PerImageTransform(Augmentation):
    """A torchvision v2 transform applied image by image (own random parameters per image)."""

    def __init__(self, name: str, make_transform: Callable[[int, int], v2.Transform],
                 generator: torch.Generator | None = None):
        super().__init__(generator)
        self.name = name
        self._make = make_transform
        self._cache: dict[tuple[int, int], v2.Transform] = {}

    def transform_for(self, height: int, width: int) -> v2.Transform:
        key = (height, width)
        if key not in self._cache:
            self._cache[key] = self._make(height, width)
        return self._cache[key]

    def _apply(self, images, targets, n, class_attributes, model):
        t = self.transform_for(images.shape[2], images.shape[3])
        with _global_rng_from(self.generator), _one_thread(images.device):
            out = torch.stack([t(img) for img in images])
        return out, None, None, {}


class Cutout(Augmentation):
    """DeVries & Taylor (2017): one square hole per image, centre uniform, clipped at the border."""

    name = "cutout"

    def __init__(self, generator: torch.Generator | None = None, size_fraction: float = 0.5, fill: float = 0.5):
        super().__init__(generator)
        self.size_fraction = size_fraction
        self.fill = fill

    def _apply(self, images, targets, n, class_attributes, model):
        N, _, H, W = images.shape
        hh, hw = max(1, int(H * self.size_fraction)), max(1, int(W * self.size_fraction))
        g = self.generator
        cy = torch.randint(0, H, (N,), generator=g, device=g.device).cpu()
        cx = torch.randint(0, W, (N,), generator=g, device=g.device).cpu()
        y1, y2 = (cy - hh // 2).clamp(0, H), (cy - hh // 2 + hh).clamp(0, H)
        x1, x2 = (cx - hw // 2).clamp(0, W), (cx - hw // 2 + hw).clamp(0, W)
        ys = torch.arange(H)[None, :]
        xs = torch.arange(W)[None, :]
        my = (ys >= y1[:, None]) & (ys < y2[:, None])  # (N, H)
        mx = (xs >= x1[:, None]) & (xs < x2[:, None])  # (N, W)
        hole = (my[:, :, None] & mx[:, None, :])[:, None].to(images.device)  # (N, 1, H, W)
        out = images.masked_fill(hole, self.fill)
        return out, None, None, {"boxes": torch.stack([x1, y1, x2, y2], dim=1)}


class _TorchvisionMix(Augmentation):
    """v2.MixUp / v2.CutMix (batch-level λ, partner = previous image in the batch)."""

    def __init__(self, name: str, cls, alpha: float = 1.0, generator: torch.Generator | None = None):
        super().__init__(generator)
        self.name = name
        self.cls = cls
        self.alpha = alpha

    def _apply(self, images, targets, n, class_attributes, model):
        t = self.cls(alpha=self.alpha, num_classes=n)
        with _global_rng_from(self.generator):
            out, soft = t(images, targets)
        partner = torch.roll(torch.arange(images.shape[0]), 1)
        return torch.as_tensor(out), soft, None, {"partner": partner}


def _beta(alpha: float, generator: torch.Generator) -> float:
    with _global_rng_from(generator):
        return float(torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha)).sample())


def _rand_box(lam: float, H: int, W: int, generator: torch.Generator) -> tuple[int, int, int, int]:
    """CutMix-style box (Yun et al. 2019): side ratio sqrt(1−λ), centre uniform, clipped."""
    r = math.sqrt(1.0 - lam)
    ch, cw = int(H * r), int(W * r)
    cy = int(torch.randint(0, H, (1,), generator=generator, device=generator.device).item())
    cx = int(torch.randint(0, W, (1,), generator=generator, device=generator.device).item())
    y1, y2 = min(max(cy - ch // 2, 0), H), min(max(cy + ch // 2, 0), H)
    x1, x2 = min(max(cx - cw // 2, 0), W), min(max(cx + cw // 2, 0), W)
    return x1, y1, x2, y2


class SnapMix(Augmentation):
    """SnapMix (Huang et al., AAAI 2021) with APN's class activation maps."""

    name = "snapmix"
    needs_model = True

    def __init__(self, generator: torch.Generator | None = None, beta: float = 5.0, eps: float = 1e-8):
        super().__init__(generator)
        self.beta = beta
        self.eps = eps

    def semantic_percentage_maps(self, model, images, targets, class_attributes) -> torch.Tensor:
        """S(I): the true-class CAM upsampled to H×W, minus its minimum, divided by its sum."""
        with eval_mode(model):  # restores every submodule's own train/eval flag
            with torch.no_grad():
                cam = apn_class_activation_maps(model, images, targets, class_attributes)
        cam = F.interpolate(cam[:, None].float(), size=images.shape[2:], mode="bilinear", align_corners=False)[:, 0]
        cam = cam - cam.flatten(1).amin(dim=1)[:, None, None]
        total = cam.flatten(1).sum(dim=1)[:, None, None]
        uniform = torch.full_like(cam, 1.0 / (cam.shape[1] * cam.shape[2]))
        return torch.where(total > self.eps, cam / total.clamp_min(self.eps), uniform)

    def _apply(self, images, targets, n, class_attributes, model):
        N, _, H, W = images.shape
        g = self.generator
        box_a = _rand_box(_beta(self.beta, g), H, W, g)
        box_b = _rand_box(_beta(self.beta, g), H, W, g)
        partner = torch.roll(torch.arange(N), 1)
        info = {"box_a": box_a, "box_b": box_b, "partner": partner}
        ax1, ay1, ax2, ay2 = box_a
        bx1, by1, bx2, by2 = box_b
        if min(ax2 - ax1, ay2 - ay1, bx2 - bx1, by2 - by1) <= 0:  # an empty box: nothing is pasted
            info["rho_a"], info["rho_b"] = torch.ones(N), torch.zeros(N)
            return images.clone(), None, None, info
        S = self.semantic_percentage_maps(model, images, targets, class_attributes)
        rho_a = 1.0 - S[:, ay1:ay2, ax1:ax2].sum(dim=(1, 2))
        rho_b = S[partner.to(S.device), by1:by2, bx1:bx2].sum(dim=(1, 2))
        rho_a = rho_a.clamp_min(0)
        out = images.clone()
        patch = images[partner.to(images.device), :, by1:by2, bx1:bx2]
        out[:, :, ay1:ay2, ax1:ax2] = F.interpolate(patch, size=(ay2 - ay1, ax2 - ax1), mode="bilinear",
                                                   align_corners=False)
        total = rho_a + rho_b
        # degenerate case (all of a's mass cut away, none of b's pasted): fall back to area weights
        area_a = (ay2 - ay1) * (ax2 - ax1) / (H * W)
        bad = total <= self.eps
        rho_a_n = torch.where(bad, torch.full_like(rho_a, 1 - area_a), rho_a / total.clamp_min(self.eps))
        rho_b_n = torch.where(bad, torch.full_like(rho_b, area_a), rho_b / total.clamp_min(self.eps))
        onehot = F.one_hot(targets, n).to(rho_a.dtype)
        soft = rho_a_n[:, None] * onehot + rho_b_n[:, None] * onehot[partner.to(onehot.device)]
        weights = torch.where(bad, torch.ones_like(total), total)
        info["rho_a"], info["rho_b"] = rho_a, rho_b
        return out, soft.to(images.device), weights.to(images.device), info


def _colorjitter(v: float):
    return lambda h, w: v2.ColorJitter(brightness=v, contrast=v, saturation=v, hue=0.2)


def _blur(strength: str, image_size: int):
    kernel, sigma = blur_parameters(strength, image_size)
    return lambda h, w: v2.GaussianBlur(kernel_size=min(kernel, _odd_at_most(min(h, w))), sigma=sigma)


def _odd_at_most(x: int) -> int:
    return max(1, x if x % 2 else x - 1)


def build_augmentation(name: str, image_size: int = 32, generator: torch.Generator | None = None,
                       **options) -> Augmentation:
    """The Table-3 augmentation ``name`` (one of :data:`AUGMENTATIONS`).

    ``image_size`` scales the Gaussian blur; ``generator`` is the only source of randomness
    (default: a generator seeded from ``torch.initial_seed()``). ``options`` override the
    defaults where a method has them: ``alpha`` (mixup, cutmix), ``beta`` (snapmix),
    ``fill`` and ``size_fraction`` (cutout).
    """
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; valid names: {', '.join(AUGMENTATIONS)}")
    allowed = {"mixup": {"alpha"}, "cutmix": {"alpha"}, "snapmix": {"beta"}, "cutout": {"fill", "size_fraction"}}
    extra = set(options) - allowed.get(name, set())
    if extra:
        raise ValueError(f"augmentation {name!r} takes no option(s) {sorted(extra)}")
    if name == "none":
        return Augmentation(generator)
    if name.startswith("colorjitter"):
        return PerImageTransform(name, _colorjitter(float(name[len("colorjitter"):])), generator)
    if name.startswith("grayscale"):
        p = float(name[len("grayscale"):])
        return PerImageTransform(name, lambda h, w: v2.RandomGrayscale(p=p), generator)
    if name.startswith("blur_"):
        return PerImageTransform(name, _blur(name[len("blur_"):], image_size), generator)
    if name == "rotate":
        return PerImageTransform(name, lambda h, w: v2.RandomRotation(
            degrees=(0.0, 360.0), interpolation=v2.InterpolationMode.BILINEAR, fill=0.0), generator)
    if name == "crop_half":
        return PerImageTransform(name, lambda h, w: v2.Compose([
            v2.RandomCrop((max(1, h // 2), max(1, w // 2))),
            v2.Resize((h, w), interpolation=v2.InterpolationMode.BILINEAR, antialias=True)]), generator)
    if name == "cutout":
        return Cutout(generator, **options)
    if name == "mixup":
        return _TorchvisionMix(name, v2.MixUp, options.get("alpha", 1.0), generator)
    if name == "cutmix":
        return _TorchvisionMix(name, v2.CutMix, options.get("alpha", 1.0), generator)
    return SnapMix(generator, **options)
