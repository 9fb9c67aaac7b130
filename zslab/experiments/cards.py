"""Results cards: a notebook's ``results.json`` kept in the repository with its provenance.

Run caches (``runs/``) are not committed, so a full-preset study that took hours on a
CPU survives only as rounded numbers in the README unless its per-seed results are kept. A card
is that record (in the spirit of RobustBench's JSON result cards): the notebook's results as it
wrote them, plus the command that made them, the git commit, the date, the library versions, the
CPU and the torch thread count. Cards live in ``results/`` at the repository root, one per paper
table or figure, named after it (``has_table2``; the machine is provenance, never part of a name);
the results pages of the documentation are generated from them. ::

    python -m zslab.experiments.cards make runs/11/results.json --name has_table1 \\
        --command "papermill notebooks/11_has_vs_apn.ipynb ... -p preset full" --threads 1
    python -m zslab.experiments.cards check results/*.json
    python -m zslab.experiments.cards merge session_a.json session_b.json --name has_table2

:func:`check_card` re-derives every summary that has per-seed rows beside it (``rows`` with
``summary`` and ``paired_deltas``; ``table3_rows`` with ``table3`` and ``table3_deltas``; any
``<stem>_rows`` with ``<stem>``, where ``<stem>`` may also be one entry beside rows of one name, and
``<stem>_rows`` may group row lists as ``{group: rows}`` beside ``<stem>`` = ``{group: summary}``, as
Fig. 4's ``sweeps_rows`` and ``sweeps``): means, sample stds, counts and seed-paired differences. A card
edited by hand, or one whose rows and summary come from different runs, is refused, and the
statistics no rows stand behind are listed as unchecked. NaN is stored as JSON null.

:func:`merge_cards` pools the rows of one table trained in several sessions (run caches do not
survive a checkout) into one card, each row with the machine that trained it.
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

import torch

import zslab
from zslab import ZSLabError
from zslab.experiments import runner
from zslab.utils.io import atomic_write_json

__all__ = ["CARD_KEYS", "provenance", "make_card", "write_card", "check_card", "load_card", "merge_cards", "host_of", "main"]

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


def _cpu_fields(cpuinfo: str | None = None) -> dict[str, str]:
    """The first processor's block of ``/proc/cpuinfo`` (or of ``cpuinfo``, its text) as a dict;
    empty where there is none (not Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block only
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _cpu() -> str:
    return _cpu_fields().get("model name") or platform.processor() or platform.machine()


def _cpu_id(cpuinfo: str | None = None) -> str | None:
    """Vendor, family, model, stepping and microcode of the first CPU: the model name alone
    ("AMD EPYC") does not tell two CPU generations apart, and the same run trains to different
    weights on two of them (docs, HAS Table 2)."""
    fields = _cpu_fields(cpuinfo)
    parts = ([fields["vendor_id"]] if fields.get("vendor_id") else []) + [
        f"{k.split()[-1]} {fields[k]}" for k in ("cpu family", "model", "stepping", "microcode") if fields.get(k)]
    return " ".join(parts) or None


def provenance(threads: int | None = None, repo: str | Path | None = None) -> dict[str, Any]:
    """Where and with what a result was made: git commit (and whether the tree had uncommitted
    changes), UTC date, zslab / torch / Python versions, CPU model, torch thread count; and, not
    required of older cards, the CPU's family / model / stepping (``cpu_id``) and the instruction
    set torch's CPU kernels dispatch to (``cpu_capability``, e.g. AVX2 / AVX512)."""
    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[2]
    commit = _git(["rev-parse", "HEAD"], repo)
    status = _git(["status", "--porcelain", "--untracked-files=no"], repo)
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "zslab": getattr(zslab, "__version__", None), "torch": torch.__version__,
            "python": platform.python_version(), "cpu": _cpu(),
            "threads": int(threads) if threads is not None else None,
            "cpu_id": _cpu_id(), "cpu_capability": _cpu_capability()}


def _cpu_capability() -> str | None:
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return None


def _check_name_command(name: str, command: str) -> None:
    if not name or "/" in name or name.startswith("."):
        raise ZSLabError(f"card name {name!r} must be a plain file stem such as 'has_table1'")
    if not command or not command.strip():
        raise ZSLabError("a results card needs the command that reproduces it")


def make_card(results: dict, name: str, command: str, threads: int | None = None,
              note: str | None = None) -> dict:
    """A card for ``results`` (a notebook's results dict). ``command``: what reproduces it."""
    if not isinstance(results, dict) or not results:
        raise ZSLabError("a results card needs a non-empty results dict (a notebook's results.json)")
    _check_name_command(name, command)
    card = {"card": name, "command": command.strip(), "provenance": provenance(threads),
            "results": _nan_to_none(results)}
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


def _p(keys: tuple) -> str:
    """A readable path: results.table3['cutmix']['zsl_t1']."""
    out = "results"
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if str(k).isidentifier() else f"[{k!r}]")
    return out


def _num(v, keys: tuple) -> float:
    """A number (``None`` is NaN, as cards store it); anything else is an error."""
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ZSLabError(f"{_p(keys)}: {v!r} is not a number")
    return float(v)


def _same(a: float, b: float, tol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


def _mean_std(vals: list[float]) -> tuple[float, float]:
    m = sum(vals) / len(vals)
    s = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, s


def _walk(obj, keys: tuple = ()):
    """(keys, value) of every node, depth first."""
    yield keys, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _walk(v, keys + (k,))


def _rows_by_name(rows: list, keys: tuple) -> dict[str, dict[int, dict]]:
    by_name: dict[str, dict[int, dict]] = {}
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "name" not in r or "seed" not in r:
            raise ZSLabError(f"{_p(keys + (i,))} is not a row with a 'name' and a 'seed'")
        seed = r["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ZSLabError(f"{_p(keys + (i,))}: seed {seed!r} is not an integer")
        mine = by_name.setdefault(str(r["name"]), {})
        if seed in mine:
            raise ZSLabError(f"{_p(keys)} has seed {seed} twice for {r['name']!r}")
        mine[seed] = r
    return by_name


def _check_summary(rows_keys, by_name, sum_keys, summary, tol, done: set) -> int:
    if set(summary) != set(by_name):
        raise ZSLabError(f"{_p(sum_keys)} has the rows {sorted(summary)} but {_p(rows_keys)} has {sorted(by_name)}")
    checked = 0
    for name, entry in summary.items():
        rs = list(by_name[name].values())
        for metric, st in (entry.items() if isinstance(entry, dict) else ()):
            if not _is_stat(st):
                continue
            at = sum_keys + (name, metric)
            vals = [_num(r[metric], rows_keys + (name, metric)) for r in rs if metric in r]
            if st["n"] != len(vals) or len(vals) != len(rs):
                raise ZSLabError(f"{_p(at)} says n={st['n']}, {_p(rows_keys)} has {len(vals)} of {len(rs)} rows with it")
            m, sd = _mean_std(vals)
            for label, want in (("mean", m), ("std", sd)):
                got = _num(st[label], at + (label,))
                if not _same(got, want, tol):
                    raise ZSLabError(f"{_p(at)} {label} {got} ≠ {want} from the rows in {_p(rows_keys)}")
            checked += 2
            done.add(at)
    return checked


def _check_deltas(rows_keys, by_name, d_keys, deltas, tol, done: set) -> int:
    """Seed-paired differences (:func:`zslab.experiments.has_study.paired_deltas`) re-derived."""
    named = {e.get("baseline") for e in deltas.values() if isinstance(e, dict)} - {None}
    bases = named or (set(by_name) - set(deltas))  # older deltas: the one row name they lack
    if len(bases) != 1 or next(iter(bases)) not in by_name:
        raise ZSLabError(f"{_p(d_keys)}: cannot tell its baseline row (candidates {sorted(bases)})")
    baseline = next(iter(bases))
    if set(deltas) != set(by_name) - {baseline}:
        raise ZSLabError(f"{_p(d_keys)} has the rows {sorted(deltas)}, {_p(rows_keys)} has "
                         f"{sorted(set(by_name) - {baseline})} besides the baseline {baseline!r}")
    base, checked = by_name[baseline], 0
    for name, entry in deltas.items():
        mine = by_name[name]
        seeds = sorted(set(mine) & set(base))
        for metric, st in entry.items():
            if not _is_stat(st):
                continue
            at = d_keys + (name, metric)
            diffs = [_num(mine[s][metric], rows_keys) - _num(base[s][metric], rows_keys) for s in seeds]
            if st["n"] != len(diffs):
                raise ZSLabError(f"{_p(at)} says n={st['n']}, the rows pair {len(diffs)} seeds with {baseline!r}")
            m, sd = _mean_std(diffs) if diffs else (math.nan, math.nan)
            want = {"mean": m, "std": sd, "worse": float(sum(d < 0 for d in diffs))}
            for label in ("mean", "std", "worse"):
                if label in st and not _same(_num(st[label], at + (label,)), want[label], tol):
                    raise ZSLabError(f"{_p(at)} {label} {st[label]} ≠ {want[label]} from the seed-paired rows "
                                     f"in {_p(rows_keys)}")
            checked += 2
            done.add(at)
    return checked


def check_card(card: dict, where: str = "card", tol: float = 1e-9) -> dict:
    """Check a card's structure and re-derive its summaries from its per-seed rows.

    For every list of rows (a key ``<stem>_rows``, or ``rows``, whose items carry a ``name``):
    every row has a ``name`` and an integer ``seed``, and no seed repeats within a name; the
    summary beside it (key ``<stem>``, or ``summary`` beside ``rows``) has exactly the rows'
    names and equals their mean and sample std (NaN where a row is NaN; cards store NaN as
    null); seed-paired differences beside it (``<stem>_deltas``, or ``paired_deltas`` beside
    ``rows``) equal the rows' differences. A summary beside an empty rows list is an error. A
    summary may be a single entry (``{metric: {mean, std, n}}``) where its rows have one name, and
    ``<stem>_rows`` may be ``{group: rows}`` beside ``<stem>`` = ``{group: summary}``.
    Returns ``{"checked": statistics re-derived, "unchecked": paths of the {mean, std, n}
    statistics that no rows stand behind}``; raises :class:`ZSLabError` naming the first
    mismatch, prefixed by ``where``."""
    try:
        return _check_card(card, tol)
    except ZSLabError as e:
        raise ZSLabError(f"{where}: {e}") from None


def _grouped_rows(v) -> bool:
    """``{group: [row, ...]}`` with at least one named row (lists of rows per sweep, say)."""
    return (isinstance(v, dict) and bool(v) and all(isinstance(g, list) for g in v.values())
            and any(isinstance(r, dict) and "name" in r for g in v.values() for r in g))


def _check_card(card, tol: float) -> dict:
    if not isinstance(card, dict):
        raise ZSLabError("a card is a JSON object")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise ZSLabError(f"missing card keys {missing} (a card has {', '.join(CARD_KEYS)})")
    prov = card["provenance"]
    if not isinstance(prov, dict) or [k for k in PROVENANCE_KEYS if k not in prov]:
        raise ZSLabError(f"provenance must have {', '.join(PROVENANCE_KEYS)}")
    results = card["results"]
    if not isinstance(results, dict):
        raise ZSLabError("'results' must be the notebook's results object")
    checked, done = 0, set()
    for keys, holder in _walk(results):
        if not isinstance(holder, dict):
            continue
        for key, rows in list(holder.items()):
            stem = key[:-len("_rows")] if key.endswith("_rows") else None
            if stem and _grouped_rows(rows):
                # grouped: {group: rows} beside {group: summary}, e.g. Fig. 4's sweeps_rows / sweeps
                summaries = holder.get(stem)
                if not (isinstance(summaries, dict) and set(summaries) == set(rows)):
                    raise ZSLabError(f"{_p(keys + (key,))} groups rows as {sorted(rows)} but {_p(keys + (stem,))} "
                                     f"has {sorted(summaries) if isinstance(summaries, dict) else summaries!r}")
                for group, grows in rows.items():
                    by_name = _rows_by_name(grows, keys + (key, group))
                    checked += _check_summary(keys + (key, group), by_name, keys + (stem, group), summaries[group],
                                              tol, done)
                continue
            if not (key.endswith("rows") and isinstance(rows, list)):
                continue
            sum_key, delta_key = (stem, f"{stem}_deltas") if stem else ("summary", "paired_deltas")
            summary, deltas = holder.get(sum_key), holder.get(delta_key)
            if not rows:
                if isinstance(summary, dict) and any(p for p, v in _walk(summary) if _is_stat(v)):
                    raise ZSLabError(f"{_p(keys + (sum_key,))} has statistics but {_p(keys + (key,))} holds no rows")
                continue
            if not any(isinstance(r, dict) and "name" in r for r in rows):
                continue
            by_name = _rows_by_name(rows, keys + (key,))
            if isinstance(summary, dict) and any(_is_stat(v) for v in summary.values()):
                # one entry, not keyed by row name (e.g. Fig. 4's ``apn`` beside ``apn_rows``): its rows have one name
                if len(by_name) != 1:
                    raise ZSLabError(f"{_p(keys + (sum_key,))} is one entry but {_p(keys + (key,))} has the rows "
                                     f"{sorted(by_name)}")
                only = next(iter(by_name))
                sub: set = set()
                checked += _check_summary(keys + (key,), by_name, keys + (sum_key,), {only: summary}, tol, sub)
                done.update(k[:-2] + k[-1:] for k in sub)  # the entry's own paths, without the row name
            elif isinstance(summary, dict) and summary:
                checked += _check_summary(keys + (key,), by_name, keys + (sum_key,), summary, tol, done)
            if isinstance(deltas, dict) and deltas:
                checked += _check_deltas(keys + (key,), by_name, keys + (delta_key,), deltas, tol, done)
    unchecked = [_p(k) for k, v in _walk(results) if _is_stat(v) and k not in done]
    return {"checked": checked, "unchecked": unchecked}


# ------------------------------------------------------------------------------- merging
#: row fields that differ between two trainings of the same run without the run differing
_VOLATILE_ROW_KEYS = ("cached", "train_seconds", "run_dir")


def _row_lists(results: dict) -> dict[str, tuple[str, str]]:
    """The top-level per-seed row lists of a results dict: ``{rows key: (summary key, deltas key)}``
    (``rows`` → ``summary``/``paired_deltas``; ``<stem>_rows`` → ``<stem>``/``<stem>_deltas``)."""
    out = {}
    for key, rows in results.items():
        if key.endswith("rows") and isinstance(rows, list) and any(isinstance(r, dict) and "name" in r for r in rows):
            stem = key[:-len("_rows")] if key.endswith("_rows") else None
            out[key] = (stem, f"{stem}_deltas") if stem else ("summary", "paired_deltas")
    return out


def _same_numbers(a: dict, b: dict) -> bool:
    """Two rows of the same (name, seed) hold the same measurement: equal in every field but the
    per-training bookkeeping, and the same run directory name (the config's key)."""
    def strip(r: dict) -> dict:
        return {k: v for k, v in r.items() if k not in _VOLATILE_ROW_KEYS and k != "host"}

    return strip(a) == strip(b) and Path(str(a.get("run_dir", ""))).name == Path(str(b.get("run_dir", ""))).name


def _joined(values) -> Any:
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    return distinct[0] if len(distinct) == 1 else ("; ".join(map(str, distinct)) if distinct else None)


def host_of(prov: dict) -> str:
    """The machine of a card's provenance in one line: ``cpu_id`` (or the CPU model where a card
    predates it), torch's CPU capability, the torch thread count."""
    parts = [prov.get("cpu_id") or prov.get("cpu") or "?"]
    if prov.get("cpu_capability"):
        parts.append(str(prov["cpu_capability"]))
    threads = prov.get("threads")
    if threads is not None:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    return ", ".join(parts)


def _statistics(rows: list[dict], summary_like: dict | None, deltas_like: dict | None) -> dict:
    """Summary and seed-paired changes of ``rows``, re-derived with the metrics (and baseline) of
    the given summary and deltas; the rows' ``host`` is provenance, not a tag of a summary."""
    plain = [{k: v for k, v in r.items() if k != "host"} for r in rows]
    out: dict[str, Any] = {}
    if summary_like:
        metrics = tuple(dict.fromkeys(m for e in summary_like.values() for m, v in e.items() if _is_stat(v)))
        out["summary"] = runner.summarize(plain, metrics=metrics)
    if deltas_like:
        baseline = {e.get("baseline") for e in deltas_like.values() if isinstance(e, dict)} - {None}
        if len(baseline) != 1:
            raise ZSLabError(f"cannot tell the baseline row of the seed-paired changes (candidates {sorted(baseline)})")
        base = next(iter(baseline))
        names = {r["name"] for r in plain}
        base_seeds = {r["seed"] for r in plain if r["name"] == base}
        if base in names and all(base_seeds & {r["seed"] for r in plain if r["name"] == n} for n in names):
            metrics = tuple(dict.fromkeys(m for e in deltas_like.values() for m, v in e.items() if _is_stat(v)))
            out["deltas"] = runner.paired_deltas(plain, base, metrics=metrics)
    return out


def merge_cards(sources: list[dict], name: str, command: str, note: str | None = None,
                source_names: list[str] | None = None) -> dict:
    """One card per table from several cards of the same notebook and preset whose runs were
    trained in different sessions, possibly on different machines (say seeds 0–1 in one and
    seed 2 in another): one row per (row name, seed), every summary and seed-paired change
    re-derived from the pooled rows.

    Each pooled row records the machine that trained it (``host``: ``cpu_id``, CPU capability,
    threads; :func:`host_of`). Where several cards hold the same (row name, seed), the **first card
    given** holds the pooled row; a later card's row with the same numbers is listed under its
    source (``same_as_pooled``), and one with other numbers is an *alternative measurement*: kept,
    with its own re-derived summary and seed-paired changes, under ``results["alternatives"]``
    (one block per source card, with its machine), never in the pooled summary.

    Top-level keys other than the row lists, their summaries and deltas are kept where every
    card has the same value (``seeds`` becomes the union); the others (derived numbers such as
    ``has_minus_apn``) are dropped and named under ``results["merge"]["dropped"]``, beside each
    source's name, command, provenance and the runs it gave to the card."""
    if len(sources) < 2:
        raise ZSLabError("merging needs at least two cards")
    _check_name_command(name, command)
    names = list(source_names or [c.get("card", f"card {i}") for i, c in enumerate(sources)])
    for c, n in zip(sources, names):
        check_card(c, where=n)
    res = [c["results"] for c in sources]
    for key in ("notebook", "preset"):
        vals = {json.dumps(r.get(key)) for r in res}
        if len(vals) > 1:
            raise ZSLabError(f"the cards come from different {key}s: {sorted(vals)}")
    row_keys = list(dict.fromkeys(k for r in res for k in _row_lists(r)))
    if not row_keys:
        raise ZSLabError("the cards hold no per-seed rows to merge")

    def label(key: str, row: dict) -> str:
        return f"{row['name']}@{row['seed']}" if key == "rows" else f"{key}:{row['name']}@{row['seed']}"

    pooled: dict[str, dict[tuple[str, int], dict]] = {k: {} for k in row_keys}
    meta = [{"card": n, "command": c["command"], "provenance": c["provenance"], "pooled": [], "same_as_pooled": [],
             "alternative": []} for n, c in zip(names, sources)]
    alt_rows: list[dict[str, list]] = [{k: [] for k in row_keys} for _ in sources]
    for i, r in enumerate(res):
        machine = host_of(sources[i]["provenance"])
        for key in row_keys:
            for row in r.get(key, []):
                at = (row["name"], row["seed"])
                have = pooled[key].get(at)
                if have is None:
                    pooled[key][at] = {**row, "host": machine}
                    meta[i]["pooled"].append(label(key, row))
                elif _same_numbers(have, row):
                    meta[i]["same_as_pooled"].append(label(key, row))
                else:
                    alt_rows[i][key].append(row)
                    meta[i]["alternative"].append(label(key, row))

    derived = {x for r in res for pair in _row_lists(r).values() for x in pair}
    out: dict[str, Any] = {}
    for key, val in res[0].items():
        if key in row_keys or key in derived:
            continue
        if key == "seeds":
            out[key] = sorted({s for r in res for s in (r.get("seeds") or [])})
        elif all(key in r and json.dumps(r[key], sort_keys=True) == json.dumps(val, sort_keys=True) for r in res):
            out[key] = val
    dropped = sorted({k for r in res for k in r} - set(out) - set(row_keys) - derived)

    alternatives = [{"card": names[i], "host": host_of(sources[i]["provenance"]),
                     "date": sources[i]["provenance"].get("date")} for i in range(len(sources))]
    for key in row_keys:
        sum_key, delta_key = next(_row_lists(r)[key] for r in res if key in _row_lists(r))
        summary = next((r[sum_key] for r in res if isinstance(r.get(sum_key), dict) and r[sum_key]), None)
        deltas = next((r[delta_key] for r in res if isinstance(r.get(delta_key), dict) and r[delta_key]), None)
        # row names in the order of the fullest summary (e.g. Table 2's rows, not Table 1's two)
        order = list(dict.fromkeys(n for r in sorted(res, key=lambda r: -len(r.get(sum_key) or {}))
                                   for n in (r.get(sum_key) or {})))
        order += [n for n, _ in pooled[key] if n not in order]
        rows = sorted(pooled[key].values(), key=lambda row: (order.index(row["name"]), row["seed"]))
        out[key] = rows
        stats = _statistics(rows, summary, deltas)
        if "summary" in stats:
            out[sum_key] = stats["summary"]
        if deltas is not None:
            if "deltas" not in stats:
                raise ZSLabError(f"the pooled rows of {key!r} do not pair every row with the baseline of a seed")
            out[delta_key] = stats["deltas"]
        for i, alt in enumerate(alternatives):
            if alt_rows[i][key]:
                alt[key] = alt_rows[i][key]
                stats = _statistics(alt_rows[i][key], summary, deltas)
                if "summary" in stats:
                    alt[sum_key] = stats["summary"]
                if "deltas" in stats:
                    alt[delta_key] = stats["deltas"]
    alternatives = [a for a in alternatives if any(k in a for k in row_keys)]
    if alternatives:
        out["alternatives"] = alternatives
    out["merge"] = {"sources": meta, "dropped": dropped}

    contributing = [c["provenance"] for c, m in zip(sources, meta) if m["pooled"]]
    prov = provenance()
    for key in ("zslab", "torch", "python", "cpu", "cpu_id", "cpu_capability", "threads"):
        prov[key] = _joined(p.get(key) for p in contributing)
    card = {"card": name, "command": command.strip(), "provenance": prov, "results": _nan_to_none(out)}
    if note:
        card["note"] = note
    check_card(card, where=name)
    return card


def _nan_to_none(obj):
    """NaN and ±inf as JSON null (strict JSON parsers reject a bare NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zslab.experiments.cards", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="wrap a notebook's results.json as a card in results/")
    mk.add_argument("results", help="the notebook's results.json")
    mk.add_argument("--name", required=True, help="card name: the paper table or figure, e.g. has_table1")
    mk.add_argument("--command", required=True, help="the command that reproduces the results")
    mk.add_argument("--threads", type=int, default=None, help="torch threads the runs used")
    mk.add_argument("--note", default=None, help="a line on what the card holds or how it was made")
    mk.add_argument("-o", "--out-dir", default="results")
    ck = sub.add_parser("check", help="check cards (structure, summaries re-derived from the rows)")
    ck.add_argument("cards", nargs="+")
    mg = sub.add_parser("merge", help="pool the per-seed rows of several cards of one table into one card "
                                      "(each row records its machine; where cards hold the same row and seed, "
                                      "the first card's row is pooled and other numbers are kept as alternatives)")
    mg.add_argument("cards", nargs="+", help="two or more cards of the same notebook and preset, the reference first")
    mg.add_argument("--name", required=True, help="the merged card's name")
    mg.add_argument("--command", default=None, help="what reproduces it (default: this merge command)")
    mg.add_argument("--note", default=None)
    mg.add_argument("-o", "--out-dir", default="results")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "make":
            print(write_card(a.results, a.name, a.command, a.out_dir, threads=a.threads, note=a.note))
        elif a.cmd == "merge":
            command = a.command or f"python -m zslab.experiments.cards merge {' '.join(a.cards)} --name {a.name}"
            card = merge_cards([load_card(p) for p in a.cards], a.name, command, note=a.note,
                               source_names=[Path(p).stem for p in a.cards])
            path = Path(a.out_dir) / f"{a.name}.json"
            atomic_write_json(card, path)
            print(path)
        else:
            for p in a.cards:
                card = load_card(p)
                print(json.dumps({"card": p, **check_card(card, where=p), "commit": card["provenance"]["git_commit"]}))
    except ZSLabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
