"""zslab notebooks run / zslab.report: the batch runner, the HTML report and the paper numbers.

(a) fast unit tests of the table/HTML builders on synthetic output folders and of
    zslab.paper_numbers against the paper texts;
(b) one end-to-end run of 00_quickstart next to a deliberately failing notebook;
(c) ``notebook_batch``: every notebook of notebooks/ on the smoke preset (runs by default;
    deselect with ``-m "not notebook_batch"``).
"""
import base64
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from zslab import ZSLabError
from zslab.paper_numbers import NOTEBOOK_COMPARISONS, PAPER_TABLES, paper_value
from zslab.report import (NotebookRun, _source_index, build_html, comparison_tables, find_notebooks,
                          notebook_parameters, parse_parameters, results_tables, write_report)

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "seeds"
HAS_TXT = SEEDS / "000_06475b0eaebc5e69.txt"
LAAT_TXT = SEEDS / "002_6765c7e323df9495.txt"


def _png(path: Path, colour: str = "C0") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1], color=colour)
    fig.savefig(path, dpi=20)
    plt.close(fig)
    return path.read_bytes()


def _stat(m, s=0.0, n=1):
    return {"mean": m, "std": s, "n": n}


def _notebook(path: Path, cells, params: str | None = 'preset = "smoke"\nout_dir = "runs/x"'):
    nb = nbformat.v4.new_notebook()
    out = [nbformat.v4.new_markdown_cell("# test notebook")]
    if params is not None:
        p = nbformat.v4.new_code_cell(params)
        p.metadata["tags"] = ["parameters"]
        out.append(p)
    out += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.cells = out
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


# ------------------------------------------------------------------------------ (a) unit tests
def test_results_tables_cover_records_lists_scalars_and_nesting():
    res = {"notebook": "x", "preset": "smoke", "seeds": [0, 1],
           "summary": {"baseline": {"name": "baseline", "zsl_t1": _stat(0.5, 0.1, 2)},
                       "has": {"name": "has", "zsl_t1": _stat(0.75, 0.0, 2)}},
           "rows": [{"name": "baseline", "seed": 0, "zsl_t1": 0.4}, {"name": "has", "seed": 1, "zsl_t1": 0.8}],
           "consistency": {"enc": {"original": {"rank_sum": 226.1, "per_group": {"fruit": {"rank_sum": 196}}}}}}
    tables = {t.title: t for t in results_tables(res)}
    assert tables["results.json"].rows == [["notebook", "x"], ["preset", "smoke"], ["seeds", "[0, 1]"]]
    s = tables["summary"]
    assert s.columns == ["", "name", "zsl_t1"] and s.rows[0] == ["baseline", "baseline", "0.5 ± 0.1 (n=2)"]
    assert s.rows[1][2] == "0.75 (n=2)"  # zero spread: no "± 0"
    r = tables["rows"]
    assert r.columns == ["#", "name", "seed", "zsl_t1"] and [row[3] for row in r.rows] == ["0.4", "0.8"]
    assert tables["consistency › enc"].rows == [["original", "226.1"]]
    assert tables["consistency › enc › original › per_group"].rows == [["fruit", "196"]]


def test_comparison_table_scales_fractions_and_marks_rows_not_run():
    res = {"summary": {"baseline": {"zsl_t1": _stat(0.5, 0.01, 3), "gzsl_u": _stat(0.2), "gzsl_s": _stat(0.3),
                                    "gzsl_h": _stat(0.24)}}}
    t1, t2 = comparison_tables("11_has_vs_apn", res)
    assert t1.title.startswith("HAS Table 1") and t2.title.startswith("HAS Table 2")
    row = dict(zip(t1.columns, t1.rows[0]))
    assert row["zslab row → paper row"] == "baseline → APN*"
    assert row["T1: measured"] == "50.0 ± 1.0 (n=3)"            # fraction x 100, paper's 1 decimal
    assert (row["T1: paper CUB"], row["T1: paper AwA2"], row["T1: paper SUN"]) == ("75.6", "69.8", "62.6")
    assert row["H: paper AwA2"] == "71.0"
    has = dict(zip(t1.columns, t1.rows[1]))
    assert has["T1: measured"] == "not run" and has["T1: paper CUB"] == "76.5"
    assert "Table 1" in t1.note and "448 px" in t1.note
    assert comparison_tables("00_quickstart", {"final": {}}) == []  # no published counterpart


def test_build_html_embeds_figures_tables_paper_and_failure(tmp_path):
    ok_dir, bad_dir = tmp_path / "11_has_vs_apn", tmp_path / "99_broken"
    ok_dir.mkdir(), bad_dir.mkdir()
    png = _png(ok_dir / "table1_has_vs_apn.png")
    res = {"notebook": "11_has_vs_apn", "preset": "smoke", "seeds": [0, 1, 2],
           "summary": {"baseline": {"zsl_t1": _stat(0.6123, 0.02, 3), "gzsl_h": _stat(0.5)},
                       "has": {"zsl_t1": _stat(0.65, 0.01, 3), "gzsl_h": _stat(0.55)}},
           "figures": ["table1_has_vs_apn.png"]}
    (ok_dir / "results.json").write_text(json.dumps(res))
    runs = [NotebookRun(name="11_has_vs_apn", source="nb/11_has_vs_apn.ipynb", out_dir=str(ok_dir), status="ok",
                        wall_seconds=12.5, preset="smoke", parameters={"preset": "smoke"},
                        defaults={"seeds": None}, results=str(ok_dir / "results.json"),
                        figures=["table1_has_vs_apn.png"]),
            NotebookRun(name="99_broken", source="nb/99_broken.ipynb", out_dir=str(bad_dir), status="failed",
                        wall_seconds=1.0, preset="smoke", defaults={"seed": 7},
                        error={"cell_index": 2, "execution_count": 3, "source_head": "y = x / 0  # boom",
                               "ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": "Tb <x>"})]
    rep = write_report(runs, tmp_path, preset="smoke")
    page = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," + base64.b64encode(png).decode() in page       # figure embedded
    assert "<img" in page and 'src="table1_has_vs_apn.png"' not in page            # not linked
    assert "61.2 ± 2.0 (n=3)" in page and "75.6" in page and "76.5" in page         # measured and paper
    assert "HAS Table 1" in page and "HAS Table 2" in page
    assert "[0, 1, 2] (results.json)" in page and "7 (default)" in page             # seeds, both sources
    assert "Failed at cell 2 of the notebook (In [3]): ZeroDivisionError: division by zero" in page
    assert "y = x / 0  # boom" in page and "Tb &lt;x&gt;" in page                    # escaped traceback
    assert rep["failed"] == ["99_broken"] and rep["ok"] == ["11_has_vs_apn"]
    js = json.loads((tmp_path / "report.json").read_text())
    assert js["notebooks"][1]["error"]["ename"] == "ZeroDivisionError"
    assert js["notebooks"][0]["figures"] == ["table1_has_vs_apn.png"] and js["notebooks"][0]["wall_seconds"] == 12.5
    assert not list(tmp_path.glob(".report*.tmp"))                                  # atomic writes leave nothing


def test_build_html_flags_missing_figures_and_unreadable_results(tmp_path):
    d = tmp_path / "x"
    d.mkdir()
    (d / "results.json").write_text("{not json")
    page = build_html([NotebookRun("x", "x.ipynb", str(d), status="ok", results=str(d / "results.json"))], tmp_path)
    assert "results.json could not be read" in page
    (d / "results.json").write_text(json.dumps({"figures": ["gone.png"]}))
    page = build_html([NotebookRun("x", "x.ipynb", str(d), status="ok", results=str(d / "results.json"))], tmp_path)
    assert "Listed in results.json but not found: gone.png" in page


def test_find_notebooks_and_parameters(tmp_path):
    with pytest.raises(ZSLabError, match="--notebooks-dir"):
        find_notebooks(None, tmp_path / "nowhere")
    with pytest.raises(ZSLabError, match="no notebooks"):
        find_notebooks(None, tmp_path)
    a = _notebook(tmp_path / "a.ipynb", ["x = 1"], params='preset = "smoke"  # comment\nseeds = [0, 1]\nn: int = 3\n'
                                                          'cache = str("runs")')
    _notebook(tmp_path / "b.ipynb", ["x = 1"], params=None)
    assert [p.name for p in find_notebooks(None, tmp_path)] == ["a.ipynb", "b.ipynb"]
    assert [p.name for p in find_notebooks(["b", "a.ipynb"], tmp_path)] == ["b.ipynb", "a.ipynb"]
    with pytest.raises(ZSLabError, match=r"no notebook 'c' .*notebooks there: a, b"):
        find_notebooks(["c"], tmp_path)
    with pytest.raises(ZSLabError, match="same DIR/<name>"):
        find_notebooks([str(a), "a"], tmp_path)
    assert notebook_parameters(a) == {"preset": "smoke", "seeds": [0, 1], "n": 3, "cache": 'str("runs")'}
    assert notebook_parameters(tmp_path / "b.ipynb") == {}
    # papermill puts its injected cell right after the parameters cell (index 1 here)
    assert [_source_index(i, 1, True) for i in (0, 1, 2, 3)] == [0, 1, None, 2]
    assert _source_index(3, None, True) == 2 and _source_index(0, None, True) is None
    assert _source_index(3, 1, False) == 3


def test_cli_reports_bad_input_without_running_anything(tmp_path, capsys):
    from zslab.cli import main

    assert main(["notebooks", "run", "--notebooks-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "notebooks folder not found" in capsys.readouterr().err
    assert main(["notebooks", "run", "no_such_notebook", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no notebook 'no_such_notebook'" in err and "00_quickstart" in err
    assert not (tmp_path / "o").exists()


def test_a_broken_notebook_fails_alone_without_a_kernel(tmp_path):
    from zslab.report import run_notebook

    (tmp_path / "broken.ipynb").write_text("{not json")
    _notebook(tmp_path / "badparams.ipynb", ["x = 1"], params="preset = (")
    for name, match in (("broken", "not a readable notebook"), ("badparams", "parameters cell .* is not valid Python")):
        r = run_notebook(tmp_path / f"{name}.ipynb", tmp_path / "out")
        assert r.status == "failed" and r.error["ename"] == "ZSLabError", r
        assert re.search(match, r.error["evalue"]), r.error["evalue"]


def test_parse_parameters():
    assert parse_parameters(["seeds=[0, 1]", "cache_dir=/tmp/x", "n=3", "device=None", "s='a=b'"]) == \
        {"seeds": [0, 1], "cache_dir": "/tmp/x", "n": 3, "device": None, "s": "a=b"}
    for bad, match in (("seeds", "KEY=VALUE"), ("1x=2", "KEY=VALUE"), ("out_dir=/x", "--out")):
        with pytest.raises(ZSLabError, match=match):
            parse_parameters([bad])


def test_every_mapping_points_at_a_published_cell():
    for nb, comps in NOTEBOOK_COMPARISONS.items():
        for c in comps:
            t = PAPER_TABLES[c.table]
            for prow in c.rows.values():
                assert prow in t.values, (nb, c.table, prow)
            for pc in c.metrics.values():
                assert pc in t.columns, (nb, c.table, pc)
                assert any(paper_value(c.table, r, pc, g) is not None for r in c.rows.values() for g in t.groups)


def test_paper_numbers_agree_with_the_notebook_constants():
    from zslab.experiments import laat_anchors as la

    for enc, (before, after) in la.PAPER_TABLE1.items():
        assert (paper_value("LAAT Table 1", enc, "Original"), paper_value("LAAT Table 1", enc, "Expanded")) == (before, after)
    for enc, (rank, ratio) in la.PAPER_TABLE_S3.items():
        assert paper_value("LAAT Table S3", enc, "Sum of rank") == rank
        assert paper_value("LAAT Table S3", enc, "Top-5 ratio") == pytest.approx(100 * ratio)
    assert paper_value("LAAT Table S2", "fruit and vegetables", "Sum of rank") == la.PAPER_TABLE_S2_FRUIT["rank_sum"]
    assert paper_value("LAAT Sec. 3.3", "MMC (100 classes)", "Average CoS") == la.PAPER_MMC_COS


@pytest.mark.skipif(not (HAS_TXT.is_file() and LAAT_TXT.is_file()), reason="paper texts not in ../shared/seeds")
def test_paper_numbers_are_printed_in_the_papers():
    """Every number, as printed with its table's decimals, is in the paper text; for the HAS tables
    (one text line per row) the whole row, tab-separated in the table's column order, is."""
    texts = {"HAS": HAS_TXT.read_text(), "LAAT": LAAT_TXT.read_text()}
    checked = 0
    for t in PAPER_TABLES.values():
        text = texts["HAS" if t.key.startswith("HAS") else "LAAT"]
        for row, groups in t.values.items():
            printed = [f"{groups[g][c]:.{t.decimals.get(c, 2)}f}" for g in t.groups for c in t.columns if c in groups[g]]
            for p in printed:  # "56.0" may be printed "56%" (LaTeX "56\\%")
                assert (re.search(rf"(?<![\d.]){re.escape(p)}(?![\d])", text)
                        or (p.endswith(".0") and re.search(rf"(?<![\d.]){p[:-2]}\\?%", text))), (t.key, row, p)
                checked += 1
            if t.key.startswith("HAS"):
                assert "\t".join(printed) in text, (t.key, row)
    assert checked > 150


# ------------------------------------------------------------------------------ (b) one real run
def test_cli_runs_quickstart_and_reports_a_failing_notebook(tmp_path, capsys):
    from zslab.cli import main

    (tmp_path / "nb").mkdir()
    bad = _notebook(tmp_path / "nb" / "99_failing.ipynb",
                    ["import sys\nfrom pathlib import Path\nPath(out_dir).mkdir(parents=True, exist_ok=True)\n"
                     "(Path(out_dir) / 'python.txt').write_text(sys.executable)\nx = 1",
                     "y = x / 0  # deliberate failure"],
                    params='preset = "smoke"\nout_dir = "runs/failing"\nunused = 1')
    out = tmp_path / "out"
    rc = main(["notebooks", "run", "00_quickstart", str(bad), "--preset", "smoke", "--out", str(out), "--no-progress"])
    assert rc == 1  # one notebook failed
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] == ["00_quickstart"] and printed["failed"] == ["99_failing"]
    rep = json.loads((out / "report.json").read_text())
    good, failed = rep["notebooks"]
    assert good["status"] == "ok" and good["parameters"] == {"preset": "smoke", "out_dir": str(out / "00_quickstart")}
    assert (out / "00_quickstart" / "00_quickstart.ipynb").is_file()      # the executed notebook
    res = json.loads((out / "00_quickstart" / "results.json").read_text())
    assert res["preset"] == "smoke" and good["figures"] == res["figures"] and len(res["figures"]) >= 3
    page = (out / "report.html").read_text()
    for f in res["figures"]:  # every figure embedded, byte for byte
        assert base64.b64encode((out / "00_quickstart" / f).read_bytes()).decode() in page, f
    assert f"{res['final']['zsl_t1']:.4g}" in page and "chance_zsl" in page       # its results table
    assert failed["status"] == "failed" and failed["error"]["ename"] == "ZeroDivisionError"
    assert failed["error"]["cell_index"] == 3 and "deliberate failure" in failed["error"]["source_head"]
    assert "Failed at cell 3 of the notebook" in page and "y = x / 0  # deliberate failure" in page
    assert "division by zero" in page
    # out_dir was injected (absolute, into DIR/<name>) and the kernel ran this interpreter
    assert (out / "99_failing" / "python.txt").read_text() == sys.executable


# ------------------------------------------------------------------------------ (c) every notebook
#: the notebooks the default run sends through `zslab notebooks run` (nbval executes every notebook
#: in the default run already; ZSLAB_SLOW=1 sends all of them through the report, ~3 min)
REPORT_SAMPLE = ("00_quickstart", "20_anchor_expansion")


@pytest.mark.notebook_batch
def test_every_notebook_runs_on_smoke_and_lands_in_the_report(tmp_path):
    import os

    from zslab.report import default_notebooks_dir, run_notebooks

    names = [p.stem for p in find_notebooks(None, default_notebooks_dir())]
    if not os.environ.get("ZSLAB_SLOW"):
        assert set(REPORT_SAMPLE) <= set(names)
        names = list(REPORT_SAMPLE)
    rep = run_notebooks(None if len(names) > len(REPORT_SAMPLE) else names, tmp_path, preset="smoke",
                        progress=False)
    assert [r["name"] for r in rep["notebooks"]] == names  # discovered, not hard-coded
    errors = {r["name"]: r["error"] for r in rep["notebooks"] if r["status"] != "ok"}
    assert not errors, json.dumps(errors, indent=1)[:4000]
    page = (tmp_path / "report.html").read_text()
    for r in rep["notebooks"]:
        d = tmp_path / r["name"]
        assert r["results"] == str(d / "results.json"), f"{r['name']} wrote no results.json into out_dir"
        res = json.loads((d / "results.json").read_text())
        pngs = sorted(p.name for p in d.glob("*.png"))
        assert pngs and r["figures"] == pngs, r["name"]
        for f in pngs:
            assert base64.b64encode((d / f).read_bytes()).decode() in page, (r["name"], f)
        section = page.split(f'<section id="nb-{r["name"]}">')[1].split("</section>")[0]
        assert "Measured values: results.json" in section and "<span class=\"ok\">ok</span>" in section
        assert res.get("preset", "smoke") == "smoke"


def test_missing_values_show_a_dash_with_a_footnote_and_tables_scroll_in_their_own_box(tmp_path):
    """A LAAT row has no calibration μ (NaN in results.json): the page shows "—" and says why,
    never "nan"; every table sits in its own horizontally scrolling box, so a wide table (the
    explorer's 33 columns) never makes the page scroll sideways."""
    from html.parser import HTMLParser

    d = tmp_path / "31_zero_shot_robustness"
    d.mkdir()
    wide = {f"col{i}": float(i) for i in range(33)}
    res = {"rows": {"apn": {"zsl_t1": 0.8, "mu": 0.12}, "laat": {"zsl_t1": 0.4, "mu": float("nan")}},
           "views": {"v0": wide, "v1": wide}}
    (d / "results.json").write_text(json.dumps(res))
    runs = [NotebookRun(name=d.name, source="nb/x.ipynb", out_dir=str(d), status="ok", wall_seconds=1.0,
                        preset="smoke", results=str(d / "results.json"))]
    write_report(runs, tmp_path, preset="smoke")
    page = (tmp_path / "report.html").read_text()

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells, self.stack, self.tables_outside_box, self.in_cell = [], [], 0, False

        def handle_starttag(self, tag, attrs):
            if tag == "table" and not any(t == ("div", "tscroll") for t in self.stack):
                self.tables_outside_box += 1
            self.stack.append((tag, dict(attrs).get("class")))
            self.in_cell = tag == "td"

        def handle_endtag(self, tag):
            while self.stack and self.stack.pop()[0] != tag:
                pass
            self.in_cell = False

        def handle_data(self, data):
            if self.in_cell:
                self.cells.append(data.strip())

    p = Cells()
    p.feed(page)
    assert "—" in p.cells and not [c for c in p.cells if c.lower() == "nan"]
    assert "LAAT runs have no GZSL calibration factor μ" in page
    assert p.tables_outside_box == 0 and page.count('class="tscroll"') >= 3
    assert ".tscroll{max-width:100%;overflow-x:auto" in page
