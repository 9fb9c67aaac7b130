"""The generated parts of the documentation site (``mkdocs.yml`` loads this file as a hook).

Pages in ``docs/`` are hand-written markdown; where a page holds a marker comment

    <!-- zslab:recipes -->                the configuration registry, each value with its source
    <!-- zslab:studies -->                the studies' presets (recipes/studies/*.yaml)
    <!-- zslab:cli -->                    every command's --help, from the argparse parsers
    <!-- zslab:card NAME [collapsed] -->  a results card (results/NAME.json): machine, command,
                                          per-seed rows, mean ± std over seeds, seed-paired changes
                                          (``collapsed``: inside a block the reader opens)
    <!-- zslab:cards -->                  the list of every card in results/
    <!-- zslab:include PATH -->           a repository file's markdown (its first heading dropped)
    <!-- zslab:api MODULE -->             mkdocstrings blocks (``::: name``) for a module or a
                                          package and every public submodule found on disk

the hook replaces it with markdown generated from the code and data at build time
(:func:`on_page_markdown`), in memory; it also serves every ``notebooks/*.ipynb`` as a download at
``notebooks/NAME.ipynb`` (:func:`on_files`), which the notebooks page links: nothing is written into ``docs/``, so ``mkdocs serve``
does not rebuild in a loop, and the committed pages never go stale. On GitHub the markers are
invisible comments; each page says in words what the site shows there.

Also a script, to look at one generated part without building the site::

    python tools/gen_docs.py recipes | studies | cli | cards | card NAME | page docs/results/has-table1.md
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def _on_path() -> None:
    """zslab and bench (for its --help) from this checkout. Called before each import: mkdocs
    plugins may restore ``sys.path`` between the hook's import and its calls."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"<!--\s*zslab:([a-z_-]+)(?:[ \t]+([^\n>]*?))?\s*-->")

#: datasets shown per method in the recipes page (the first one a preset supports is the example)
METHODS = ("apn", "has", "laat")
DATASETS = ("shapes", "folder", "cifar10", "cub", "awa1", "awa2", "sun", "apy", "cifar-fs", "miniimagenet")
STUDIES = ("has", "laat", "cross_paper", "laat_anchors")


# ============================================================================== small helpers
def _cell(text: Any) -> str:
    """A markdown table cell: pipes escaped, newlines flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(value: Any, key: str = "") -> str:
    """A value as inline code (JSON spelling, as ``zslab config show`` prints it); a perturbation
    size (a key ending in ``eps`` or ``step``/``step_size``) that is k/255 also as the fraction."""
    s = value if isinstance(value, str) and value.startswith("<") else json.dumps(value, ensure_ascii=False)
    out = "`" + _cell(s).replace("`", "'") + "`"
    if isinstance(value, float) and 0 < value < 1 and re.search(r"(eps|step|step_size)$", key):
        k = value * 255
        if abs(k - round(k)) < 1e-9 and round(k) >= 1:
            out += f" (= {round(k)}/255)"
    return out


def _table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _indent(text: str, n: int = 4) -> str:
    pad = " " * n
    return "\n".join(pad + line if line.strip() else "" for line in text.splitlines())


def _details(title: str, body: str, open_: bool = False) -> str:
    """A collapsible block (pymdownx.details)."""
    return f'{"???+" if open_ else "???"} note "{title}"\n\n{_indent(body)}\n'


# ============================================================================== recipes
def _leaves(res) -> dict[str, Any]:
    """dotted key -> value, in the document's order (the keys ``res.sources`` describes)."""
    out: dict[str, Any] = {}

    def walk(tree: dict, prefix: str) -> None:
        for k, v in tree.items():
            if isinstance(v, dict) and v:
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v

    walk(res.doc, "")
    return out


def _resolve(method: str, dataset: str, preset: str):
    from zslab.config.resolve import ConfigError, resolve

    try:
        return resolve(method, dataset, preset, allow_missing=True)
    except ConfigError:
        return None


def recipe_table(res) -> str:
    """Every key of a resolved configuration: value, the layer that set it, the schema's description.
    Values a recipe layer set (not the schema default) are in bold."""
    from zslab.config.show import description

    rows = []
    for key, value in _leaves(res).items():
        src = res.sources.get(key, "default")
        k = f"`{key}`"
        if src not in ("default", "command"):
            k = f"**{k}**"
        rows.append([k, _code(value, key), f"`{src}`", description(key, res.dataset)])
    return _table(["key", "value", "source", "description"], rows)


#: the dataset each preset's table shows: the embedded one, or the papers' for their recipes
EXAMPLE = {("apn", "paper"): "cub", ("has", "paper"): "cub", ("laat", "paper"): "cifar-fs"}


def _example_dataset(method: str, preset: str) -> str | None:
    first = EXAMPLE.get((method, preset))
    for d in ((first,) if first else ()) + DATASETS:
        if _resolve(method, d, preset) is not None:
            return d
    return None


def _dataset_diffs(method: str, preset: str, base) -> list[list[str]]:
    """Keys a recipe layer sets differently on another dataset than on ``base``'s dataset."""
    rows = []
    base_leaves = _leaves(base)
    for d in DATASETS:
        if d == base.dataset:
            continue
        res = _resolve(method, d, preset)
        if res is None:
            continue
        changes = []
        for key, value in _leaves(res).items():
            src = res.sources.get(key, "default")
            if src in ("default", "command"):
                continue
            if key in base_leaves and base_leaves[key] == value and base.sources.get(key) == src:
                continue
            changes.append(f"`{key}` = {_code(value, key)} [`{src}`]")
        rows.append([f"`{d}`", "<br>".join(changes) or "(as on " + base.dataset + ")"])
    return rows


def _unsupported(method: str, preset: str) -> list[str]:
    return [d for d in DATASETS if _resolve(method, d, preset) is None]


def recipes_markdown() -> str:
    """The configuration registry as markdown: per method, one tab per preset with every key."""
    from zslab.config.resolve import LAYERS, recipe
    from zslab.config.schema import PRESETS

    out = [f"Layers, a later one wins: {' → '.join(f'`{layer}`' for layer in LAYERS)}. "
           "The source column names the layer that set the value last (`preset:smoke` = "
           "`zslab/config/recipes/presets/smoke.yaml`, `method` = `recipes/methods.yaml`, "
           "`dataset:NAME` = `recipes/datasets.yaml`, `default` = the schema). "
           "Keys a recipe sets are in **bold**.", ""]
    out.append("## Presets\n")
    out.append(_table(["preset", "what"], [[f"`{p}`", recipe(f"presets/{p}").get("description", "")]
                                           for p in PRESETS]))
    out.append("")
    for method in METHODS:
        out.append(f"## `{method}`\n")
        for preset in PRESETS:
            dataset = _example_dataset(method, preset)
            out.append(f'=== "{preset}"\n')
            if dataset is None:
                out.append(_indent(f"No dataset takes preset `{preset}` for `{method}`.") + "\n")
                continue
            res = _resolve(method, dataset, preset)
            body = [f"`zslab config show {method} --dataset {dataset} --preset {preset}`:", "",
                    recipe_table(res), ""]
            diffs = _dataset_diffs(method, preset, res)
            if diffs:
                body += [f"On other datasets, the values a recipe sets differently from `{dataset}` "
                         "(the `data` section follows each dataset format's own schema; "
                         "`<required>` keys must be given with `--set`):", "",
                         _table(["dataset", "keys"], diffs), ""]
            no = _unsupported(method, preset)
            if no:
                body.append(f"Not available for `{method}` with `{preset}`: "
                            + ", ".join(f"`{d}`" for d in no) + ".")
            out.append(_indent("\n".join(body)) + "\n")
    return "\n".join(out)


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = obj
    return out


def studies_markdown() -> str:
    """Every study's presets (``zslab/config/recipes/studies/*.yaml``) side by side."""
    from zslab.config.resolve import recipe

    out = []
    for study in STUDIES:
        table = {k: v for k, v in recipe(f"studies/{study}").items() if k != "runs"}  # runs: the run tables
        presets = list(table)
        flats = {p: _flat(table[p]) for p in presets}
        keys = list(dict.fromkeys(k for p in presets for k in flats[p]))
        rows = [[f"`{k}`"] + [_code(flats[p][k], k) if k in flats[p] else "—" for p in presets] for k in keys]
        out += [f"### `{study}`\n", f"Source: `zslab/config/recipes/studies/{study}.yaml`; "
                f"`zslab.config.resolve.study_presets({study!r})`.\n",
                _table(["key"] + [f"`{p}`" for p in presets], rows), ""]
    return "\n".join(out)


# ============================================================================== CLI
def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse keeps no public list of subcommands
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


class _Captured(Exception):
    def __init__(self, parser):
        super().__init__("parser captured")
        self.parser = parser


def _parser_of(main) -> argparse.ArgumentParser:
    """The parser a ``main(argv)`` builds, taken at its first ``parse_args`` (nothing runs)."""
    orig = argparse.ArgumentParser.parse_known_args

    def capture(self, *a, **k):
        raise _Captured(self)

    argparse.ArgumentParser.parse_known_args = capture
    try:
        main([])
    except _Captured as c:
        return c.parser
    finally:
        argparse.ArgumentParser.parse_known_args = orig
    raise RuntimeError(f"{main} returned without parsing arguments")


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # one width, whatever the terminal
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _command_sections(parser: argparse.ArgumentParser, name: str, level: int, skip=()) -> list[str]:
    out = [f"{'#' * level} `{name}`\n", "```text", _help(parser), "```", ""]
    for sub, p in _subparsers(parser):
        if sub in skip:
            continue
        out += _command_sections(p, f"{name} {sub}", min(level + 1, 4))
    return out


def cli_markdown() -> str:
    """``--help`` of every command and subcommand."""
    import bench.__main__ as bench_main
    from zslab.cli import build_parser
    from zslab.experiments import cards, study_queue

    out = ["## `zslab`\n", "```text", _help(build_parser()), "```", ""]
    for sub, p in _subparsers(build_parser()):
        if sub == "bench":  # `zslab bench ARGS` hands ARGS to `python -m bench`
            out += [f"### `zslab bench`\n", "`zslab bench ARGS` runs `python -m bench ARGS` "
                    "(the `bench/` suite of a source checkout):\n", "```text",
                    _help(_parser_of(bench_main.main)), "```", ""]
            continue
        out += _command_sections(p, f"zslab {sub}", 3)
    out += ["## Module commands\n"]
    out += _command_sections(_parser_of(study_queue.main), "python -m zslab.experiments.study_queue", 3)
    out += _command_sections(_parser_of(cards.main), "python -m zslab.experiments.cards", 3)
    return "\n".join(out)


# ============================================================================== results cards
#: metrics stored as fractions that the pages show in percent
PERCENT = {"zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "localisation", "zs_clean", "zs_pgd", "gzsl_clean",
           "gzsl_pgd", "gzsl_cs_u", "gzsl_cs_s", "gzsl_cs_h", "gzsl_cs_h_uncalibrated", "acc", "clean_acc",
           "aug_acc", "agreement", "share", "peak", "chance", "drop", "val_zs", "clean", "clean_ci95",
           # entries whose every number is such a fraction
           "fig3_curves", "colour_agreement", "table3_attribute_cost"}
#: columns that index a series (a table of parallel lists without one gets a row number)
INDEX_COLS = {"epoch", "shots", "step", "steps", "seed", "eps"}
#: per-run bookkeeping not worth a column
SKIP = {"cached", "run_dir"}
#: what a card's common keys hold
KEY_NOTES = {
    "rows": "per-seed rows: one line per trained run",
    "summary": "mean ± sample std over the seeds of each row (n = seeds)",
    "paired_deltas": "seed-paired change of each row against the baseline of the same seed: mean ± std, "
                     "and on how many seeds the row is worse",
    "has_minus_apn": "HAS − APN of the means",
    "table3_rows": "per-seed rows: one line per trained run",
    "table3": "mean ± sample std over the seeds (n = seeds)",
    "table3_deltas": "seed-paired change against `none` of the same seed: mean ± std, and on how many "
                     "seeds the augmentation is worse",
    "table3_attribute_cost": "mean over the attribute groups of the unseen test images' attribute "
                             "accuracy lost against no augmentation (fraction)",
    "spread": "the default HAS over `spread_seeds`: mean ± std (the bands of the figure)",
    "figures": "files the notebook wrote next to its results.json (not in the repository; see the gallery)",
}
MAX_OPEN_ROWS = 25


def _is_stat(v) -> bool:
    return (isinstance(v, dict) and {"mean", "std", "n"} <= set(v)
            and (v["mean"] is None or isinstance(v["mean"], (int, float))))


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _fmt(v: Any, key: str = "", signed: bool = False, pct: bool = False) -> str:
    """A number as the pages show it: fractions of :data:`PERCENT` keys in percent (1 decimal),
    other floats with 4 significant digits, NaN/None as a dash."""
    pct = pct or key in PERCENT
    if v is None:
        return "—"
    if isinstance(v, bool) or isinstance(v, str):
        return str(v)
    if isinstance(v, int) and key not in PERCENT:  # counts, epochs, seeds: never a fraction
        return f"{v:+d}" if signed else str(v)
    if isinstance(v, (int, float)):
        v = float(v)
        if math.isnan(v):
            return "—"
        if pct:
            return f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}"
        if v == int(v) and abs(v) < 1e6:
            return f"{int(v):+d}" if signed else str(int(v))
        return f"{v:+.4g}" if signed else f"{v:.4g}"
    if isinstance(v, list) and all(_is_scalar(x) for x in v):
        return ", ".join(_fmt(x, key, pct=pct) for x in v)
    return _cell(json.dumps(v))


def _fmt_stat(s: dict, key: str, signed: bool = False, show_n: bool = False, pct: bool = False) -> str:
    txt = _fmt(s["mean"], key, signed, pct)
    if s.get("n") != 1:  # one seed has no spread
        txt += f" ± {_fmt(s['std'], key, pct=pct)}"
    if show_n:
        txt += f" (n = {s['n']})"
    if "worse" in s:
        txt += f" (worse {s['worse']}/{s['n']})"
    return txt


def _col(key: str, pct: bool = False) -> str:
    return f"{key} (%)" if (pct or key in PERCENT) else key


def _records_table(records: list[dict], pct: bool = False, index: list[str] | None = None) -> str:
    """Rows of dicts: scalar fields (one level of nested dicts flattened, stats as mean ± std).
    ``index``: a first column naming each record (records given as ``{name: record}``)."""
    cols: dict[str, None] = {}
    flat_rows = []
    for r in records:
        fr = {}
        for k, v in r.items():
            if k in SKIP:
                continue
            if isinstance(v, dict) and not _is_stat(v):
                for k2, v2 in v.items():
                    if _is_scalar(v2) or _is_stat(v2):
                        fr[f"{k}.{k2}"] = v2
            elif _is_scalar(v) or _is_stat(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v)):
                fr[k] = v
        flat_rows.append(fr)
        cols.update(dict.fromkeys(fr))
    header = list(cols)
    if "name" in header:  # a column that repeats the name in every record says nothing new
        header = [c for c in header if c == "name" or any(fr.get(c) != fr.get("name") for fr in flat_rows)]
    rows = []
    for i, fr in enumerate(flat_rows):
        row = [f"`{index[i]}`"] if index else []
        for c in header:
            v = fr.get(c)
            base = c.rsplit(".", 1)[-1]
            if _is_stat(v):
                row.append(_fmt_stat(v, base, show_n=True, pct=pct))
            else:
                row.append("" if c not in fr else _fmt(v, base, pct=pct and not isinstance(v, str)))
        rows.append(row)
    def pct_col(c: str) -> bool:  # a column of counts stays a column of counts
        return pct and any(isinstance(fr.get(c), float) or _is_stat(fr.get(c)) for fr in flat_rows)

    head = ([""] if index else []) + [_col(c, pct_col(c)) if "." not in c else c for c in header]
    return _table(head, rows)


def _stat_table(groups: dict, signed: bool = False, pct: bool = False) -> str:
    """``{row: {label fields..., metric: stat}}`` as one table: a row per entry, a column per metric."""
    labels: dict[str, None] = {}
    metrics: dict[str, None] = {}
    for g in groups.values():
        for k, v in g.items():
            if _is_stat(v):
                metrics[k] = None
            elif _is_scalar(v) or isinstance(v, list):
                labels[k] = None
    # label fields that only repeat the entry's own name say nothing new
    for k in list(labels):
        if all(str(g.get(k)) == str(name) for name, g in groups.items()):
            labels.pop(k)
    rows = []
    for name, g in groups.items():
        ns = {v["n"] for v in g.values() if _is_stat(v)}
        row = [f"`{name}`"] + [_fmt(g.get(k), k) if k in g else "" for k in labels]
        row += [_fmt_stat(g[m], m, signed=signed, show_n=len(ns) > 1, pct=pct) if _is_stat(g.get(m)) else ""
                for m in metrics]
        row.append(ns.pop() if len(ns) == 1 else "")
        rows.append(row)
    return _table([""] + list(labels) + [_col(m, pct) for m in metrics] + ["n"], rows)


def _parallel_lists(d: dict) -> bool:
    lists = [v for v in d.values() if isinstance(v, list)]
    return (len(lists) >= 1 and all(_is_scalar(x) for v in lists for x in v)
            and len({len(v) for v in lists}) == 1 and all(_is_scalar(v) or isinstance(v, list) for v in d.values()))


def _series_table(d: dict, pct: bool = False) -> str:
    """``{col: [...], col2: [...], scalar: x}`` (equal-length lists) as a table, mean/std combined,
    a row number first unless a column indexes the rows (epoch, shots, ...)."""
    cols = [k for k, v in d.items() if isinstance(v, list)]
    n = len(d[cols[0]])
    both = "mean" in cols and "std" in cols
    header = [c for c in cols if not (both and c == "std")]
    numbered = not (set(cols) & INDEX_COLS)
    rows = []
    for i in range(n):
        row = [str(i)] if numbered else []
        for c in header:
            if both and c == "mean":
                row.append(f"{_fmt(d['mean'][i], pct=pct)} ± {_fmt(d['std'][i], pct=pct)}")
            else:
                row.append(_fmt(d[c][i], c, pct=pct and c not in INDEX_COLS))
        rows.append(row)
    head = (["#"] if numbered else []) + [
        ("mean ± std" + (" (%)" if pct else "") if (both and c == "mean") else _col(c, pct and c not in INDEX_COLS))
        for c in header]
    scalars = [f"{k} = {_fmt(v, k)}" for k, v in d.items() if not isinstance(v, list)]
    return ((", ".join(scalars) + "\n\n") if scalars else "") + _table(head, rows)


def _merged_series(groups: dict, pct: bool = False) -> str | None:
    """Several series over the same index (``{group: {epoch: [...], mean: [...], std: [...]}}``)
    as one table: the index, then each group's columns. None when they do not share an index."""
    first = next(iter(groups.values()))
    idx = [c for c in first if c in INDEX_COLS and isinstance(first[c], list)]
    if len(idx) != 1 or any(g.get(idx[0]) != first[idx[0]] for g in groups.values()):
        return None
    ix = idx[0]
    head, cols = [ix], []
    for name, g in groups.items():
        lists = [c for c, v in g.items() if isinstance(v, list) and c != ix]
        both = "mean" in lists and "std" in lists
        for c in lists:
            if both and c == "std":
                continue
            label = "mean ± std" if (both and c == "mean") else c
            head.append(f"{name}" if len(lists) - both == 1 else f"{name}: {label}")
            cols.append((g, c, both and c == "mean"))
    rows = []
    for i, x in enumerate(first[ix]):
        row = [_fmt(x, ix)]
        for g, c, ms in cols:
            row.append(f"{_fmt(g['mean'][i], pct=pct)} ± {_fmt(g['std'][i], pct=pct)}" if ms
                       else _fmt(g[c][i], c, pct=pct))
        rows.append(row)
    notes = sorted({f"{k} = {_fmt(v, k)}" for g in groups.values() for k, v in g.items() if not isinstance(v, list)})
    unit = " Values in %." if (pct or any(c in PERCENT for _, c, _ in cols)) else ""
    return ((", ".join(notes) + "." if notes else "") + unit + "\n\n").lstrip() + _table(head, rows)


def _long(text: str, n_rows: int, title: str) -> str:
    return _details(f"{title} ({n_rows} rows)", text) if n_rows > MAX_OPEN_ROWS else text


def _scalar_dict(d) -> bool:
    return isinstance(d, dict) and bool(d) and all(_is_scalar(v) for v in d.values())


def render_value(key: str, value: Any, level: int, pct: bool = False) -> str:
    """Markdown for one entry of a card's results (``pct``: every number in it is a fraction)."""
    pct = pct or key in PERCENT
    h = "#" * min(level, 6)
    note = KEY_NOTES.get(key)
    intro = f"{h} `{key}`\n\n" + (f"{note[0].upper() + note[1:]}.\n\n" if note else "")
    if _is_scalar(value):
        return ""  # shown in the card's header table
    if isinstance(value, list):
        if not value:
            return intro + "(empty)\n"
        if all(_is_scalar(x) for x in value):
            return intro + ", ".join(f"`{x}`" if isinstance(x, str) else _fmt(x, key, pct=pct) for x in value) + "\n"
        if all(isinstance(x, dict) for x in value):
            return intro + _long(_records_table(value, pct), len(value), key) + "\n"
        return intro + f"`{_cell(json.dumps(value))[:500]}`\n"
    if not isinstance(value, dict):
        return intro + f"`{_cell(repr(value))}`\n"
    if not value:
        return intro + "(empty)\n"
    inner = list(value.values())
    signed = key.endswith("deltas") or key == "has_minus_apn"
    if all(_is_scalar(v) for v in inner):
        in_pct = pct or any(k in PERCENT and isinstance(v, float) for k, v in value.items())
        return intro + _table(["", "value (%)" if in_pct else "value"],
                              [[f"`{k}`", _fmt(v, k, signed=signed, pct=pct and not isinstance(v, str))]
                               for k, v in value.items()]) + "\n"
    if all(_is_scalar(v) or _is_stat(v) for v in inner):  # one summary entry
        return intro + _stat_table({key: value}, pct=pct) + "\n"
    if _parallel_lists(value):
        return intro + _series_table(value, pct) + "\n"
    if all(isinstance(v, dict) and v and _parallel_lists(v) for v in inner):
        merged = _merged_series(value, pct)
        if merged is not None:
            return intro + merged + "\n"
    if all(isinstance(v, dict) for v in inner):
        if any(_is_stat(x) for g in inner for x in g.values()):
            return intro + _stat_table(value, signed=signed, pct=pct) + "\n"
        if all(_is_stat(v) for v in inner):
            return intro + _table(["", "mean ± std", "n"],
                                  [[f"`{k}`", _fmt_stat(v, key, pct=pct), v["n"]] for k, v in value.items()]) + "\n"
        if all(_scalar_dict(v) for v in inner):  # records keyed by name
            return intro + _long(_records_table(inner, pct, index=list(value)), len(inner), key) + "\n"
    if all(isinstance(v, list) and all(_is_scalar(x) for x in v) for v in inner):
        n = max(len(v) for v in inner)
        rows = [[i] + [_fmt(v[i], key, pct=pct) if i < len(v) else "" for v in inner] for i in range(n)]
        return intro + _long(_table(["#"] + list(value), rows), n, key) + "\n"
    parts = [intro]
    scalars = {k: v for k, v in value.items() if _is_scalar(v)}
    if scalars:
        parts.append(_table(["", "value"], [[f"`{k}`", _fmt(v, k, pct=pct and not isinstance(v, str))]
                                            for k, v in scalars.items()]) + "\n")
    for k, v in value.items():
        if not _is_scalar(v):
            parts.append(render_value(k, v, level + 1, pct))
    return "\n".join(parts)


def _machine(p: dict) -> str:
    cpu = p.get("cpu") or "?"
    if p.get("cpu_id"):
        cpu += f" (`{p['cpu_id']}`"
        cpu += f", {p['cpu_capability']})" if p.get("cpu_capability") else ")"
    threads = p.get("threads")
    return cpu + (f", {threads} torch thread{'s' if threads != 1 else ''}" if threads else "")


def _provenance_rows(p: dict) -> list[list[str]]:
    dirty = " (uncommitted changes)" if p.get("git_dirty") else ""
    return [["machine", _machine(p)],
            ["made", f"{p.get('date', '?')}, commit `{str(p.get('git_commit') or '?')[:10]}`{dirty}"],
            ["versions", f"zslab {p.get('zslab')}, torch {p.get('torch')}, Python {p.get('python')}"]]


def load_card(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def card_markdown(name: str, level: int = 3) -> str:
    """A results card as markdown: what and where it ran, how to remake it, every table it holds."""
    card = load_card(name)
    res = card.get("results", {})
    h = "#" * level
    out = [f"{h} Card `{name}`\n"]
    if card.get("note"):
        out.append(f"> {card['note']}\n")
    meta = [["file", f"`results/{name}.json`"]]
    for k, v in res.items():
        if _is_scalar(v):
            meta.append([k, _fmt(v, k) if not isinstance(v, str) else f"`{v}`"])
        elif isinstance(v, list) and v and all(isinstance(x, int) for x in v) and "seed" in k:
            meta.append([k, ", ".join(map(str, v)) + f" (n = {len(v)})"])
    meta += _provenance_rows(card.get("provenance", {}))
    out += [_table(["", ""], meta), ""]
    cmd = card.get("command", "")
    out += ["Reproduce (from the repository root):\n", "```bash", cmd.replace(" && ", " \\\n  && "), "```", ""]
    merge = res.get("merge")
    if isinstance(merge, dict):
        rows = [[f"`{s.get('card')}`", _machine(s.get("provenance", {})), s.get("provenance", {}).get("date", "")]
                + [", ".join(f"`{x}`" for x in s.get(k, [])) or "—" for k in ("pooled", "same_as_pooled", "alternative")]
                for s in merge.get("sources", [])]
        dropped = ", ".join(f"`{r}`" for r in merge.get("dropped", [])) or "nothing"
        out += [("Pooled by `cards merge` from the cards of several sessions (earlier cards, kept in the git "
                 "history of `results/`): one row per row name and seed, each with the machine that trained it "
                 "(`host`). Where two sessions hold the same run, the first one's row is pooled; the same numbers "
                 "from another session are listed as such, other numbers are kept as alternative measurements "
                 f"(at the end), outside the pooled statistics (dropped: {dropped}):\n"),
                _table(["session card", "machine", "date", "pooled runs", "same numbers as the pooled run",
                        "alternative measurements"], rows), ""]
    for k, v in res.items():
        if k in ("merge", "alternatives") or _is_scalar(v) or (
                isinstance(v, list) and v and all(isinstance(x, int) for x in v) and "seed" in k):
            continue
        text = render_value(k, v, level + 1)
        if text:
            out.append(text)
    for alt in res.get("alternatives") or []:
        out.append(f"{h}# Alternative measurement: `{alt.get('card')}`\n")
        out.append(f"The same runs measured in another session, on {alt.get('host')} ({alt.get('date')}); "
                   "not in the pooled statistics above.\n")
        for k, v in alt.items():
            if not _is_scalar(v):
                out.append(render_value(k, v, level + 2))
    return "\n".join(out)


def cards_markdown() -> str:
    """One line per card in results/."""
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        card = json.loads(path.read_text(encoding="utf-8"))
        res = card.get("results", {})
        p = card.get("provenance", {})
        seeds = res.get("seeds")
        rows.append([f"`{path.stem}`", f"`{res.get('notebook', '')}`", res.get("preset", ""),
                     ", ".join(map(str, seeds)) if isinstance(seeds, list) else "—",
                     _machine(p), str(p.get("date", ""))[:10]])
    return _table(["card", "notebook", "preset", "seeds", "machine", "date"], rows)


# ============================================================================== includes
def include_markdown(rel: str) -> str:
    """A repository file's markdown, its first ``# `` heading dropped (the page has its own)."""
    path = (ROOT / rel).resolve()
    if ROOT not in path.parents:
        raise ValueError(f"zslab:include {rel!r} is outside the repository")
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


# ============================================================================== API
def api_modules(name: str) -> list[str]:
    """``name`` and, for a package, its public submodules (found on disk, not imported), in order."""
    rel = Path(*name.split("."))
    pkg, mod = ROOT / rel, (ROOT / rel).with_suffix(".py")
    if mod.is_file():
        return [name]
    if not (pkg / "__init__.py").is_file():
        raise ValueError(f"zslab:api {name}: no module {mod.relative_to(ROOT)} or package {rel}/ "
                         "(update the API page)")
    out = [name]
    for child in sorted(pkg.iterdir()):
        if child.name.startswith("_"):
            continue
        if child.suffix == ".py" or (child / "__init__.py").is_file():
            out += api_modules(f"{name}.{child.stem}")
    return out


def _own_members(init: Path) -> list[str]:
    """Public names a package's ``__init__.py`` defines itself (its re-exports are documented
    where they are defined, in the submodules)."""
    import ast

    names = []
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def api_markdown(name: str) -> str:
    """``::: module`` blocks; a package shows its docstring and what its ``__init__`` defines."""
    out = []
    for m in api_modules(name):
        init = ROOT / Path(*m.split(".")) / "__init__.py"
        if init.is_file():
            own = _own_members(init)
            out.append(f"::: {m}\n    options:\n      members: {json.dumps(own) if own else 'false'}\n")
        else:
            out.append(f"::: {m}\n")
    return "\n".join(out)


def api_index_markdown(pages: str) -> str:
    """A table: API page -> the modules it documents (``pages``: ``file.md=mod1,mod2 ...``)."""
    rows = []
    for item in pages.split():
        page, _, mods = item.partition("=")
        names = [m for top in mods.split(",") for m in api_modules(top)]
        rows.append([f"[{', '.join(mods.split(','))}]({page})", ", ".join(f"`{m}`" for m in names)])
    return _table(["page", "modules"], rows)


# ============================================================================== the hook
def expand(markdown: str) -> str:
    """Replace every ``<!-- zslab:... -->`` marker of a page by its generated markdown."""
    _on_path()
    def sub(m: re.Match) -> str:
        kind, arg = m.group(1), (m.group(2) or "").strip()
        if kind == "recipes":
            return recipes_markdown()
        if kind == "studies":
            return studies_markdown()
        if kind == "cli":
            return cli_markdown()
        if kind == "cards":
            return cards_markdown()
        if kind == "card":  # NAME [collapsed]
            name, _, flag = arg.partition(" ")
            if flag.strip() == "collapsed":
                card = load_card(name)
                return _details(f"Card {name}: {card.get('note') or card.get('command', '')}"[:160].replace('"', "'"),
                                card_markdown(name, level=4))
            if flag.strip():
                raise ValueError(f"zslab:card {arg!r}: the only option is 'collapsed'")
            return card_markdown(name)
        if kind == "include":
            return include_markdown(arg)
        if kind == "api":
            return "\n".join(api_markdown(a) for a in arg.split())
        if kind == "api-index":
            return api_index_markdown(arg)
        raise ValueError(f"unknown docs marker zslab:{kind}")

    return MARKER.sub(sub, markdown)


#: where the site serves the notebooks (``notebooks/NAME.ipynb``, committed without outputs) for download
NOTEBOOKS_URI = "notebooks"


def notebook_files() -> list[Path]:
    """The notebooks the site offers for download (every ``notebooks/*.ipynb``)."""
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def on_files(files, config=None, **kwargs):  # mkdocs hook: the notebooks as downloads
    """Add each notebook to the site as ``notebooks/NAME.ipynb``, so the notebooks page links them
    (the files stay where they are: nothing is copied into ``docs/``)."""
    from mkdocs.structure.files import File  # mkdocs itself: only when the site is built

    for nb in notebook_files():
        files.append(File.generated(config, f"{NOTEBOOKS_URI}/{nb.name}", abs_src_path=str(nb)))
    return files


def on_page_markdown(markdown, page=None, config=None, files=None, **kwargs):  # mkdocs hook
    return expand(markdown)


def on_serve(server, config=None, builder=None, **kwargs):  # mkdocs hook: rebuild on source changes
    for path in (RESULTS, ROOT / "zslab", ROOT / "bench" / "README.md"):  # cards; recipes, docstrings, --help
        if path.exists():
            server.watch(str(path))
    return server


# ============================================================================== script
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/gen_docs.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["recipes", "studies", "cli", "cards", "card", "page"])
    ap.add_argument("arg", nargs="?", help="card name (card) or a docs/ markdown file (page)")
    args = ap.parse_args(argv)
    _on_path()
    if args.what in ("card", "page") and not args.arg:
        ap.error(f"{args.what} needs an argument")
    text = {"recipes": recipes_markdown, "studies": studies_markdown, "cli": cli_markdown,
            "cards": cards_markdown}.get(args.what)
    if text is not None:
        print(text())
    elif args.what == "card":
        print(card_markdown(args.arg))
    else:
        print(expand(Path(args.arg).read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
