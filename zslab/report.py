"""Batch reproduction: run the notebooks with papermill and write one self-contained report.

    zslab notebooks run [NAME ...] --preset smoke|full --out DIR [--timeout S] [--notebooks-dir D] [-p KEY=VALUE]

:func:`run_notebooks` executes each notebook (a ``parameters`` cell, figures as PNG and a
``results.json`` in ``out_dir``) with ``preset`` and ``out_dir=DIR/<name>`` injected (only the
parameters its ``parameters`` cell declares), in the notebook's own folder as working directory, and
saves the executed notebook as ``DIR/<name>/<name>.ipynb``, signed as trusted for this user
(:func:`trust_notebook`: reopened in JupyterLab it shows its widgets) (``-p KEY=VALUE`` injects more
parameters, again only where declared).  The kernel gets ``$ZSLAB_WORKDIR`` set to the caller's
project folder (:func:`zslab.experiments.paths.work_root`), so a relative ``cache_dir`` (default or
``-p``) resolves as the command's other paths do, never against ``notebooks/``.  A failing
notebook is recorded with the failing cell and its error while the others go on.  :func:`write_report` then writes

* ``DIR/report.html`` — self-contained (figures embedded as base64 PNG): per notebook its status,
  wall time, preset, seeds, every PNG figure it wrote, every table of its ``results.json``, and the
  papers' published numbers beside the measured ones where :mod:`zslab.paper_numbers` maps them
  (HAS Tables 1–3; LAAT Tables 1, 4, 5, 6, S1–S3);
* ``DIR/report.json`` — the machine-readable summary (status, wall seconds, figures, results path,
  error per notebook).

Both files are written atomically (:mod:`zslab.utils.io`).
"""
from __future__ import annotations

import ast
import base64
import datetime as _dt
import html
import json
import math
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from zslab import ZSLabError, __version__
from zslab.paper_numbers import HAS_CITATION, LAAT_CITATION, PAPER_TABLES, comparisons_for
from zslab.utils.io import _atomic, atomic_write_json, ensure_writable_dir

__all__ = ["NotebookRun", "default_notebooks_dir", "find_notebooks", "notebook_parameters", "parse_parameters",
           "run_notebook", "run_notebooks", "trust_notebook", "results_tables", "comparison_tables", "build_html", "write_report"]

#: the parameters a batch run injects (when the notebook's parameters cell declares them)
INJECTED = ("preset", "out_dir")
#: at most this many rows of one results table are shown (the rest stay in results.json)
MAX_TABLE_ROWS = 200
#: lines of the failing cell's source shown in the report
SOURCE_HEAD_LINES = 12

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# ----------------------------------------------------------------------------- notebooks
def default_notebooks_dir() -> Path:
    """``notebooks/`` of the repository holding the ``zslab`` package."""
    return Path(__file__).resolve().parents[1] / "notebooks"


def _notebooks_dir(folder) -> Path:
    folder = Path(folder) if folder is not None else default_notebooks_dir()
    if not folder.is_dir():
        raise ZSLabError(f"notebooks folder not found: {folder}. The notebooks live in the repository's notebooks/ "
                         f"folder (an installed, non-editable zslab does not ship them): run from a checkout "
                         f"(pip install -e .) or pass --notebooks-dir PATH")
    return folder


def find_notebooks(names=None, notebooks_dir=None) -> list[Path]:
    """The notebooks to run: ``names`` (a notebook name like ``00_quickstart``, with or without
    ``.ipynb``, looked up in ``notebooks_dir``; or a path to an ``.ipynb`` file), default every
    ``*.ipynb`` of ``notebooks_dir`` (default :func:`default_notebooks_dir`) in name order."""
    names = list(names or [])
    folder = None
    if not names or any(not _is_path(n) for n in names):
        folder = _notebooks_dir(notebooks_dir)
    if not names:
        paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
        if not paths:
            raise ZSLabError(f"no notebooks (*.ipynb) in {folder}")
    else:
        paths = []
        for n in names:
            if _is_path(n):
                p = Path(n)
                if p.suffix == ".py" and p.with_suffix(".ipynb").is_file():
                    raise ZSLabError(f"{p} is the jupytext pair of {p.with_suffix('.ipynb')}; pass the .ipynb")
                if not p.is_file():
                    raise ZSLabError(f"notebook file not found: {p}")
                if p.suffix != ".ipynb":
                    raise ZSLabError(f"{p} is not a notebook (.ipynb)")
            else:
                p = folder / (n if n.endswith(".ipynb") else f"{n}.ipynb")
                if not p.is_file():
                    have = ", ".join(sorted(q.stem for q in folder.glob("*.ipynb"))) or "none"
                    raise ZSLabError(f"no notebook '{n}' in {folder} (notebooks there: {have})")
            paths.append(p)
    stems = [p.stem for p in paths]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise ZSLabError(f"two notebooks would write to the same DIR/<name> folder: {', '.join(dup)}")
    return [p.resolve() for p in paths]


def _is_path(name: str) -> bool:
    return "/" in name or "\\" in name or (name.endswith(".ipynb") and Path(name).is_file())


def _parameters_cell(path: Path):
    """(index, source) of the first code cell tagged ``parameters``, or (None, None)."""
    import nbformat  # the notebook tooling (nbformat, papermill, jupyter_client) only for `zslab notebooks`

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:  # not JSON, not a notebook
        raise ZSLabError(f"{path} is not a readable notebook ({type(e).__name__}: {e})") from None
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", []):
            return i, c.source
    return None, None


def notebook_parameters(path) -> dict[str, Any]:
    """The names assigned in the notebook's ``parameters`` cell with their default
    values (a Python literal where the default is one, else its source text); ``{}`` without a
    parameters cell."""
    _, src = _parameters_cell(Path(path))
    if src is None:
        return {}
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        raise ZSLabError(f"the parameters cell of {path} is not valid Python ({e.msg}, line {e.lineno})") from None
    out: dict[str, Any] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        for t in targets:
            if isinstance(t, ast.Name) and value is not None:
                try:
                    out[t.id] = ast.literal_eval(value)
                except ValueError:
                    out[t.id] = ast.get_source_segment(src, value)
    return out


def parse_parameters(items) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` -> ``{KEY: VALUE}``; a VALUE that is a Python literal (``3``,
    ``[0, 1]``, ``None``, ``'x'``) is parsed, anything else stays a string."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ZSLabError(f"parameter {item!r} is not KEY=VALUE with KEY a Python name (e.g. -p seeds=[0,1,2])")
        if key in INJECTED:
            raise ZSLabError(f"parameter {key!r} is set by the batch run itself (use --preset / --out)")
        try:
            out[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key] = value.strip()
    return out


# ----------------------------------------------------------------------------- one run
@dataclass
class NotebookRun:
    """One notebook of a batch run (``report.json`` holds :meth:`to_json` of each)."""

    name: str
    source: str                      # the notebook file that ran
    out_dir: str                     # DIR/<name>
    status: str = "not run"          # ok | failed
    wall_seconds: float = 0.0
    preset: str | None = None        # the injected preset (None: the notebook declares none)
    parameters: dict = field(default_factory=dict)   # injected
    defaults: dict = field(default_factory=dict)     # the parameters cell's defaults
    skipped: list = field(default_factory=list)      # wanted but not declared, so not injected
    executed: str | None = None      # DIR/<name>/<name>.ipynb
    results: str | None = None       # DIR/<name>/results.json when the notebook wrote one
    figures: list = field(default_factory=list)      # PNG file names in DIR/<name>
    error: dict | None = None        # failed: cell index/source head, ename, evalue, traceback
    trusted: bool = False            # the executed copy is signed in this user's Jupyter trust database

    def to_json(self) -> dict:
        return asdict(self)


def _current_env_kernel_manager():
    """An nbclient kernel-manager class that starts the kernel with this interpreter (like nbval's
    ``--nbval-current-env``): the notebooks run against the zslab that runs the batch, whatever
    ``python3`` kernelspec the user has installed."""
    # notebook tooling, only for `zslab notebooks`: not imported with zslab.report's tables and HTML
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class _CurrentEnvSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name=f"Python ({sys.executable})", language="python")

    class CurrentEnvKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return _CurrentEnvSpecs()

    return CurrentEnvKernelManager


def _source_index(executed_index: int, param_index: int | None, injected: bool) -> int | None:
    """Index of a cell of the executed notebook in the source notebook: papermill inserts its
    ``injected-parameters`` cell right after the parameters cell (at the top without one);
    ``None`` for that injected cell itself."""
    if not injected:
        return executed_index
    inj = 0 if param_index is None else param_index + 1
    if executed_index == inj:
        return None
    return executed_index - 1 if executed_index > inj else executed_index


def _head(source: str, lines: int = SOURCE_HEAD_LINES) -> str:
    src = source.splitlines()
    return "\n".join(src[:lines] + ([f"... ({len(src) - lines} more lines)"] if len(src) > lines else []))


def _running_cell(executed: Path):
    """(index, source) of the cell that was executing when papermill stopped without a cell error
    (a timeout, a dead kernel): the cell marked running/failed, else the last one that started."""
    import nbformat  # notebook tooling, only for `zslab notebooks`

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:
        return None, None
    last = None
    for i, c in enumerate(nb.cells):
        pm_meta = c.get("metadata", {}).get("papermill", {})
        if pm_meta.get("status") in ("running", "failed"):
            return i, c.source
        if pm_meta.get("start_time"):
            last = i
    return (last, nb.cells[last].source) if last is not None else (None, None)


def run_notebook(path, out, preset: str = "smoke", timeout: float | None = None, kernel_name: str | None = None,
                 progress: bool = True, extra_parameters: dict | None = None) -> NotebookRun:
    """Execute one notebook with papermill into ``out/<name>/`` (see the module docstring).

    ``timeout``: seconds a single cell may run (papermill's ``execution_timeout``); ``kernel_name``:
    a Jupyter kernelspec (default: this Python interpreter).  Never raises for a failure inside the
    notebook: the returned :class:`NotebookRun` has ``status == "failed"`` and ``error`` set.
    """
    # papermill (and nbclient, jupyter) only when notebooks are run, not for the report tables
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from zslab.experiments.paths import WORKDIR_ENV, work_root  # (zslab.experiments loads torch)

    path = Path(path).resolve()
    name = path.stem
    nb_out = ensure_writable_dir(Path(out).resolve() / name)
    try:
        declared = notebook_parameters(path)
        param_index, _ = _parameters_cell(path)
    except ZSLabError as e:  # not a notebook, or a parameters cell that does not parse: this one fails
        return NotebookRun(name=name, source=str(path), out_dir=str(nb_out), status="failed",
                           error={"cell_index": None, "executed_cell_index": None, "execution_count": None,
                                  "source_head": "", "ename": "ZSLabError", "evalue": str(e), "traceback": ""})
    wanted = {"preset": preset, "out_dir": str(nb_out), **(extra_parameters or {})}
    params = {k: v for k, v in wanted.items() if k in declared}
    run = NotebookRun(name=name, source=str(path), out_dir=str(nb_out), preset=params.get("preset"),
                      parameters=params, defaults=declared, skipped=[k for k in wanted if k not in declared])
    if run.skipped:
        _say(f"warning: {name}: its parameters cell declares no {', '.join(run.skipped)}; not injected"
             + ("" if "out_dir" in params else f" (its figures may not land in {nb_out})"))
    executed = nb_out / f"{name}.ipynb"
    run.executed = str(executed)
    kwargs = {} if kernel_name else {"kernel_manager_class": _current_env_kernel_manager()}
    t0 = time.perf_counter()
    try:
        # the kernel runs in the notebook's folder; its relative output paths resolve against the
        # caller's project folder (the kernel inherits this process's environment)
        with _environ(WORKDIR_ENV, str(work_root())):
            pm.execute_notebook(str(path), str(executed), parameters=params, cwd=str(path.parent),
                                kernel_name=kernel_name or "python3", log_output=False,
                                progress_bar={"desc": name, "leave": False} if progress else False,
                                execution_timeout=timeout, **kwargs)
        run.status = "ok"
    except PapermillExecutionError as e:
        run.status = "failed"
        run.error = {"cell_index": _source_index(e.cell_index, param_index, bool(params)),
                     "executed_cell_index": e.cell_index, "execution_count": e.exec_count,
                     "source_head": _head(e.source), "ename": e.ename, "evalue": e.evalue,
                     "traceback": _ANSI.sub("", "\n".join(e.traceback or []))}
    except Exception as e:  # a cell timeout, a dead kernel, a kernel that does not start, ...
        run.status = "failed"
        idx, src = _running_cell(executed)
        run.error = {"cell_index": None if idx is None else _source_index(idx, param_index, bool(params)),
                     "executed_cell_index": idx, "execution_count": None,
                     "source_head": _head(src) if src is not None else "", "ename": type(e).__name__,
                     "evalue": _ANSI.sub("", str(e)).strip()[:2000], "traceback": ""}
    run.wall_seconds = time.perf_counter() - t0
    if executed.is_file():
        run.trusted = trust_notebook(executed)
    run.figures = sorted(p.name for p in nb_out.glob("*.png"))
    res = nb_out / "results.json"
    run.results = str(res) if res.is_file() else None
    return run


def trust_notebook(path) -> bool:
    """Sign the executed notebook ``path`` in this user's Jupyter trust database (what ``jupyter
    trust`` does, and what JupyterLab does when it saves a notebook it ran); returns whether it did.

    JupyterLab renders widget outputs only in a trusted notebook: an untrusted one falls back to
    the output's plain text (``VBox(children=(HBox(...``) although the notebook holds the saved
    widget state. The copies ``zslab notebooks run`` writes are outputs of the user's own command,
    so they are signed here; reopened, they show each widget's last view. Elsewhere (another
    machine, an edited copy) the signature does not match and the explorer's outputs show their
    static figure instead (:class:`zslab.viz.explorer.ExplorerUI`). A failure to sign is a warning."""
    import nbformat  # notebook tooling, only for `zslab notebooks`
    from nbformat.sign import NotebookNotary

    try:
        nb = nbformat.read(str(path), as_version=4)
        NotebookNotary().sign(nb)
        return True
    except Exception as e:  # a read-only or broken trust database: the notebook itself is fine
        _say(f"warning: could not mark {path} as trusted ({type(e).__name__}: {e}); JupyterLab will show its "
             f"widgets as static pictures until you run `jupyter trust {path}`")
        return False


@contextmanager
def _environ(name: str, value: str):
    """Set environment variable ``name`` to ``value`` for the ``with`` block, then restore it."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _say(msg: str) -> None:
    tqdm.write(msg, file=sys.stderr)


def run_notebooks(names=None, out="reproduction", preset: str = "smoke", notebooks_dir=None,
                  timeout: float | None = None, kernel_name: str | None = None, progress: bool = True,
                  extra_parameters: dict | None = None) -> dict:
    """Run the notebooks (:func:`find_notebooks`) one after the other into ``out`` and write
    ``out/report.html`` and ``out/report.json`` (:func:`write_report`); returns the report dict.
    A failed notebook does not stop the others (``report["failed"]`` lists them)."""
    # every argument is checked before the first notebook starts
    if preset not in ("smoke", "full"):
        raise ZSLabError(f"--preset must be smoke or full (the notebooks' presets), got {preset!r}")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
                or timeout <= 0:
            raise ZSLabError(f"--timeout must be a number of seconds > 0 (or left out: no limit), got {timeout!r}")
    paths = find_notebooks(names, notebooks_dir)
    out = ensure_writable_dir(out).resolve()
    runs = []
    bar = tqdm(paths, desc="notebooks", unit="nb", disable=not progress)
    for p in bar:
        bar.set_postfix_str(p.stem)
        r = run_notebook(p, out, preset=preset, timeout=timeout, kernel_name=kernel_name, progress=progress,
                         extra_parameters=extra_parameters)
        runs.append(r)
        line = f"{r.name}: {r.status} in {r.wall_seconds:.1f} s"
        if r.error:
            where = f"cell {r.error['cell_index']}" if r.error.get("cell_index") is not None else "execution"
            line += f" ({where}: {r.error['ename']}: {str(r.error['evalue'])[:200]})"
        _say(line)
    bar.close()
    return write_report(runs, out, preset=preset)


# ----------------------------------------------------------------------------- tables
@dataclass
class Table:
    """A rendered-to-be table: ``rows`` are lists of cell strings (already formatted, not escaped)."""

    title: str
    columns: list
    rows: list
    note: str = ""
    css: str = ""


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_stat(v) -> bool:
    """A ``{"mean", "std", "n"}`` summary (zslab.experiments.*.summarize)."""
    return isinstance(v, dict) and _is_num(v.get("mean")) and set(v) <= {"mean", "std", "n", "ci95", "min", "max"}


def _is_leaf(v) -> bool:
    if v is None or isinstance(v, (str, bool, int, float)) or _is_stat(v):
        return True
    return isinstance(v, list) and all(x is None or isinstance(x, (str, bool, int, float)) for x in v)


def _is_records(d) -> bool:
    """A dict whose values are all dicts with at least one leaf value: one table row per key."""
    return (isinstance(d, dict) and len(d) > 0
            and all(isinstance(v, dict) and not _is_stat(v) and any(_is_leaf(x) for x in v.values())
                    for v in d.values()))


#: how a missing or undefined value (None, NaN) is shown; tables that hold one get :data:`MISSING_NOTE`
MISSING = "—"
MISSING_NOTE = ("— : no value — missing, or not defined for that row (e.g. LAAT runs have no GZSL "
                "calibration factor μ, HAS Eq. 9; their results hold NaN there).")


def _fmt(v, decimals: int | None = None) -> str:
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return MISSING
        return f"{v:.{decimals}f}" if decimals is not None else f"{v:.4g}"
    if _is_stat(v):
        s = _fmt(float(v["mean"]), decimals)
        if v.get("std") and (v.get("n") or 2) > 1:
            s += f" ± {_fmt(float(v['std']), decimals)}"
        if v.get("n") is not None:
            s += f" (n={v['n']})"
        return s
    if isinstance(v, list):
        if all(x is None or isinstance(x, (str, bool, int, float)) for x in v):
            items = [_fmt(x) for x in v[:10]]
            return "[" + ", ".join(items) + (f", … ({len(v)} items)" if len(v) > 10 else "") + "]"
    if isinstance(v, str):
        return v if len(v) <= 300 else v[:300] + "…"
    s = json.dumps(v, default=str)
    return s if len(s) <= 300 else s[:300] + "…"


def _record_table(title: str, items: list, index: str) -> Table:
    cols: list = []
    for _, rec in items:
        for k, v in rec.items():
            if k not in cols and (_is_leaf(v) or index == "#"):
                cols.append(k)
    rows = [[key] + [_fmt(rec.get(c)) if c in rec else "" for c in cols] for key, rec in items[:MAX_TABLE_ROWS]]
    note = f"{len(items) - MAX_TABLE_ROWS} more rows in results.json" if len(items) > MAX_TABLE_ROWS else ""
    return Table(title, [index] + cols, rows, note)


def _walk(obj, path: tuple, out: list) -> None:
    title = " › ".join(path) if path else "results.json"
    if isinstance(obj, dict):
        if not obj:
            return
        if _is_records(obj):
            out.append(_record_table(title, [(str(k), v) for k, v in obj.items()], ""))
            for k, v in obj.items():
                nested = {kk: vv for kk, vv in v.items() if not _is_leaf(vv)}
                if nested:
                    _walk(nested, path + (str(k),), out)
            return
        leaves = {k: v for k, v in obj.items() if _is_leaf(v)}
        nested = {k: v for k, v in obj.items() if not _is_leaf(v)}
        if leaves:
            out.append(Table(title, ["key", "value"], [[str(k), _fmt(v)] for k, v in leaves.items()]))
        if nested and leaves and _is_records(nested):
            _walk(nested, path + (", ".join(map(str, nested)),), out)
        else:
            for k, v in nested.items():
                _walk(v, path + (str(k),), out)
    elif isinstance(obj, list):
        if obj and all(isinstance(x, dict) for x in obj):
            out.append(_record_table(title, [(str(i), x) for i, x in enumerate(obj)], "#"))
        elif obj:
            out.append(Table(title, ["value"], [[_fmt(x)] for x in obj[:MAX_TABLE_ROWS]]))
    else:
        out.append(Table(title, ["value"], [[_fmt(obj)]]))


def results_tables(results) -> list[Table]:
    """Every table of a notebook's ``results.json``: a dict of records (e.g. a study summary, one
    row per key) or a list of records becomes one table; scalars become a key/value table; nested
    parts become their own tables, titled by their key path."""
    out: list[Table] = []
    _walk(results, (), out)
    return out


def _dig(obj, keys):
    for k in keys:
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def _measured(rec, metric: str):
    """The measured value at ``metric`` (a key or a dotted path) of a row dict; stats keep mean/std."""
    if not isinstance(rec, dict):
        return None
    if metric in rec:
        return rec[metric]
    return _dig(rec, metric.split("."))


def comparison_tables(name: str, results: dict | None) -> list[Table]:
    """The paper-vs-measured tables of notebook ``name`` (:data:`zslab.paper_numbers.NOTEBOOK_COMPARISONS`).

    One row per mapped result row; for every mapped metric a *measured* column (this run; fractions
    ×100 where the paper prints percent; mean ± std over seeds when the notebook summarised several)
    and one paper column per dataset group of the table."""
    tables = []
    for c in comparisons_for(name):
        t = PAPER_TABLES[c.table]
        measured_rows = _dig(results, c.at) if results is not None else None
        cols = ["zslab row → paper row"]
        for m, pc in c.metrics.items():
            cols.append(f"{pc}: measured")
            cols += [f"{pc}: paper{(' ' + g) if g else ''}" for g in t.groups]
        rows = []
        for mrow, prow in c.rows.items():
            rec = measured_rows.get(mrow) if isinstance(measured_rows, dict) else None
            cells = [f"{mrow} → {prow}"]
            for m, pc in c.metrics.items():
                dec = t.decimals.get(pc, 2)
                if rec is None:
                    cells.append("not run")
                else:
                    v = _measured(rec, m)
                    scale = 100.0 if pc in t.percent else 1.0
                    if _is_stat(v):
                        v = {**v, "mean": float(v["mean"]) * scale, "std": float(v.get("std") or 0.0) * scale}
                    elif _is_num(v):
                        v = float(v) * scale
                    cells.append(_fmt(v, dec) if (_is_stat(v) or _is_num(v)) else "—")
                for g in t.groups:
                    pv = t.values.get(prow, {}).get(g, {}).get(pc)
                    cells.append("—" if pv is None else f"{pv:.{dec}f}")
            rows.append(cells)
        unit = " Values in %; measured fractions ×100." if t.percent else ""
        notes = [f"Paper: {t.cite()}. Paper setting: {t.setting}."]
        if c.measured_on:
            notes.append(f"Measured on {c.measured_on}.")
        if c.note:
            notes.append(c.note)
        notes += list(t.notes)
        tables.append(Table(f"{t.key}: {t.caption}", cols, rows, " ".join(notes) + unit, css="paper"))
    return tables


# ----------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
 padding:0 1em;color:#222;line-height:1.4;overflow-wrap:anywhere}
.tscroll{max-width:100%;overflow-x:auto;margin:.6em 0 1.2em} .tscroll table{margin:0}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2.2em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.86em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3} caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
table.paper th{background:#e8f0fb} .tnote{font-size:.8em;color:#555;margin:-.9em 0 1.2em;max-width:1100px}
.ok{color:#14702b;font-weight:700} .failed{color:#b3261e;font-weight:700}
.error{border:1px solid #b3261e;background:#fdf0ef;padding:.6em 1em;margin:1em 0}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.82em}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #ddd} figcaption{font-size:.8em;color:#555}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;font-size:.9em}
dl.meta dt{font-weight:600} dl.meta dd{margin:0}
details>summary{cursor:pointer;font-weight:600;margin:.6em 0}
"""


def _e(s) -> str:
    return html.escape(str(s), quote=True)


def _table_html(t: Table) -> str:
    """A table in its own horizontally scrolling box (a wide table never widens the page); a table
    with a missing value (``—``) gets a footnote that says what the dash means."""
    head = "".join(f"<th>{_e(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in t.rows)
    cls = f' class="{t.css}"' if t.css else ""
    notes = [t.note] if t.note else []
    if any(str(c) == MISSING for r in t.rows for c in r):
        notes.append(MISSING_NOTE)
    note = "".join(f'<p class="tnote">{_e(n)}</p>' for n in notes)
    return (f'<div class="tscroll"><table{cls}><caption>{_e(t.title)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{note}")


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _seeds_of(run: NotebookRun, results: dict | None) -> str:
    for src, label in ((results or {}, "results.json"), (run.parameters, "parameter"), (run.defaults, "default")):
        for key in ("seeds", "seed"):
            if isinstance(src, dict) and key in src:
                v = src[key]
                if v is None and key == "seeds":
                    return "the preset's seeds (seeds = None)"
                return f"{_fmt(v)} ({label})"
    return "—"


def _load_results(run: NotebookRun):
    if not run.results:
        return None, None
    try:
        return json.loads(Path(run.results).read_text()), None
    except (OSError, ValueError) as e:
        return None, f"results.json could not be read: {type(e).__name__}: {e}"


def _section(run: NotebookRun, out: Path) -> tuple[str, dict]:
    results, res_err = _load_results(run)
    seeds = _seeds_of(run, results)
    parts = [f'<section id="nb-{_e(run.name)}"><h2>{_e(run.name)} — '
             f'<span class="{_e(run.status)}">{_e(run.status)}</span></h2>']
    rel = (lambda p: _e(Path(p).relative_to(out)) if p and Path(p).is_relative_to(out) else _e(p or "—"))
    meta = [("status", f'<span class="{_e(run.status)}">{_e(run.status)}</span>'),
            ("wall time", f"{run.wall_seconds:.1f} s"),
            ("preset", _e(run.preset if run.preset is not None else "— (the notebook declares no preset parameter)")),
            ("seeds", _e(seeds)),
            ("injected parameters", _e(", ".join(f"{k} = {v!r}" for k, v in run.parameters.items()) or "none")),
            ("notebook", _e(run.source)),
            ("executed notebook", rel(run.executed)),
            ("results.json", rel(run.results) if run.results else "not written")]
    if run.skipped:
        meta.append(("not injected", _e(f"{', '.join(run.skipped)} (not declared in its parameters cell)")))
    parts.append('<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta) + "</dl>")
    if run.error:
        err = run.error
        where = (f"cell {err['cell_index']} of the notebook"
                 + (f" (In [{err['execution_count']}])" if err.get("execution_count") is not None else "")
                 if err.get("cell_index") is not None else "during execution")
        parts.append(f'<div class="error"><b>Failed at {_e(where)}: {_e(err.get("ename"))}: '
                     f'{_e(err.get("evalue"))}</b>')
        if err.get("source_head"):
            parts.append(f"<p>Cell source:</p><pre>{_e(err['source_head'])}</pre>")
        if err.get("traceback"):
            parts.append(f"<details><summary>Traceback</summary><pre>{_e(err['traceback'])}</pre></details>")
        parts.append("</div>")
    if res_err:
        parts.append(f'<div class="error">{_e(res_err)}</div>')
    comps = comparison_tables(run.name, results) if results is not None else []
    if comps:
        parts.append("<h3>Paper vs measured</h3>" + "".join(_table_html(t) for t in comps))
    figures = [f for f in run.figures if (Path(run.out_dir) / f).is_file()]
    if figures:
        parts.append(f"<h3>Figures ({len(figures)})</h3>")
        for f in figures:
            parts.append(f'<figure><img alt="{_e(f)}" src="{_png_data_uri(Path(run.out_dir) / f)}">'
                         f"<figcaption>{_e(f)}</figcaption></figure>")
    listed = results.get("figures") if isinstance(results, dict) else None
    if isinstance(listed, list):
        missing = [f for f in listed if isinstance(f, str) and f not in figures]
        if missing:
            parts.append(f'<p class="failed">Listed in results.json but not found: {_e(", ".join(missing))}</p>')
    if results is not None:
        tables = results_tables(results)
        parts.append(f"<details open><summary>Measured values: results.json ({len(tables)} tables)</summary>"
                     + "".join(_table_html(t) for t in tables) + "</details>")
    elif run.status == "ok":
        parts.append("<p>No results.json was written.</p>")
    parts.append("</section>")
    return "".join(parts), {"seeds": seeds}


def build_html(runs: list[NotebookRun], out, preset: str | None = None, title: str = "zslab reproduction report") -> str:
    """The self-contained report page for ``runs`` whose outputs lie under ``out`` (figures are read
    from each run's ``out_dir`` and embedded as base64 PNG)."""
    out = Path(out).resolve()
    sections, summary = [], []
    for r in runs:
        sec, info = _section(r, out)
        sections.append(sec)
        summary.append([f'<a href="#nb-{_e(r.name)}">{_e(r.name)}</a>', f'<span class="{_e(r.status)}">{_e(r.status)}</span>',
                        f"{r.wall_seconds:.1f}", _e(r.preset or "—"), _e(info["seeds"]), str(len(r.figures)),
                        "yes" if r.results else "no"])
    n_fail = sum(r.status != "ok" for r in runs)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = "".join(f"<th>{c}</th>" for c in ("notebook", "status", "wall s", "preset", "seeds", "figures", "results.json"))
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in summary)
    total = sum(r.wall_seconds for r in runs)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"
            f"<p>{len(runs)} notebooks, {len(runs) - n_fail} ok, <span class=\"{'failed' if n_fail else 'ok'}\">"
            f"{n_fail} failed</span>; preset <b>{_e(preset or '—')}</b>; total wall time {total:.1f} s; "
            f"written {now} by zslab {__version__}.</p>"
            f"<div class=\"tscroll\"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
            "<p class=\"tnote\">Paper numbers come from zslab/paper_numbers.py (copied from the papers, with table, "
            f"row and column): {_e(HAS_CITATION)}; {_e(LAAT_CITATION)}. They were measured on the papers' datasets "
            "and models; the measured values here come from this run's preset, so the comparison is one of "
            "direction and order, not of magnitude.</p>"
            + "".join(sections) + "</body></html>")


def write_report(runs: list[NotebookRun], out, preset: str | None = None) -> dict:
    """Write ``out/report.html`` (:func:`build_html`) and ``out/report.json`` atomically; return
    the report dict (``report.json``'s content)."""
    out = Path(out).resolve()
    page = build_html(runs, out, preset=preset).encode("utf-8")
    _atomic(out / "report.html", lambda f: f.write(page))
    report = {"zslab_version": __version__, "preset": preset,
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "html": str(out / "report.html"), "ok": [r.name for r in runs if r.status == "ok"],
              "failed": [r.name for r in runs if r.status != "ok"],
              "total_wall_seconds": sum(r.wall_seconds for r in runs),
              "notebooks": [r.to_json() for r in runs]}
    atomic_write_json(report, out / "report.json")
    return report
