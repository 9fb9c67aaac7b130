"""The one experiment runner: a study is a list of runs (``{"name", "config", ...tags}``, configs from
the recipe registry :mod:`zslab.config` × seeds); :func:`run_study` trains each into a run cache
keyed by its config (:func:`config_key`), reusing finished runs and resuming unfinished ones;
:func:`summarize` and :func:`paired_deltas` give every study the same summary format (mean ± std
over seeds, n; deltas paired by seed). ``python -m zslab.experiments.study_queue`` fills the same
cache with parallel worker processes.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import torch
from tqdm import tqdm

from zslab import ZSLabError
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

    The run directory is ``out_dir/<method>-seed<seed>-<config_key>``: a finished run there is
    reused (``cached=True``), an unfinished one resumed; runs with equal configs share it. ``data`` is passed to the engine
    (load it once with :func:`load_study_data`; it must be the dataset the configs describe).
    ``device`` overrides the configs' device. Row keys: ``name``, ``seed``, ``method``,
    ``run_dir``, ``cached``, the run's tags, ``metrics`` (default :data:`METRICS`; another
    method's final metric names, e.g. LAAT's, for :mod:`zslab.experiments.laat_study`), ``mu``,
    ``best_epoch``, ``train_seconds``.
    """
    out_dir = Path(out_dir)
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
