"""Results cards: a notebook's ``results.json`` kept in the repository with its provenance.

Run caches (``notebooks/runs/``) are not committed, so a full-preset study that took hours on a
CPU survives only as rounded numbers in the README unless its per-seed results are kept. A card
is that record (in the spirit of RobustBench's JSON result cards): the notebook's results as it
wrote them, plus the command that made them, the git commit, the date, the library versions, the
CPU and the torch thread count. Cards live in ``results/`` at the repository root; the README's
tables cite them. ::

    python -m zslab.experiments.cards make runs/11/results.json --name 11_has_vs_apn_full \\
        --command "papermill notebooks/11_has_vs_apn.ipynb ... -p preset full" --threads 1
    python -m zslab.experiments.cards check results/*.json

:func:`check_card` re-derives every summary the results hold (a ``summary``, ``table3`` or
``robustness`` block of ``{row: {metric: {"mean", "std", "n"}}}``) from the per-seed rows beside
it (``rows``, ``table3_rows``, ``robustness_rows``), so a card edited by hand, or one whose rows
and summary come from different runs, is caught.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zslab import ZSLabError
from zslab.utils.io import atomic_write_json

__all__ = ["CARD_KEYS", "provenance", "make_card", "write_card", "check_card", "load_card", "main"]

#: top-level keys of a card
CARD_KEYS = ("card", "command", "provenance", "results")
#: provenance keys every card carries
PROVENANCE_KEYS = ("git_commit", "git_dirty", "date", "zslab", "torch", "python", "cpu", "threads")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(threads: int | None = None, repo: str | Path | None = None) -> dict[str, Any]:
    """Where and with what a result was made: git commit (and whether the tree had uncommitted
    changes), UTC date, zslab / torch / Python versions, CPU model, torch thread count."""
    import torch

    import zslab

    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[2]
    commit = _git(["rev-parse", "HEAD"], repo)
    status = _git(["status", "--porcelain", "--untracked-files=no"], repo)
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "zslab": getattr(zslab, "__version__", None), "torch": torch.__version__,
            "python": platform.python_version(), "cpu": _cpu(),
            "threads": int(threads) if threads is not None else None}


def make_card(results: dict, name: str, command: str, threads: int | None = None,
              note: str | None = None) -> dict:
    """A card for ``results`` (a notebook's results dict). ``command``: what reproduces it."""
    if not isinstance(results, dict) or not results:
        raise ZSLabError("a results card needs a non-empty results dict (a notebook's results.json)")
    if not name or "/" in name or name.startswith("."):
        raise ZSLabError(f"card name {name!r} must be a plain file stem such as '11_has_vs_apn_full'")
    if not command or not command.strip():
        raise ZSLabError("a results card needs the command that reproduces it")
    card = {"card": name, "command": command.strip(), "provenance": provenance(threads), "results": results}
    if note:
        card["note"] = note
    check_card(card)
    return card


def write_card(results_path: str | Path, name: str, command: str, out_dir: str | Path = "results",
               threads: int | None = None, note: str | None = None) -> Path:
    """Read a notebook's ``results.json``, wrap it as a card and write ``out_dir/<name>.json``
    atomically; returns the path."""
    results_path = Path(results_path)
    try:
        results = json.loads(results_path.read_text())
    except FileNotFoundError:
        raise ZSLabError(f"results file not found: {results_path}") from None
    except json.JSONDecodeError as e:
        raise ZSLabError(f"{results_path} is not valid JSON: {e}") from None
    card = make_card(results, name, command, threads=threads, note=note)
    path = Path(out_dir) / f"{name}.json"
    atomic_write_json(card, path)
    return path


def load_card(path: str | Path) -> dict:
    """Load and check a card."""
    path = Path(path)
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise ZSLabError(f"results card not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ZSLabError(f"results card {path} is not valid JSON: {e}") from None
    check_card(card, where=str(path))
    return card


# --------------------------------------------------------------------------- consistency
def _is_stat(v) -> bool:
    return isinstance(v, dict) and {"mean", "std", "n"} <= set(v)


def _summary_pairs(obj, path: str = "results"):
    """(path, rows, summary) for every block of per-seed rows with a summary beside it."""
    if isinstance(obj, dict):
        for k, rows in obj.items():
            if k.endswith("rows") and isinstance(rows, list) and rows and all(
                    isinstance(r, dict) and "name" in r and "seed" in r for r in rows):
                stem = k[:-len("_rows")] if k.endswith("_rows") else None
                for sk in ([stem] if stem else []) + ["summary"]:
                    s = obj.get(sk)
                    if isinstance(s, dict) and s and all(isinstance(e, dict) for e in s.values()) and any(
                            _is_stat(v) for e in s.values() for v in e.values()):
                        yield f"{path}.{k}", rows, f"{path}.{sk}", s
                        break
        for k, v in obj.items():
            yield from _summary_pairs(v, f"{path}.{k}")


def _mean_std(vals: list[float]) -> tuple[float, float]:
    m = sum(vals) / len(vals)
    s = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, s


def check_card(card: dict, where: str = "card", tol: float = 1e-9) -> int:
    """Check a card's structure, and that every summary equals the mean and sample std of the
    per-seed rows beside it (same rows per name, one row per seed). Returns how many summary
    statistics were re-derived; raises :class:`ZSLabError` naming the first mismatch."""
    if not isinstance(card, dict):
        raise ZSLabError(f"{where}: a card is a JSON object")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise ZSLabError(f"{where}: missing card keys {missing} (a card has {', '.join(CARD_KEYS)})")
    prov = card["provenance"]
    if not isinstance(prov, dict) or [k for k in PROVENANCE_KEYS if k not in prov]:
        raise ZSLabError(f"{where}: provenance must have {', '.join(PROVENANCE_KEYS)}")
    if not isinstance(card["results"], dict):
        raise ZSLabError(f"{where}: 'results' must be the notebook's results object")
    checked = 0
    for rows_path, rows, sum_path, summary in _summary_pairs(card["results"]):
        by_name: dict[str, list[dict]] = {}
        for r in rows:
            by_name.setdefault(r["name"], []).append(r)
        for name, entry in summary.items():
            rs = by_name.get(name)
            if not rs:
                raise ZSLabError(f"{where}: {sum_path}[{name!r}] has no rows in {rows_path}")
            seeds = [r["seed"] for r in rs]
            if len(set(seeds)) != len(seeds):
                raise ZSLabError(f"{where}: {rows_path} has seed(s) repeated for {name!r}: {seeds}")
            for metric, st in entry.items():
                if not _is_stat(st):
                    continue
                vals = [float(r[metric]) for r in rs if metric in r]
                if st["n"] != len(vals) or len(vals) != len(rs):
                    raise ZSLabError(f"{where}: {sum_path}[{name!r}][{metric!r}] says n={st['n']}, "
                                     f"{rows_path} has {len(vals)} of {len(rs)} rows with it")
                m, s = _mean_std(vals)
                for label, got, want in (("mean", st["mean"], m), ("std", st["std"], s)):
                    if not math.isclose(float(got), want, rel_tol=0, abs_tol=tol):
                        raise ZSLabError(f"{where}: {sum_path}[{name!r}][{metric!r}] {label} {got} "
                                         f"≠ {want} from the rows in {rows_path}")
                checked += 2
    return checked


# --------------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zslab.experiments.cards", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="wrap a notebook's results.json as a card in results/")
    mk.add_argument("results", help="the notebook's results.json")
    mk.add_argument("--name", required=True, help="card name, e.g. 11_has_vs_apn_full")
    mk.add_argument("--command", required=True, help="the command that reproduces the results")
    mk.add_argument("--threads", type=int, default=None, help="torch threads the runs used")
    mk.add_argument("--note", default=None, help="a line on what the card holds or how it was made")
    mk.add_argument("-o", "--out-dir", default="results")
    ck = sub.add_parser("check", help="check cards (structure, summaries re-derived from the rows)")
    ck.add_argument("cards", nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "make":
            print(write_card(a.results, a.name, a.command, a.out_dir, threads=a.threads, note=a.note))
        else:
            for p in a.cards:
                card = load_card(p)
                print(json.dumps({"card": p, "checked": check_card(card, where=p),
                                  "commit": card["provenance"]["git_commit"]}))
    except ZSLabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
