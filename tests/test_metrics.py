"""ZSL/GZSL metrics against hand-computed examples (HAS Eq. 8-9)."""
import pytest
import torch

from zslab.eval.zsl import gzsl_us, harmonic_mean, per_class_accuracy, predict, select_mu


def test_per_class_accuracy_is_mean_over_classes_not_images():
    # class 0: 3/4 right, class 1: 0/1 right -> per-class mean 0.375 (per-image would be 0.6)
    labels = torch.tensor([0, 0, 0, 0, 1])
    pred = torch.tensor([0, 0, 0, 1, 0])
    assert per_class_accuracy(pred, labels) == pytest.approx(0.375)


def test_per_class_accuracy_errors():
    with pytest.raises(ValueError, match="differ in length"):
        per_class_accuracy(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="no examples"):
        per_class_accuracy(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long))


def test_harmonic_mean():
    assert harmonic_mean(0.5, 0.5) == pytest.approx(0.5)
    assert harmonic_mean(0.2, 0.8) == pytest.approx(0.32)
    assert harmonic_mean(0.0, 0.0) == 0.0


def test_predict_restricts_to_candidates_and_applies_calibration():
    scores = torch.tensor([[5.0, 4.0, 3.0, 1.0]])  # classes 0,1 seen; 2,3 unseen
    assert predict(scores, torch.tensor([2, 3])).item() == 2  # ZSL: only unseen candidates
    assert predict(scores, torch.tensor([0, 1, 2, 3])).item() == 0
    # Eq. 9: seen scores minus mu -> 5-2.5=2.5 < 3 -> unseen class 2 wins
    assert predict(scores, torch.tensor([0, 1, 2, 3]), seen=torch.tensor([0, 1]), mu=2.5).item() == 2
    assert predict(scores, torch.tensor([0, 1, 2, 3]), seen=torch.tensor([0, 1]), mu=1.5).item() == 0


def test_gzsl_hand_example():
    seen, unseen = torch.tensor([0, 1]), torch.tensor([2, 3])
    # two seen-class images, two unseen-class images
    ss = torch.tensor([[3.0, 0.0, 2.0, 0.0],   # label 0: seen wins by 1
                       [0.0, 1.0, 0.0, 3.0]])  # label 1: unseen 3 wins even at mu=0 -> wrong
    ys = torch.tensor([0, 1])
    su = torch.tensor([[2.5, 0.0, 2.0, 0.0],   # label 2: needs mu > 0.5
                       [0.0, 0.0, 0.0, 1.0]])  # label 3: right at mu=0
    yu = torch.tensor([2, 3])
    u, s, h = gzsl_us(ss, ys, su, yu, seen, unseen, mu=0.0)
    assert (u, s) == (0.5, 0.5) and h == pytest.approx(0.5)
    u, s, h = gzsl_us(ss, ys, su, yu, seen, unseen, mu=0.75)
    assert (u, s) == (1.0, 0.5) and h == pytest.approx(2 / 3)
    u, s, h = gzsl_us(ss, ys, su, yu, seen, unseen, mu=1.5)  # now image of class 0 flips to unseen
    assert (u, s) == (1.0, 0.0) and h == 0.0
    mu, best_h = select_mu(ss, ys, su, yu, seen, unseen)
    assert 0.5 < mu < 1.0
    assert best_h == pytest.approx(2 / 3)


def test_calibrated_stacking_trades_seen_for_unseen():
    g = torch.Generator().manual_seed(0)
    seen, unseen = torch.arange(5), torch.arange(5, 10)
    ys = torch.randint(0, 5, (200,), generator=g)
    yu = torch.randint(5, 10, (200,), generator=g)
    ss = torch.randn(200, 10, generator=g)
    ss[torch.arange(200), ys] += 2
    su = torch.randn(200, 10, generator=g)
    su[torch.arange(200), yu] += 2
    su[:, :5] += 1.5  # seen bias
    ss[:, :5] += 1.5
    us = [gzsl_us(ss, ys, su, yu, seen, unseen, mu) for mu in (0.0, 1.0, 2.0, 4.0)]
    u_vals = [x[0] for x in us]
    s_vals = [x[1] for x in us]
    assert u_vals == sorted(u_vals) and s_vals == sorted(s_vals, reverse=True)
    mu, h = select_mu(ss, ys, su, yu, seen, unseen)
    assert h >= max(x[2] for x in us) - 1e-9
    assert 0.5 < mu < 3.0
