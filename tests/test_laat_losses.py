"""LAAT losses (zslab.losses): analytic values of A-CE, smoothness, TRADES and the Table 4 objectives."""
import math

import pytest
import torch
import torch.nn.functional as F

from zslab.losses import (LAAT_OBJECTIVES, ace_loss, angle_objective, cos_objective, cosine_logits,
                          euclid_objective, smoothness_loss, trades_kl, trades_loss)

EYE = torch.eye(4, 6)  # 4 orthonormal anchors in R^6


def test_ace_on_the_true_anchor_with_orthogonal_anchors():
    # f(x) = 3·â_y (the norm must not matter): cosines are 1 for y and 0 for the 3 others
    feats = 3.0 * EYE[[0, 2]]
    y = torch.tensor([0, 2])
    expected = -math.log(math.e / (math.e + 3))
    assert ace_loss(feats, EYE, y).item() == pytest.approx(expected, abs=1e-6)
    # Eq. 8 with tau: logits 1/τ and 0
    tau = 0.5
    assert ace_loss(feats, EYE, y, tau=tau).item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 3)), abs=1e-6)
    # a feature orthogonal to every anchor: uniform prediction, CE = log C
    orth = torch.zeros(1, 6)
    orth[0, 5] = 1.0
    assert ace_loss(orth, EYE, torch.tensor([1])).item() == pytest.approx(math.log(4), abs=1e-6)
    # per-example values and unnormalised anchors (they are normalised inside)
    per = ace_loss(feats, 7 * EYE, y, reduction="none")
    assert per.shape == (2,) and torch.allclose(per, torch.full((2,), expected), atol=1e-6)


def test_cosine_logits_and_bad_shapes():
    feats = torch.tensor([[1.0, 1.0, 0, 0, 0, 0]])
    z = cosine_logits(feats, EYE, tau=2.0)
    assert torch.allclose(z, torch.tensor([[0.5 ** 0.5 / 2, 0.5 ** 0.5 / 2, 0, 0]]), atol=1e-6)
    with pytest.raises(ValueError, match="share D"):
        ace_loss(torch.zeros(2, 5), EYE, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="tau"):
        cosine_logits(feats, EYE, tau=0.0)


def test_smoothness():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(5, 8, generator=g)
    assert smoothness_loss(f, f).item() == pytest.approx(-1.0, abs=1e-6)
    assert smoothness_loss(f, 2.5 * f).item() == pytest.approx(-1.0, abs=1e-6)  # scale-free
    assert smoothness_loss(f, -f).item() == pytest.approx(1.0, abs=1e-6)
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    assert smoothness_loss(a, b).item() == pytest.approx(-(0.5 ** 0.5), abs=1e-6)
    assert smoothness_loss(f, f, reduction="none").shape == (5,)
    # gradient flows through both arguments
    x = f.clone().requires_grad_(True)
    x2 = torch.randn(5, 8, generator=g).requires_grad_(True)
    smoothness_loss(x, x2).backward()
    assert x.grad.abs().sum() > 0 and x2.grad.abs().sum() > 0


def test_trades_zero_for_identical_inputs_and_positive_otherwise():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(6, 6, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)
    assert trades_kl(f @ EYE.t(), f @ EYE.t()).item() == pytest.approx(0.0, abs=1e-7)
    # with identical features TRADES reduces to A-CE on the clean features
    assert trades_loss(f, f, EYE, y, beta=6.0).item() == pytest.approx(ace_loss(f, EYE, y).item(), abs=1e-6)
    other = torch.randn(6, 6, generator=g)
    kl = trades_kl(cosine_logits(f, EYE), cosine_logits(other, EYE))
    assert kl.item() > 0
    # KL(p||q) against torch's own definition (input log q, target p, batchmean)
    ref = F.kl_div(F.log_softmax(cosine_logits(other, EYE), 1), F.softmax(cosine_logits(f, EYE), 1),
                   reduction="batchmean")
    assert kl.item() == pytest.approx(ref.item(), rel=1e-5)
    full = trades_loss(f, other, EYE, y, beta=6.0)
    assert full.item() == pytest.approx(ace_loss(f, EYE, y).item() + 6.0 * kl.item(), rel=1e-5)


def test_table4_objectives_values():
    y = torch.tensor([1])
    on = EYE[[1]] * 4.0
    off = (EYE[[1]] + EYE[[3]])  # 45 degrees from anchor 1
    assert cos_objective(on, EYE, y).item() == pytest.approx(-1.0, abs=1e-6)
    assert cos_objective(off, EYE, y).item() == pytest.approx(-(0.5 ** 0.5), abs=1e-6)
    assert angle_objective(off, EYE, y).item() == pytest.approx(math.pi / 4, abs=1e-5)
    assert angle_objective(on, EYE, y).item() == pytest.approx(0.0, abs=2e-3)  # clamped near 0
    assert angle_objective(-on, EYE, y).item() == pytest.approx(math.pi, abs=2e-3)
    # Euclidean: raw features (MMC) vs normalised (= 2 - 2 cos)
    assert euclid_objective(on, EYE, y).item() == pytest.approx(9.0, abs=1e-5)  # ||4e - e||^2
    assert euclid_objective(on, EYE, y, normalize=True).item() == pytest.approx(0.0, abs=1e-6)
    assert euclid_objective(off, EYE, y, normalize=True).item() == pytest.approx(2 - 2 * 0.5 ** 0.5, abs=1e-6)
    for name, fn in LAAT_OBJECTIVES.items():
        v = fn(torch.cat([on / 4, off / 2 ** 0.5]), EYE, torch.tensor([1, 1]), reduction="none")
        assert v.shape == (2,), name
        assert v[0] < v[1], name  # the feature on the true anchor has the lower loss


def test_angle_gradient_points_towards_the_anchor():
    y = torch.tensor([0])
    z = torch.tensor([[0.6, 0.8, 0, 0, 0, 0]], requires_grad=True)
    angle_objective(z, EYE, y).backward()
    step = -z.grad[0]  # descent direction
    # moving along it raises the cosine with anchor 0 and keeps the norm (it is tangent)
    assert step[0] > 0 and step[1] < 0
    assert abs(float(step @ z.detach()[0])) < 1e-6
    # d theta / dz = -(a - cos z_hat) / (|z| sin theta): analytic value
    zh = z.detach()[0]
    cos, sin = 0.6, 0.8
    expected = -(EYE[0] - cos * zh) / sin
    assert torch.allclose(z.grad[0], expected, atol=1e-5)
    # the cos objective's gradient has the same direction, scaled by sin(theta)
    z2 = z.detach().clone().requires_grad_(True)
    cos_objective(z2, EYE, y).backward()
    assert torch.allclose(z2.grad[0], expected * sin, atol=1e-5)


def test_objectives_follow_device_and_half_inputs():
    f = torch.randn(3, 6, dtype=torch.float16)
    y = torch.tensor([0, 1, 2])
    for fn in LAAT_OBJECTIVES.values():
        out = fn(f, EYE.half(), y)
        assert out.dtype == torch.float32 and torch.isfinite(out)
