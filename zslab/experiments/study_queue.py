"""Run the studies' training runs (HAS Tables 2–3 and Fig. 4; LAAT Fig. 3 and Tables 4–6, S1)
with several worker processes.

Notebooks 10–13 and 21 train their runs one after another through
:func:`zslab.experiments.has_study.run_study`. On a machine with more cores than one run uses
well, :func:`run_queue` trains the same runs in parallel: every worker process walks the same
ordered list and *claims* a run before training it (an exclusive ``<run_dir>.claim`` file next
to the run directory), so no run is trained twice; a claim whose process has died is taken over
and the run resumes from its last checkpoint. The run directories are the notebooks' cache, so a
notebook started afterwards (same ``cache_dir``) finds the runs finished::

    python -m zslab.experiments.study_queue --preset full --seeds 0 --workers 2 \\
        --tables augment table2 --cache-dir runs/study
    python -m zslab.experiments.study_queue --preset full --workers 2 --tables laat_robustness laat_curves
    python -m zslab.experiments.study_queue --preset full --tables table2 --seeds 1 2 --workers 2 \\
        --runs baseline@2 cls+div+rel   # single cells / rows, in this order

HAS tables (``table2``, ``augment``, ``sweeps``; :mod:`~zslab.experiments.has_study`) default to
notebooks 10–13's cache ``runs/study``; LAAT tables (``laat_robustness``,
``laat_curves``, ``laat_table4``, ``laat_table5``, ``laat_table6``, ``laat_tableS1``;
:mod:`~zslab.experiments.laat_study`, whose ``full`` preset reads the CIFAR-10 folders,
``--data-root``) default to the notebooks' one run cache, ``runs/study``. The default is taken
under the project folder (:func:`zslab.experiments.paths.work_root`: ``$ZSLAB_WORKDIR``, else the
zslab checkout holding the working directory), where the notebooks find it; a ``--cache-dir``
given on the command line is relative to the working directory.

Each worker sets ``torch.set_num_threads(threads)`` (default 1, so that runs are bitwise
reproducible across machines with the same thread count and the workers do not oversubscribe
the cores).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from zslab import ZSLabError
from zslab.config.resolve import parse_value
from zslab.config.resolve import split_override as _split
from zslab.data import load_dataset
from zslab.experiments import has_study as hs
from zslab.experiments import laat_study as ls
from zslab.experiments import runner
from zslab.experiments.paths import work_path

__all__ = ["TABLES", "HAS_TABLES", "LAAT_TABLES", "DEFAULT_CACHE_DIRS", "default_cache_dir", "queue_runs",
           "select_runs", "claim", "release", "run_queue", "main"]

HAS_TABLES = ("table2", "augment", "sweeps")
LAAT_TABLES = ("laat_robustness", "laat_curves", "laat_table4", "laat_table5", "laat_table6", "laat_tableS1")
TABLES = HAS_TABLES + LAAT_TABLES
#: where each study's notebooks look for their runs (relative to the project folder,
#: :func:`zslab.experiments.paths.work_root`)
DEFAULT_CACHE_DIRS = {"has": "runs/study", "laat": "runs/study"}  # one run cache for every study


def default_cache_dir(study: str) -> Path:
    """The notebooks' cache of ``study`` ("has" | "laat"), absolute: under the project folder
    (``$ZSLAB_WORKDIR``, else the zslab checkout holding the working directory, else the working
    directory; :func:`zslab.experiments.paths.work_path`), where the notebooks' default
    ``cache_dir`` resolves too."""
    return work_path(DEFAULT_CACHE_DIRS[study])


def _study(table: str) -> str:
    return "laat" if table in LAAT_TABLES else "has"


def _laat_runs(table: str, preset: str, seed: int, data_root, cache_dir) -> list[dict]:
    if table == "laat_curves":
        # MMC anchors are a file under the cache, named as notebook 21 names it (cache/anchors)
        data = ls.load_study_data(preset, data_root=data_root)
        return ls.curve_configs(preset, data=data, out_dir=Path(cache_dir) / "anchors", seeds=[seed],
                                data_root=data_root)
    build = {"laat_robustness": ls.robustness_configs, "laat_table4": ls.table4_configs,
             "laat_table5": ls.table5_configs, "laat_table6": ls.table6_configs,
             "laat_tableS1": ls.tableS1_configs}[table]
    return build(preset, seeds=[seed], data_root=data_root)


def queue_runs(preset: str = "full", tables=("augment", "table2"), seeds=None,
               overrides: dict | None = None, data_root=None, cache_dir=None) -> list[dict]:
    """The runs of ``tables`` under study preset ``preset`` (plus ``overrides``, dotted config
    keys, as the notebooks' configs; HAS tables only), in a stable order: for each seed, every
    table in the order given (``table2``: :func:`has_study.table2_configs`; ``augment``:
    :func:`has_study.augmentation_configs`; ``sweeps``: every Fig. 4 sweep; ``laat_*``: the
    :mod:`~zslab.experiments.laat_study` builder of that table, ``data_root`` its CIFAR-10
    folders, ``cache_dir`` the LAAT cache that holds the MMC anchor file of ``laat_curves``).
    Runs with equal configs (``baseline`` and ``none``; a sweep's default value and ``has``;
    LAAT rows shared between tables) appear once."""
    bad = [t for t in tables if t not in TABLES]
    if bad:
        raise ZSLabError(f"unknown table(s) {bad}; choose from {', '.join(TABLES)}")
    laat = [t for t in tables if _study(t) == "laat"]
    if overrides and laat:
        raise ZSLabError(f"config overrides apply to the HAS tables only, not to {laat} (notebook 21 takes none)")
    laat_seeds = ls._seeds(preset, seeds) if laat else ()
    has_seeds = hs._seeds(preset, seeds) if len(laat) < len(tables) else ()
    out, seen = [], set()
    for s in dict.fromkeys(has_seeds + laat_seeds):
        for t in tables:
            if _study(t) == "laat":
                if s not in laat_seeds:
                    continue
                runs = _laat_runs(t, preset, s, data_root, cache_dir or default_cache_dir("laat"))
            elif s not in has_seeds:
                continue
            elif t == "table2":
                runs = hs.table2_configs(preset, seeds=[s], overrides=overrides)
            elif t == "augment":
                runs = hs.augmentation_configs(preset, seeds=[s], overrides=overrides)
            else:
                runs = [r for p in hs.SWEEPS for r in hs.sweep_configs(p, preset, seeds=[s], overrides=overrides)]
            for r in runs:
                key = (r["config"]["method"], r["config"]["seed"], runner.config_key(r["config"]))
                if key not in seen:
                    seen.add(key)
                    out.append(r)
    return out


def select_runs(runs: list[dict], picks) -> list[dict]:
    """The runs of ``runs`` named by ``picks``, in the order of ``picks``: each pick is a run
    name (``"cls+rob"``: that row at every queued seed) or ``name@seed`` (``"cls+rob@2"``: one
    cell of a table). Fills the missing cells of a table first, or in a chosen order; a pick
    that matches no queued run is an error that lists the names there are."""
    out, seen = [], set()
    for pick in picks:
        name, _, seed = str(pick).partition("@")
        try:
            seed = int(seed) if seed else None
        except ValueError:
            raise ZSLabError(f"run {pick!r}: the seed after '@' must be an integer") from None
        hits = [r for r in runs if r["name"] == name and (seed is None or r["config"]["seed"] == seed)]
        if not hits:
            names = ", ".join(dict.fromkeys(r["name"] for r in runs))
            seeds = sorted({r["config"]["seed"] for r in runs})
            raise ZSLabError(f"run {pick!r} is not among the queued runs (names: {names}; seeds: {seeds})")
        for r in hits:
            if id(r) not in seen:
                seen.add(id(r))
                out.append(r)
    return out


def _run_dir(cache_dir: Path, cfg: dict) -> Path:
    # the name run_study gives it
    return cache_dir / f"{cfg['method']}-seed{cfg['seed']}-{runner.config_key(cfg)}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(run_dir: Path) -> int | None:
    """The pid of the live process that has claimed ``run_dir``, if any."""
    try:
        pid = int(run_dir.with_name(run_dir.name + ".claim").read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and _alive(pid) else None


def claim(run_dir: Path) -> bool:
    """Claim ``run_dir`` for this process: True when this process may train it. A claim file
    left by a process that no longer runs is taken over."""
    path = run_dir.with_name(run_dir.name + ".claim")
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _holder(run_dir):
                return False
            try:  # just created by another process that has not written its pid yet
                if path.stat().st_size == 0 and time.time() - path.stat().st_mtime < 10:
                    return False
            except FileNotFoundError:
                continue
            try:  # stale claim: its process died (killed, machine restarted)
                path.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def release(run_dir: Path) -> None:
    run_dir.with_name(run_dir.name + ".claim").unlink(missing_ok=True)


def _metrics(config: dict) -> tuple[str, ...]:
    return ls.METRICS if config["method"] == "laat" else runner.METRICS


def run_queue(runs: list[dict], cache_dir: str | Path, data=None, device: str | None = None,
              log=print) -> list[dict]:
    """Train, in this process, every run of ``runs`` that is neither finished nor claimed by a
    live process; returns the rows (:func:`has_study.run_study`) of the runs it trained.
    ``data``: the dataset the configs describe (default: loaded from each config's dataset keys,
    once per distinct dataset; HAS's shapes cached under ``cache_dir/data``). A relative
    ``cache_dir`` is taken under the project folder, as by :func:`runner.run_study`."""
    cache_dir = work_path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    rows, datasets = [], {}
    for r in runs:
        metrics = _metrics(r["config"])
        rd = _run_dir(cache_dir, r["config"])
        if runner._finished(rd, r["config"], metrics) is not None or not claim(rd):
            continue
        try:
            d = data
            if d is None:
                key = json.dumps([r["config"]["dataset"], r["config"]["data"]], sort_keys=True)
                if key not in datasets:
                    datasets[key] = _load_data(r["config"], cache_dir)
                d = datasets[key]
            t0 = time.time()
            log(f"[{os.getpid()}] training {rd.name} ({r['name']}, seed {r['config']['seed']})")
            [row] = runner.run_study([r], cache_dir, data=d, progress=False, device=device, metrics=metrics)
            rows.append(row)
            log(f"[{os.getpid()}] finished {rd.name} ({r['name']}) in {time.time() - t0:.0f} s: "
                + ", ".join(f"{m} {row[m]:.3f}" for m in metrics))
        finally:
            release(rd)
    return rows


def _load_data(config: dict, cache_dir: Path):
    kw = dict(config["data"])
    if config["dataset"] == "shapes" and config["method"] != "laat":
        kw.setdefault("cache_dir", str(cache_dir / "data"))
    return load_dataset(config["dataset"], **kw)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zslab.experiments.study_queue", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="full", choices=sorted(set(hs.STUDY_PRESETS) & set(ls.STUDY_PRESETS)))
    ap.add_argument("--tables", nargs="+", default=["augment", "table2"], choices=TABLES)
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the preset's seeds")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    ap.add_argument("--cache-dir", default=None,
                    help="run directories (default: the notebooks' one run cache, runs/study in the project "
                         "folder ($ZSLAB_WORKDIR, else the zslab checkout), for HAS and LAAT tables alike)")
    ap.add_argument("--data-root", default=None,
                    help="LAAT full preset: the CIFAR-10 folders (default $ZSLAB_DATA/cifar10; "
                         "without ZSLAB_DATA this option is required)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run (the notebooks must use the same to find the runs)")
    ap.add_argument("--device", default=None, help="override the configs' device (auto | cpu | cuda)")
    ap.add_argument("--runs", nargs="+", default=None, metavar="NAME[@SEED]",
                    help="only these runs, in this order (a row name, e.g. cls+rob, or one cell, cls+rob@2)")
    ap.add_argument("--dry-run", action="store_true", help="list the runs and whether they are finished")
    a = ap.parse_args(argv)
    if a.workers < 1 or a.threads < 1:
        ap.error("--workers and --threads must be at least 1")
    overrides = {k: parse_value(v) for k, v in map(_split, a.set)}
    studies = {_study(t) for t in a.tables}
    if a.cache_dir is None and len(studies) > 1:
        ap.error("HAS and LAAT tables keep their runs in different caches (notebooks 10-13 read "
                 f"{DEFAULT_CACHE_DIRS['has']}, notebook 21 {DEFAULT_CACHE_DIRS['laat']}): queue them in two "
                 "commands, or give --cache-dir and the same cache_dir to the notebooks")
    # a --cache-dir given here is relative to the working directory, as every command line path
    cache_dir = Path(a.cache_dir).absolute() if a.cache_dir else default_cache_dir(studies.pop())
    runs = queue_runs(a.preset, a.tables, a.seeds, overrides, data_root=a.data_root, cache_dir=cache_dir)
    if a.runs:
        runs = select_runs(runs, a.runs)
    if a.dry_run:
        for r in runs:
            rd = _run_dir(cache_dir, r["config"])
            holder = _holder(rd)
            state = "finished" if runner._finished(rd, r["config"], _metrics(r["config"])) is not None else (
                f"training (pid {holder})" if holder else "partial" if (rd / "config.json").exists() else "to do")
            print(f"{r['name']:>16}  seed {r['config']['seed']}  {rd.name}  {state}")
        return 0
    if a.workers == 1:
        torch.set_num_threads(a.threads)
        rows = run_queue(runs, cache_dir, device=a.device, log=lambda m: print(m, flush=True))
        print(json.dumps({"trained": len(rows), "runs": len(runs)}))
        return 0
    args = [sys.executable, "-m", "zslab.experiments.study_queue", "--preset", a.preset, "--tables", *a.tables,
            "--workers", "1", "--threads", str(a.threads), "--cache-dir", str(cache_dir)]
    if a.seeds is not None:
        args += ["--seeds", *map(str, a.seeds)]
    if a.data_root:
        args += ["--data-root", a.data_root]
    if a.device:
        args += ["--device", a.device]
    for item in a.set:
        args += ["--set", item]
    if a.runs:
        args += ["--runs", *a.runs]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    procs = []
    for i in range(a.workers):
        procs.append(subprocess.Popen(args, env=env))
        time.sleep(2.0)  # let the first claim its run (and generate a missing dataset cache) first
    codes = [p.wait() for p in procs]
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
