"""Cross-paper base (zslab.experiments.cross_paper) and experiment 1 (xp_robustness)."""
import json
from pathlib import Path

import pytest
import torch

from zslab import ZSLabError
from zslab.experiments import cross_paper as xp
from zslab.experiments import xp_robustness as xr


def test_presets_share_data_between_attribute_and_laat_configs():
    for preset in xp.XP_PRESETS:
        apn = xp.attribute_config("apn", preset, 1)
        laat = xp.laat_config(preset, 1)
        assert laat["method"] == "laat" and laat["dataset"] == apn["dataset"] == "shapes"
        assert laat["data"] == apn["data"] and laat["seed"] == apn["seed"] == 1
    with pytest.raises(ZSLabError, match="unknown cross-paper preset"):
        xp.xp_preset("huge")
    with pytest.raises(ZSLabError, match="'apn' or 'has'"):
        xp.attribute_config("laat")


def test_balanced_subset_takes_first_images_of_each_class():
    y = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1])
    idx = xp.balanced_subset(y, 6)
    assert idx.tolist() == [0, 2, 1, 4, 3, 6]
    assert xp.balanced_subset(y, None).tolist() == list(range(9))


@pytest.fixture(scope="module")
def tiny_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("xp")
    data = xp.load_xp_data("smoke")
    # file: anchors (the class attribute vectors) keep the test off the MiniLM encoder's load time
    from conftest import write_anchor_file

    laat = {"epochs": 1, "lr_milestones": [1], "encoder": write_anchor_file(data, out), "eval_episodes": 4,
            "eval_episodes_attacked": 1}
    runs = [{"name": "apn", "config": xp.attribute_config("apn", "smoke", 0, {"epochs": 1})},
            {"name": "laat", "config": xp.laat_config("smoke", 0, laat)}]
    return xp.run_rows(runs, out, data=data, progress=False), data


def test_zsl_robustness_for_attribute_and_anchor_models(tiny_rows):
    rows, data = tiny_rows
    n_unseen = len(data.unseen_classes)
    for r in rows:
        model, x, y, info = xp.unseen_classifier(r["run_dir"], data=data)
        assert info["n_classes"] == n_unseen and int(y.min()) >= 0 and int(y.max()) < n_unseen
        with torch.no_grad():
            logits = model(x[:8].float() if x.dtype != torch.uint8 else x[:8].float() / 255)
        logits = logits["logits"] if isinstance(logits, dict) else logits
        assert logits.shape == (8, n_unseen)
        zero = xp.zsl_robustness(r["run_dir"], attacks=["pgd20"], eps=0.0, max_images=20, data=data)
        assert zero["robust"]["pgd20"] == pytest.approx(zero["clean"])  # ε = 0: the attack cannot change anything
        big = xp.zsl_robustness(r["run_dir"], attacks=["fgsm", "pgd20"], eps=64 / 255, max_images=20, data=data)
        assert big["n"] == 20 and big["worst"] <= min(big["robust"].values()) + 1e-9
        assert big["robust"]["pgd20"] <= zero["clean"]


def test_zsl_robustness_is_cached_per_protocol(tiny_rows, monkeypatch):
    rows, data = tiny_rows
    row = rows[0]
    monkeypatch.setitem(xp.XP_PRESETS["smoke"], "attacks", ("fgsm",))
    monkeypatch.setitem(xp.XP_PRESETS["smoke"], "max_images", 10)
    before = set(Path(row["run_dir"]).glob("zsl_robustness-*.json"))
    first = xr.evaluate_row(row, "smoke", data=data)
    assert set(first["robust"]) == {"fgsm"} and set(first["eps_curve"]) == {"1/255", "2/255", "4/255", "8/255"}
    new = set(Path(row["run_dir"]).glob("zsl_robustness-*.json")) - before
    assert len(new) == 5  # the main protocol and one per radius of the curve
    assert all(json.loads(f.read_text())["n"] == 10 for f in new)
    calls = []
    monkeypatch.setattr(xp, "unseen_classifier", lambda *a, **k: calls.append(1))
    assert xr.evaluate_row(row, "smoke", data=data) == first and not calls  # read back, not recomputed
    with pytest.raises(TypeError):  # another protocol (attacks) is evaluated anew (the stub returns None)
        xp.zsl_robustness(row["run_dir"], attacks=["pgd20"], eps=3 / 255, max_images=10, data=data)
    assert calls
    with pytest.raises(ZSLabError, match="no best.pt"):
        xp.zsl_robustness(Path(row["run_dir"]).parent, preset="smoke")


def _row(name, seed, clean, pgd, worst=None):
    return {"name": name, "seed": seed, "zsl_t1": clean, "gzsl_h": clean / 2,
            "robustness": {"clean": clean, "robust": {"fgsm": pgd + 0.05, "pgd20": pgd}, "worst": pgd if worst is None else worst,
                           "eps_curve": {"8/255": pgd}, "n": 100, "n_classes": 10}}


def test_summarize_and_conclusions_follow_the_numbers():
    rows = [_row("apn", 0, 0.80, 0.10), _row("apn", 1, 0.82, 0.12),
            _row("has", 0, 0.84, 0.30), _row("has", 1, 0.86, 0.32),
            {**_row("laat", 0, 0.60, 0.40), "zs_clean": 0.7}, {**_row("laat", 1, 0.62, 0.42), "zs_clean": 0.72}]
    s = xr.summarize(rows)
    assert s["apn"]["pgd20"]["mean"] == pytest.approx(0.11) and s["apn"]["pgd20"]["n"] == 2
    assert s["has"]["clean"]["std"] == pytest.approx(0.01414, abs=1e-4)
    assert "zs_clean" in s["laat"] and "zs_clean" not in s["apn"]
    text = " ".join(xr.conclusions(s))
    assert "HAS more robust" in text and "+20.0 pp" in text
    assert "more robust attribute model (HAS)" in text
    same = xr.summarize([_row("apn", 0, 0.8, 0.10), _row("apn", 1, 0.8, 0.14),
                         _row("has", 0, 0.8, 0.11), _row("has", 1, 0.8, 0.13)])
    assert "within the seed spread" in " ".join(xr.conclusions(same))
    one = xr.summarize([_row("apn", 0, 0.8, 0.1), _row("has", 0, 0.8, 0.2)])
    assert "one seed only" in " ".join(xr.conclusions(one))


def test_notebook_setup(tmp_path):
    before = torch.get_num_threads()
    try:
        out, seeds, data = xp.notebook_setup("smoke", None, tmp_path / "cache", tmp_path / "out" / "nb", threads=1)
        assert out.is_dir() and out == tmp_path / "out" / "nb" and torch.get_num_threads() == 1
        assert seeds == list(xp.seeds_of("smoke")) and isinstance(seeds, list)
        assert any((tmp_path / "cache" / "data").iterdir())  # the generated dataset is cached for the next notebook
        assert len(data.unseen_classes) > 0
        assert xp.notebook_setup("smoke", [4, 5], tmp_path / "cache", tmp_path / "out2", threads=0)[1] == [4, 5]
    finally:
        torch.set_num_threads(before)
