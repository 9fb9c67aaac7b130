"""Results cards (zslab.experiments.cards): provenance, summaries and seed-paired differences
re-derived from the rows, and every card committed under results/."""
import copy
import json
import math
import re
from pathlib import Path

import pytest

from zslab import ZSLabError
from zslab.experiments import cards
from zslab.experiments import has_study as hs

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def _results():
    rows = [{"name": n, "seed": s, "run_dir": f"/tmp/{n}{s}", "zsl_t1": v, "gzsl_u": v / 2, "gzsl_s": v / 3,
             "gzsl_h": v / 4} for n, vals in (("baseline", (0.8, 0.7, 0.75)), ("has", (0.9, 0.85, 0.8)))
            for s, v in enumerate(vals)]
    return {"notebook": "11_has_vs_apn", "preset": "full", "rows": rows, "summary": hs.summarize(rows),
            "paired_deltas": hs.paired_deltas(rows, "baseline")}


def _card(results):
    return {"card": "t", "command": "c", "provenance": cards.provenance(), "results": results}


def test_card_carries_provenance_and_checks_summary_and_deltas():
    card = cards.make_card(_results(), "t", "papermill x.ipynb y.ipynb -p preset full", threads=1)
    assert set(cards.CARD_KEYS) <= set(card)
    prov = card["provenance"]
    assert prov["threads"] == 1 and prov["torch"] and prov["date"].endswith("Z")
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
    # summary: 2 rows x 4 metrics x (mean, std); deltas: 1 row x 4 metrics x 2
    assert cards.check_card(card) == {"checked": 24, "unchecked": []}


_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
"""


def test_cpu_id_tells_cpu_generations_apart_where_the_model_name_does_not():
    assert cards._cpu_id(_CPUINFO) == "AuthenticAMD family 25 model 17 stepping 1 microcode 0x1000065"
    other = _CPUINFO.replace("model\t\t: 17", "model\t\t: 1")
    assert cards._cpu_id(other) != cards._cpu_id(_CPUINFO)  # same "AMD EPYC" model name
    assert cards._cpu_id("") is None
    prov = cards.provenance()
    assert prov["cpu_capability"] is None or prov["cpu_capability"] in {
        "DEFAULT", "VSX", "ZVECTOR", "AVX2", "AVX512", "SVE256", "NEON"} or prov["cpu_capability"].startswith("SVE")
    old = {k: v for k, v in prov.items() if k not in ("cpu_id", "cpu_capability")}  # cards made before
    assert cards.check_card({"card": "t", "command": "c", "provenance": old, "results": _results()})["checked"] == 24


@pytest.mark.parametrize("tamper, msg", [
    (lambda r: r["summary"]["has"]["zsl_t1"].__setitem__("mean", 0.86), "mean"),
    (lambda r: r["summary"]["has"]["gzsl_h"].__setitem__("std", 0.0), "std"),
    (lambda r: r["summary"]["has"]["gzsl_h"].__setitem__("mean", "0.2125"), "not a number"),
    (lambda r: r["rows"].pop(), "n=3"),
    (lambda r: r["rows"][1].__setitem__("seed", 0), "twice"),
    (lambda r: r["rows"][1].__setitem__("seed", "1"), "not an integer"),
    (lambda r: r["rows"][2].pop("seed"), "'name' and a 'seed'"),
    (lambda r: r["rows"].__setitem__(slice(3, 6), []), "has the rows"),
    (lambda r: r["summary"].pop("has"), "has the rows"),
    (lambda r: r.__setitem__("rows", []), "holds no rows"),
    (lambda r: r["paired_deltas"]["has"]["zsl_t1"].__setitem__("mean", 0.0), "seed-paired"),
    (lambda r: r["paired_deltas"]["has"]["zsl_t1"].__setitem__("worse", 3), "worse"),
])
def test_a_summary_that_does_not_match_its_rows_is_refused(tamper, msg):
    res = _results()
    tamper(res)
    with pytest.raises(ZSLabError, match=msg):
        cards.make_card(res, "t", "cmd")


def test_nested_named_and_listed_blocks_are_checked():
    inner = _results()
    res = {"ablations": {"table5": {"rows": inner["rows"], "summary": inner["summary"]}},
           "table3_rows": inner["rows"], "table3": copy.deepcopy(inner["summary"]),
           "table3_deltas": hs.paired_deltas(inner["rows"], "baseline"),
           "per_dataset": [{"rows": inner["rows"], "summary": inner["summary"]}]}
    assert cards.check_card(cards.make_card(res, "t", "cmd")) == {"checked": 56, "unchecked": []}
    res["table3"]["baseline"]["zsl_t1"]["mean"] += 1e-6
    with pytest.raises(ZSLabError, match=r"results\.table3\.baseline\.zsl_t1 mean"):
        cards.check_card(_card(res))
    bad = {"per_dataset": [{"rows": inner["rows"], "summary": copy.deepcopy(inner["summary"])}]}
    bad["per_dataset"][0]["summary"]["has"]["gzsl_s"]["std"] = 1.0
    with pytest.raises(ZSLabError, match=r"per_dataset\[0\]\.summary\.has\.gzsl_s std"):
        cards.check_card(_card(bad))


def test_nan_rows_give_nan_summaries_stored_as_null():
    rows = [{"name": "x", "seed": s, "gzsl_cs_h": float("nan"), "zs_clean": 0.5 + 0.1 * s} for s in range(3)]
    res = {"robustness_rows": rows, "robustness": hs.summarize(rows, metrics=("gzsl_cs_h", "zs_clean"))}
    card = cards.make_card(res, "t", "cmd")
    assert card["results"]["robustness"]["x"]["gzsl_cs_h"]["mean"] is None  # not a bare NaN in the JSON
    json.loads(json.dumps(card, allow_nan=False))
    assert cards.check_card(json.loads(json.dumps(card)))["checked"] == 4
    res["robustness"]["x"]["gzsl_cs_h"]["mean"] = 0.1  # a number where the rows give NaN
    with pytest.raises(ZSLabError, match="mean 0.1"):
        cards.check_card(_card(res))


def test_statistics_without_rows_are_listed_unchecked():
    res = {"sweeps": {"lambda_rel": hs.summarize([{"name": "0.1", "seed": 0, "zsl_t1": 0.5, "gzsl_u": 0.1,
                                                    "gzsl_s": 0.1, "gzsl_h": 0.1}])},
           "apn": {"zsl_t1": {"mean": 0.8, "std": 0.0, "n": 1}}}
    out = cards.check_card(cards.make_card(res, "t", "cmd"))
    assert out["checked"] == 0
    assert "results.apn.zsl_t1" in out["unchecked"] and "results.sweeps.lambda_rel['0.1'].zsl_t1" in out["unchecked"]


def _fig4_results():
    row = lambda name, seed, v: {"name": name, "seed": seed, "zsl_t1": v, "gzsl_u": v, "gzsl_s": v, "gzsl_h": v}  # noqa: E731
    apn_rows = [row("baseline", 0, 0.5), row("baseline", 1, 0.6)]
    sweeps_rows = {"lambda_rel": [row("lambda_rel=0.1", 0, 0.7), row("lambda_rel=1", 0, 0.8)],
                   "step_size": [row("step_size=0.0039", 0, 0.65)]}
    return {"apn": hs.summarize(apn_rows)["baseline"], "apn_rows": apn_rows,
            "sweeps": {p: hs.summarize(r) for p, r in sweeps_rows.items()}, "sweeps_rows": sweeps_rows,
            "rows": [r for rs in sweeps_rows.values() for r in rs]}


def test_fig4_sweeps_grouped_rows_and_a_single_entry_summary_are_checked():
    out = cards.check_card(cards.make_card(_fig4_results(), "t", "cmd"))
    # apn: 4 metrics × (mean, std); sweeps: 3 entries × 4 metrics × 2
    assert out == {"checked": 8 + 24, "unchecked": []}
    res = _fig4_results()
    res["sweeps"]["lambda_rel"]["lambda_rel=1"]["gzsl_h"]["mean"] = 0.81
    with pytest.raises(ZSLabError, match=r"sweeps\.lambda_rel\['lambda_rel=1'\]\.gzsl_h mean"):
        cards.check_card(_card(res))
    res = _fig4_results()
    res["apn"]["zsl_t1"]["std"] = 0.0
    with pytest.raises(ZSLabError, match="apn.*zsl_t1 std"):
        cards.check_card(_card(res))
    res = _fig4_results()
    res["apn_rows"][1]["name"] = "other"
    with pytest.raises(ZSLabError, match="one entry"):
        cards.check_card(_card(res))
    res = _fig4_results()
    del res["sweeps"]["step_size"]
    with pytest.raises(ZSLabError, match="groups rows"):
        cards.check_card(_card(res))


@pytest.mark.parametrize("bad, msg", [
    ({"results": {}}, "non-empty"),
    ({"name": "../x"}, "plain file stem"),
    ({"command": "  "}, "command"),
])
def test_bad_card_arguments(bad, msg):
    kw = {"results": _results(), "name": "t", "command": "cmd", **bad}
    with pytest.raises(ZSLabError, match=msg):
        cards.make_card(**kw)


def test_structure_errors_name_the_missing_part():
    card = cards.make_card(_results(), "t", "cmd")
    for key in ("provenance", "results"):
        broken = {k: v for k, v in card.items() if k != key}
        with pytest.raises(ZSLabError, match="missing card keys"):
            cards.check_card(broken)
    broken = copy.deepcopy(card)
    del broken["provenance"]["git_commit"]
    with pytest.raises(ZSLabError, match="provenance"):
        cards.check_card(broken)


def test_cli_make_and_check(tmp_path, capsys):
    src = tmp_path / "results.json"
    src.write_text(json.dumps(_results()))
    assert cards.main(["make", str(src), "--name", "demo", "--command", "papermill a b", "--threads", "2",
                       "-o", str(tmp_path / "cards")]) == 0
    path = tmp_path / "cards" / "demo.json"
    card = json.loads(path.read_text())
    assert card["results"] == _results() and card["provenance"]["threads"] == 2
    capsys.readouterr()
    assert cards.main(["check", str(path)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["checked"] == 24
    card["results"]["summary"]["has"]["zsl_t1"]["mean"] = 0.5
    path.write_text(json.dumps(card))
    assert cards.main(["check", str(path)]) == 2
    assert "mean" in capsys.readouterr().err
    assert cards.main(["check", str(tmp_path / "nope.json")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(RESULTS_DIR.glob("*.json")), ids=lambda p: p.name)
def test_committed_cards_are_consistent(path):
    card = cards.load_card(path)
    assert card["card"] == path.stem
    assert card["provenance"]["git_commit"], "a committed card names the commit that made it"
    assert math.isfinite(len(json.dumps(card, allow_nan=False)))  # strict JSON


def test_one_card_per_paper_table_or_figure_named_after_it():
    """Cards are named after the paper's table or figure (the machine and the seeds are in them,
    not in their names), and results/README.md maps each to its table."""
    names = sorted(p.stem for p in RESULTS_DIR.glob("*.json"))
    assert names == ["has_fig4", "has_fig5", "has_fig6_7", "has_table1", "has_table2", "has_table3",
                     "laat_cifar10_robustness"]
    readme = (RESULTS_DIR / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert re.fullmatch(r"(has|laat)_[a-z0-9_]+", name)
        assert not re.search(r"amd|intel|epyc|xeon|avx|seed|full", name), name
        assert f"| `{name}.json` |" in readme, f"results/README.md does not list {name}"


def test_committed_table2_card_pools_one_row_per_run_with_its_machine():
    res = cards.load_card(RESULTS_DIR / "has_table2.json")["results"]
    runs = [(r["name"], r["seed"]) for r in res["rows"]]
    assert len(runs) == len(set(runs)) == 21 and {s for _, s in runs} == {0, 1, 2}
    assert all(r["host"] for r in res["rows"])
    assert all(st["n"] == 3 for e in res["summary"].values() for st in e.values() if isinstance(st, dict) and "n" in st)
    for alt in res["alternatives"]:  # other sessions' measurements of pooled runs: outside the statistics
        assert alt["host"] and {(r["name"], r["seed"]) for r in alt["rows"]} <= set(runs)


# ------------------------------------------------------------------------------ merging
def _seed_card(rows_by_seed: dict, name: str, threads=1, extra=None, cpu_id="AuthenticAMD family 25 model 17") -> dict:
    """A notebook-11-like card holding ``rows_by_seed`` = {seed: {row name: H}} (other metrics derived)."""
    rows = [{"name": n, "seed": s, "run_dir": f"runs/study/{n}-seed{s}", "train_seconds": 100.0 + s,
             "cached": False, "zsl_t1": h + 0.1, "gzsl_u": h + 0.05, "gzsl_s": h - 0.05, "gzsl_h": h}
            for s, named in rows_by_seed.items() for n, h in named.items()]
    res = {"notebook": "11_has_vs_apn", "preset": "full", "seeds": sorted(rows_by_seed), "rows": rows,
           "summary": hs.summarize(rows), "paired_deltas": hs.paired_deltas(rows, "baseline"),
           "has_minus_apn": {"gzsl_h": 0.0}, **(extra or {})}
    card = cards.make_card(res, name, f"papermill ... {name}", threads=threads)
    card["provenance"].update(cpu="AMD EPYC", cpu_id=cpu_id, cpu_capability="AVX2")
    card["results"]["has_minus_apn"]["gzsl_h"] = float(len(rows))  # a derived number that differs per card
    return card


def _three_cards():
    table1 = _seed_card({s: {"baseline": 0.60 + s / 100, "has": 0.70 + s / 50} for s in (0, 1, 2)}, "t1")
    seeds01 = _seed_card({s: {"baseline": 0.60 + s / 100, "cls": 0.65 - s / 10, "has": 0.70 + s / 50}
                          for s in (0, 1)}, "t2_s01")
    seed2 = _seed_card({2: {"baseline": 0.62, "has": 0.74, "cls": 0.50}}, "t2_s2", cpu_id="AuthenticAMD family 23 model 49")
    return table1, seeds01, seed2


def test_merge_pools_rows_one_per_row_and_seed_and_rederives_every_summary():
    table1, seeds01, seed2 = _three_cards()
    card = cards.merge_cards([seeds01, seed2, table1], "t2", "cards merge ...", note="n")
    res = card["results"]
    assert res["seeds"] == [0, 1, 2] and len(res["rows"]) == 9  # 3 seeds x 3 rows, runs held twice once
    assert [(r["name"], r["seed"]) for r in res["rows"]][:3] == [("baseline", 0), ("baseline", 1), ("baseline", 2)]
    assert list(res["summary"]) == ["baseline", "cls", "has"]  # the fullest source's row order, not table1's
    assert list(cards.merge_cards([table1, seeds01], "m", "c")["results"]["summary"]) == ["baseline", "cls", "has"]
    cls = res["summary"]["cls"]["gzsl_h"]
    assert cls["n"] == 3 and cls["mean"] == pytest.approx((0.65 + 0.55 + 0.50) / 3)
    assert "host" not in res["summary"]["cls"]  # the machine is a row's provenance, not a tag of the summary
    d = res["paired_deltas"]["cls"]["gzsl_h"]  # cls - baseline per seed: 0.05, -0.06, -0.12
    assert d["n"] == 3 and d["worse"] == 2 and d["mean"] == pytest.approx((0.05 - 0.06 - 0.12) / 3)
    # every row records the machine that trained it
    hosts = {(r["name"], r["seed"]): r["host"] for r in res["rows"]}
    assert hosts[("cls", 2)] == hosts[("has", 2)] == "AuthenticAMD family 23 model 49, AVX2, 1 thread"
    assert hosts[("cls", 0)] == hosts[("has", 0)] == "AuthenticAMD family 25 model 17, AVX2, 1 thread"
    src = {s["card"]: s for s in res["merge"]["sources"]}
    assert list(src) == ["t2_s01", "t2_s2", "t1"] and src["t2_s2"]["pooled"] == ["baseline@2", "has@2", "cls@2"]
    assert src["t1"]["pooled"] == [] and sorted(src["t1"]["same_as_pooled"]) == [
        "baseline@0", "baseline@1", "baseline@2", "has@0", "has@1", "has@2"]
    assert res["merge"]["dropped"] == ["has_minus_apn"] and "alternatives" not in res
    assert card["note"] == "n" and card["provenance"]["threads"] == 1
    assert card["provenance"]["cpu_id"] == "AuthenticAMD family 25 model 17; AuthenticAMD family 23 model 49"
    assert cards.check_card(card)["checked"] == 3 * 4 * 2 + 2 * 4 * 2


def test_merge_keeps_another_measurement_of_a_pooled_run_as_an_alternative():
    """Where two cards hold the same (row, seed) with other numbers, the first card's row is pooled;
    the other is kept, with its machine and its own checked statistics, outside the pooled summary."""
    table1, seeds01, seed2 = _three_cards()
    other = _seed_card({2: {"baseline": 0.55, "has": 0.71, "cls": 0.52}}, "t2_s2_other", threads=2,
                       cpu_id="GenuineIntel family 6 model 167")
    card = cards.merge_cards([table1, seeds01, seed2, other], "t2", "cmd")
    res = card["results"]
    assert len(res["rows"]) == 9 and res["summary"] == cards.merge_cards([table1, seeds01, seed2], "m", "c")[
        "results"]["summary"]
    (alt,) = res["alternatives"]
    assert alt["card"] == "t2_s2_other" and alt["host"] == "GenuineIntel family 6 model 167, AVX2, 2 threads"
    assert [r["gzsl_h"] for r in alt["rows"]] == [0.55, 0.71, 0.52]
    assert alt["summary"] == other["results"]["summary"] and alt["paired_deltas"] == other["results"]["paired_deltas"]
    assert res["merge"]["sources"][3]["alternative"] == ["baseline@2", "has@2", "cls@2"]
    assert card["provenance"]["threads"] == 1  # the provenance of the pooled rows; the alternative has its own
    assert cards.check_card(card)["checked"] == 40 + 3 * 4 * 2 + 2 * 4 * 2  # pooled + the alternative's
    alt["summary"]["has"]["gzsl_h"]["mean"] = 0.7  # an alternative's statistics are checked too
    with pytest.raises(ZSLabError, match=r"alternatives\[0\]\.summary\.has\.gzsl_h mean"):
        cards.check_card(card)


def test_merge_pools_cards_that_share_no_run_and_differ_in_threads():
    _, seeds01, _ = _three_cards()
    seed2 = _seed_card({2: {"baseline": 0.62, "has": 0.74, "cls": 0.50}}, "t2_s2", threads=2)
    card = cards.merge_cards([seeds01, seed2], "t2", "cmd")  # no run in common: nothing to compare, pooled anyway
    assert len(card["results"]["rows"]) == 9 and card["provenance"]["threads"] == "1; 2"
    assert {r["host"] for r in card["results"]["rows"] if r["seed"] == 2} == {"AuthenticAMD family 25 model 17, AVX2, 2 threads"}


@pytest.mark.parametrize("tamper, msg", [
    (lambda cs: cs[1]["results"].__setitem__("notebook", "10_semantic_distortion"), "different notebooks"),
    (lambda cs: cs[1]["results"].__setitem__("preset", "smoke"), "different presets"),
    (lambda cs: cs.__delitem__(slice(1, None)), "at least two"),
    (lambda cs: [c["results"].__setitem__("rows", []) for c in cs], "no per-seed rows"),
])
def test_merge_refuses_cards_of_different_experiments(tamper, msg):
    cs = list(_three_cards())
    for c in cs:  # the tamper must not be undone by a re-derived summary: only rows / provenance change
        c["results"].pop("summary"), c["results"].pop("paired_deltas")
    tamper(cs)
    with pytest.raises(ZSLabError, match=msg):
        cards.merge_cards(cs, "t2", "cmd")


def test_merge_ignores_timing_fields_of_a_run_trained_twice():
    table1, seeds01, _ = _three_cards()
    for r in seeds01["results"]["rows"]:
        r["train_seconds"], r["cached"] = 999.0, True
    res = cards.merge_cards([table1, seeds01], "m", "cmd")["results"]
    assert len(res["rows"]) == 8 and "alternatives" not in res
    assert res["merge"]["sources"][1]["same_as_pooled"] == ["baseline@0", "has@0", "baseline@1", "has@1"]


def test_cli_merge_writes_a_checked_card(tmp_path, capsys):
    paths = []
    for c in _three_cards():
        paths.append(tmp_path / f"{c['card']}.json")
        paths[-1].write_text(json.dumps(c))
    assert cards.main(["merge", *map(str, paths), "--name", "pooled", "-o", str(tmp_path / "out")]) == 0
    card = cards.load_card(tmp_path / "out" / "pooled.json")
    assert card["command"].startswith("python -m zslab.experiments.cards merge") and "--name pooled" in card["command"]
    assert [s["card"] for s in card["results"]["merge"]["sources"]] == ["t1", "t2_s01", "t2_s2"]
    capsys.readouterr()
    other = json.loads(paths[2].read_text())
    other["results"]["notebook"] = "12_sensitivity"
    paths[2].write_text(json.dumps(other))
    assert cards.main(["merge", str(paths[1]), str(paths[2]), "--name", "x", "-o", str(tmp_path / "out")]) == 2
    assert "different notebooks" in capsys.readouterr().err and not (tmp_path / "out" / "x.json").exists()
