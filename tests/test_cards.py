"""Results cards (zslab.experiments.cards): provenance, summaries re-derived from the rows, and
every card committed under results/."""
import copy
import json
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
    return {"notebook": "11_has_vs_apn", "preset": "full", "rows": rows, "summary": hs.summarize(rows)}


def test_card_carries_provenance_and_checks_the_summary():
    card = cards.make_card(_results(), "t", "papermill x.ipynb y.ipynb -p preset full", threads=1)
    assert set(cards.CARD_KEYS) <= set(card)
    prov = card["provenance"]
    assert prov["threads"] == 1 and prov["torch"] and prov["date"].endswith("Z")
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
    # 2 rows x 4 metrics x (mean, std)
    assert cards.check_card(card) == 16


@pytest.mark.parametrize("tamper, msg", [
    (lambda r: r["summary"]["has"]["zsl_t1"].__setitem__("mean", 0.86), "mean"),
    (lambda r: r["summary"]["has"]["gzsl_h"].__setitem__("std", 0.0), "std"),
    (lambda r: r["rows"].pop(), "n=3"),
    (lambda r: r["rows"][1].__setitem__("seed", 0), "repeated"),
    (lambda r: r["rows"].__setitem__(slice(3, 6), []), "no rows"),
])
def test_a_summary_that_does_not_match_its_rows_is_refused(tamper, msg):
    res = _results()
    tamper(res)
    with pytest.raises(ZSLabError, match=msg):
        cards.make_card(res, "t", "cmd")


def test_nested_and_named_blocks_are_checked():
    inner = _results()
    res = {"ablations": {"table5": {"rows": inner["rows"], "summary": inner["summary"]}},
           "table3_rows": inner["rows"], "table3": copy.deepcopy(inner["summary"])}
    assert cards.check_card(cards.make_card(res, "t", "cmd")) == 32
    res["table3"]["baseline"]["zsl_t1"]["mean"] += 1e-6
    with pytest.raises(ZSLabError, match=r"results\.table3\['baseline'\]\['zsl_t1'\] mean"):
        cards.check_card({"card": "t", "command": "c", "provenance": cards.provenance(), "results": res})


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
    assert cards.main(["check", str(path)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["checked"] == 16
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
