"""Tests of zslab.augment, the Table-3 augmentations of HAS."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zslab.augment import (AUGMENTATIONS, AugOutput, blur_parameters, build_augmentation,
                           soft_cross_entropy)

MIXING = ("mixup", "cutmix", "snapmix")
PER_IMAGE = tuple(n for n in AUGMENTATIONS if n not in MIXING and n != "none")


class IdentityAPN(nn.Module):
    """APN-shaped model with a known CAM: fmap = the image itself and V = I, so the CAM of
    class y is Σ_c φ(y)_c · image_c at full resolution."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Identity()
        self.V = nn.Linear(3, 3, bias=False)
        with torch.no_grad():
            self.V.weight.copy_(torch.eye(3))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def run(name, images, targets, A, seed=0, model=None, **kw):
    aug = build_augmentation(name, image_size=images.shape[-1], generator=gen(seed), **kw)
    if name == "snapmix" and model is None:
        model = IdentityAPN()
    return aug(images, targets, A, model=model)


@pytest.fixture(scope="module")
def batch():
    g = gen(123)
    x = torch.rand(16, 3, 32, 32, generator=g)
    y = torch.randint(0, 5, (16,), generator=g)
    A = torch.rand(5, 3, generator=g)
    return x, y, A


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_shape_range_and_valid_targets(name, batch):
    x, y, A = batch
    for dtype in (torch.float32, torch.float64):
        xd = x.to(dtype)
        out = run(name, xd, y, A)
        assert isinstance(out, AugOutput)
        assert out.images.shape == x.shape and out.images.dtype == dtype
        assert out.images.min() >= 0 and out.images.max() <= 1
        assert torch.isfinite(out.images).all()
        assert out.soft_targets.shape == (16, 5)
        assert (out.soft_targets >= 0).all()
        assert torch.allclose(out.soft_targets.sum(1), torch.ones(16, dtype=out.soft_targets.dtype), atol=1e-5)
        # target attributes are the same mixture of φ
        assert torch.allclose(out.target_attributes, out.soft_targets @ A.to(out.soft_targets.dtype), atol=1e-6)
        assert out.loss_weights.shape == (16,) and (out.loss_weights >= 0).all()
        imgs, soft, attrs = out  # unpacks to the three main fields
        assert imgs is out.images and attrs is out.target_attributes


@pytest.mark.parametrize("name", PER_IMAGE + ("none",))
def test_label_preserving_are_one_hot(name, batch):
    x, y, A = batch
    out = run(name, x, y, A)
    assert torch.equal(out.soft_targets, F.one_hot(y, 5).float())
    assert torch.equal(out.target_attributes, A[y])
    assert torch.equal(out.loss_weights, torch.ones(16))


def test_none_is_identity(batch):
    x, y, A = batch
    assert torch.equal(run("none", x, y, A).images, x)


def constant_class_images(n_classes=8, size=16, seed=0):
    """Image i is constant with colour c_i; one image per class (targets = arange)."""
    g = gen(seed)
    colours = torch.rand(n_classes, 3, generator=g) * 0.8 + 0.1
    x = colours[:, :, None, None].expand(n_classes, 3, size, size).clone()
    return x, torch.arange(n_classes), colours


def test_mixup_targets_match_image_mixing():
    x, y, colours = constant_class_images()
    A = torch.rand(8, 4, generator=gen(1))
    lams = []
    for seed in range(4):
        out = run("mixup", x, y, A, seed=seed)
        # every pixel of image i is Σ_k soft[i, k] · c_k (pairing-agnostic check)
        expected = out.soft_targets @ colours
        assert torch.allclose(out.images, expected[:, :, None, None].expand_as(out.images), atol=1e-5)
        # exactly two classes, weights λ and 1 − λ, λ the same for the batch
        nz = (out.soft_targets > 1e-6).sum(1)
        assert (nz <= 2).all()
        own = out.soft_targets[torch.arange(8), y]
        assert torch.allclose(own, own[0].expand(8), atol=1e-6)
        lams.append(float(own[0]))
    assert len({round(v, 6) for v in lams}) == 4 and any(0.05 < v < 0.95 for v in lams)


def test_cutmix_weight_is_pasted_area():
    x, y, colours = constant_class_images(size=20)
    A = torch.rand(8, 4, generator=gen(1))
    mixed = 0
    for seed in range(6):
        out = run("cutmix", x, y, A, seed=seed)
        for i in range(8):
            own = out.soft_targets[i, i]
            same = (out.images[i] - colours[i][:, None, None]).abs().amax(0) < 1e-6
            assert math.isclose(float(own), same.float().mean().item(), abs_tol=1e-6)
            others = out.soft_targets[i].clone()
            others[i] = 0
            if others.sum() > 0:
                mixed += 1
                j = int(others.argmax())
                pasted = (out.images[i] - colours[j][:, None, None]).abs().amax(0) < 1e-6
                assert math.isclose(float(others[j]), pasted.float().mean().item(), abs_tol=1e-6)
                # the pasted region is one rectangle
                rows, cols = pasted.any(1).nonzero(), pasted.any(0).nonzero()
                assert pasted.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert mixed > 0


def _spm(images, targets, A):
    """Reference semantic percentage map for IdentityAPN, computed independently."""
    cam = torch.einsum("nk,nkhw->nhw", A[targets], images)
    cam = cam - cam.flatten(1).min(1).values[:, None, None]
    return cam / cam.flatten(1).sum(1)[:, None, None]


def test_snapmix_weights_are_cam_mass_fractions():
    g = gen(5)
    x = torch.rand(6, 3, 24, 24, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    A = torch.eye(3)  # class k's CAM is channel k of the image
    out = run("snapmix", x, y, A, seed=3)
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = out.info["box_a"], out.info["box_b"]
    assert ax2 > ax1 and bx2 > bx1
    S = _spm(x, y, A)
    partner = out.info["partner"]
    rho_a = 1 - S[:, ay1:ay2, ax1:ax2].sum((1, 2))
    rho_b = S[partner, by1:by2, bx1:bx2].sum((1, 2))
    assert torch.allclose(out.info["rho_a"], rho_a, atol=1e-5)
    assert torch.allclose(out.info["rho_b"], rho_b, atol=1e-5)
    # the paper's loss ρ_a·ℓ(y_a) + ρ_b·ℓ(y_b) = loss_weights · soft CE
    assert torch.allclose(out.loss_weights, rho_a + rho_b, atol=1e-5)
    assert torch.allclose(out.soft_targets[torch.arange(6), y], rho_a / (rho_a + rho_b), atol=1e-5)
    # outside box a the image is untouched; inside it is the resized box of the partner
    outside = torch.ones(24, 24, dtype=torch.bool)
    outside[ay1:ay2, ax1:ax2] = False
    assert torch.equal(out.images[:, :, outside], x[:, :, outside])
    patch = F.interpolate(x[partner, :, by1:by2, bx1:bx2], size=(ay2 - ay1, ax2 - ax1), mode="bilinear",
                          align_corners=False)
    assert torch.allclose(out.images[:, :, ay1:ay2, ax1:ax2], patch, atol=1e-6)


def test_snapmix_follows_semantics_not_area():
    """Boxes depend only on the generator, so learn them first, then put all the CAM mass of
    every image at one pixel inside both boxes: a's mass is cut away (ρ_a = 0) and b's is
    pasted (ρ_b = 1), so the label is entirely the partner's, whatever the box areas."""
    size = 24
    y = torch.tensor([0, 1, 2, 0])
    A = torch.eye(3)
    for seed in range(50):
        probe = run("snapmix", torch.zeros(4, 3, size, size), y, A, seed=seed)
        (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = probe.info["box_a"], probe.info["box_b"]
        py, px = max(ay1, by1), max(ax1, bx1)
        if py < min(ay2, by2) and px < min(ax2, bx2):
            break
    else:
        pytest.fail("no seed with overlapping boxes")
    x = torch.zeros(4, 3, size, size)
    x[torch.arange(4), y, py, px] = 1.0
    out = run("snapmix", x, y, A, seed=seed)
    assert out.info["box_a"] == probe.info["box_a"]
    assert torch.allclose(out.info["rho_a"], torch.zeros(4), atol=1e-6)
    assert torch.allclose(out.info["rho_b"], torch.ones(4), atol=1e-6)
    expected = F.one_hot(y[out.info["partner"]], 3).float()
    assert torch.allclose(out.soft_targets, expected, atol=1e-6)
    # an area rule (CutMix) would have kept 1 − area(box a) > 0 for the own class
    assert (ax2 - ax1) * (ay2 - ay1) < size * size


def test_snapmix_with_real_apn_and_requires_model(batch):
    from zslab.models.apn import APN
    from zslab.models.backbones import build_backbone
    x, y, A = batch
    torch.manual_seed(0)
    model = APN(build_backbone("small", width=8), 3).train()
    out = run("snapmix", x, y, A, model=model)
    assert model.training  # mode restored
    assert torch.allclose(out.soft_targets.sum(1), torch.ones(16), atol=1e-5)
    with pytest.raises(ValueError, match="model"):
        build_augmentation("snapmix", generator=gen())(x, y, A)


@pytest.mark.parametrize("strength", ["0.2", "0.4"])
def test_colorjitter_changes_colour_statistics(strength):
    x = torch.tensor([0.5, 0.3, 0.6])[None, :, None, None].expand(128, 3, 8, 8).clone()
    y = torch.zeros(128, dtype=torch.long)
    out = run("colorjitter" + strength, x, y, torch.ones(1, 2)).images
    means = out.mean(dim=(2, 3))  # (128, 3) per-image colour
    spread = means.std(0)
    assert (spread > 0.02).all()
    # hue/saturation change the colour, not only the brightness: chromaticity varies
    chroma = means / means.sum(1, keepdim=True)
    assert chroma.std(0).max() > 0.01
    if strength == "0.4":
        weak = run("colorjitter0.2", x, y, torch.ones(1, 2)).images.mean(dim=(2, 3))
        # brightness/contrast/saturation in [0.6, 1.4] vs [0.8, 1.2]: the luminance varies more
        assert means.mean(1).std() > weak.mean(1).std()


@pytest.mark.parametrize("p", [0.2, 0.4])
def test_grayscale_fraction(p):
    n = 400
    img = torch.rand(3, 8, 8, generator=gen(9))
    x = img.expand(n, 3, 8, 8).clone()
    out = run(f"grayscale{p}", x, torch.zeros(n, dtype=torch.long), torch.ones(1, 2)).images
    gray = (out[:, 0] == out[:, 1]).flatten(1).all(1) & (out[:, 1] == out[:, 2]).flatten(1).all(1)
    frac = gray.float().mean().item()
    assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(out[~gray], x[~gray])  # the others are untouched
    lum = 0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    assert torch.allclose(out[gray][:, 0], lum.expand(int(gray.sum()), 8, 8), atol=1e-5)


def test_blur_parameters_scale_with_size():
    assert blur_parameters("low", 32) == (3, (0.1, 0.5))
    assert blur_parameters("high", 32) == (7, (0.1, 1.5))
    assert blur_parameters("low", 448) == (5, (0.1, 1.0))
    assert blur_parameters("high", 448) == (21, (0.1, 5.0))
    assert blur_parameters("high", 5)[0] == 5  # capped at the image size


def test_blur_smooths_and_high_is_stronger():
    x = torch.zeros(64, 3, 32, 32)
    x[:, :, :, ::2] = 1.0  # vertical stripes: maximal high-frequency energy
    y = torch.zeros(64, dtype=torch.long)
    low = run("blur_low", x, y, torch.ones(1, 2)).images
    high = run("blur_high", x, y, torch.ones(1, 2)).images
    tv = lambda im: (im[..., 1:] - im[..., :-1]).abs().mean().item()  # noqa: E731
    assert tv(high) < tv(low) < tv(x)
    assert torch.allclose(low.mean(), x.mean(), atol=0.02)  # blur keeps the mean brightness


def _disk(size, cy, cx, r):
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    return (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).float()


def _centroid(m):
    yy, xx = torch.meshgrid(torch.arange(m.shape[-2]).float(), torch.arange(m.shape[-1]).float(), indexing="ij")
    w = m.sum((-2, -1))
    return torch.stack([(m * yy).sum((-2, -1)) / w, (m * xx).sum((-2, -1)) / w], -1)


def test_rotation_centre_disk_fixed_offcentre_dot_moves():
    n, s = 64, 32
    y = torch.zeros(n, dtype=torch.long)
    disk = _disk(s, s / 2, s / 2, 9)[None, None].expand(n, 3, s, s).clone()
    out = run("rotate", disk, y, torch.ones(1, 2)).images
    assert (out - disk).abs().mean() < 0.02
    dot = _disk(s, 6, 6, 2)[None, None].expand(n, 3, s, s).clone()
    out = run("rotate", dot, y, torch.ones(1, 2)).images
    c0 = _centroid(dot[:, 0])
    c1 = _centroid(out[:, 0])
    moved = (c1 - c0).norm(dim=1)
    assert moved.median() > 8
    # and the dot stays at the same distance from the centre (a rotation, not a shift)
    r0 = (c0 - (s - 1) / 2).norm(dim=1)
    r1 = (c1 - (s - 1) / 2).norm(dim=1)
    assert torch.allclose(r1, r0, atol=1.0)


def test_crop_half_zooms_in():
    n, s = 64, 32
    x = torch.zeros(n, 3, s, s)
    x[:, :, 14:18, 14:18] = 1.0  # a 4x4 object (16 px) in the centre
    out = run("crop_half", x, torch.zeros(n, dtype=torch.long), torch.ones(1, 2)).images
    area = (out[:, 0] > 0.5).flatten(1).sum(1).float()
    whole = area[(area > 56) & (area < 72)]  # fully visible: 8x8 = 64 px, 4x the original
    assert len(whole) >= n // 3
    assert area.max() <= 72 and (area > 16).float().mean() > 0.6


def test_cutout_one_clipped_square_hole():
    n, s = 64, 32
    x = torch.rand(n, 3, s, s, generator=gen(2)) * 0.4  # never equal to the fill 0.5
    out = run("cutout", x, torch.zeros(n, dtype=torch.long), torch.ones(1, 2))
    hole = (out.images == 0.5).all(1)  # (n, s, s)
    areas = hole.flatten(1).sum(1)
    assert (areas > 0).all() and (areas <= (s // 2) ** 2).all()
    assert (areas == (s // 2) ** 2).float().mean() > 0.2  # unclipped holes are exactly 16x16
    for i in range(n):
        rows, cols = hole[i].any(1).nonzero(), hole[i].any(0).nonzero()
        assert areas[i] == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle
    assert torch.equal(out.images[~hole[:, None].expand_as(x)], x[~hole[:, None].expand_as(x)])


@pytest.mark.parametrize("name", [n for n in AUGMENTATIONS if n != "none"])
def test_determinism_and_seed_dependence(name, batch):
    x, y, A = batch
    a = run(name, x, y, A, seed=7)
    b = run(name, x, y, A, seed=7)
    c = run(name, x, y, A, seed=8)
    assert torch.equal(a.images, b.images) and torch.equal(a.soft_targets, b.soft_targets)
    assert not torch.equal(a.images, c.images)
    # a generator continues its stream: a second call on the same object differs
    aug = build_augmentation(name, generator=gen(7))
    model = IdentityAPN() if name == "snapmix" else None
    first = aug(x, y, A, model=model).images
    assert torch.equal(first, a.images)
    assert not torch.equal(aug(x, y, A, model=model).images, first)


def test_global_rng_untouched(batch):
    x, y, A = batch
    model = IdentityAPN()  # built first: nn.Linear's init draws from the global RNG
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    for name in AUGMENTATIONS:
        run(name, x, y, A, model=model)
        build_augmentation(name)(x, y, A, model=model)  # default generator too
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", PER_IMAGE)
def test_per_image_randomness(name):
    n = 32
    img = torch.rand(3, 32, 32, generator=gen(4))
    x = img.expand(n, 3, 32, 32).clone()
    out = run(name, x, torch.zeros(n, dtype=torch.long), torch.ones(1, 2)).images
    distinct = {tuple(o.flatten()[::37].tolist()) for o in out}
    if name.startswith("grayscale"):
        assert len(distinct) == 2  # some converted, some not
    elif name == "blur_low":
        assert len(distinct) >= n // 2  # σ near 0.1 leaves an image exactly unchanged
    else:
        assert len(distinct) >= n - 2


@pytest.mark.parametrize("name", MIXING)
def test_mixing_identical_images_get_different_partners(name):
    g = gen(6)
    x = torch.rand(8, 3, 16, 16, generator=g)
    x[5] = x[2]
    y = torch.arange(8)
    y[5] = y[2]
    for seed in range(5):  # skip draws where nothing is mixed (an empty box)
        out = run(name, x, y, torch.rand(8, 3, generator=g), seed=seed)
        if not torch.equal(out.images, x):
            break
    assert not torch.equal(out.images[2], out.images[5])


def test_unknown_name_and_bad_options():
    with pytest.raises(ValueError) as e:
        build_augmentation("autoaugment")
    for name in AUGMENTATIONS:
        assert name in str(e.value)
    with pytest.raises(ValueError):
        build_augmentation("rotate", alpha=2.0)
    assert build_augmentation("mixup", alpha=0.2, generator=gen()).alpha == 0.2


def test_soft_cross_entropy_matches_torch():
    g = gen(3)
    logits = torch.randn(10, 6, generator=g)
    t = torch.randint(0, 6, (10,), generator=g)
    assert torch.allclose(soft_cross_entropy(logits, F.one_hot(t, 6).float()), F.cross_entropy(logits, t))
    soft = torch.softmax(torch.randn(10, 6, generator=g), 1)
    assert torch.allclose(soft_cross_entropy(logits, soft), F.cross_entropy(logits, soft))
    w = torch.rand(10, generator=g)
    per = F.cross_entropy(logits, soft, reduction="none")
    assert torch.allclose(soft_cross_entropy(logits, soft, w, reduction="none"), per * w)
    assert torch.allclose(soft_cross_entropy(logits, soft, w, reduction="sum"), (per * w).sum())
    # SnapMix: weights · CE(normalised targets) = ρ_a·CE(y_a) + ρ_b·CE(y_b)
    ra, rb = torch.rand(10, generator=g), torch.rand(10, generator=g)
    t2 = (t + 1) % 6
    soft = (ra[:, None] * F.one_hot(t, 6) + rb[:, None] * F.one_hot(t2, 6)) / (ra + rb)[:, None]
    paper = ra * F.cross_entropy(logits, t, reduction="none") + rb * F.cross_entropy(logits, t2, reduction="none")
    assert torch.allclose(soft_cross_entropy(logits, soft, ra + rb, reduction="none"), paper, atol=1e-5)
