"""Expanded attribute anchors (notebook 32): data option ``attributes``, LAAT ``encoder: attributes``,
the study module zslab.experiments.xp_attribute_anchors."""
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zslab import ZSLabError
from zslab.anchors import AnchorExpansion, mean_pairwise_cosine
from zslab.data import expand_class_attributes, load_dataset
from zslab.experiments import cross_paper as cp
from zslab.experiments import xp_attribute_anchors as xa

TINY = {"train_per_class": 2, "val_seen_per_class": 1, "test_seen_per_class": 1, "unseen_per_class": 2}


@pytest.fixture(scope="module")
def raw():
    return load_dataset("shapes", **TINY)


@pytest.fixture(scope="module")
def expanded():
    return load_dataset("shapes", attributes="expanded", **TINY)


def test_expanded_attributes_are_the_training_fit_applied_to_every_class(raw, expanded):
    A, E = raw.class_attributes.double(), expanded.class_attributes.double()
    tr, un = raw.train_classes, raw.unseen_classes
    ref = AnchorExpansion().fit(A[tr]).transform(A)
    assert torch.allclose(E, torch.as_tensor(ref), atol=1e-6)
    # the high-cosine problem of the training classes is gone, and the unseen classes went through the same map
    assert mean_pairwise_cosine(A[tr]) > 0.4 and abs(mean_pairwise_cosine(E[tr])) < 0.05
    assert mean_pairwise_cosine(E[un]) < mean_pairwise_cosine(A[un]) - 0.2
    assert not torch.allclose(E[un], F.normalize(A[un], dim=1), atol=1e-3)
    assert torch.allclose(E.norm(dim=1), torch.ones(len(E), dtype=E.dtype), atol=1e-6) and (E < 0).any()
    # fitted on training classes only: changing the unseen rows changes nothing else
    A2 = raw.class_attributes.clone()
    A2[un] = A2[un].flip(1) + 0.3
    E2 = expand_class_attributes(dataclasses.replace(raw, class_attributes=A2)).class_attributes
    keep = torch.ones(len(A), dtype=torch.bool)
    keep[un] = False
    assert torch.equal(E2[keep], expanded.class_attributes[keep])
    assert not torch.allclose(E2[un], expanded.class_attributes[un])
    # per-image attributes and images are left alone
    assert expanded.splits["train"].extras["attributes"] is not None
    assert torch.equal(expanded.splits["train"].extras["attributes"], raw.splits["train"].extras["attributes"])
    assert torch.equal(expanded.splits["test_unseen"].images, raw.splits["test_unseen"].images)
    assert expanded.meta["attributes"] == "expanded" and 0 < expanded.meta["expansion"]["theta0_deg"] < 90


def test_raw_option_is_bit_identical_and_unknown_values_fail(raw):
    same = load_dataset("shapes", attributes="raw", **TINY)
    assert torch.equal(same.class_attributes, raw.class_attributes)
    for s in raw.splits:
        assert torch.equal(same.splits[s].images, raw.splits[s].images)
        assert torch.equal(same.splits[s].labels, raw.splits[s].labels)
    # study configs of the raw rows carry no attributes key: their cache keys (and cached runs) are unchanged
    assert "attributes" not in xa.row_config("apn-raw", "smoke")["data"]
    assert xa.row_config("apn-raw", "smoke") == cp.attribute_config("apn", "smoke")
    assert xa.row_config("laat-text", "smoke") == cp.laat_config("smoke")
    with pytest.raises(ZSLabError, match="attributes='bogus'"):
        load_dataset("shapes", attributes="bogus", **TINY)
    text = dataclasses.replace(raw, class_attributes=None, attribute_names=[])
    with pytest.raises(ZSLabError, match="no class attribute matrix"):
        expand_class_attributes(text)


def _laat_config(**over):
    from zslab.train import make_config

    return make_config("laat", "smoke", dataset="shapes", overrides={"data": dict(TINY), **over})


def test_laat_attribute_anchors_and_the_double_expansion_error(raw, expanded):
    from zslab.methods.laat import LAATStrategy, load_class_anchors

    names = list(raw.class_names)
    cfg = _laat_config(encoder="attributes", expand=False)
    a = load_class_anchors(cfg, names, raw.class_attributes)
    assert torch.allclose(a, F.normalize(raw.class_attributes.float(), dim=1))

    def anchors(config, data):
        st = LAATStrategy()
        st.build_model(SimpleNamespace(config=config, data=data))
        return st.raw_anchors, st.anchors

    r, plain = anchors(cfg, raw)
    assert torch.equal(r, plain) and torch.allclose(plain, a)
    _, exp = anchors(_laat_config(encoder="attributes", expand=True), raw)
    assert torch.allclose(exp, expanded.class_attributes.float(), atol=1e-5)
    # data.attributes=expanded without the strategy's expansion gives the same anchors
    _, same = anchors(_laat_config(encoder="attributes", expand=False, data={**TINY, "attributes": "expanded"}),
                      expanded)
    assert torch.allclose(same, exp, atol=1e-5)
    with pytest.raises(ZSLabError, match="twice"):
        _laat_config(encoder="attributes", expand=True, data={**TINY, "attributes": "expanded"})
    bad = dict(cfg, expand=True, data={**TINY, "attributes": "expanded"})
    with pytest.raises(ZSLabError, match="twice"):
        load_class_anchors(bad, names, expanded.class_attributes)
    with pytest.raises(ZSLabError, match="class attribute matrix"):
        load_class_anchors(cfg, names, None)
    with pytest.raises(ZSLabError, match="attributes"):
        _laat_config(encoder="attribs")


def test_row_configs_and_rows_of():
    apn = xa.row_config("apn-expanded", "full", 2)
    assert apn["data"]["attributes"] == "expanded" and apn["seed"] == 2 and apn["method"] == "apn"
    assert xa.row_config("has-expanded", "smoke")["method"] == "has"
    lr, le = xa.row_config("laat-attr-raw", "smoke"), xa.row_config("laat-attr-expanded", "smoke")
    assert lr["encoder"] == le["encoder"] == "attributes" and (lr["expand"], le["expand"]) == (False, True)
    assert lr["data"] == cp.attribute_config("apn", "smoke")["data"]
    runs = xa.study_runs("full", seeds=(0, 1))
    assert len(runs) == 2 * len(xa.PRESET_ROWS["full"]) and {r["family"] for r in runs} == {"apn", "laat"}
    with pytest.raises(ZSLabError, match="unknown row"):
        xa.rows_of("smoke", ["apn-huge"])


def test_cosine_stats_and_xlsa17_reader(tmp_path):
    import scipy.io

    rng = np.random.default_rng(0)
    A = rng.random((12, 7)) + 0.2
    tr, va, un = list(range(8)), [8, 9], [10, 11]
    s = xa.cosine_stats(A, tr, un, va)
    exp = AnchorExpansion().fit(A[tr])
    E = exp.transform(A)
    assert s["before"]["train"] == pytest.approx(mean_pairwise_cosine(A[tr]))
    assert s["after"]["unseen"] == pytest.approx(mean_pairwise_cosine(E[un]))
    assert s["theta0_deg"] == pytest.approx(np.degrees(exp.theta0_)) and s["n_train"] == 8
    assert len(s["pairs_before"]) == 12 * 11 // 2
    assert np.mean(s["pairs_after"]) == pytest.approx(s["after"]["all"])
    # an xlsa17 split folder written in the real format
    names = [f"c{i}" for i in range(12)]
    d = tmp_path / "AWA2"
    d.mkdir()
    scipy.io.savemat(d / "att_splits.mat", {"att": A.T, "allclasses_names": np.array(names, dtype=object)[:, None]})
    for f, idx in (("trainclasses1.txt", tr), ("valclasses1.txt", va), ("testclasses.txt", un)):
        (d / f).write_text("\n".join(names[i] for i in idx) + "\n")
    stats, notes = xa.real_cosine_stats(tmp_path, names=("AWA2", "CUB"))
    assert list(stats) == ["AWA2"] and "CUB" in notes[0] and "not found" in notes[0]
    assert stats["AWA2"]["after"]["train"] == pytest.approx(s["after"]["train"])
    (d / "valclasses1.txt").unlink()
    with pytest.raises(ZSLabError, match="valclasses1.txt"):
        xa.xlsa17_cosine_stats("AWA2", d)


def test_conclusions_follow_the_numbers():
    def m(mean, std, n=3):
        return {"mean": mean, "std": std, "n": n}

    summary = {"apn-raw": {"zsl_t1": m(0.50, 0.01), "clean": m(0.40, 0.01), "worst": m(0.02, 0.01)},
               "apn-expanded": {"zsl_t1": m(0.60, 0.01), "clean": m(0.41, 0.02), "worst": m(0.02, 0.01)}}
    lines = xa.conclusions(summary)
    assert len(lines) == 1 and "ZSL T1 (HAS protocol) 50.0% → 60.0% (+10.0 points; beyond 2 std" in lines[0]
    assert "clean unseen accuracy 40.0% → 41.0% (+1.0 points; within 2 std" in lines[0]
    one = {k: {mk: m(v["mean"], 0.0, 1) for mk, v in e.items()} for k, e in summary.items()}
    assert "one seed" in xa.conclusions(one)[0] and "Only one seed" in xa.conclusions(one)[-1]


def test_one_row_end_to_end(tmp_path, monkeypatch):
    """apn-expanded on tiny data: the engine loads the expanded dataset from the config itself,
    the robustness protocol runs and its result is cached in the run directory."""
    from zslab.train.engine import load_run

    over = {"epochs": 1, **{f"data.{k}": v for k, v in TINY.items()}}
    runs = [{"name": "apn-expanded", "config": xa.row_config("apn-expanded", "smoke", 0, over), **xa.ROWS["apn-expanded"]}]
    rows = xa.train_rows(runs, tmp_path, data=None)
    assert len(rows) == 1 and not rows[0]["cached"] and 0 <= rows[0]["zsl_t1"] <= 1
    _, data, _, _ = load_run(rows[0]["run_dir"])
    ref = load_dataset("shapes", attributes="expanded", **TINY)
    assert torch.equal(data.class_attributes, ref.class_attributes)
    ev = xa.robustness(rows, "smoke")
    r = ev[0]
    assert r["n_eval"] == 10 and all(0 <= r[k] <= 1 for k in xa.ROBUST_METRICS)
    assert r["worst"] <= min(r["clean"], r["fgsm"], r["pgd20"]) + 1e-9
    cached = list((tmp_path / rows[0]["run_dir"].split("/")[-1]).glob("zsl_robustness-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["clean"] == r["clean"]
    monkeypatch.setattr(cp, "unseen_classifier", lambda *a, **k: pytest.fail("cached result not reused"))
    assert xa.robustness(rows, "smoke")[0]["pgd20"] == r["pgd20"]
    summ = xa.summarize(ev)
    assert summ["apn-expanded"]["clean"]["n"] == 1 and "zsl_t1" in summ["apn-expanded"]
    res = xa.results(summ, {}, [], "smoke", [0], ev, [])
    json.dumps(res)
    assert res["protocol"]["max_images"] == 10


