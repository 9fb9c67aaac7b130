"""One place for outputs (#10 item 1): relative output and cache folders of the notebooks and the
experiment drivers resolve against the project folder (``$ZSLAB_WORKDIR``, else the zslab checkout
holding the working directory, else the working directory), so a kernel running in ``notebooks/``
writes into the repository's ``runs/`` like ``make demo`` does; the command line stays
relative to the working directory."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from zslab.experiments import paths
from zslab.experiments.paths import WORKDIR_ENV, work_path, work_root

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_workdir_env(monkeypatch):
    monkeypatch.delenv(WORKDIR_ENV, raising=False)


def _project(folder: Path, name: str = "zslab", extra: str = "") -> Path:
    """A folder with a ``pyproject.toml`` naming project ``name`` and an empty ``notebooks/``."""
    (folder / "notebooks").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0.1"\n{extra}')
    return folder


def test_the_environment_variable_names_the_project_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "work"))
    assert WORKDIR_ENV == "ZSLAB_WORKDIR" and paths.WORKDIR_ENV == WORKDIR_ENV
    assert work_root() == tmp_path / "work"  # named whether or not it exists; nothing created
    assert not (tmp_path / "work").exists()
    monkeypatch.setenv(WORKDIR_ENV, "rel/../here")  # relative: from the working directory, normalised
    assert work_root() == tmp_path / "here" and work_root().is_absolute()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(WORKDIR_ENV, "~/proj")
    assert work_root() == tmp_path / "home" / "proj"
    _project(tmp_path / "repo")  # the variable wins over a checkout around the working directory
    monkeypatch.chdir(tmp_path / "repo" / "notebooks")
    assert work_root() == tmp_path / "home" / "proj"
    monkeypatch.setenv(WORKDIR_ENV, "  ")  # empty: as if unset
    assert work_root() == tmp_path / "repo"


def test_a_zslab_checkout_around_the_working_directory_is_the_root(tmp_path, monkeypatch, no_workdir_env):
    repo = _project(tmp_path / "repo")
    (repo / "notebooks" / "deeper").mkdir()
    for cwd in (repo, repo / "notebooks", repo / "notebooks" / "deeper"):
        monkeypatch.chdir(cwd)
        assert work_root() == repo
    # the nearest checkout wins; another project's pyproject on the way up is passed over
    _project(repo / "notebooks" / "inner", name="zslab")
    monkeypatch.chdir(repo / "notebooks" / "inner" / "notebooks")
    assert work_root() == repo / "notebooks" / "inner"
    _project(repo / "vendor" / "other", name="other-project")
    monkeypatch.chdir(repo / "vendor" / "other" / "notebooks")
    assert work_root() == repo
    # the project name is read from [project] (PEP 503 spelling), not found by a text search
    _project(tmp_path / "spelled", name="ZSLab")
    monkeypatch.chdir(tmp_path / "spelled" / "notebooks")
    assert work_root() == tmp_path / "spelled"


def test_another_project_or_no_checkout_leaves_the_working_directory(tmp_path, monkeypatch, no_workdir_env):
    # mentions zslab everywhere but in [project] name: not a zslab checkout
    other = _project(tmp_path / "other", name="my-study",
                     extra='dependencies = ["zslab>=0.1"]\n\n[tool.zslab]\nname = "zslab"\n')
    monkeypatch.chdir(other / "notebooks")
    assert work_root() == other / "notebooks"
    broken = tmp_path / "broken"
    (broken / "sub").mkdir(parents=True)
    (broken / "pyproject.toml").write_text('[project\nname = "zslab"\n')  # not TOML: not a checkout
    monkeypatch.chdir(broken / "sub")
    assert work_root() == broken / "sub"
    (tmp_path / "plain").mkdir()
    monkeypatch.chdir(tmp_path / "plain")
    assert work_root() == tmp_path / "plain"


def test_work_path(tmp_path, monkeypatch):
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "proj"))
    monkeypatch.chdir(tmp_path)
    assert work_path("runs/x") == tmp_path / "proj" / "runs" / "x"
    assert work_path(Path("runs") / "x") == tmp_path / "proj" / "runs" / "x"
    assert work_path(tmp_path / "abs") == tmp_path / "abs"  # absolute: unchanged
    assert work_path(str(tmp_path / "abs")) == tmp_path / "abs"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert work_path("~/r") == tmp_path / "home" / "r"
    assert work_path(None) is None  # an optional folder passes straight through
    assert not (tmp_path / "proj").exists()
    from zslab import experiments

    assert experiments.work_path is work_path and experiments.work_root is work_root
    assert {"work_path", "work_root", "WORKDIR_ENV"} <= set(paths.__all__) & set(experiments.__all__)


def test_notebook_setup_from_notebooks_writes_under_the_root(tmp_path, monkeypatch, no_workdir_env):
    from zslab.experiments import cross_paper as cp
    from zslab.experiments import has_study as hs

    repo = _project(tmp_path / "repo")
    monkeypatch.chdir(repo / "notebooks")
    out, seeds, data, _ = hs.notebook_setup("smoke", [0], "runs/study", "runs/x", threads=1)
    assert out == repo / "runs" / "x" and out.is_dir() and seeds == [0]
    assert (repo / "runs" / "study" / "data").is_dir()  # the generated dataset's cache
    out2, _, _ = cp.notebook_setup("smoke", [0], "runs/study", "runs/y", threads=1)
    assert out2 == repo / "runs" / "y" and out2.is_dir()
    assert list((repo / "notebooks").iterdir()) == []  # nothing generated next to the notebooks
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "elsewhere"))
    out3, *_ = hs.notebook_setup("smoke", [0], "runs/study", "runs/z", threads=1)
    assert out3 == tmp_path / "elsewhere" / "runs" / "z" and out3.is_dir()


def test_caches_of_the_drivers_and_the_explorer_resolve_under_the_root(tmp_path, monkeypatch, no_workdir_env):
    from zslab import explore as ex
    from zslab.experiments import laat_anchors as la
    from zslab.experiments import laat_study as ls
    from zslab.experiments import runner

    repo = _project(tmp_path / "repo")
    monkeypatch.chdir(repo / "notebooks")
    # LAAT Fig. 3's MMC anchor file (notebook 21 and the study queue put it in cache_dir/anchors)
    spec = ls.mmc_encoder(SimpleNamespace(class_names=["a", "b", "c"]), "runs/study/anchors", dim=4)
    anchors = repo / "runs" / "study" / "anchors"
    assert anchors.is_dir() and f"file:{anchors.resolve()}/" in spec
    # the explorer's model cache (load_model without a run directory)
    seen = {}

    class Stop(Exception):
        pass

    def fake_run_study(runs, out_dir, **kw):
        seen["run_study"] = out_dir
        raise Stop

    def fake_study_data(preset, cache_dir=None, **kw):
        seen["data"] = cache_dir
        return None

    monkeypatch.setattr(runner, "run_study", fake_run_study)
    monkeypatch.setattr(ex.hs, "load_study_data", fake_study_data)
    with pytest.raises(Stop):
        ex.load_model(method="has", cache_dir="runs/study")
    assert seen == {"run_study": repo / "runs" / "study", "data": repo / "runs" / "study" / "data"}
    seen.clear()
    with pytest.raises(Stop):
        ex.load_model(method="apn")  # the default cache, runs/study
    assert seen["run_study"] == repo / "runs" / "study"
    monkeypatch.setattr(ls, "run_rows", lambda runs, out_dir, **kw: fake_run_study(runs, out_dir))
    monkeypatch.setattr(ls, "load_study_data", lambda *a, **kw: None)
    monkeypatch.setattr(ls, "robustness_configs", lambda *a, **kw: [])
    with pytest.raises(Stop):
        ex.load_model(method="laat", cache_dir="runs/laat_cache")
    assert seen["run_study"] == repo / "runs" / "laat_cache"
    # notebook 20's MiniLM anchor cache
    got = []

    def fake_class_anchors(spec, names, prompt, cache_dir, device):
        got.append(cache_dir)
        return torch.zeros(len(names), 4)

    monkeypatch.setattr(la, "class_anchors", fake_class_anchors)
    la.minilm_anchor_sources(["a {}"], "runs/anchor_cache")
    la.minilm_anchor_sources(["a {}"], None)
    la.minilm_anchor_sources(["a {}"], False)
    assert got == [repo / "runs" / "anchor_cache", None, False]
    assert list((repo / "notebooks").iterdir()) == []


def test_run_study_with_a_relative_cache_trains_under_the_root(tmp_path, monkeypatch, no_workdir_env):
    from zslab.experiments import runner

    repo = _project(tmp_path / "repo")
    monkeypatch.chdir(repo / "notebooks")
    trained = []
    monkeypatch.setattr(runner, "train", lambda cfg, run_dir, resume, data: trained.append(Path(run_dir)) or {})
    [row] = runner.run_study([{"name": "r", "config": {"method": "apn", "seed": 0, "epochs": 1}}], "runs/study",
                             progress=False)
    assert trained and trained[0].parent == repo / "runs" / "study" and row["run_dir"] == str(trained[0])
    assert list((repo / "notebooks").iterdir()) == []


def test_the_command_lines_stay_relative_to_the_working_directory(tmp_path, monkeypatch, no_workdir_env):
    from zslab.experiments import study_queue as sq

    repo = _project(tmp_path / "repo")
    monkeypatch.chdir(repo / "notebooks")
    got = {}

    def fake_queue_runs(*a, cache_dir=None, **kw):
        got["cache_dir"] = cache_dir
        return []

    monkeypatch.setattr(sq, "queue_runs", fake_queue_runs)
    assert sq.main(["--preset", "smoke", "--tables", "table2", "--cache-dir", "mycache", "--dry-run"]) == 0
    assert got["cache_dir"] == repo / "notebooks" / "mycache"  # as typed, from where the command runs
    assert sq.main(["--preset", "smoke", "--tables", "table2", "--dry-run"]) == 0
    assert got["cache_dir"] == repo / "runs" / "study"  # the default: the notebooks' cache


def test_the_notebook_batch_gives_the_kernel_the_callers_project_folder(tmp_path, monkeypatch, no_workdir_env):
    """``zslab notebooks run`` runs each kernel in the notebook's folder: relative paths the notebook
    resolves must mean the caller's project folder, not that folder."""
    import nbformat

    from zslab.report import run_notebook

    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('out_dir = "x"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os, pathlib\nfrom zslab.experiments.paths import work_root\n"
        "pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)\n"
        "(pathlib.Path(out_dir) / 'root.json').write_text("
        "__import__('json').dumps([os.environ.get('ZSLAB_WORKDIR'), str(work_root()), os.getcwd()]))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / "probe.ipynb")
    caller = tmp_path / "caller"
    caller.mkdir()
    monkeypatch.chdir(caller)
    run = run_notebook(nbdir / "probe.ipynb", tmp_path / "out", progress=False)
    assert run.status == "ok", json.dumps(run.error)
    env, root, cwd = json.loads((tmp_path / "out" / "probe" / "root.json").read_text())
    assert env == root == str(caller) and cwd == str(nbdir)
    assert WORKDIR_ENV not in os.environ  # restored afterwards


def test_quickstart_run_from_notebooks_writes_to_the_project_runs(tmp_path, monkeypatch):
    """The kernel of a notebook opened in JupyterLab runs in notebooks/: the quickstart's default
    ``out_dir = "runs/quickstart"`` must still land in the project's runs/, and nothing may be
    generated next to the notebook."""
    import papermill as pm

    from zslab.report import _current_env_kernel_manager

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path))
    pm.execute_notebook(str(ROOT / "notebooks" / "00_quickstart.ipynb"), str(tmp_path / "executed.ipynb"),
                        cwd=str(nbdir), parameters={"preset": "smoke", "out_dir": "runs/quickstart"},
                        kernel_name="python3", kernel_manager_class=_current_env_kernel_manager(),
                        progress_bar=False, log_output=False)
    res = json.loads((tmp_path / "runs" / "quickstart" / "results.json").read_text())
    assert res["preset"] == "smoke" and res["figures"]
    assert Path(res["run_dir"]) == tmp_path / "runs" / "quickstart" / "apn-smoke-seed0"
    assert list(nbdir.iterdir()) == []
