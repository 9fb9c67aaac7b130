"""The one experiment runner: a study is a list of runs (``{"name", "config", ...tags}``, configs from
the recipe registry :mod:`zslab.config` × seeds); :func:`run_study` trains each into a run cache
keyed by its config (:func:`config_key`), reusing finished runs and resuming unfinished ones;
:func:`summarize` and :func:`paired_deltas` give every study the same summary format (mean ± std
over seeds, n; deltas paired by seed). ``python -m zslab.experiments.study_queue`` fills the same
cache with parallel worker processes.

The runs themselves are data: the ``runs`` section of ``zslab/config/recipes/studies/<study>.yaml``
names the study's config function and preset lookup and holds its tables (row name → config
overrides, or a value list with the keys each value sets); :func:`study_runs` builds any table
under any preset × seeds.
"""
from __future__ import annotations

import copy
import hashlib
import importlib
import json
from pathlib import Path

import torch
from tqdm import tqdm

from zslab import ZSLabError
from zslab.config.resolve import ConfigError, study_tables
from zslab.experiments.paths import work_path
from zslab.train import train
from zslab.train.config import DEFAULTS, LATE_KEYS, METHOD_DEFAULTS, backfill_defaults, config_diff
from zslab.train.engine import read_run_config

#: the test metrics every attribute-ZSL row carries (fractions in [0, 1]); HAS §4.1, Eq. 8–9
METRICS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")

_VOLATILE = ("progress", "device")  # do not change what a run computes


def config_key(config: dict) -> str:
    """A short stable hash of a config (ignoring ``progress`` and ``device``): the cache key.

    Keys registered in :data:`zslab.train.config.LATE_KEYS` are left out while they hold their
    default value, so adding a new option does not orphan the runs cached before it existed."""
    defaults = {**DEFAULTS, **METHOD_DEFAULTS.get(config.get("method"), {})}
    stable = {k: v for k, v in config.items()
              if k not in _VOLATILE and not (k in LATE_KEYS and k in defaults and v == defaults[k])}
    text = json.dumps(stable, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------ run tables
def _ref(spec: str):
    """The object a ``"package.module:name"`` reference of a study recipe names."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _lookup(preset: dict, path: str):
    """``preset["a"]["b"]`` for ``path`` ``"a.b"``."""
    for part in path.split("."):
        preset = preset[part]
    return preset


def table_spec(study: str, table: str) -> dict:
    """Table ``table`` of ``study``'s ``runs`` section (a fresh copy); unknown tables name the choices."""
    tables = study_tables(study).get("tables", {})
    if table not in tables:
        raise ConfigError(f"unknown {study} table {table!r}; choose from {', '.join(tables)}")
    return tables[table]


def table_rows(spec: dict) -> dict[str, dict]:
    """A row table's rows, ``{name: {"overrides", "tags"}}``: ``rows`` written out (a row is its
    overrides, or ``{overrides, tags}``), or ``rows_from`` a Python table (a dict name → overrides,
    or a list of values, each the row setting ``row_key``)."""
    if "rows_from" in spec:
        src = _ref(spec["rows_from"])
        rows = dict(src) if isinstance(src, dict) else {v: {spec["row_key"]: v} for v in src}
    else:
        rows = spec.get("rows") or {}
    out = {}
    for name, row in rows.items():
        row = row or {}
        if set(row) and set(row) <= {"overrides", "tags"}:
            out[name] = {"overrides": dict(row.get("overrides") or {}), "tags": dict(row.get("tags") or {})}
        else:
            out[name] = {"overrides": dict(row), "tags": {}}
    return out


def value_overrides(spec: dict, value) -> dict:
    """The config overrides of one value of a value table: ``keys`` a list (each key set to the
    value) or a mapping key → base (``scale: true``: each key set to base × value)."""
    keys = spec["keys"]
    if isinstance(keys, dict):
        if not spec.get("scale"):
            raise ConfigError(f"a value table with keys {dict(keys)} needs scale: true")
        return {k: base * value for k, base in keys.items()}
    return {k: value for k in keys}


def _values(spec: dict, sp: dict, values) -> list[float]:
    if values is None:
        if "preset_values" in spec:  # the preset lists the values
            values = _lookup(sp, spec["preset_values"])
        else:  # the table lists them; the preset may keep only k: the default and the k − 1 largest others
            values = spec["values"]
            k = _lookup(sp, spec["preset_count"]) if "preset_count" in spec else None
            if k is not None and k < len(values):
                others = [v for v in values if v != spec["default"]]
                values = [spec["default"]] + (others[len(others) - (k - 1):] if k > 1 else [])
    values = [float(v) for v in values]
    return sorted(values) if spec.get("sort") else values


def study_runs(study: str, table: str, preset: str = "smoke", rows=None, seeds=None, overrides: dict | None = None,
               extra_rows: dict | None = None, **config_kw) -> list[dict]:
    """The runs of one table of a study: ``{"name", "config", **tags}`` per (row, seed), rows in
    order, seeds inside rows.

    The table comes from the ``runs`` section of ``zslab/config/recipes/studies/<study>.yaml``:
    ``config`` (a ``"module:function"`` reference, called as ``f(method, preset, overrides, seed,
    **config_kw)``), ``preset`` (the study's preset lookup) and ``tables``. A table is either
    rows (:func:`table_rows`; ``rows`` here: the names to build, default the preset's
    ``preset_rows`` entry, or every row when that is null) or values (``keys`` set per value,
    :func:`value_overrides`; ``rows`` here: the values, default ``values`` cut to the preset's
    ``preset_count``, or the preset's ``preset_values``; row names from the ``name`` format with
    ``{table}`` and ``{value}``). A row's method is its ``method`` override, else the table's
    ``method``. ``overrides`` apply to every row (the row's own keys win); ``extra_rows``
    (name → overrides) are appended to a row table; ``seeds`` default to the preset's. Tags:
    the table's ``tags`` then the row's, with ``$name``, ``$table`` and ``$value`` filled in.
    """
    runs_spec = study_tables(study)
    spec = table_spec(study, table)
    sp = _ref(runs_spec["preset"])(preset)
    if "keys" in spec:  # a value table
        seen, entries = set(), []
        for v in _values(spec, sp, rows):
            name = spec["name"].format(table=table, value=v)
            if spec.get("unique") and name in seen:
                continue
            seen.add(name)
            entries.append((name, v, {"overrides": value_overrides(spec, v), "tags": {}}))
    else:
        table_rows_ = table_rows(spec)
        table_rows_.update({n: {"overrides": dict(o), "tags": {}} for n, o in (extra_rows or {}).items()})
        if rows is None and "preset_rows" in spec:
            rows = _lookup(sp, spec["preset_rows"])
        names = list(table_rows_) if rows is None else list(rows)
        bad = [n for n in names if n not in table_rows_]
        if bad:
            raise ConfigError(f"unknown {spec.get('what', table + ' row')}(s) {bad}; choose from {', '.join(table_rows_)}")
        entries = [(n, None, table_rows_[n]) for n in names]
    make = _ref(runs_spec["config"])
    seeds = tuple(int(s) for s in (sp["seeds"] if seeds is None else seeds))
    fill = {"$table": table}
    out = []
    for name, value, row in entries:
        fill.update({"$name": name, "$value": value})
        tags = {k: fill.get(v, v) if isinstance(v, str) else v for k, v in {**spec.get("tags", {}), **row["tags"]}.items()}
        over = {**(overrides or {}), **row["overrides"]}
        method = row["overrides"].get("method", spec.get("method"))
        for s in seeds:
            out.append({"name": name, "config": make(method, preset, dict(over), s, **config_kw), **tags})
    return out


def _finished(run_dir: Path, config: dict, metrics_needed=METRICS) -> dict | None:
    """The run's ``final`` metrics when ``run_dir`` holds a finished run of ``config`` (its
    ``final`` has every name in ``metrics_needed``)."""
    try:
        old = read_run_config(run_dir)
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError, ZSLabError):
        return None
    final = metrics.get("final") or {}
    # a run written before a config key existed lacks it: it is the same run while the key holds its default
    same = not [d for d in config_diff(backfill_defaults(old), config) if d.split(":")[0] not in _VOLATILE]
    if same and all(m in final for m in metrics_needed) and len(metrics.get("history", [])) == config["epochs"]:
        return final
    return None


def run_study(runs: list[dict], out_dir: str | Path, data=None, progress: bool = True,
              device: str | None = None, metrics=METRICS) -> list[dict]:
    """Train every run (``{"name", "config", **tags}``) into ``out_dir``; one row per run.

    The run directory is ``out_dir/<method>-seed<seed>-<config_key>`` (a relative ``out_dir`` is
    taken under the project folder, :func:`zslab.experiments.paths.work_path`): a finished run there is
    reused (``cached=True``), an unfinished one resumed; runs with equal configs share it. ``data`` is passed to the engine
    (load it once with :func:`load_study_data`; it must be the dataset the configs describe).
    ``device`` overrides the configs' device. Row keys: ``name``, ``seed``, ``method``,
    ``run_dir``, ``cached``, the run's tags, ``metrics`` (default :data:`METRICS`; another
    method's final metric names, e.g. LAAT's, for :mod:`zslab.experiments.laat_study`), ``mu``,
    ``best_epoch``, ``train_seconds``.
    """
    out_dir = work_path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    bar = tqdm(runs, desc="study", disable=not progress, mininterval=0.5)
    for run in bar:
        if "name" not in run or "config" not in run:
            raise ZSLabError(f"run_study expects dicts with 'name' and 'config'; got keys {sorted(run)}")
        cfg = copy.deepcopy(run["config"])
        if device is not None:
            cfg["device"] = device
        # named by method, seed and config hash only: equal configs under different names (Table 2's
        # "baseline" and Table 3's "none") share one run directory
        run_dir = out_dir / f"{cfg['method']}-seed{cfg['seed']}-{config_key(cfg)}"
        bar.set_postfix_str(run_dir.name)
        final = _finished(run_dir, cfg, metrics)
        cached = final is not None
        if not cached:
            resume = (run_dir / "config.json").exists()
            if resume:  # keep the stored device/progress so the engine's resume check passes
                old = read_run_config(run_dir)
                for k in _VOLATILE:
                    if k in old:
                        cfg[k] = old[k]
            final = train(cfg, run_dir, resume=resume, data=data)
        tags = {k: v for k, v in run.items() if k not in ("name", "config")}
        row = {"name": run["name"], "seed": cfg["seed"], "method": cfg["method"], "run_dir": str(run_dir),
               "cached": cached, **tags}
        for k in tuple(metrics) + ("mu", "best_epoch", "train_seconds"):
            row[k] = final.get(k, float("nan"))
        rows.append(row)
    bar.close()
    return rows


def summarize(rows: list[dict], by: str = "name", metrics=METRICS) -> dict[str, dict]:
    """Mean and sample std (0 with one seed) of ``metrics`` per value of ``rows[i][by]``, in
    first-appearance order: ``{key: {metric: {"mean", "std", "n"}, **tags of the first row}}``."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    out = {}
    for key, rs in groups.items():
        entry = {k: v for k, v in rs[0].items() if k not in metrics and k not in ("seed", "run_dir", "cached",
                                                                                  "mu", "best_epoch", "train_seconds")}
        for m in metrics:
            vals = torch.tensor([float(r[m]) for r in rs], dtype=torch.float64)
            std = float(vals.std(unbiased=True)) if len(vals) > 1 else 0.0
            entry[m] = {"mean": float(vals.mean()), "std": std, "n": len(vals)}
        out[key] = entry
    return out


def paired_deltas(rows: list[dict], baseline: str, by: str = "name", metrics=METRICS) -> dict[str, dict]:
    """Seed-paired differences against row ``baseline``: for every other row name and metric,
    the mean and sample std over seeds of ``row(seed) − baseline(seed)`` and ``worse``, the
    number of seeds where the row is below the baseline. Within a seed both runs start from the
    same initialisation and batch order, so the paired std is the honest error bar of a change
    (the two rows' own stds also hold the seed-to-seed spread they share). Only seeds that both
    rows ran count (``n``); a row with none in common, or a seed twice in one row, is an error.
    Each entry names its ``baseline``."""
    groups: dict[str, dict[int, dict]] = {}
    for r in rows:
        g = groups.setdefault(r[by], {})
        if int(r["seed"]) in g:
            raise ZSLabError(f"row {r[by]!r} has seed {int(r['seed'])} twice")
        g[int(r["seed"])] = r
    if baseline not in groups:
        raise ZSLabError(f"baseline row {baseline!r} not among the rows ({', '.join(groups)})")
    base = groups[baseline]
    out = {}
    for name, by_seed in groups.items():
        if name == baseline:
            continue
        seeds = sorted(set(by_seed) & set(base))
        if not seeds:
            raise ZSLabError(f"row {name!r} shares no seed with the baseline {baseline!r}")
        entry = {"baseline": baseline, "seeds": seeds}
        for m in metrics:
            d = torch.tensor([float(by_seed[s][m]) - float(base[s][m]) for s in seeds], dtype=torch.float64)
            entry[m] = {"mean": float(d.mean()), "std": float(d.std(unbiased=True)) if len(d) > 1 else 0.0,
                        "n": len(d), "worse": int((d < 0).sum())}
        out[name] = entry
    return out


# ------------------------------------------------------------------------------ analyses
