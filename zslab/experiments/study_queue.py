"""Run the HAS study's training runs (Tables 2–3, Fig. 4) with several worker processes.

Notebooks 10–13 train their runs one after another through
:func:`zslab.experiments.has_study.run_study`. On a machine with more cores than one run uses
well, :func:`run_queue` trains the same runs in parallel: every worker process walks the same
ordered list and *claims* a run before training it (an exclusive ``<run_dir>.claim`` file next
to the run directory), so no run is trained twice; a claim whose process has died is taken over
and the run resumes from its last checkpoint. The run directories are the notebooks' cache, so a
notebook started afterwards (same ``cache_dir``) finds the runs finished::

    python -m zslab.experiments.study_queue --preset full --seeds 0 --workers 2 \\
        --tables augment table2 --cache-dir notebooks/runs/study

Each worker sets ``torch.set_num_threads(threads)`` (default 1, so that runs are bitwise
reproducible across machines with the same thread count and the workers do not oversubscribe
the cores).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from zslab import ZSLabError
from zslab.experiments import has_study as hs

__all__ = ["queue_runs", "claim", "release", "run_queue", "main"]

TABLES = ("table2", "augment", "sweeps")


def queue_runs(preset: str = "full", tables=("augment", "table2"), seeds=None,
               overrides: dict | None = None) -> list[dict]:
    """The runs of ``tables`` under study preset ``preset`` (plus ``overrides``, dotted config
    keys, as the notebooks' configs), in a stable order: for each seed, every table in the order given (``table2``: :func:`has_study.table2_configs`; ``augment``:
    :func:`has_study.augmentation_configs`; ``sweeps``: every Fig. 4 sweep). Runs with equal
    configs (``baseline`` and ``none``; a sweep's default value and ``has``) appear once."""
    bad = [t for t in tables if t not in TABLES]
    if bad:
        raise ZSLabError(f"unknown table(s) {bad}; choose from {', '.join(TABLES)}")
    out, seen = [], set()
    for s in hs._seeds(preset, seeds):
        for t in tables:
            if t == "table2":
                runs = hs.table2_configs(preset, seeds=[s], overrides=overrides)
            elif t == "augment":
                runs = hs.augmentation_configs(preset, seeds=[s], overrides=overrides)
            else:
                runs = [r for p in hs.SWEEPS for r in hs.sweep_configs(p, preset, seeds=[s], overrides=overrides)]
            for r in runs:
                key = (r["config"]["method"], r["config"]["seed"], hs.config_key(r["config"]))
                if key not in seen:
                    seen.add(key)
                    out.append(r)
    return out


def _run_dir(cache_dir: Path, cfg: dict) -> Path:
    # the name run_study gives it
    return cache_dir / f"{cfg['method']}-seed{cfg['seed']}-{hs.config_key(cfg)}"


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


def run_queue(runs: list[dict], cache_dir: str | Path, data=None, device: str | None = None,
              log=print) -> list[dict]:
    """Train, in this process, every run of ``runs`` that is neither finished nor claimed by a
    live process; returns the rows (:func:`has_study.run_study`) of the runs it trained.
    ``data``: the dataset the configs describe (default: :func:`has_study.load_study_data` for the
    preset that produced them, cached under ``cache_dir/data``)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in runs:
        rd = _run_dir(cache_dir, r["config"])
        if hs._finished(rd, r["config"]) is not None or not claim(rd):
            continue
        try:
            if data is None:
                data = _load_data(r["config"], cache_dir)
            t0 = time.time()
            log(f"[{os.getpid()}] training {rd.name} ({r['name']}, seed {r['config']['seed']})")
            [row] = hs.run_study([r], cache_dir, data=data, progress=False, device=device)
            rows.append(row)
            log(f"[{os.getpid()}] finished {rd.name} ({r['name']}) in {time.time() - t0:.0f} s: "
                f"ZSL T1 {row['zsl_t1']:.3f}, GZSL H {row['gzsl_h']:.3f}")
        finally:
            release(rd)
    return rows


def _load_data(config: dict, cache_dir: Path):
    from zslab.data import load_dataset

    kw = dict(config["data"])
    if config["dataset"] == "shapes":
        kw.setdefault("cache_dir", str(cache_dir / "data"))
    return load_dataset(config["dataset"], **kw)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zslab.experiments.study_queue", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="full", choices=sorted(hs.STUDY_PRESETS))
    ap.add_argument("--tables", nargs="+", default=["augment", "table2"], choices=TABLES)
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the preset's seeds")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    ap.add_argument("--cache-dir", default="notebooks/runs/study",
                    help="run directories, shared with notebooks 10-14 (default notebooks/runs/study)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run (the notebooks must use the same to find the runs)")
    ap.add_argument("--device", default=None, help="override the configs' device (auto | cpu | cuda)")
    ap.add_argument("--dry-run", action="store_true", help="list the runs and whether they are finished")
    a = ap.parse_args(argv)
    if a.workers < 1 or a.threads < 1:
        ap.error("--workers and --threads must be at least 1")
    from zslab.train.config import _split, parse_value

    overrides = {k: parse_value(v) for k, v in map(_split, a.set)}
    runs = queue_runs(a.preset, a.tables, a.seeds, overrides)
    cache_dir = Path(a.cache_dir)
    if a.dry_run:
        for r in runs:
            rd = _run_dir(cache_dir, r["config"])
            holder = _holder(rd)
            state = "finished" if hs._finished(rd, r["config"]) is not None else (
                f"training (pid {holder})" if holder else "partial" if (rd / "config.json").exists() else "to do")
            print(f"{r['name']:>16}  seed {r['config']['seed']}  {rd.name}  {state}")
        return 0
    if a.workers == 1:
        import torch

        torch.set_num_threads(a.threads)
        rows = run_queue(runs, cache_dir, device=a.device, log=lambda m: print(m, flush=True))
        print(json.dumps({"trained": len(rows), "runs": len(runs)}))
        return 0
    import subprocess

    args = [sys.executable, "-m", "zslab.experiments.study_queue", "--preset", a.preset, "--tables", *a.tables,
            "--workers", "1", "--threads", str(a.threads), "--cache-dir", str(cache_dir)]
    if a.seeds is not None:
        args += ["--seeds", *map(str, a.seeds)]
    if a.device:
        args += ["--device", a.device]
    for item in a.set:
        args += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    procs = []
    for i in range(a.workers):
        procs.append(subprocess.Popen(args, env=env))
        time.sleep(2.0)  # let the first claim its run (and generate a missing dataset cache) first
    codes = [p.wait() for p in procs]
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
