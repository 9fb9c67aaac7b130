"""Each notebook is one source in two files (notebooks/README.md): NAME.ipynb, which readers,
papermill, nbval and `zslab notebooks run` open, committed without outputs; and NAME.py, its
jupytext percent-format pair, which developers edit and review. Editing one side without
`jupytext --sync` makes the two disagree; these tests catch it."""
import json
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.config import load_jupytext_config, notebook_formats

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p.stem for p in NB_DIR.glob("*.ipynb"))
PAIR_FMT = "py:percent"
SYNC_HINT = "edit one side, then run `jupytext --sync notebooks/{name}.ipynb` (notebooks/README.md)"


def _tags(cell) -> list:
    return list(cell.metadata.get("tags", []))


def pair_differences(ipynb: Path, py: Path) -> list[str]:
    """Where the cells of ``py`` (read as jupytext percent format) and ``ipynb`` differ:
    cell count, and per cell its type, source and tags. Empty when the pair agrees."""
    a = jupytext.read(ipynb)
    b = jupytext.read(py, fmt=PAIR_FMT)
    out = []
    if len(a.cells) != len(b.cells):
        out.append(f"{len(a.cells)} cells in {ipynb.name}, {len(b.cells)} in {py.name}")
    for i, (x, y) in enumerate(zip(a.cells, b.cells)):
        if x.cell_type != y.cell_type:
            out.append(f"cell {i}: {x.cell_type} in {ipynb.name}, {y.cell_type} in {py.name}")
        if x.source != y.source:
            out.append(f"cell {i}: source differs\n--- {ipynb.name}\n{x.source}\n--- {py.name}\n{y.source}")
        if _tags(x) != _tags(y):
            out.append(f"cell {i}: tags {_tags(x)} in {ipynb.name}, {_tags(y)} in {py.name}")
    return out


def output_problems(ipynb: Path) -> list[str]:
    """Code cells of ``ipynb`` that carry outputs or an execution count."""
    nb = nbformat.read(ipynb, as_version=4)
    return [f"cell {i}: {len(c.outputs)} outputs, execution_count {c.execution_count}"
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]


def parameters_cells(ipynb: Path) -> list[int]:
    """Indices of the code cells tagged ``parameters`` (papermill injects after the first)."""
    nb = nbformat.read(ipynb, as_version=4)
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "parameters" in _tags(c)]


def test_every_notebook_has_its_pair_and_vice_versa():
    assert NOTEBOOKS, "no notebooks/*.ipynb"
    scripts = sorted(p.stem for p in NB_DIR.glob("*.py"))
    assert sorted(set(NOTEBOOKS) - set(scripts)) == [], \
        "notebooks without a .py pair: run `jupytext --sync notebooks/NAME.ipynb`"
    assert sorted(set(scripts) - set(NOTEBOOKS)) == [], \
        "notebooks/*.py without an .ipynb pair: run `jupytext --sync notebooks/NAME.py` (or delete the .py)"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_jupytext_pairs_the_notebook_with_its_percent_script(name):
    """The pairing is configured (notebooks/jupytext.toml), so `jupytext --sync` and JupyterLab
    update the .py when the .ipynb is saved and vice versa."""
    path = NB_DIR / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    formats = notebook_formats(nb, load_jupytext_config(str(path)), str(path), fallback_on_current_fmt=False)
    assert formats, f"notebooks/{name}.ipynb is not paired (no jupytext formats in its metadata or jupytext.toml)"
    got = {(f.get("extension"), f.get("format_name")) for f in formats}
    assert (".ipynb", None) in got and (".py", "percent") in got, formats


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_script_and_notebook_have_the_same_cells(name):
    diffs = pair_differences(NB_DIR / f"{name}.ipynb", NB_DIR / f"{name}.py")
    assert not diffs, f"notebooks/{name}.py and .ipynb disagree: {SYNC_HINT.format(name=name)}\n" + "\n".join(diffs)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    problems = output_problems(NB_DIR / f"{name}.ipynb")
    assert not problems, (f"notebooks/{name}.ipynb has outputs: clear them (`jupyter nbconvert --clear-output "
                          f"--inplace notebooks/{name}.ipynb`)\n" + "\n".join(problems))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_has_a_parameters_cell(name):
    assert parameters_cells(NB_DIR / f"{name}.ipynb"), \
        f"notebooks/{name}.ipynb has no code cell tagged `parameters` (papermill and `zslab notebooks run` need one)"


# ------------------------------------------------------------- the checks above do catch drift
def _copy_pair(tmp_path, name="00_quickstart"):
    ipynb, py = tmp_path / f"{name}.ipynb", tmp_path / f"{name}.py"
    shutil.copy(NB_DIR / f"{name}.ipynb", ipynb)
    shutil.copy(NB_DIR / f"{name}.py", py)
    assert pair_differences(ipynb, py) == []
    return ipynb, py


def test_editing_only_the_script_is_caught(tmp_path):
    ipynb, py = _copy_pair(tmp_path)
    text = py.read_text()
    assert "seed = 0 " in text
    py.write_text(text.replace("seed = 0 ", "seed = 1 ", 1))
    diffs = pair_differences(ipynb, py)
    assert len(diffs) == 1 and "source differs" in diffs[0] and "seed = 1" in diffs[0]


def test_editing_only_the_notebook_is_caught(tmp_path):
    ipynb, py = _copy_pair(tmp_path)
    nb = nbformat.read(ipynb, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code" and "parameters" not in _tags(c))
    code.source += "\nprint('edited in JupyterLab')"
    nb.cells.append(nbformat.v4.new_markdown_cell("a new cell"))
    nbformat.write(nb, ipynb)
    diffs = pair_differences(ipynb, py)
    assert any("cells in" in d for d in diffs) and any("edited in JupyterLab" in d for d in diffs)


def test_a_tag_or_cell_type_changed_on_one_side_is_caught(tmp_path):
    ipynb, py = _copy_pair(tmp_path)
    py.write_text(py.read_text().replace('# %% tags=["parameters"]', "# %%", 1))
    assert any("tags ['parameters']" in d for d in pair_differences(ipynb, py))
    ipynb, py = _copy_pair(tmp_path)
    nb = nbformat.read(ipynb, as_version=4)
    md = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    nb.cells[md] = nbformat.v4.new_raw_cell(nb.cells[md].source)
    nbformat.write(nb, ipynb)
    assert any(f"cell {md}: raw in" in d for d in pair_differences(ipynb, py))


def test_outputs_and_a_lost_parameters_tag_are_caught(tmp_path):
    ipynb, _ = _copy_pair(tmp_path)
    nb = json.loads(ipynb.read_text())
    i = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", []))
    nb["cells"][i]["execution_count"] = 3
    nb["cells"][i]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    for c in nb["cells"]:
        c["metadata"].pop("tags", None)
    ipynb.write_text(json.dumps(nb))
    assert output_problems(ipynb) == [f"cell {i}: 1 outputs, execution_count 3"]
    assert parameters_cells(ipynb) == []


def test_the_scripts_are_not_collected_or_run_as_notebooks():
    """pytest (testpaths includes notebooks/, for nbval) collects only test_*.py / *_test.py
    modules, and `zslab notebooks run` only *.ipynb: the .py pairs are never imported or run."""
    import tomllib

    from zslab.report import find_notebooks

    ini = tomllib.loads((NB_DIR.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "python_files" not in ini, "python_files changed: check that notebooks/*.py are not collected"
    scripts = [p.name for p in NB_DIR.glob("*.py")]
    assert [s for s in scripts if s.startswith("test_") or s.endswith("_test.py") or s == "conftest.py"] == []
    assert [p.name for p in find_notebooks(notebooks_dir=NB_DIR)] == [f"{n}.ipynb" for n in NOTEBOOKS]
