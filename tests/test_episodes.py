"""Episodic N-way zero-/few-shot and GZSL N-way evaluation (zslab.eval.episodes; LAAT §4)."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from zslab import ZSLabError
from zslab.attacks import AutoAttack
from zslab.data.base import TensorImageDataset, ZSLData
from zslab.eval.episodes import episode_anchors, gzsl_nway, mean_ci95, zero_shot_episodes

N_CLASSES, DIM = 10, 16


def _anchors(seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(N_CLASSES, DIM, generator=g), dim=1)


class LookupModel(nn.Module):
    """An 'oracle' embedding: the image's constant grey level encodes its class c and the
    model returns a scaled copy of anchor c (so its features equal the true anchors)."""

    def __init__(self, anchors):
        super().__init__()
        self.register_buffer("anchors", anchors.clone())
        self.scale = nn.Parameter(torch.tensor(3.0))

    def forward(self, x):
        c = (x[:, 0, 0, 0] * N_CLASSES).floor().long().clamp(0, N_CLASSES - 1)
        return self.anchors[c] * self.scale


def _oracle_dataset(per_class=30):
    labels = torch.arange(N_CLASSES).repeat_interleave(per_class)
    x = ((labels.float() + 0.5) / N_CLASSES)[:, None, None, None].expand(-1, 3, 4, 4).contiguous()
    return TensorImageDataset(x, labels)


def _template_problem(per_class=30, noise=0.04, seed=0):
    """Class c = a fixed random template + noise; a linear embedding fitted by least squares
    maps each template onto its class anchor (a tiny 'trained' model)."""
    g = torch.Generator().manual_seed(seed)
    templates = 0.2 + 0.6 * torch.rand(N_CLASSES, 3, 8, 8, generator=g)
    labels = torch.arange(N_CLASSES).repeat_interleave(per_class)
    x = (templates[labels] + noise * torch.randn(labels.shape[0], 3, 8, 8, generator=g)).clamp(0, 1)
    A = _anchors(seed)
    W = torch.linalg.pinv(templates.reshape(N_CLASSES, -1)) @ A  # (192, D)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, DIM, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(W.t())
    return model.eval(), TensorImageDataset(x, labels), A


def test_oracle_features_give_100_percent_zero_and_few_shot():
    A = _anchors()
    model, ds = LookupModel(A), _oracle_dataset()
    r = zero_shot_episodes(model, ds, range(N_CLASSES), A, n_way=5, n_query=10, episodes=30, progress=False)
    assert r["mean"] == 1.0 and r["ci95"] == 0.0 and r["episodes"] == 30 and len(r["per_episode"]) == 30
    assert r["robust"] == {} and r["n_images"] == N_CLASSES * 30
    for mode in ("prototype", "blend"):
        r = zero_shot_episodes(model, ds, range(N_CLASSES), A, n_way=5, n_query=5, n_shot=3, episodes=10,
                               anchor_mode=mode, progress=False)
        assert r["mean"] == 1.0, mode
    # the same oracle against *shuffled* anchors is wrong: accuracy comes from the anchors
    perm = torch.roll(torch.arange(N_CLASSES), 1)
    r = zero_shot_episodes(model, ds, range(N_CLASSES), A[perm], n_way=5, n_query=10, episodes=30,
                           progress=False)
    assert r["mean"] < 0.5


def test_random_features_give_chance():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(N_CLASSES).repeat_interleave(40)
    ds = TensorImageDataset(torch.rand(labels.shape[0], 3, 4, 4, generator=g), labels)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, DIM, bias=False))
    r = zero_shot_episodes(model, ds, None, _anchors(), n_way=5, n_query=20, episodes=400, seed=3, progress=False)
    assert abs(r["mean"] - 0.2) < 0.05, r["mean"]
    r10 = zero_shot_episodes(model, ds, None, _anchors(), n_way=10, n_query=20, episodes=200, seed=3,
                             progress=False)
    assert abs(r10["mean"] - 0.1) < 0.04, r10["mean"]


def test_interval_is_student_t_and_shrinks_with_episodes():
    from scipy import stats

    model, ds, A = _template_problem(noise=1.0)
    small = zero_shot_episodes(model, ds, None, A, n_query=4, episodes=20, progress=False)
    big = zero_shot_episodes(model, ds, None, A, n_query=4, episodes=400, progress=False)
    assert 0 < big["ci95"] < small["ci95"]
    v = np.asarray(small["per_episode"])
    assert 0.0 < v.mean() < 1.0
    expect = stats.t.ppf(0.975, 19) * v.std(ddof=1) / math.sqrt(20)
    assert small["ci95"] == pytest.approx(expect) and small["mean"] == pytest.approx(v.mean())
    m, h = mean_ci95([0.5])
    assert m == 0.5 and math.isnan(h)


def test_deterministic_under_a_seed_and_independent_of_batch_size():
    model, ds, A = _template_problem(noise=1.0)
    a = zero_shot_episodes(model, ds, None, A, n_query=5, episodes=50, seed=7, batch_size=64, progress=False,
                           return_indices=True)
    b = zero_shot_episodes(model, ds, None, A, n_query=5, episodes=50, seed=7, batch_size=17, progress=False,
                           return_indices=True)
    c = zero_shot_episodes(model, ds, None, A, n_query=5, episodes=50, seed=8, progress=False,
                           return_indices=True)
    assert a["per_episode"] == b["per_episode"] and a["indices"] == b["indices"]
    assert a["indices"] != c["indices"]


def test_shots_never_overlap_queries_and_respect_classes():
    model, ds, A = _template_problem()
    r = zero_shot_episodes(model, ds, [0, 2, 4, 6, 8, 9], A, n_way=5, n_query=6, n_shot=4, episodes=40,
                           anchor_mode="prototype", return_indices=True, progress=False)
    labels = ds.labels
    for ep in r["indices"]:
        assert len(set(ep["classes"])) == 5 and set(ep["classes"]) <= {0, 2, 4, 6, 8, 9}
        for c, s, q in zip(ep["classes"], ep["support"], ep["query"]):
            assert len(s) == 4 and len(q) == 6 and not set(s) & set(q)
            assert all(int(labels[i]) == c for i in s + q)
    with pytest.raises(ZSLabError, match="n_shot"):
        zero_shot_episodes(model, ds, None, A, anchor_mode="blend", episodes=2, progress=False)
    with pytest.raises(ZSLabError, match="needs n_shot \\+ n_query"):
        zero_shot_episodes(model, ds, None, A, n_query=40, episodes=2, progress=False)


def test_episode_anchor_formulas():
    a = F.normalize(torch.randn(3, 4), dim=1)
    s = F.normalize(torch.randn(3, 2, 4), dim=2)
    assert torch.equal(episode_anchors(a, None, "text"), a)
    assert torch.allclose(episode_anchors(a, s, "prototype"), F.normalize(s[:, 0] + s[:, 1], dim=1))
    assert torch.allclose(episode_anchors(a, s, "blend", beta=2.0), F.normalize(2 * a + s.sum(1), dim=1))
    assert torch.allclose(episode_anchors(a, s[:, :1], "prototype"), s[:, 0])


def test_attacked_accuracy_not_above_clean_and_eps_zero_matches():
    model, ds, A = _template_problem(noise=0.5)
    r = zero_shot_episodes(model, ds, None, A, n_query=5, episodes=6, attack=["fgsm", "pgd10"], eps=16 / 255,
                           progress=False)
    assert r["mean"] > 0.9 and r["warnings"] == []
    for name in ("fgsm", "pgd10", "worst"):
        rob = r["robust"][name]
        assert rob["episodes"] == 6 and rob["clean_mean"] == pytest.approx(r["mean"])
        assert all(x <= y + 1e-12 for x, y in zip(rob["per_episode"], r["per_episode"]))
    assert r["robust"]["pgd10"]["mean"] < r["mean"]  # the undefended linear model is attackable
    assert r["robust"]["worst"]["mean"] <= min(r["robust"]["fgsm"]["mean"], r["robust"]["pgd10"]["mean"])
    z = zero_shot_episodes(model, ds, None, A, n_query=5, episodes=3, attack="pgd10", eps=0.0, progress=False)
    assert z["robust"]["pgd10"]["per_episode"] == z["per_episode"][:3]
    # max_episodes_attacked: clean over all episodes, attacks on the first ones only
    m = zero_shot_episodes(model, ds, None, A, n_query=5, episodes=6, attack="fgsm", max_episodes_attacked=2,
                           progress=False)
    assert m["episodes"] == 6 and m["robust"]["fgsm"]["episodes"] == 2
    assert m["robust"]["fgsm"]["clean_mean"] == pytest.approx(np.mean(m["per_episode"][:2]))


def test_five_way_autoattack_uses_four_targets():
    model, ds, A = _template_problem(noise=0.1)
    made = []

    def factory(clf):
        atk = AutoAttack(clf, eps=1 / 255, steps=4, n_queries=8, seed=0)
        made.append(atk)
        return atk

    r = zero_shot_episodes(model, ds, None, A, n_way=5, n_query=3, episodes=2, attack={"autoattack": factory},
                           progress=False)
    assert len(made) == 2
    assert r["robust"]["autoattack"]["mean"] <= r["mean"]
    apgdt, fabt = made[0].attacks[1], made[0].attacks[2]
    assert apgdt.last_n_targets == 4 and fabt.last_n_targets == 4
    assert made[0].model.anchors.shape == (5, DIM)  # the attack saw the 5-way episode classifier


def test_gzsl_nway_over_all_classes():
    A = _anchors()
    model = LookupModel(A)
    ds = _oracle_dataset(per_class=12)
    data = ZSLData("oracle", [f"c{i}" for i in range(N_CLASSES)], [], None, torch.arange(0, 6), torch.tensor([6, 7]),
                   torch.tensor([8, 9]), {"train": ds, "val_seen": ds, "test_seen": ds, "val_unseen": ds,
                                          "test_unseen": ds})
    assert not data.has_attributes and data.num_attributes == 0
    g = gzsl_nway(model, data, A, per_class=5, splits=("test_seen",), progress=False)
    assert g["n"] == 50 and g["n_classes"] == N_CLASSES and g["clean"] == 1.0
    assert g["seen"] == 1.0 and g["unseen"] == 1.0 and g["H"] == 1.0

    model2, ds2, A2 = _template_problem(noise=0.1)
    g2 = gzsl_nway(model2, ds2, A2, per_class=4, attack="pgd10", progress=False)
    assert g2["n"] == 40 and g2["clean"] > 0.9
    assert g2["robust"]["pgd10"] <= g2["clean"] and g2["worst"] <= g2["robust"]["pgd10"]
    # N-way means all N anchors compete: a 10-way problem is harder than its 5-way episodes
    ep = zero_shot_episodes(model2, ds2, None, A2, n_query=4, episodes=20, progress=False)
    assert ep["mean"] >= g2["clean"] - 1e-9
    with pytest.raises(ZSLabError, match="rows"):
        gzsl_nway(model, data, A[:5], progress=False)


def test_bad_inputs():
    model, ds, A = _template_problem()
    bad = A.clone()
    bad[3] = float("nan")
    with pytest.raises(ZSLabError, match="NaN"):
        zero_shot_episodes(model, ds, None, bad, episodes=2, progress=False)
    with pytest.raises(ZSLabError, match="dimension"):
        zero_shot_episodes(model, ds, None, torch.randn(N_CLASSES, DIM + 1), episodes=2, progress=False)
    with pytest.raises(ZSLabError, match="at least 5 classes"):
        zero_shot_episodes(model, ds, [0, 1, 2], A, episodes=2, progress=False)
    with pytest.raises(ZSLabError, match="factory"):
        from zslab.attacks import PGD
        zero_shot_episodes(model, ds, None, A, episodes=2, attack=PGD(model), progress=False)
    with pytest.raises(ZSLabError, match="unknown attack"):
        zero_shot_episodes(model, ds, None, A, episodes=2, attack="pgdx", progress=False)
